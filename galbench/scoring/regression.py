"""Validate and score regression predictions (morphometry and other parameter-regression tasks).

Predictions: ``mean`` ``[N, P]`` (P = the task's targets, in the task's order and units) and
optionally ``std`` ``[N, P]`` predicted standard deviations, which are then scored for
calibration.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from galbench.errors import PredictionError
from galbench.metrics.regression import (
    bias,
    coverage,
    gaussian_crps,
    outlier_fraction,
    residuals,
    sigma_nmad,
)
from galbench.scoring.base import Predictions, Scores, TaskScorer, align_catalog, assemble_scores
from galbench.tasks import TaskSpec


def expected_format(task: TaskSpec) -> str:
    names = ", ".join(f"{t.name} [{t.unit or '-'}]" for t in task.targets)
    return (
        f"{task.id} expects predictions keyed by object_id: 'mean' float array [N, "
        f"{len(task.targets)}] with columns ({names}); optional 'std' of the same shape with "
        "predicted standard deviations (> 0). All values finite."
    )


def _check_array(name: str, value: object, n: int, task: TaskSpec, source: str) -> np.ndarray:
    p = len(task.targets)
    array = np.asarray(value)
    if array.dtype.kind not in "fiu" or array.dtype == np.bool_:
        raise PredictionError(
            f"{source}: '{name}' has dtype {array.dtype}; expected floating point. "
            + expected_format(task)
        )
    if array.shape != (n, p):
        raise PredictionError(
            f"{source}: '{name}' has shape {array.shape}; expected ({n}, {p}). "
            + expected_format(task)
        )
    array = array.astype(np.float64)
    bad = ~np.isfinite(array)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise PredictionError(
            f"{source}: '{name}' has {int(bad.sum())} non-finite value(s), first at row {row} "
            f"(target {task.targets[col].name!r}): {array[row, col]}; all values must be finite"
        )
    return array


def validate(task: TaskSpec, predictions: Predictions, source: str) -> Predictions:
    n = len(predictions.object_ids)
    if "mean" not in predictions.values:
        raise PredictionError(f"{source}: 'mean' is missing. " + expected_format(task))
    mean = _check_array("mean", predictions.values.get("mean"), n, task, source)
    values = {"mean": mean}
    std = predictions.values.get("std")
    if std is not None:
        std = _check_array("std", std, n, task, source)
        if (std <= 0).any():
            row, col = np.argwhere(std <= 0)[0]
            raise PredictionError(
                f"{source}: 'std' must be > 0; row {row} (target {task.targets[col].name!r}) "
                f"is {std[row, col]}"
            )
        values["std"] = std
    extra = set(predictions.values) - {"mean", "std"}
    if extra:
        raise PredictionError(
            f"{source}: unexpected prediction field(s) {sorted(extra)}. " + expected_format(task)
        )
    return Predictions(predictions.object_ids, values)


def regression_statistics(
    task: TaskSpec, r: np.ndarray, sigma: np.ndarray | None
) -> dict[str, np.ndarray]:
    """Every regression metric from residuals ``r`` ``[..., n, P]`` (and ``sigma``), reduced over
    ``n``: per-target values named ``family/target`` and the means over targets."""
    scale = np.array([t.scale for t in task.targets])
    threshold = np.array([t.outlier for t in task.targets])
    per_target = {
        "bias": bias(r),
        "scatter": sigma_nmad(r),
        "outlier_fraction": outlier_fraction(r, threshold),
    }
    per_target["normalized_scatter"] = per_target["scatter"] / scale
    if sigma is not None:
        per_target["coverage68"] = coverage(r, sigma)
        per_target["crps"] = gaussian_crps(r, sigma)
        per_target["normalized_crps"] = per_target["crps"] / scale
    out: dict[str, np.ndarray] = {
        "mean_normalized_scatter": per_target["normalized_scatter"].mean(axis=-1),
        "mean_normalized_abs_bias": (np.abs(per_target["bias"]) / scale).mean(axis=-1),
        "mean_outlier_fraction": per_target["outlier_fraction"].mean(axis=-1),
    }
    if sigma is not None:
        out["mean_coverage68"] = per_target["coverage68"].mean(axis=-1)
        out["mean_normalized_crps"] = per_target["normalized_crps"].mean(axis=-1)
    for family, values in per_target.items():
        for j, t in enumerate(task.targets):
            out[f"{family}/{t.name}"] = values[..., j]
    return out


def score(task: TaskSpec, predictions: Predictions, catalog: pd.DataFrame) -> Scores:
    catalog = align_catalog(catalog, predictions.object_ids)
    truth = catalog[list(task.target_names)].to_numpy(dtype=np.float64)
    mean = predictions.values["mean"]
    sigma = predictions.values.get("std")
    r = np.stack(
        [residuals(mean[:, j], truth[:, j], t.period) for j, t in enumerate(task.targets)], axis=1
    )

    def statistics(mask: np.ndarray | None) -> dict[str, np.ndarray]:
        if mask is None:
            return regression_statistics(task, r, sigma)
        return regression_statistics(task, r[mask], None if sigma is None else sigma[mask])

    def resampled(indices: np.ndarray) -> dict[str, np.ndarray]:
        return regression_statistics(task, r[indices], None if sigma is None else sigma[indices])

    return assemble_scores(task, catalog, statistics, resampled, len(r))

SCORER = TaskScorer(
    task_type="regression",
    expected_format=expected_format,
    validate=validate,
    score=score,
)
