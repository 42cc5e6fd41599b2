"""Validate and score anomaly-detection predictions (the ``anomaly`` task type).

Predictions: ``score`` ``[N]``, higher = more anomalous. Only the ranking matters: any monotone
transform of the scores gives the same metrics.

Truth: the catalog's ``is_anomaly`` (0/1) and ``anomaly_kind`` (0 = normal, k >= 1 = the k-th
name, 1-based, of the task's ``simulation.params["kinds"]``). Metrics: ``auroc``,
``average_precision`` and ``tpr_at_fpr01`` of all anomalies against all normals, and
``auroc/<kind>``, ``average_precision/<kind>`` of each kind's anomalies against all normals (the
other kinds left out).
"""

from __future__ import annotations


import numpy as np
import pandas as pd

from galbench.errors import PredictionError, TaskSpecError
from galbench.metrics.anomaly import (
    DetectionCurve,
    ScoreRanking,
    auroc_from_curve,
    average_precision_from_curve,
    tpr_at_fpr_from_curve,
)
from galbench.scoring.base import (
    Predictions,
    Scores,
    TaskScorer,
    align_catalog,
    single_numeric_field,
    assemble_scores,
)
from galbench.tasks import TaskSpec

SCORE_FIELD = "score"
#: Resamples are evaluated in batches of about this many (resample x class x distinct score)
#: cells, ~32 MB per float64 array: large splits take smaller batches. Results do not depend on
#: the batch size (see bootstrap_samples).
BOOTSTRAP_BATCH_CELLS = 4_000_000


def expected_format(task: TaskSpec) -> str:
    return (
        f"{task.id} expects predictions keyed by object_id: one field 'score', a float array [N] "
        "(or [N, 1]) with one anomaly score per object, higher = more anomalous (a model's "
        "predict() may return that array bare). Only the ranking of the scores counts; all "
        "values finite."
    )


def anomaly_kinds(task: TaskSpec) -> tuple[str, ...]:
    """The task's anomaly kind names; ``anomaly_kind == k`` (k >= 1) is ``kinds[k - 1]``."""
    kinds = task.simulation.params.get("kinds", ())
    names = tuple(kinds) if isinstance(kinds, (list, tuple)) else ()
    if not names or not all(isinstance(k, str) and k for k in names) or len(set(names)) != len(names):
        raise TaskSpecError(
            f"{task.id}: simulation.params.kinds must be distinct non-empty names, got {kinds!r}"
        )
    return names


def validate(task: TaskSpec, predictions: Predictions, source: str) -> Predictions:
    n = len(predictions.object_ids)
    name, array = single_numeric_field(predictions, SCORE_FIELD, source, expected_format(task), "floating point")
    if array.shape not in ((n,), (n, 1)):
        raise PredictionError(
            f"{source}: '{name}' has shape {array.shape}; expected ({n},) or ({n}, 1). "
            + expected_format(task)
        )
    score = array.reshape(n).astype(np.float64)
    bad = ~np.isfinite(score)
    if bad.any():
        row = int(np.argmax(bad))
        raise PredictionError(
            f"{source}: '{name}' has {int(bad.sum())} non-finite value(s), first at row {row} "
            f"(object_id {predictions.object_ids[row]}): {score[row]}; all values must be finite"
        )
    return Predictions(predictions.object_ids, {SCORE_FIELD: score})


def anomaly_classes(task: TaskSpec, catalog: pd.DataFrame) -> np.ndarray:
    """``anomaly_kind`` ``[N]`` as ints in ``[0, len(kinds)]``, checked against ``is_anomaly``."""
    kinds = anomaly_kinds(task)
    kind = catalog["anomaly_kind"].to_numpy()
    is_anomaly = catalog["is_anomaly"].to_numpy()
    ids = catalog["object_id"].to_numpy()
    outside = (kind < 0) | (kind > len(kinds)) | (kind != np.round(kind))
    if outside.any():
        row = int(np.argmax(outside))
        raise ValueError(
            f"{task.id}: catalog anomaly_kind of object_id {ids[row]} is {kind[row]}; expected "
            f"0 (normal) or 1..{len(kinds)} (kinds {list(kinds)})"
        )
    kind = kind.astype(np.intp)
    mismatch = (is_anomaly != 0) != (kind > 0)
    if mismatch.any() or not np.isin(is_anomaly, (0, 1)).all():
        row = int(np.argmax(mismatch | ~np.isin(is_anomaly, (0, 1))))
        raise ValueError(
            f"{task.id}: catalog object_id {ids[row]} has is_anomaly {is_anomaly[row]} but "
            f"anomaly_kind {kind[row]}; is_anomaly must be 1 exactly when anomaly_kind > 0"
        )
    return kind


def anomaly_statistics(kinds: tuple[str, ...], counts: np.ndarray) -> dict[str, np.ndarray]:
    """Every anomaly metric from weights per class and distinct score ``[..., 1 + K, G]``
    (class 0 = normal, class k = ``kinds[k - 1]``; see :meth:`ScoreRanking.class_weights`)."""
    cumulative = np.cumsum(counts, axis=-1)  # one pass for every class, shared by every metric
    normal, fp = counts[..., 0, :], cumulative[..., 0, :]
    overall = DetectionCurve(
        counts[..., 1:, :].sum(axis=-2), normal, cumulative[..., 1:, :].sum(axis=-2), fp
    )
    out = {
        "auroc": auroc_from_curve(overall),
        "average_precision": average_precision_from_curve(overall),
        "tpr_at_fpr01": tpr_at_fpr_from_curve(overall),
    }
    # One kind against all normals: the other kinds weigh nothing, so thresholds between their
    # scores add no ROC or precision-recall step.
    per_kind = [
        DetectionCurve(counts[..., k, :], normal, cumulative[..., k, :], fp)
        for k in range(1, len(kinds) + 1)
    ]
    for name, curve in zip(kinds, per_kind):
        out[f"auroc/{name}"] = auroc_from_curve(curve)
    for name, curve in zip(kinds, per_kind):
        out[f"average_precision/{name}"] = average_precision_from_curve(curve)
    return out


def score(task: TaskSpec, predictions: Predictions, catalog: pd.DataFrame) -> Scores:
    catalog = align_catalog(catalog, predictions.object_ids)
    kinds = anomaly_kinds(task)
    classes = anomaly_classes(task, catalog)
    n_classes = 1 + len(kinds)
    # Sorted once; the full set, every resample and every stratum bin are weightings of it.
    ranking = ScoreRanking.from_scores(predictions.values[SCORE_FIELD])

    def statistics(mask: np.ndarray | None) -> dict[str, np.ndarray]:
        return anomaly_statistics(kinds, ranking.class_weights(classes, n_classes, mask))

    def resampled(indices: np.ndarray) -> dict[str, np.ndarray]:
        return anomaly_statistics(kinds, ranking.resample_weights(classes, n_classes, indices))

    cells_per_resample = n_classes * max(1, ranking.n_groups)
    return assemble_scores(
        task, catalog, statistics, resampled, len(classes),
        batch_size=max(1, min(50, BOOTSTRAP_BATCH_CELLS // cells_per_resample)),
    )  # fmt: skip

SCORER = TaskScorer(
    task_type="anomaly",
    expected_format=expected_format,
    validate=validate,
    score=score,
)
