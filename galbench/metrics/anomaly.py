"""Anomaly-detection metrics: AUROC, average precision, true-positive rate at a fixed false-positive
rate; all from scores where higher means more anomalous, with optional sample weights.

The scores are sorted once (:class:`ScoreRanking`); a weighting of the objects (a bootstrap
resample is the weighting ``bincount(indices)``, a stratum a 0/1 mask) is then reduced to summed
weights per distinct score and class in O(n), and every metric follows from cumulative sums over
the distinct scores, highest first. Thresholds sit only between distinct scores, so tied objects
are always counted together, as ``sklearn.metrics.roc_curve`` does:

- AUROC is the trapezoid under the ROC curve, i.e. the Mann-Whitney probability that a positive
  outscores a negative with ties counted as half; equal to ``sklearn.metrics.roc_auc_score``.
- Average precision is the step sum ``sum_k (R_k - R_(k-1)) P_k`` over distinct thresholds, without
  interpolation; equal to ``sklearn.metrics.average_precision_score``.
- TPR at FPR <= f is the largest true-positive rate over thresholds whose false-positive rate is
  at most f (0 if only the threshold above every score qualifies), read off the same points as
  ``roc_curve(..., drop_intermediate=False)``.

Each metric is NaN when the (weighted) positives or negatives are absent. Inputs may carry
leading batch axes: weights ``[..., n]`` give metrics ``[...]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from galbench.metrics import metric

#: False-positive-rate limit of ``tpr_at_fpr01``.
FPR01 = 0.01


@dataclass(frozen=True)
class ScoreRanking:
    """Scores ``[n]`` sorted once, highest first, and grouped into distinct values.

    ``group[i]`` is the rank of object ``i``'s score among the ``n_groups`` distinct scores
    (0 = the highest). Every weighting of the objects is reduced through it, so sorting is never
    repeated per bootstrap resample or stratum.
    """

    group: np.ndarray
    n_groups: int

    @classmethod
    def from_scores(cls, scores: np.ndarray) -> ScoreRanking:
        s = np.asarray(scores, dtype=np.float64)
        if s.ndim != 1:
            raise ValueError(f"scores must be one-dimensional [n], got shape {s.shape}")
        if not np.isfinite(s).all():
            raise ValueError("scores must be finite")
        order = np.argsort(-s, kind="stable")
        ordered = s[order]
        new_value = np.ones(len(s), dtype=bool)
        new_value[1:] = ordered[1:] != ordered[:-1]
        group = np.empty(len(s), dtype=np.intp)
        group[order] = np.cumsum(new_value) - 1
        return cls(group=group, n_groups=int(new_value.sum()))

    def class_weights(
        self, classes: np.ndarray, n_classes: int, weights: np.ndarray | None = None
    ) -> np.ndarray:
        """Summed weights per class and distinct score, ``[..., n_classes, n_groups]``.

        ``classes`` ``[n]``: ints in ``[0, n_classes)``; ``weights`` ``[..., n]`` (non-negative,
        integer or float; default 1 per object).
        """
        code = self._code(classes, n_classes)
        size = n_classes * self.n_groups
        if weights is None:
            return np.bincount(code, minlength=size).astype(np.float64).reshape(n_classes, -1)
        w = np.asarray(weights, dtype=np.float64)
        if w.shape[-1:] != code.shape:
            raise ValueError(f"weights have shape {w.shape}; expected [..., {len(code)}]")
        if not (np.isfinite(w) & (w >= 0)).all():
            raise ValueError("weights must be finite and non-negative")
        batch = w.shape[:-1]
        rows = int(np.prod(batch))
        offsets = (np.arange(rows) * size)[:, None]
        summed = np.bincount(
            (code[None, :] + offsets).ravel(), weights=w.reshape(rows, -1).ravel(),
            minlength=rows * size,
        )
        return summed.reshape(*batch, n_classes, self.n_groups)

    def resample_weights(
        self, classes: np.ndarray, n_classes: int, indices: np.ndarray
    ) -> np.ndarray:
        """:meth:`class_weights` of bootstrap resamples ``indices`` ``[B, m]`` (object indices
        drawn with replacement): each object weighs the number of times it was drawn.
        ``[B, n_classes, n_groups]``."""
        code = self._code(classes, n_classes)
        indices = np.asarray(indices)
        size = n_classes * self.n_groups
        offsets = (np.arange(len(indices)) * size)[:, None]
        counts = np.bincount((code[indices] + offsets).ravel(), minlength=len(indices) * size)
        return counts.astype(np.float64).reshape(len(indices), n_classes, self.n_groups)

    def _code(self, classes: np.ndarray, n_classes: int) -> np.ndarray:
        classes = np.asarray(classes)
        if classes.shape != self.group.shape:
            raise ValueError(f"classes have shape {classes.shape}; expected {self.group.shape}")
        if classes.dtype.kind not in "biu":
            raise ValueError(f"classes must be integers, got dtype {classes.dtype}")
        if len(classes) and (classes.min() < 0 or classes.max() >= n_classes):
            raise ValueError(f"classes must lie in [0, {n_classes})")
        return classes.astype(np.intp) * self.n_groups + self.group


# ------------------------------------------------------------------------------------------
# Metrics of a detection curve


@dataclass(frozen=True)
class DetectionCurve:
    """Positive and negative weight at each distinct-score threshold, highest score first.

    ``positive``/``negative`` ``[..., G]``: weight of the objects scoring exactly the k-th
    highest distinct score; ``tp``/``fp`` ``[..., G]``: their cumulative sums (weight scoring at
    or above it). Every metric reads the same curve, so the sums are taken once; a scorer that
    compares several positive classes with the same negatives shares ``negative`` and ``fp``.
    """

    positive: np.ndarray
    negative: np.ndarray
    tp: np.ndarray
    fp: np.ndarray

    @classmethod
    def from_counts(cls, positive: np.ndarray, negative: np.ndarray) -> DetectionCurve:
        positive = np.asarray(positive, dtype=np.float64)
        negative = np.asarray(negative, dtype=np.float64)
        return cls(positive, negative, np.cumsum(positive, axis=-1), np.cumsum(negative, axis=-1))

    @property
    def total_positive(self) -> np.ndarray:
        """``[...]``"""
        return self.tp[..., -1] if self.tp.shape[-1] else np.zeros(self.tp.shape[:-1])

    @property
    def total_negative(self) -> np.ndarray:
        """``[...]``"""
        return self.fp[..., -1] if self.fp.shape[-1] else np.zeros(self.fp.shape[:-1])

    def defined(self, value: np.ndarray) -> np.ndarray:
        """``value`` where both classes are present, NaN elsewhere."""
        out = np.where((self.total_positive > 0) & (self.total_negative > 0), value, np.nan)
        return out if out.ndim else out[()]


def auroc_from_curve(curve: DetectionCurve) -> np.ndarray:
    """AUROC (Mann-Whitney, ties half): the trapezoid under the ROC points ``(fp, tp)``."""
    # Negatives at threshold k rank below the positives above it and tie (half) with those at it.
    area = np.sum(curve.negative * (curve.tp - 0.5 * curve.positive), axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return curve.defined(area / (curve.total_positive * curve.total_negative))


def average_precision_from_curve(curve: DetectionCurve) -> np.ndarray:
    """Average precision, ``sum_k (R_k - R_(k-1)) P_k`` over the distinct-score thresholds."""
    predicted = curve.tp + curve.fp
    # Where nothing scores at or above a threshold no positive is gained there either (0 x 0/0).
    precision = np.divide(curve.tp, predicted, out=np.zeros_like(curve.tp), where=predicted > 0)
    gained = np.sum(curve.positive * precision, axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return curve.defined(gained / curve.total_positive)


def tpr_at_fpr_from_curve(curve: DetectionCurve, max_fpr: float = FPR01) -> np.ndarray:
    """Largest TPR over the distinct-score thresholds with FPR <= ``max_fpr`` (0 when none
    qualifies but the threshold above every score)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        # fp / N, as roc_curve computes the rate, so that a rate of exactly max_fpr qualifies
        # the same way.
        allowed = curve.fp / curve.total_negative[..., None] <= max_fpr
        # tp grows with the threshold index: the largest allowed is the last allowed.
        best = np.max(np.where(allowed, curve.tp, 0.0), axis=-1, initial=0.0)
        return curve.defined(best / curve.total_positive)


# ------------------------------------------------------------------------------------------
# Registered metrics on scores and binary labels


def binary_curve(
    scores: np.ndarray, labels: np.ndarray, weights: np.ndarray | None = None
) -> DetectionCurve:
    """The :class:`DetectionCurve` of ``scores`` ``[n]`` for binary ``labels`` ``[n]``
    (1 = positive = anomaly) under optional sample ``weights`` ``[..., n]``."""
    labels = np.asarray(labels)
    if labels.dtype.kind not in "biuf" or not np.isin(labels, (0, 1)).all():
        raise ValueError("labels must be 0 (normal) or 1 (anomaly)")
    counts = ScoreRanking.from_scores(scores).class_weights(labels.astype(np.intp), 2, weights)
    return DetectionCurve.from_counts(counts[..., 1, :], counts[..., 0, :])


@metric("auroc", "higher", "area under the ROC curve (anomalies vs normals; ties count half)")
def auroc(
    scores: np.ndarray, labels: np.ndarray, weights: np.ndarray | None = None
) -> np.ndarray:
    """AUROC of ``scores`` ``[n]`` (higher = more anomalous) for ``labels`` ``[n]`` (1 = anomaly),
    with optional sample ``weights`` ``[..., n]``; NaN without positives or negatives."""
    return auroc_from_curve(binary_curve(scores, labels, weights))


@metric(
    "average_precision",
    "higher",
    "average precision: step-wise area under the precision-recall curve, no interpolation",
)
def average_precision(
    scores: np.ndarray, labels: np.ndarray, weights: np.ndarray | None = None
) -> np.ndarray:
    """Average precision of ``scores`` for ``labels`` (see :func:`auroc` for the arguments)."""
    return average_precision_from_curve(binary_curve(scores, labels, weights))


def tpr_at_fpr(
    scores: np.ndarray,
    labels: np.ndarray,
    weights: np.ndarray | None = None,
    max_fpr: float = FPR01,
) -> np.ndarray:
    """Largest true-positive rate at a threshold whose false-positive rate is <= ``max_fpr``."""
    return tpr_at_fpr_from_curve(binary_curve(scores, labels, weights), max_fpr)


@metric(
    "tpr_at_fpr01",
    "higher",
    "true-positive rate at the threshold with false-positive rate <= 1% (largest such TPR)",
)
def tpr_at_fpr01(
    scores: np.ndarray, labels: np.ndarray, weights: np.ndarray | None = None
) -> np.ndarray:
    return tpr_at_fpr(scores, labels, weights, FPR01)
