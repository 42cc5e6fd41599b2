"""Classification metrics from class probabilities: accuracy, macro-F1, per-class recall, log
loss and expected calibration error (ECE), all with optional sample weights.

The per-object quantities are computed once (:class:`ClassifiedObjects`): true and predicted
class, -ln p(true class), confidence and its calibration bin. A weighting of the objects (the
whole set is weights of ones, a stratum a 0/1 mask, a bootstrap resample the weights
``bincount(indices)``, i.e. how often each object was drawn) is then reduced in O(n) to
:class:`ClassCounts`: a weighted confusion matrix, summed calibration gaps per confidence bin and
summed -ln p. Every metric follows from those counts; weights ``[..., n]`` give metrics ``[...]``,
so many resamples are evaluated at once. Weights act exactly as duplication of objects.

Conventions (K classes, weights w, W = sum w):

- The predicted class is the argmax of the probabilities, ties to the lowest class index
  (``np.argmax``).
- ``accuracy``: weight of correctly classified objects / W.
- ``macro_f1``: the mean over classes of F1 = 2 TP / (2 TP + FP + FN), taken over the classes
  *present* (positive weight among the true or the predicted classes); a present class without
  a true positive scores 0. This is ``sklearn.metrics.f1_score(average="macro",
  zero_division=0)`` on the objects duplicated by their weights. (With ``sample_weight``,
  scikit-learn also averages in, as 0, a class whose objects all weigh 0; duplication leaves it
  out, and so do we, so a bootstrap resample that misses a class is not penalised for it.)
- ``recall/<class>``: TP / (TP + FN) of that class; NaN when the class has no (weighted) true
  objects, e.g. in a bootstrap resample or stratum without it.
- ``log_loss``: the weighted mean of -ln p(true class), p clipped to [1e-15, 1] so a confident
  mistake costs at most ln(1e15) = 34.5 nats. (scikit-learn >= 1.5 clips to [eps, 1 - eps] with
  the float64 eps, 2.2e-16: equal values whenever every p(true) >= 1e-15.)
- ``ece``: 15 equal-width bins of confidence c = max_k p_k over (0, 1]; bin b holds
  ``edges[b] < c <= edges[b + 1]`` with ``edges = np.linspace(0, 1, 16)`` compared as float64
  (a confidence on an edge belongs to the lower bin; c = 1 to the last). ECE =
  sum_b (W_b / W) |acc_b - conf_b| = sum_b |sum_{i in b} w_i (correct_i - c_i)| / W
  (Guo et al. 2017), the weighted fraction correct minus the weighted mean confidence per bin.

Every metric is NaN when the total weight is 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from galbench.metrics import metric

#: Number of equal-width confidence bins of ``ece``.
ECE_BINS = 15
#: Bin edges of ``ece``, ``[ECE_BINS + 1]``; bin b is ``(ECE_EDGES[b], ECE_EDGES[b + 1]]``.
ECE_EDGES = np.linspace(0.0, 1.0, ECE_BINS + 1)
#: Lower clip of p(true class) in ``log_loss``.
LOG_LOSS_CLIP = 1e-15


@dataclass(frozen=True)
class ClassCounts:
    """Weighted sums from which every classification metric follows.

    ``confusion`` ``[..., K, K]``: weight of objects with true class i predicted as j (row i,
    column j); ``calibration_gap`` ``[..., ECE_BINS]``: sum over the objects in each confidence
    bin of w (correct - confidence); ``neg_log_likelihood`` ``[...]``: sum of w (-ln p(true)).
    """

    confusion: np.ndarray
    calibration_gap: np.ndarray
    neg_log_likelihood: np.ndarray

    @property
    def total(self) -> np.ndarray:
        """Total weight, ``[...]``."""
        return self.confusion.sum(axis=(-2, -1))

    @property
    def true_positive(self) -> np.ndarray:
        """``[..., K]``"""
        return np.diagonal(self.confusion, axis1=-2, axis2=-1)

    @property
    def actual(self) -> np.ndarray:
        """Weight per true class (TP + FN), ``[..., K]``."""
        return self.confusion.sum(axis=-1)

    @property
    def predicted(self) -> np.ndarray:
        """Weight per predicted class (TP + FP), ``[..., K]``."""
        return self.confusion.sum(axis=-2)


@dataclass(frozen=True)
class ClassifiedObjects:
    """The per-object quantities of probabilities ``[n, K]`` and true labels ``[n]``.

    ``labels``/``predicted`` ``[n]``: true and argmax class; ``neg_log_likelihood`` ``[n]``:
    -ln max(p(true), 1e-15); ``confidence`` ``[n]``: max_k p_k; ``confidence_bin`` ``[n]``: its
    ECE bin. Every weighting of the objects is reduced through them (:meth:`counts`), so nothing
    per object is recomputed per bootstrap resample or stratum.
    """

    labels: np.ndarray
    predicted: np.ndarray
    n_classes: int
    neg_log_likelihood: np.ndarray
    confidence: np.ndarray
    confidence_bin: np.ndarray

    @classmethod
    def from_probabilities(cls, probabilities: np.ndarray, labels: np.ndarray) -> ClassifiedObjects:
        """``probabilities`` ``[n, K]`` (finite; rows are taken as given, not renormalised) and
        ``labels`` ``[n]``, integers in ``[0, K)``."""
        p = np.asarray(probabilities, dtype=np.float64)
        if p.ndim != 2 or p.shape[1] < 1:
            raise ValueError(f"probabilities must have shape [n, K], got {p.shape}")
        if not np.isfinite(p).all():
            raise ValueError("probabilities must be finite")
        n, k = p.shape
        y = np.asarray(labels)
        if y.shape != (n,):
            raise ValueError(f"labels have shape {y.shape}; expected ({n},)")
        if y.dtype.kind not in "biu":
            raise ValueError(f"labels must be integers, got dtype {y.dtype}")
        if n and (y.min() < 0 or y.max() >= k):
            raise ValueError(f"labels must lie in [0, {k})")
        y = y.astype(np.intp)
        predicted = np.argmax(p, axis=1)
        confidence = p[np.arange(n), predicted]
        p_true = p[np.arange(n), y]
        # Bin b holds (edges[b], edges[b + 1]]: the number of edges strictly below c, minus 1.
        confidence_bin = np.clip(
            np.searchsorted(ECE_EDGES, confidence, side="left") - 1, 0, ECE_BINS - 1
        )
        return cls(
            labels=y,
            predicted=predicted.astype(np.intp),
            n_classes=k,
            neg_log_likelihood=-np.log(np.clip(p_true, LOG_LOSS_CLIP, 1.0)),
            confidence=confidence,
            confidence_bin=confidence_bin.astype(np.intp),
        )

    def counts(self, weights: np.ndarray | None = None) -> ClassCounts:
        """:class:`ClassCounts` of each row of ``weights`` ``[..., n]`` (finite, non-negative;
        default 1 per object, a boolean mask counts 0/1)."""
        n, k = len(self.labels), self.n_classes
        w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
        if w.shape[-1:] != (n,):
            raise ValueError(f"weights have shape {w.shape}; expected [..., {n}]")
        if not (np.isfinite(w) & (w >= 0)).all():
            raise ValueError("weights must be finite and non-negative")
        batch = w.shape[:-1]
        rows = w.reshape(int(np.prod(batch)), n)
        pair = self.labels * k + self.predicted  # cell of the confusion matrix, [n]
        gap = (self.labels == self.predicted) - self.confidence  # correct - confidence, [n]
        confusion = _binned_sums(pair, k * k, rows)
        calibration_gap = _binned_sums(self.confidence_bin, ECE_BINS, rows * gap)
        return ClassCounts(
            confusion=confusion.reshape(*batch, k, k),
            calibration_gap=calibration_gap.reshape(*batch, ECE_BINS),
            neg_log_likelihood=(rows @ self.neg_log_likelihood).reshape(batch),
        )

    def resample_counts(self, indices: np.ndarray) -> ClassCounts:
        """:meth:`counts` of bootstrap resamples ``indices`` ``[B, m]`` (object indices drawn with
        replacement): each object weighs the number of times it was drawn. ``[B, ...]``."""
        return self.counts(resample_weights(indices, len(self.labels)))


def resample_weights(indices: np.ndarray, n: int) -> np.ndarray:
    """How often each of ``n`` objects occurs in each row of ``indices`` ``[B, m]``:
    ``[B, n]`` float64, one ``bincount`` for all rows."""
    indices = np.asarray(indices)
    if indices.ndim != 2:
        raise ValueError(f"indices must have shape [B, m], got {indices.shape}")
    offsets = (np.arange(len(indices)) * n)[:, None]
    counts = np.bincount((indices + offsets).ravel(), minlength=len(indices) * n)
    return counts.reshape(len(indices), n).astype(np.float64)


def _binned_sums(codes: np.ndarray, size: int, weights: np.ndarray) -> np.ndarray:
    """``out[r, c] = sum(weights[r, codes == c])`` for ``codes`` ``[n]`` in ``[0, size)`` and
    ``weights`` ``[R, n]``: one ``bincount`` over all rows, each offset by ``r * size``."""
    n_rows = len(weights)
    offsets = (np.arange(n_rows) * size)[:, None]
    summed = np.bincount(
        (codes[None, :] + offsets).ravel(), weights=weights.ravel(), minlength=n_rows * size
    )
    return summed.reshape(n_rows, size)


# ------------------------------------------------------------------------------------------
# Metrics of the counts


def _undefined_without_weight(counts: ClassCounts, value: np.ndarray) -> np.ndarray:
    out = np.where(counts.total > 0, value, np.nan)
    return out if out.ndim else out[()]


def accuracy_from_counts(counts: ClassCounts) -> np.ndarray:
    """Weighted fraction of objects whose argmax is the true class, ``[...]``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return _undefined_without_weight(counts, counts.true_positive.sum(axis=-1) / counts.total)


def f1_per_class_from_counts(counts: ClassCounts) -> np.ndarray:
    """F1 = 2 TP / (2 TP + FP + FN) per class, ``[..., K]``; NaN for a class with no true and
    no predicted weight (absent: left out of the macro average)."""
    # actual + predicted = (TP + FN) + (TP + FP)
    denominator = counts.actual + counts.predicted
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, 2.0 * counts.true_positive / denominator, np.nan)


def macro_f1_from_counts(counts: ClassCounts) -> np.ndarray:
    """Mean F1 over the present classes, ``[...]`` (NaN if none is present)."""
    f1 = f1_per_class_from_counts(counts)
    present = np.isfinite(f1)
    with np.errstate(divide="ignore", invalid="ignore"):
        value = np.where(present, f1, 0.0).sum(axis=-1) / present.sum(axis=-1)
    return value if value.ndim else value[()]


def recall_from_counts(counts: ClassCounts) -> np.ndarray:
    """TP / (TP + FN) per class, ``[..., K]``; NaN for a class with no true weight."""
    actual = counts.actual
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(actual > 0, counts.true_positive / actual, np.nan)


def log_loss_from_counts(counts: ClassCounts) -> np.ndarray:
    """Weighted mean of -ln max(p(true), 1e-15), in nats, ``[...]``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return _undefined_without_weight(counts, counts.neg_log_likelihood / counts.total)


def ece_from_counts(counts: ClassCounts) -> np.ndarray:
    """Expected calibration error, ``sum_b |sum_{i in b} w_i (correct_i - c_i)| / W``, ``[...]``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        value = np.abs(counts.calibration_gap).sum(axis=-1) / counts.total
        return _undefined_without_weight(counts, value)


# ------------------------------------------------------------------------------------------
# Registered metrics on probabilities and labels


def _counts(
    probabilities: np.ndarray, labels: np.ndarray, weights: np.ndarray | None
) -> ClassCounts:
    return ClassifiedObjects.from_probabilities(probabilities, labels).counts(weights)


@metric("accuracy", "higher", "fraction of objects whose most probable class is the true class")
def accuracy(
    probabilities: np.ndarray, labels: np.ndarray, weights: np.ndarray | None = None
) -> np.ndarray:
    """Accuracy of ``probabilities`` ``[n, K]`` (argmax, ties to the lowest class) for
    ``labels`` ``[n]`` (0..K-1), with optional sample ``weights`` ``[..., n]``."""
    return accuracy_from_counts(_counts(probabilities, labels, weights))


@metric(
    "macro_f1",
    "higher",
    "mean over the classes present of F1 = 2TP / (2TP + FP + FN) (sklearn macro, zero_division=0)",
)
def macro_f1(
    probabilities: np.ndarray, labels: np.ndarray, weights: np.ndarray | None = None
) -> np.ndarray:
    """Macro-averaged F1 (see :func:`accuracy` for the arguments)."""
    return macro_f1_from_counts(_counts(probabilities, labels, weights))


@metric(
    "recall",
    "higher",
    "per class (recall/<class>): fraction of its objects classified as it, TP / (TP + FN)",
)
def recall(
    probabilities: np.ndarray, labels: np.ndarray, weights: np.ndarray | None = None
) -> np.ndarray:
    """Recall of every class, ``[..., K]``; NaN for a class without objects."""
    return recall_from_counts(_counts(probabilities, labels, weights))


@metric("log_loss", "lower", "mean of -ln p(true class) in nats, p clipped to [1e-15, 1]")
def log_loss(
    probabilities: np.ndarray, labels: np.ndarray, weights: np.ndarray | None = None
) -> np.ndarray:
    """Mean negative log-likelihood of the true class (see :func:`accuracy`)."""
    return log_loss_from_counts(_counts(probabilities, labels, weights))


@metric(
    "ece",
    "lower",
    "expected calibration error: 15 equal-width bins of max probability on (0, 1], "
    "sum_b (n_b / N) |accuracy_b - mean confidence_b|",
)
def ece(
    probabilities: np.ndarray, labels: np.ndarray, weights: np.ndarray | None = None
) -> np.ndarray:
    """Expected calibration error (see the module docstring for the binning)."""
    return ece_from_counts(_counts(probabilities, labels, weights))


def classification_statistics(
    class_names: tuple[str, ...] | list[str], counts: ClassCounts
) -> dict[str, np.ndarray]:
    """Every classification metric from :class:`ClassCounts` ``[...]``: ``accuracy``,
    ``macro_f1``, ``log_loss``, ``ece`` and ``recall/<class>`` per entry of ``class_names``
    (in class-index order)."""
    if len(class_names) != counts.confusion.shape[-1]:
        raise ValueError(f"{len(class_names)} class names for {counts.confusion.shape[-1]} classes")
    out = {
        "accuracy": accuracy_from_counts(counts),
        "macro_f1": macro_f1_from_counts(counts),
        "log_loss": log_loss_from_counts(counts),
        "ece": ece_from_counts(counts),
    }
    recalls = recall_from_counts(counts)
    for j, name in enumerate(class_names):
        value = recalls[..., j]
        out[f"recall/{name}"] = value if value.ndim else value[()]
    return out
