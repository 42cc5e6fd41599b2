"""Validate and score regression predictions (morphometry and other parameter-regression tasks).

Predictions: ``mean`` ``[N, P]`` (P = the task's targets, in the task's order and units) and
optionally ``std`` ``[N, P]`` predicted standard deviations, which are then scored for
calibration.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from galbench.errors import PredictionError
from galbench.metrics.regression import (
    bias,
    bulge_disk_half_light_radius,
    coverage,
    gaussian_crps,
    outlier_fraction,
    residuals,
    sigma_nmad,
)
from galbench.scoring.base import Predictions, Scores, TaskScorer, align_catalog, assemble_scores
from galbench.tasks import TargetSpec, TaskSpec


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


def _log10_r_half(task: TaskSpec, mean: np.ndarray) -> np.ndarray:
    """log10 of the circular half-light radius of each predicted bulge+disk model."""
    column = {name: mean[:, j] for j, name in enumerate(task.target_names)}
    return np.log10(bulge_disk_half_light_radius(
        column["bulge_to_total"], column["n_bulge"], 10 ** column["log10_r_bulge"],
        10 ** column["log10_r_disk"], column["q_bulge"], column["q_disk"],
    ))  # fmt: skip


#: Targets a real split scores when real data has no truth for the task's own (real galaxies
#: have no true bulge+disk parameters): each is computed from the predicted columns and
#: compared with the split's catalog column of the same name.
DERIVED_TARGETS: dict[str, tuple[TargetSpec, tuple[str, ...], Callable[[TaskSpec, np.ndarray], np.ndarray]]] = {
    "log10_r_half": (
        TargetSpec(
            name="log10_r_half", unit="log10 px",
            description="log10 circular half-light radius of the bulge+disk model (each "
                        "component circularised), pixels",
            scale=1.3, outlier=0.195,
        ),
        ("bulge_to_total", "n_bulge", "log10_r_bulge", "log10_r_disk", "q_bulge", "q_disk"),
        _log10_r_half,
    ),
}


def scored_targets(task: TaskSpec, catalog: pd.DataFrame) -> list[tuple[TargetSpec, Any]]:
    """The targets a split is scored on, each with its column index in the predictions or the
    function deriving it: every task target on a simulated split; on a real split whose catalog
    lacks some, those it has plus the derived targets it has truth for (DERIVED_TARGETS)."""
    if all(name in catalog.columns for name in task.target_names):
        return [(t, j) for j, t in enumerate(task.targets)]
    out: list[tuple[TargetSpec, Any]] = [
        (t, j) for j, t in enumerate(task.targets) if t.name in catalog.columns
    ]
    for name, (spec, needs, derive) in DERIVED_TARGETS.items():
        if name in catalog.columns and all(n in task.target_names for n in needs):
            out.append((spec, derive))
    if not out:
        raise PredictionError(
            f"{task.id}: the split's catalog has truth for none of the targets "
            f"{list(task.target_names)}"
        )
    return out


def regression_statistics(
    task: TaskSpec, r: np.ndarray, sigma: np.ndarray | None,
    targets: Sequence[TargetSpec] | None = None,
) -> dict[str, np.ndarray]:
    """Every regression metric from residuals ``r`` ``[..., n, P]`` (and ``sigma``), reduced over
    ``n``: per-target values named ``family/target`` and the means over ``targets`` (default:
    the task's)."""
    targets = task.targets if targets is None else tuple(targets)
    scale = np.array([t.scale for t in targets])
    threshold = np.array([t.outlier for t in targets])
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
        for j, t in enumerate(targets):
            out[f"{family}/{t.name}"] = values[..., j]
    return out


def score(task: TaskSpec, predictions: Predictions, catalog: pd.DataFrame) -> Scores:
    catalog = align_catalog(catalog, predictions.object_ids)
    scored = scored_targets(task, catalog)
    targets = [t for t, _ in scored]
    mean = predictions.values["mean"]
    sigma = predictions.values.get("std")
    if any(callable(how) for _, how in scored):
        # A derived target has no predicted sigma: calibration is scored on simulated splits.
        sigma = None
    else:
        sigma = None if sigma is None else sigma[:, [how for _, how in scored]]
    r = np.stack(
        [
            residuals(how(task, mean) if callable(how) else mean[:, how],
                      catalog[t.name].to_numpy(dtype=np.float64), t.period)
            for t, how in scored
        ],
        axis=1,
    )

    def statistics(mask: np.ndarray | None) -> dict[str, np.ndarray]:
        if mask is None:
            return regression_statistics(task, r, sigma, targets)
        return regression_statistics(task, r[mask], None if sigma is None else sigma[mask], targets)

    def resampled(indices: np.ndarray) -> dict[str, np.ndarray]:
        return regression_statistics(task, r[indices], None if sigma is None else sigma[indices], targets)

    return assemble_scores(task, catalog, statistics, resampled, len(r))

SCORER = TaskScorer(
    task_type="regression",
    expected_format=expected_format,
    validate=validate,
    score=score,
)
