"""Validate and score deblending predictions (the ``deblending`` task type).

Predictions: ``images`` ``[N, S, C, H, W]``, each source's isolated image in the blend's flux
units, sources in the task's order (``extra.sources``; deblending@1: central, companion).

Truth: the split's target array ``isolated`` ``[N, S, C, H, W]`` (noiseless, PSF-convolved).

Each blend is first reduced to per-source values (:func:`per_object`; the receipt stores these):
``psnr`` (data range = the peak of the source's true image, capped at 100 dB), ``ssim`` and the
relative ``flux_error``, each ``[N, S]`` (:mod:`galbench.metrics.images`). Metrics over the
split: ``psnr`` (main) and ``ssim``, the mean over every galaxy (all blends, all sources);
``flux_error``, the median relative flux error (bias), and ``abs_flux_error``, the median of its
absolute value; and each of them per source (``psnr/central``, ...). Bootstrap resamples draw
blends (both galaxies of a blend together).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from galbench.errors import PredictionError, TaskSpecError
from galbench.metrics.images import flux_error, psnr, ssim
from galbench.scoring.base import (
    Predictions,
    Scores,
    TaskScorer,
    align_catalog,
    assemble_scores,
    catalog_positions,
    reject_bad_values,
    single_numeric_field,
)
from galbench.tasks import TaskSpec

IMAGES_FIELD = "images"
_BATCH = 500


def source_names(task: TaskSpec) -> tuple[str, ...]:
    names = task.extra.get("sources")
    if not isinstance(names, (list, tuple)) or len(names) < 1 or not all(isinstance(s, str) for s in names):
        raise TaskSpecError(f"{task.id}: extra.sources must list the source names, got {names!r}")
    return tuple(names)


def expected_format(task: TaskSpec) -> str:
    c, h, w = task.image_shape
    sources = source_names(task)
    return (
        f"{task.id} expects predictions keyed by object_id: one field '{IMAGES_FIELD}', a float "
        f"array [N, {len(sources)}, {c}, {h}, {w}] holding each galaxy's isolated image in the "
        f"input flux units ({task.image_units}), sources in the order {list(sources)} (a model's "
        "predict() may return that array bare); all values finite."
    )


def validate(task: TaskSpec, predictions: Predictions, source: str) -> Predictions:
    n = len(predictions.object_ids)
    shape = (n, len(source_names(task)), *task.image_shape)
    name, array = single_numeric_field(predictions, IMAGES_FIELD, source, expected_format(task))
    if array.shape != shape:
        raise PredictionError(
            f"{source}: '{name}' has shape {array.shape}; expected {shape}. " + expected_format(task)
        )
    images = np.asarray(array, dtype=np.float32)
    reject_bad_values(
        ~np.isfinite(images), predictions, source, name, "non-finite value(s)", "all values must be finite"
    )
    return Predictions(predictions.object_ids, {IMAGES_FIELD: images})


def per_object(
    task: TaskSpec, predictions: Predictions, truth: Mapping, catalog: pd.DataFrame
) -> Predictions:
    """``psnr``, ``ssim`` and ``flux_error`` ``[N, S]`` per blend, keyed by object id."""
    positions = catalog_positions(catalog, predictions.object_ids)
    images = predictions.values[IMAGES_FIELD]
    n, s = images.shape[:2]
    out = {k: np.empty((n, s)) for k in ("psnr", "ssim", "flux_error")}
    for start in range(0, n, _BATCH):
        rows = slice(start, min(start + _BATCH, n))
        true = truth["isolated"].take(positions[rows])
        pred = images[rows]
        out["psnr"][rows] = psnr(true, pred)
        out["ssim"][rows] = ssim(true, pred)
        out["flux_error"][rows] = flux_error(true, pred)
    return Predictions(np.asarray(predictions.object_ids), out)


def _reduce(values: dict[str, np.ndarray], sources: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Metrics of per-source values ``[..., n, S]`` (leading axes: resamples)."""
    out = {}
    every = lambda v: v.reshape(*v.shape[:-2], -1)  # noqa: E731  all galaxies of the blends
    out["psnr"] = every(values["psnr"]).mean(axis=-1)
    out["ssim"] = every(values["ssim"]).mean(axis=-1)
    out["flux_error"] = np.median(every(values["flux_error"]), axis=-1)
    out["abs_flux_error"] = np.median(np.abs(every(values["flux_error"])), axis=-1)
    for k, name in enumerate(sources):
        out[f"psnr/{name}"] = values["psnr"][..., k].mean(axis=-1)
        out[f"ssim/{name}"] = values["ssim"][..., k].mean(axis=-1)
        out[f"abs_flux_error/{name}"] = np.median(np.abs(values["flux_error"][..., k]), axis=-1)
    return out


def score(task: TaskSpec, predictions: Predictions, catalog: pd.DataFrame) -> Scores:
    catalog = align_catalog(catalog, predictions.object_ids)
    sources = source_names(task)
    values = {k: np.asarray(predictions.values[k], dtype=np.float64) for k in ("psnr", "ssim", "flux_error")}
    n = len(predictions.object_ids)
    if any(v.shape != (n, len(sources)) for v in values.values()):
        raise PredictionError(f"per-object deblending values must be [{n}, {len(sources)}]")

    def statistics(mask: np.ndarray | None):
        return _reduce({k: v if mask is None else v[mask] for k, v in values.items()}, sources)

    def resampled(indices: np.ndarray):
        return _reduce({k: v[indices] for k, v in values.items()}, sources)

    return assemble_scores(task, catalog, statistics, resampled, n)


SCORER = TaskScorer(
    task_type="deblending",
    expected_format=expected_format,
    validate=validate,
    score=score,
    truth_arrays=("isolated",),
    per_object=per_object,
)
