"""Image-output metrics: deblending (PSNR, SSIM, relative flux error per source) and clump
segmentation (pixel Dice and IoU; clump detection completeness, purity and F1).

Deblending. Truth and predictions are isolated source images ``[N, S, C, H, W]`` (N blends, S
sources per blend, C bands, H x W pixels), finite, in the same flux units; all arithmetic is
float64 (float32 inputs are upcast first). Every function returns one value per source,
``[N, S]`` float64; a scorer reduces them (``psnr``/``ssim``: mean over sources;
``flux_error``/``abs_flux_error``: median).

- Data range: ``R[n, s] = max over (C, H, W) of true[n, s]``, the peak of the source's TRUE
  isolated image, shared by every band. It is *not* taken from the prediction, and images are
  *not* each normalised by their own maximum (BTK's PSNR does that, which hides any error in the
  total flux: a prediction at twice the true flux would score as perfect). ``R <= 0`` (an empty
  or negative true image) raises ``ValueError`` naming the blend and source.
- ``psnr`` = 10 log10(R^2 / MSE) in dB, MSE = mean over (C, H, W) of (pred - true)^2. The MSE is
  floored at ``R^2 * 1e-10``, so PSNR is capped at ``PSNR_MAX`` = 100 dB: a perfect prediction
  scores 100, not infinity, and means stay finite. Below the cap this equals
  ``skimage.metrics.peak_signal_noise_ratio(true, pred, data_range=R)``.
- ``ssim``: ``skimage.metrics.structural_similarity`` with the settings of Wang et al. (2004):
  Gaussian weights of sigma 1.5 truncated at 3.5 sigma (an 11 x 11 window, so H, W >= 11),
  population covariance (``use_sample_covariance=False``), K1 = 0.01, K2 = 0.03,
  ``data_range=R``; the mean over the image of the SSIM map with a 5-pixel border cropped. With
  C > 1 bands it is skimage's ``channel_axis=0``: the mean of the per-band SSIMs, all with the
  same R. Computed by a plain loop over skimage, one call per source (no reimplementation to
  keep in step with it): about 0.28 ms per 64 x 64 single-band source on a 2-core machine
  (5.6 s for 20,000; 3 bands take 3 times as long).
- ``flux_error`` = (sum pred - sum true) / sum true over (C, H, W): the relative error of the
  total flux summed over bands, positive when the prediction is too bright. A true image with
  sum <= 0 raises ``ValueError``. ``abs_flux_error`` is its absolute value.

Clump segmentation. Truth is a binary mask ``[N, 1, H, W]`` (bool, or numbers that are all 0 or
1) and, per image, the true clump positions ``[t, 2]`` as (x, y) in pixels, x the column index
and y the row index, pixel centres at integers. Predictions are probability maps
``[N, 1, H, W]`` with values in [0, 1]; a pixel is predicted when ``prob >= threshold``
(default 0.5, a probability of exactly 0.5 counts as predicted), threshold in (0, 1].

- Pixels: per image, I = |true & predicted|, T = |true|, P = |predicted| (:func:`pixel_counts`).
  Dice = 2 I / (T + P) and IoU = I / (T + P - I) are micro-averaged: I, T and P are summed over
  all images before the ratio, so an image counts by its number of pixels and the result does
  not depend on how images are batched. Both are NaN when T + P = 0 (no true and no predicted
  pixel anywhere). Equal to ``sklearn.metrics.f1_score`` / ``jaccard_score`` on the flattened
  pixels.
- Predicted clumps (:func:`predicted_clumps`): the connected components of the predicted pixels,
  8-connected by default (``connectivity=2``; pixels touching only at a corner are one clump;
  ``connectivity=1`` is 4-connected), never across images. A clump's position is its
  probability-weighted centroid (x, y) = sum p (col, row) / sum p over its pixels. Clumps are
  listed in the order of their first pixel in row-major order (``scipy.ndimage.label``).
- Matching (:func:`match_clumps`): one-to-one, a true and a predicted clump can be paired only
  when their Euclidean distance d <= radius (pixels; d equal to the radius counts). Among the
  matchings, the one with the most pairs is taken, and among those the one with the smallest
  total distance (``scipy.optimize.linear_sum_assignment``; a greedy nearest-first matching can
  find fewer pairs). TP = pairs, FP = unpaired predictions (e.g. a second prediction near an
  already matched true clump), FN = unpaired true clumps.
- Detection: completeness = TP / (TP + FN), purity = TP / (TP + FP), F1 = 2 TP / (2 TP + FP + FN),
  micro-averaged (TP, FP and FN summed over images first); each is NaN when its denominator is 0.

Weights. The ``*_from_counts`` functions take optional weights ``[..., N]`` (finite,
non-negative; default 1 per image) and return metrics ``[...]``: the whole set is weights of
ones, a stratum a 0/1 mask, a bootstrap resample the weights ``bincount(indices, minlength=N)``
(how often each image was drawn). Weights act exactly as duplication of images. A result without
batch axes is a numpy scalar.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.optimize import linear_sum_assignment
from skimage.metrics import structural_similarity

from galbench.metrics import declare, metric

#: Cap of ``psnr`` in dB: the MSE is floored at ``R^2 * PSNR_MSE_FLOOR``.
PSNR_MAX = 100.0
#: Relative floor of the MSE in ``psnr``, ``10 ** (-PSNR_MAX / 10)``.
PSNR_MSE_FLOOR = 1e-10
#: Gaussian window of ``ssim`` (Wang et al. 2004): sigma in pixels, and the smallest image side
#: its 11-pixel window (radius int(3.5 sigma + 0.5) = 5) fits in.
SSIM_SIGMA = 1.5
SSIM_MIN_SIDE = 11


# ------------------------------------------------------------------------------------------
# Deblending


def _source_images(true: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validated float64 copies (or views) of truth and prediction ``[N, S, C, H, W]``."""
    t = np.asarray(true, dtype=np.float64)
    p = np.asarray(pred, dtype=np.float64)
    if t.ndim != 5:
        raise ValueError(f"true images must have shape [N, S, C, H, W], got {t.shape}")
    if p.shape != t.shape:
        raise ValueError(
            f"predicted images have shape {p.shape}; expected {t.shape} (as the truth)"
        )
    if min(t.shape[2:]) < 1:
        raise ValueError(f"images need at least one band and pixel, got shape {t.shape}")
    if not np.isfinite(t).all():
        raise ValueError("true images must be finite")
    if not np.isfinite(p).all():
        bad = np.argwhere(~_per_source(np.isfinite(p)).all(axis=-1))[0]
        raise ValueError(f"predicted images must be finite; blend {bad[0]}, source {bad[1]} is not")
    return t, p


def _per_source(images: np.ndarray) -> np.ndarray:
    """``[N, S, C, H, W]`` viewed as ``[N, S, C * H * W]`` (also when N or S is 0)."""
    n, s, c, h, w = images.shape
    return images.reshape(n, s, c * h * w)


def _raise_at_first(bad: np.ndarray, what: str) -> None:
    """Raise ``ValueError`` naming the first (blend, source) where ``bad`` ``[N, S]`` is true."""
    if bad.any():
        n, s = np.argwhere(bad)[0]
        raise ValueError(f"{what} at blend {n}, source {s} ({int(bad.sum())} such sources)")


def data_range(true: np.ndarray) -> np.ndarray:
    """``R`` ``[N, S]``: the maximum of each true isolated image ``[N, S, C, H, W]`` over
    (C, H, W); ``ValueError`` naming the first source with ``R <= 0``."""
    t = np.asarray(true, dtype=np.float64)
    if t.ndim != 5 or min(t.shape[2:]) < 1:
        raise ValueError(
            f"true images must have shape [N, S, C, H, W], C, H, W >= 1, got {t.shape}"
        )
    r = _per_source(t).max(axis=-1)
    _raise_at_first(~(r > 0), "data range R = max of the true image must be > 0")
    return r


@metric(
    "psnr",
    "higher",
    "mean over sources of PSNR = 10 log10(R^2 / MSE) in dB, R = max of the source's true "
    "isolated image, MSE over bands and pixels; capped at 100 dB",
)
def psnr(true: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Peak signal-to-noise ratio in dB of each source, ``[N, S]`` float64, from true and
    predicted isolated images ``[N, S, C, H, W]``; capped at ``PSNR_MAX`` = 100 dB."""
    t, p = _source_images(true, pred)
    r = data_range(t)
    mse = _per_source((p - t) ** 2).mean(axis=-1)
    mse = np.maximum(mse, r**2 * PSNR_MSE_FLOOR)
    return 10.0 * np.log10(r**2 / mse)


@metric(
    "ssim",
    "higher",
    "mean over sources of SSIM (Wang et al. 2004: Gaussian sigma 1.5, population covariance), "
    "data range R = max of the source's true isolated image, mean over bands",
)
def ssim(true: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Structural similarity of each source, ``[N, S]`` float64, from true and predicted
    isolated images ``[N, S, C, H, W]`` with H, W >= 11 (a loop over skimage, one call per
    source; see the module docstring for the settings)."""
    t, p = _source_images(true, pred)
    n_blends, n_sources, n_bands, height, width = t.shape
    if min(height, width) < SSIM_MIN_SIDE:
        raise ValueError(
            f"ssim needs images of at least {SSIM_MIN_SIDE} x {SSIM_MIN_SIDE} pixels "
            f"(its Gaussian window), got {height} x {width}"
        )
    r = data_range(t)
    options = dict(
        gaussian_weights=True,
        sigma=SSIM_SIGMA,
        use_sample_covariance=False,
        channel_axis=0 if n_bands > 1 else None,
    )
    out = np.empty((n_blends, n_sources), dtype=np.float64)
    for n in range(n_blends):
        for s in range(n_sources):
            a, b = t[n, s], p[n, s]
            if n_bands == 1:
                a, b = a[0], b[0]
            out[n, s] = structural_similarity(a, b, data_range=float(r[n, s]), **options)
    return out


@metric(
    "flux_error",
    "ideal",
    "median over sources of the relative flux error (sum pred - sum true) / sum true, "
    "summed over bands and pixels",
    ideal=0.0,
)
def flux_error(true: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Relative error of the total flux of each source, ``[N, S]`` float64:
    (sum pred - sum true) / sum true over (C, H, W) of images ``[N, S, C, H, W]``."""
    t, p = _source_images(true, pred)
    true_flux = _per_source(t).sum(axis=-1)
    pred_flux = _per_source(p).sum(axis=-1)
    _raise_at_first(~(true_flux > 0), "total flux of the true image must be > 0")
    return (pred_flux - true_flux) / true_flux


declare(
    "abs_flux_error",
    "lower",
    "median over sources of |relative flux error|, |sum pred - sum true| / sum true",
)


# ------------------------------------------------------------------------------------------
# Clump segmentation: pixels


def _probability_maps(prob: np.ndarray, threshold: float) -> np.ndarray:
    """Validated probability maps ``[N, 1, H, W]`` as float64 ``[N, H, W]``."""
    p = np.asarray(prob, dtype=np.float64)
    if p.ndim != 4 or p.shape[1] != 1:
        raise ValueError(f"probability maps must have shape [N, 1, H, W], got {p.shape}")
    if not (np.isfinite(p) & (p >= 0) & (p <= 1)).all():
        raise ValueError("probability maps must be finite and within [0, 1]")
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold must lie in (0, 1], got {threshold!r}")
    return p[:, 0]


def _binary_masks(true_mask: np.ndarray) -> np.ndarray:
    """Validated true masks ``[N, 1, H, W]`` as bool ``[N, H, W]``."""
    m = np.asarray(true_mask)
    if m.ndim != 4 or m.shape[1] != 1:
        raise ValueError(f"true masks must have shape [N, 1, H, W], got {m.shape}")
    if m.dtype != bool:
        if not ((m == 0) | (m == 1)).all():
            raise ValueError("true masks must be binary: bool, or numbers all equal to 0 or 1")
        m = m == 1
    return m[:, 0]


def pixel_counts(
    true_mask: np.ndarray, prob: np.ndarray, threshold: float = 0.5
) -> dict[str, np.ndarray]:
    """Per-image pixel counts of true masks and probability maps ``[N, 1, H, W]``: a dict of
    ``[N]`` int64 arrays ``intersection`` (true and predicted), ``true`` and ``predicted``,
    a pixel being predicted when ``prob >= threshold``."""
    p = _probability_maps(prob, threshold)
    t = _binary_masks(true_mask)
    if t.shape != p.shape:
        raise ValueError(
            f"true masks have shape {t.shape[0], 1, *t.shape[1:]}; expected "
            f"{p.shape[0], 1, *p.shape[1:]} (as the probability maps)"
        )
    predicted = p >= threshold
    return {
        "intersection": (t & predicted).sum(axis=(1, 2), dtype=np.int64),
        "true": t.sum(axis=(1, 2), dtype=np.int64),
        "predicted": predicted.sum(axis=(1, 2), dtype=np.int64),
    }


def _weighted_sums(
    counts: dict[str, np.ndarray], keys: tuple[str, ...], weights: np.ndarray | None
) -> list[np.ndarray]:
    """``weights @ counts[key]`` for each key: ``[...]`` float64 sums from ``[N]`` counts and
    weights ``[..., N]`` (default ones: the plain sums)."""
    missing = [k for k in keys if k not in counts]
    if missing:
        raise ValueError(f"counts lack {missing}; expected the keys {list(keys)}")
    arrays = [np.asarray(counts[k], dtype=np.float64) for k in keys]
    n = arrays[0].shape
    if len(n) != 1 or any(a.shape != n for a in arrays):
        shapes = [a.shape for a in arrays]
        raise ValueError(f"counts must be [N] arrays of one length, got shapes {shapes}")
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape[-1:] != n:
        raise ValueError(f"weights have shape {w.shape}; expected [..., {n[0]}]")
    if not (np.isfinite(w) & (w >= 0)).all():
        raise ValueError("weights must be finite and non-negative")
    return [w @ a for a in arrays]


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """``numerator / denominator``, NaN where the denominator is 0; a numpy scalar if 0-d."""
    with np.errstate(divide="ignore", invalid="ignore"):
        value = np.where(denominator > 0, numerator / denominator, np.nan)
    return value if value.ndim else value[()]


@metric(
    "dice",
    "higher",
    "pixel Dice = 2 I / (T + P), intersection, true and predicted pixels (prob >= 0.5) "
    "summed over all images",
)
def dice_from_counts(
    counts: dict[str, np.ndarray], weights: np.ndarray | None = None
) -> np.ndarray:
    """Micro-averaged Dice 2 I / (T + P) of :func:`pixel_counts`, ``[...]`` for weights
    ``[..., N]``; NaN where T + P = 0."""
    i, t, p = _weighted_sums(counts, ("intersection", "true", "predicted"), weights)
    return _ratio(2.0 * i, t + p)


@metric(
    "iou",
    "higher",
    "pixel IoU = I / (T + P - I), intersection, true and predicted pixels (prob >= 0.5) "
    "summed over all images",
)
def iou_from_counts(counts: dict[str, np.ndarray], weights: np.ndarray | None = None) -> np.ndarray:
    """Micro-averaged IoU I / (T + P - I) of :func:`pixel_counts`, ``[...]`` for weights
    ``[..., N]``; NaN where T + P = 0."""
    i, t, p = _weighted_sums(counts, ("intersection", "true", "predicted"), weights)
    return _ratio(i, t + p - i)


# ------------------------------------------------------------------------------------------
# Clump segmentation: detection


def predicted_clumps(
    prob: np.ndarray, threshold: float = 0.5, connectivity: int = 2
) -> list[np.ndarray]:
    """Predicted clump positions of probability maps ``[N, 1, H, W]``: a list of N float64
    arrays ``[k, 2]`` of (x, y) = (column, row) pixel coordinates, one row per connected
    component of ``prob >= threshold`` (``connectivity`` 2: 8-connected, 1: 4-connected), at its
    probability-weighted centroid, in the order of the components' first pixels (row-major)."""
    p = _probability_maps(prob, threshold)
    if connectivity not in (1, 2):
        raise ValueError(
            f"connectivity must be 1 (4-connected) or 2 (8-connected), got {connectivity!r}"
        )
    n_images, height, width = p.shape
    if n_images == 0:
        return []
    # Label the whole stack at once with a structure that does not connect along the image
    # axis; labels then increase with the image index, so each image's labels are contiguous.
    structure = np.zeros((3, 3, 3), dtype=bool)
    structure[1] = ndimage.generate_binary_structure(2, connectivity)
    labels, n_labels = ndimage.label(p >= threshold, structure=structure)
    flat = labels.ravel()
    weights = p.ravel()
    rows, cols = np.indices((height, width))
    total = np.bincount(flat, weights=weights, minlength=n_labels + 1)[1:]
    x = np.bincount(flat, weights=weights * np.tile(cols.ravel(), n_images), minlength=n_labels + 1)
    y = np.bincount(flat, weights=weights * np.tile(rows.ravel(), n_images), minlength=n_labels + 1)
    xy = np.stack([x[1:] / total, y[1:] / total], axis=1)
    # Components per image: the rise of the running maximum label (0 for an image without any).
    last_label = np.maximum.accumulate(
        labels.reshape(n_images, height * width).max(axis=1, initial=0)
    )
    return np.split(xy, last_label[:-1])


def _positions(xy: np.ndarray, what: str) -> np.ndarray:
    """Validated positions ``[k, 2]`` float64; any empty input is ``[0, 2]``."""
    a = np.asarray(xy, dtype=np.float64)
    if a.size == 0:
        return a.reshape(0, 2)
    if a.ndim != 2 or a.shape[1] != 2:
        raise ValueError(f"{what} positions must have shape [k, 2] (x, y), got {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"{what} positions must be finite")
    return a


def match_clumps(
    true_xy: np.ndarray, pred_xy: np.ndarray, radius: float
) -> tuple[int, int, int, np.ndarray]:
    """One-to-one matching of true ``[t, 2]`` and predicted ``[p, 2]`` positions (x, y) within
    ``radius`` pixels (distance <= radius): the most pairs, then the least total distance.

    Returns ``(tp, fp, fn, pairs)``; ``pairs`` ``[tp, 2]`` intp holds (true index, predicted
    index) of each match, sorted by true index.
    """
    t = _positions(true_xy, "true")
    p = _positions(pred_xy, "predicted")
    if not (np.isfinite(radius) and radius >= 0):
        raise ValueError(f"radius must be finite and >= 0 pixels, got {radius!r}")
    pairs = np.empty((0, 2), dtype=np.intp)
    if len(t) and len(p):
        distance = np.hypot(t[:, None, 0] - p[None, :, 0], t[:, None, 1] - p[None, :, 1])
        valid = distance <= radius
        if valid.any():
            # A pair beyond the radius costs more than all valid distances together, so any
            # assignment with one more valid pair is cheaper, whatever its distances.
            big = distance[valid].sum() + 1.0
            cost = np.where(valid, distance, big)
            rows, cols = linear_sum_assignment(cost)
            keep = valid[rows, cols]
            pairs = np.stack([rows[keep], cols[keep]], axis=1).astype(np.intp)
    tp = len(pairs)
    return tp, len(p) - tp, len(t) - tp, pairs


def clump_counts(
    true_xy_list: list[np.ndarray], pred_xy_list: list[np.ndarray], radius: float
) -> dict[str, np.ndarray]:
    """Per-image detection counts of N true and N predicted position arrays ``[k, 2]`` (x, y),
    matched by :func:`match_clumps` within ``radius`` pixels: a dict of ``[N]`` int64 arrays
    ``tp``, ``fp`` and ``fn``."""
    if len(true_xy_list) != len(pred_xy_list):
        raise ValueError(
            f"{len(true_xy_list)} images of true clumps but {len(pred_xy_list)} of predicted ones"
        )
    counts = np.zeros((3, len(true_xy_list)), dtype=np.int64)
    for i, (t, p) in enumerate(zip(true_xy_list, pred_xy_list)):
        try:
            counts[:, i] = match_clumps(t, p, radius)[:3]
        except ValueError as error:
            raise ValueError(f"image {i}: {error}") from None
    return {"tp": counts[0], "fp": counts[1], "fn": counts[2]}


@metric(
    "completeness",
    "higher",
    "clump detection completeness TP / (TP + FN), one-to-one matches within the task's radius, "
    "summed over all images",
)
def completeness_from_counts(
    counts: dict[str, np.ndarray], weights: np.ndarray | None = None
) -> np.ndarray:
    """TP / (TP + FN) of :func:`clump_counts`, ``[...]`` for weights ``[..., N]``; NaN where
    there is no true clump."""
    tp, fn = _weighted_sums(counts, ("tp", "fn"), weights)
    return _ratio(tp, tp + fn)


@metric(
    "purity",
    "higher",
    "clump detection purity TP / (TP + FP), one-to-one matches within the task's radius, "
    "summed over all images",
)
def purity_from_counts(
    counts: dict[str, np.ndarray], weights: np.ndarray | None = None
) -> np.ndarray:
    """TP / (TP + FP) of :func:`clump_counts`, ``[...]`` for weights ``[..., N]``; NaN where
    there is no predicted clump."""
    tp, fp = _weighted_sums(counts, ("tp", "fp"), weights)
    return _ratio(tp, tp + fp)


@metric(
    "clump_f1",
    "higher",
    "clump detection F1 = 2 TP / (2 TP + FP + FN), one-to-one matches within the task's radius, "
    "summed over all images",
)
def clump_f1_from_counts(
    counts: dict[str, np.ndarray], weights: np.ndarray | None = None
) -> np.ndarray:
    """2 TP / (2 TP + FP + FN) of :func:`clump_counts`, ``[...]`` for weights ``[..., N]``; NaN
    where there is no true and no predicted clump."""
    tp, fp, fn = _weighted_sums(counts, ("tp", "fp", "fn"), weights)
    return _ratio(2.0 * tp, 2.0 * tp + fp + fn)


def detection_from_counts(
    counts: dict[str, np.ndarray], weights: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """``completeness``, ``purity`` and ``f1`` of :func:`clump_counts`, each ``[...]`` for
    weights ``[..., N]``."""
    return {
        "completeness": completeness_from_counts(counts, weights),
        "purity": purity_from_counts(counts, weights),
        "f1": clump_f1_from_counts(counts, weights),
    }
