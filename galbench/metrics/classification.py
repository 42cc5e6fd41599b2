"""Classification metrics from class probabilities: accuracy, macro-F1, per-class recall, log
loss and expected calibration error.

Every metric is computed from per-object quantities and object weights, so one call scores the
whole split (weights of ones), a stratum (weights 0/1) or many bootstrap resamples at once
(weights ``[B, n]``: how often each object was drawn). Conventions:

- the predicted class is the argmax of the probabilities, ties to the lowest class index;
- F1 of class c is 2 TP / (2 TP + FP + FN), 0 when that denominator is 0 (scikit-learn's
  ``f1_score(labels=range(K), average=None, zero_division=0)``); macro-F1 averages all K classes;
- recall of class c is TP / (TP + FN), NaN when class c has no objects;
- log loss is the mean of -ln p(true class), with p clipped to [1e-15, 1];
- ECE (Guo et al. 2017) uses 15 equal-width bins of confidence (the largest probability) over
  (0, 1], bin b holding (b/15, (b+1)/15]: sum over bins of |sum_i (correct_i - confidence_i)| / N,
  i.e. the bin's share of objects times |accuracy - mean confidence| in the bin.
"""

from __future__ import annotations

import numpy as np

from galbench.metrics import declare

ECE_BINS = 15
LOG_LOSS_CLIP = 1e-15

declare("accuracy", "higher", "fraction of objects whose most probable class is the true class")
declare("macro_f1", "higher", "mean over classes of F1 = 2TP / (2TP + FP + FN)")
declare("recall", "higher", "per class: fraction of its objects classified as it, TP / (TP + FN)")
declare("log_loss", "lower", "mean of -ln p(true class), p clipped to [1e-15, 1]")
declare("ece", "lower", "expected calibration error, 15 equal-width confidence bins")


class PerObject:
    """What every metric needs from each object, computed once: true and predicted class,
    -ln p(true), confidence, correctness and confidence bin."""

    def __init__(self, probabilities: np.ndarray, labels: np.ndarray) -> None:
        p = np.asarray(probabilities, dtype=np.float64)
        y = np.asarray(labels, dtype=np.int64)
        self.k = p.shape[1]
        self.labels = y
        self.predicted = np.argmax(p, axis=1)
        self.nll = -np.log(np.clip(p[np.arange(len(y)), y], LOG_LOSS_CLIP, 1.0))
        self.confidence = p.max(axis=1)
        self.correct = (self.predicted == y).astype(np.float64)
        self.bin = np.clip(np.ceil(self.confidence * ECE_BINS).astype(np.int64) - 1, 0, ECE_BINS - 1)
        # One-hot codes of (true, predicted) pairs and of confidence bins: weights @ codes gives
        # confusion matrices and per-bin sums for every weight row at once.
        self._pair = y * self.k + self.predicted

    def _sums(self, weights: np.ndarray, codes: np.ndarray, size: int, values: np.ndarray | None = None) -> np.ndarray:
        w = weights if values is None else weights * values
        flat = w.reshape(-1, w.shape[-1])
        out = np.stack([np.bincount(codes, weights=row, minlength=size) for row in flat])
        return out.reshape(*w.shape[:-1], size)

    def statistics(self, classes: tuple[str, ...], weights: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Every metric for each row of ``weights`` (``[..., n]``; default: all objects once)."""
        n = len(self.labels)
        w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
        total = w.sum(axis=-1)
        confusion = self._sums(w, self._pair, self.k * self.k).reshape(*w.shape[:-1], self.k, self.k)
        tp = np.diagonal(confusion, axis1=-2, axis2=-1)
        actual = confusion.sum(axis=-1)  # per true class
        predicted = confusion.sum(axis=-2)  # per predicted class
        with np.errstate(invalid="ignore", divide="ignore"):
            recall = np.where(actual > 0, tp / actual, np.nan)
            denominator = actual + predicted  # = 2TP + FP + FN
            f1 = np.where(denominator > 0, 2 * tp / denominator, 0.0)
            out = {
                "accuracy": tp.sum(axis=-1) / total,
                "macro_f1": f1.mean(axis=-1),
                "log_loss": (w * self.nll).sum(axis=-1) / total,
                "ece": np.abs(self._sums(w, self.bin, ECE_BINS, self.correct - self.confidence)).sum(axis=-1)
                / total,
            }
        for j, name in enumerate(classes):
            out[f"recall/{name}"] = recall[..., j]
        return out


def classification_metrics(
    probabilities: np.ndarray,
    labels: np.ndarray,
    weights: np.ndarray | None = None,
    classes: tuple[str, ...] | None = None,
) -> dict[str, np.ndarray]:
    """Every metric of ``probabilities`` ``[n, K]`` against ``labels`` ``[n]`` (0..K-1), per row
    of ``weights``; per-class recalls are named ``recall/<class>`` (class index by default)."""
    k = np.shape(probabilities)[1]
    names = classes if classes is not None else tuple(str(c) for c in range(k))
    return PerObject(probabilities, labels).statistics(names, weights)
