"""Validate and score clump segmentation predictions (the ``segmentation`` task type).

Predictions: ``probability`` ``[N, 1, H, W]``, the probability that each pixel belongs to a
clump, in [0, 1].

Truth: the split's target arrays ``clump_mask`` ``[N, 1, H, W]`` (0/1) and ``clumps``
``[N, K, 4]`` (x, y, flux, flux fraction per clump; NaN rows after the last clump). The task's
``extra`` fixes ``probability_threshold`` (a pixel is predicted when p >= it), ``match_radius``
(pixels) and ``clump_fraction_edges`` (bins of clump flux fraction for per-bin completeness).

Each object is first reduced to counts (:func:`per_object`; these are what the receipt stores):
pixel intersection / true / predicted counts, clump TP / FP / FN after one-to-one matching of the
predicted components to the true clumps (:mod:`galbench.metrics.images`), and per flux-fraction
bin the number of true clumps and of matched ones. Every metric is a ratio of sums of those
counts over the split (micro-averaged), so a bootstrap resample or a stratum is a weighting of
the objects: ``clump_f1`` (main), ``completeness``, ``purity``, ``dice``, ``iou``, and
``completeness/<lo>-<hi>`` per clump flux-fraction bin.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from galbench.errors import PredictionError, TaskSpecError
from galbench.metrics.images import (
    clump_f1_from_counts,
    completeness_from_counts,
    dice_from_counts,
    iou_from_counts,
    match_clumps,
    pixel_counts,
    predicted_clumps,
    purity_from_counts,
)
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

PROBABILITY_FIELD = "probability"
#: Objects reduced per batch (bounds the memory of the float64 copies of maps and masks).
_BATCH = 1000


def expected_format(task: TaskSpec) -> str:
    c, h, w = task.image_shape
    return (
        f"{task.id} expects predictions keyed by object_id: one field '{PROBABILITY_FIELD}', a "
        f"float array [N, 1, {h}, {w}] (or [N, {h}, {w}]) of clump probabilities in [0, 1] per "
        "pixel (a model's predict() may return that array bare). Pixels with p >= "
        f"{_conventions(task)[0]} are clump pixels; each 8-connected group of them is one clump."
    )


def _conventions(task: TaskSpec) -> tuple[float, float, tuple[float, ...]]:
    """``(probability threshold, match radius in pixels, clump fraction bin edges)``."""
    extra = task.extra
    try:
        threshold = float(extra["probability_threshold"])
        radius = float(extra["match_radius"])
        edges = tuple(float(e) for e in extra["clump_fraction_edges"])
    except (KeyError, TypeError, ValueError) as exc:
        raise TaskSpecError(
            f"{task.id}: extra.probability_threshold, extra.match_radius and "
            f"extra.clump_fraction_edges are required for a segmentation task ({exc})"
        ) from None
    if not 0 < threshold <= 1 or radius < 0 or len(edges) < 2 or any(np.diff(edges) <= 0):
        raise TaskSpecError(f"{task.id}: bad segmentation conventions in extra: {dict(extra)}")
    return threshold, radius, edges


def fraction_bin_labels(task: TaskSpec) -> list[str]:
    edges = _conventions(task)[2]
    return [f"{lo:g}-{hi:g}" for lo, hi in zip(edges[:-1], edges[1:])]


def validate(task: TaskSpec, predictions: Predictions, source: str) -> Predictions:
    n = len(predictions.object_ids)
    _, h, w = task.image_shape
    name, array = single_numeric_field(
        predictions, PROBABILITY_FIELD, source, expected_format(task), "probabilities"
    )
    if array.shape not in ((n, 1, h, w), (n, h, w)):
        raise PredictionError(
            f"{source}: '{name}' has shape {array.shape}; expected ({n}, 1, {h}, {w}). "
            + expected_format(task)
        )
    prob = np.asarray(array, dtype=np.float32).reshape(n, 1, h, w)
    reject_bad_values(
        ~np.isfinite(prob) | (prob < 0) | (prob > 1), predictions, source, name,
        "value(s) that are not probabilities in [0, 1] (NaN, inf or out of range)",
        "clip or apply a sigmoid before returning",
    )  # fmt: skip
    return Predictions(predictions.object_ids, {PROBABILITY_FIELD: prob})


def per_object(
    task: TaskSpec, predictions: Predictions, truth: Mapping, catalog: pd.DataFrame
) -> Predictions:
    """Counts per object (see the module docstring), keyed by object id."""
    threshold, radius, edges = _conventions(task)
    positions = catalog_positions(catalog, predictions.object_ids)
    prob = predictions.values[PROBABILITY_FIELD]
    n, n_bins = len(positions), len(edges) - 1
    out = {k: np.zeros(n, dtype=np.int64) for k in ("intersection", "true", "predicted", "tp", "fp", "fn")}
    out["true_clumps_by_fraction"] = np.zeros((n, n_bins), dtype=np.int64)
    out["found_clumps_by_fraction"] = np.zeros((n, n_bins), dtype=np.int64)
    for start in range(0, n, _BATCH):
        rows = slice(start, min(start + _BATCH, n))
        masks = truth["clump_mask"].take(positions[rows])
        clumps = truth["clumps"].take(positions[rows])
        for key, value in pixel_counts(masks, prob[rows], threshold).items():
            out[key][rows] = value
        for k, (found, true) in enumerate(zip(predicted_clumps(prob[rows], threshold), clumps)):
            true = true[~np.isnan(true[:, 0])].astype(np.float64)
            tp, fp, fn, pairs = match_clumps(true[:, :2], found, radius)
            i = start + k
            out["tp"][i], out["fp"][i], out["fn"][i] = tp, fp, fn
            # Bins are [lo, hi) except the last, which holds its upper edge.
            which = np.clip(np.searchsorted(edges, true[:, 3], side="right") - 1, 0, n_bins - 1)
            out["true_clumps_by_fraction"][i] = np.bincount(which, minlength=n_bins)
            out["found_clumps_by_fraction"][i] = np.bincount(which[pairs[:, 0]], minlength=n_bins)
    return Predictions(np.asarray(predictions.object_ids), out)


def _statistics(task: TaskSpec, counts: dict[str, np.ndarray], weights: np.ndarray | None):
    out = {
        "clump_f1": clump_f1_from_counts(counts, weights),
        "completeness": completeness_from_counts(counts, weights),
        "purity": purity_from_counts(counts, weights),
        "dice": dice_from_counts(counts, weights),
        "iou": iou_from_counts(counts, weights),
    }
    true_by_bin, found_by_bin = counts["true_clumps_by_fraction"], counts["found_clumps_by_fraction"]
    for b, label in enumerate(fraction_bin_labels(task)):
        bin_counts = {"tp": found_by_bin[:, b], "fn": true_by_bin[:, b] - found_by_bin[:, b]}
        out[f"completeness/{label}"] = completeness_from_counts(bin_counts, weights)
    return out


def score(task: TaskSpec, predictions: Predictions, catalog: pd.DataFrame) -> Scores:
    catalog = align_catalog(catalog, predictions.object_ids)
    counts = {k: np.asarray(v, dtype=np.int64) for k, v in predictions.values.items()}
    n = len(predictions.object_ids)

    def statistics(mask: np.ndarray | None):
        return _statistics(task, counts, None if mask is None else mask.astype(np.float64))

    def resampled(indices: np.ndarray):
        weights = np.stack([np.bincount(row, minlength=n) for row in indices]).astype(np.float64)
        return _statistics(task, counts, weights)

    return assemble_scores(task, catalog, statistics, resampled, n)


SCORER = TaskScorer(
    task_type="segmentation",
    expected_format=expected_format,
    validate=validate,
    score=score,
    truth_arrays=("clump_mask", "clumps"),
    per_object=per_object,
)
