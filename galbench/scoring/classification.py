"""Validate and score classification predictions (the ``classification`` task type).

Predictions: ``probabilities`` ``[N, K]``, one row per object, columns in the order of the task's
``simulation.params["classes"]``; non-negative, finite, each row summing to 1 (within 1e-3; rows
are renormalised exactly before scoring). Truth: the catalog's ``label`` column (0..K-1).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from galbench.errors import PredictionError, TaskSpecError
from galbench.metrics.bootstrap import bootstrap_samples, percentile_interval
from galbench.metrics.classification import PerObject
from galbench.scoring.base import Predictions, Scores, TaskScorer, align_catalog, strata_breakdown
from galbench.tasks import TaskSpec

FIELD = "probabilities"
#: A model whose predict() returns a bare array has it delivered under this name by the runner
#: and the sandbox (they do not know the task type); a lone field of that name is taken as the
#: probabilities.
BARE_ARRAY_FIELD = "mean"
ROW_SUM_TOLERANCE = 1e-3


def class_names(task: TaskSpec) -> tuple[str, ...]:
    classes = task.simulation.params.get("classes", ())
    names = tuple(classes)
    if not names or not all(isinstance(c, str) and c for c in names) or len(set(names)) != len(names):
        raise TaskSpecError(f"{task.id}: simulation.params.classes must be distinct class names, got {classes!r}")
    return names


def expected_format(task: TaskSpec) -> str:
    names = class_names(task)
    return (
        f"{task.id} expects predictions keyed by object_id: one field 'probabilities', a float "
        f"array [N, {len(names)}] of class probabilities with columns ({', '.join(names)}); every "
        "value finite and >= 0, every row summing to 1 (a model's predict() may return that "
        "array bare)."
    )


def validate(task: TaskSpec, predictions: Predictions, source: str) -> Predictions:
    n, k = len(predictions.object_ids), len(class_names(task))
    fields = set(predictions.values)
    if FIELD in fields:
        name = FIELD
    elif fields == {BARE_ARRAY_FIELD}:
        name = BARE_ARRAY_FIELD
    else:
        raise PredictionError(f"{source}: 'probabilities' is missing (got field(s) {sorted(fields)}). " + expected_format(task))
    extra = fields - {name}
    if extra:
        raise PredictionError(f"{source}: unexpected prediction field(s) {sorted(extra)}. " + expected_format(task))
    array = np.asarray(predictions.values[name])
    if array.dtype.kind not in "fiu" or array.dtype == np.bool_:
        raise PredictionError(f"{source}: 'probabilities' has dtype {array.dtype}; expected floating point. " + expected_format(task))
    if array.shape != (n, k):
        hint = " (class labels instead of probabilities?)" if array.shape == (n,) else ""
        raise PredictionError(
            f"{source}: 'probabilities' has shape {array.shape}; expected ({n}, {k}){hint}. " + expected_format(task)
        )
    p = array.astype(np.float64)
    ids = predictions.object_ids

    def first(bad: np.ndarray) -> tuple[int, object]:
        row = int(np.flatnonzero(bad)[0])
        return row, ids[row]

    bad = ~np.isfinite(p).all(axis=1)
    if bad.any():
        row, oid = first(bad)
        raise PredictionError(
            f"{source}: 'probabilities' has {int(bad.sum())} row(s) with non-finite values, first at "
            f"row {row} (object_id {oid}): {p[row].tolist()}; all values must be finite"
        )
    bad = (p < 0).any(axis=1)
    if bad.any():
        row, oid = first(bad)
        raise PredictionError(
            f"{source}: 'probabilities' has {int(bad.sum())} row(s) with negative values, first at "
            f"row {row} (object_id {oid}): {p[row].tolist()}; probabilities are >= 0"
        )
    sums = p.sum(axis=1)
    bad = np.abs(sums - 1.0) > ROW_SUM_TOLERANCE
    if bad.any():
        row, oid = first(bad)
        raise PredictionError(
            f"{source}: 'probabilities' has {int(bad.sum())} row(s) not summing to 1, first at row "
            f"{row} (object_id {oid}) summing to {sums[row]:.6g}; apply a softmax to logits"
        )
    return Predictions(ids, {FIELD: p / sums[:, None]})


def _labels(task: TaskSpec, catalog: pd.DataFrame) -> np.ndarray:
    labels = catalog["label"].to_numpy()
    k = len(class_names(task))
    bad = (labels < 0) | (labels >= k)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{task.id}: catalog label {labels[row]} of object_id {catalog['object_id'].iloc[row]} is "
            f"outside 0..{k - 1}"
        )
    return labels.astype(np.int64)


def score(task: TaskSpec, predictions: Predictions, catalog: pd.DataFrame) -> Scores:
    catalog = align_catalog(catalog, predictions.object_ids)
    classes = class_names(task)
    per_object = PerObject(predictions.values[FIELD], _labels(task, catalog))
    n = len(catalog)
    metrics = {k: float(v) for k, v in per_object.statistics(classes).items()}

    def resampled(indices: np.ndarray) -> dict[str, np.ndarray]:
        weights = np.stack([np.bincount(row, minlength=n) for row in indices]).astype(np.float64)
        return per_object.statistics(classes, weights)

    samples = bootstrap_samples(resampled, n, n_resamples=task.bootstrap_resamples, seed=task.bootstrap_seed)
    intervals = {name: percentile_interval(v) for name, v in samples.items()}
    strata = strata_breakdown(task, catalog, lambda mask: per_object.statistics(classes, mask.astype(np.float64)))
    return Scores(
        metrics=metrics,
        intervals=intervals,
        strata=strata,
        bootstrap_main=samples[task.main_metric].tolist(),
    )


SCORER = TaskScorer(
    task_type="classification",
    expected_format=expected_format,
    validate=validate,
    score=score,
)
