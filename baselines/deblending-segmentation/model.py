"""Classical baseline for deblending@1: segmentation plus symmetric templates (no learning).

Per blend (settings in ``config.json``, chosen by ``train.py`` on val):

1. Detection: the blend is smoothed with a Gaussian of ``smooth_fwhm_px`` (about the PSF);
   the noise sigma of the smoothed image is the MAD of its 4-pixel border (mostly sky);
   ``photutils.segmentation.detect_sources`` keeps the connected regions above ``k`` sigma
   (at least ``n_pixels`` pixels) and ``deblend_sources`` splits them (multi-thresholding +
   watershed, ``n_levels`` and ``contrast``).
2. Central galaxy: its centre is the maximum of the smoothed blend within 1.5 px of the stamp
   centre (deblending@1 jitters it by at most 0.5 px per axis), refined to sub-pixel by a
   parabola through the neighbouring pixels.
3. Companion: every galaxy of the task is point-symmetric about its centre (a Sersic ellipse
   convolved with a symmetric PSF), so the light that is not symmetric about the central's centre,
   ``A = S - min(S, S mirrored about the centre)``, belongs to the companion (Lupton's SDSS
   deblender uses the same property). The companion's centre is the maximum of ``A`` over the
   detected pixels at least ``min_separation_px`` from the central (the task puts it 4-20 px
   away), refined by a parabola on ``A``. (``companion = "brightest_segment"`` instead takes
   the peak of the other deblended segment with the most flux, the textbook rule; it misses every
   companion that ``deblend_sources`` leaves merged with the central.)
4. Flux assignment: each galaxy's template is the symmetric part of the smoothed blend about its
   centre, ``T = max(0, min(S(x), S(2c - x)))``; each pixel of the footprint (the two galaxies'
   deblended segments, dilated by ``dilate_px``) is split between the galaxies in proportion to
   their templates, ``pred_k = image * T_k / (T_c + T_m)`` (all of it to the central where both
   templates are 0); pixels outside the footprint are 0 for both (mostly sky noise).
   (``assignment = "segments"`` instead gives each galaxy the blend's pixels in its own segment.)

Output: ``[B, 2, 1, H, W]`` float32 in the input units (e-/s), central first. Each blend is
processed alone (deterministic, independent of the batch size).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
from photutils.segmentation import deblend_sources, detect_sources
from scipy import ndimage

_FWHM_TO_SIGMA = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))
_MAD_TO_SIGMA = 1.4826
#: Width of the stamp border whose MAD gives the sky noise (pixels).
BORDER_PX = 4
#: Search radius of the central galaxy's peak around the stamp centre (pixels).
CENTRAL_SEARCH_PX = 1.5


def gaussian_kernel(fwhm_px: float) -> np.ndarray:
    sigma = fwhm_px * _FWHM_TO_SIGMA
    half = int(np.ceil(2 * fwhm_px))
    a = np.arange(-half, half + 1)
    kernel = np.exp(-(a[:, None] ** 2 + a[None, :] ** 2) / (2 * sigma**2))
    return kernel / kernel.sum()


def border_sigma(image: np.ndarray, width: int = BORDER_PX) -> float:
    """Robust noise sigma from the MAD of the stamp's border pixels."""
    border = np.ones(image.shape, dtype=bool)
    border[width:-width, width:-width] = False
    values = image[border]
    return float(_MAD_TO_SIGMA * np.median(np.abs(values - np.median(values))))


def peak_centre(image: np.ndarray, region: np.ndarray) -> tuple[float, float]:
    """(x, y) of the maximum of ``image`` within the bool ``region``, refined to sub-pixel by a
    parabola through the maximum and its two neighbours along each axis (at most 0.5 px)."""
    h, w = image.shape
    y, x = divmod(int(np.argmax(np.where(region, image, -np.inf))), w)

    def vertex(before: float, centre: float, after: float) -> float:
        curvature = before - 2 * centre + after
        return (
            float(np.clip(0.5 * (before - after) / curvature, -0.5, 0.5)) if curvature < 0 else 0.0
        )

    dx = vertex(image[y, x - 1], image[y, x], image[y, x + 1]) if 0 < x < w - 1 else 0.0
    dy = vertex(image[y - 1, x], image[y, x], image[y + 1, x]) if 0 < y < h - 1 else 0.0
    return x + dx, y + dy


def mirrored(image: np.ndarray, x: float, y: float) -> np.ndarray:
    """``image(2c - p)``: the image reflected through the point c = (x, y) (bilinear
    interpolation; 0 where the reflection leaves the stamp)."""
    h, w = image.shape
    flipped = image[::-1, ::-1]
    return ndimage.shift(
        flipped, (2 * y - (h - 1), 2 * x - (w - 1)), order=1, mode="constant", cval=0.0
    )


def symmetric_template(image: np.ndarray, x: float, y: float) -> np.ndarray:
    """The part of ``image`` that is point-symmetric about (x, y): max(0, min(I(p), I(2c - p)))."""
    return np.clip(np.minimum(image, mirrored(image, x, y)), 0.0, None)


def segment(smoothed: np.ndarray, settings: dict) -> np.ndarray | None:
    """Deblended segmentation map ``[H, W]`` int of a smoothed blend, or None (nothing detected)."""
    sigma = border_sigma(smoothed)
    with warnings.catch_warnings():
        # photutils warns when it changes the deblending mode of a segment; the result is kept.
        warnings.simplefilter("ignore")
        found = detect_sources(smoothed, settings["k"] * sigma, n_pixels=settings["n_pixels"])
        if found is None:
            return None
        split = deblend_sources(
            smoothed, found, n_pixels=settings["n_pixels"], n_levels=settings["n_levels"],
            contrast=settings["contrast"], progress_bar=False,
        )  # fmt: skip
    return np.asarray(split.data)


def _label_at(segments: np.ndarray, x: float, y: float) -> int:
    """The segment at (x, y), or the one nearest to it if (x, y) is background."""
    h, w = segments.shape
    yi, xi = min(max(round(y), 0), h - 1), min(max(round(x), 0), w - 1)
    label = int(segments[yi, xi])
    if label == 0:
        rows, cols = np.indices(segments.shape)
        distance = np.where(segments > 0, np.hypot(cols - x, rows - y), np.inf)
        label = int(segments.ravel()[np.argmin(distance)])
    return label


def deblend(image: np.ndarray, settings: dict) -> np.ndarray:
    """One blend ``[H, W]`` e-/s -> ``[2, H, W]`` float64 (central, companion)."""
    image = np.asarray(image, dtype=np.float64)
    h, w = image.shape
    out = np.zeros((2, h, w))
    smoothed = ndimage.convolve(image, gaussian_kernel(settings["smooth_fwhm_px"]), mode="constant")
    segments = segment(smoothed, settings)
    if segments is None:
        return out
    rows, cols = np.indices(image.shape)
    cx, cy = peak_centre(
        smoothed, np.hypot(cols - (w - 1) / 2, rows - (h - 1) / 2) <= CENTRAL_SEARCH_PX
    )
    central_label = _label_at(segments, cx, cy)
    central = symmetric_template(smoothed, cx, cy)
    asymmetric = np.clip(smoothed - central, 0.0, None)
    candidates = (segments > 0) & (np.hypot(cols - cx, rows - cy) >= settings["min_separation_px"])

    companion_xy = None
    if settings["companion"] == "asymmetry":
        if candidates.any():
            y, x = divmod(int(np.argmax(np.where(candidates, asymmetric, -np.inf))), w)
            companion_xy = peak_centre(asymmetric, np.hypot(cols - x, rows - y) <= 1.5)
    elif settings["companion"] == "brightest_segment":
        others = [label for label in np.unique(segments) if label not in (0, central_label)]
        if others:
            fluxes = ndimage.sum(image, segments, others)
            companion_xy = peak_centre(smoothed, segments == others[int(np.argmax(fluxes))])
    else:
        raise ValueError(f"unknown companion rule {settings['companion']!r}")

    footprint = segments == central_label
    companion_label = 0
    if companion_xy is not None:
        companion_label = _label_at(segments, *companion_xy)
        footprint |= segments == companion_label

    if settings["assignment"] == "segments":
        out[0] = np.where(segments == central_label, image, 0.0)
        if companion_label not in (0, central_label):
            out[1] = np.where(segments == companion_label, image, 0.0)
        return out
    if settings["assignment"] != "symmetric":
        raise ValueError(f"unknown assignment {settings['assignment']!r}")

    templates = np.stack(
        [
            central,
            (
                symmetric_template(smoothed, *companion_xy)
                if companion_xy is not None
                else np.zeros_like(central)
            ),
        ]
    )
    if settings["dilate_px"]:
        footprint = ndimage.binary_dilation(footprint, iterations=settings["dilate_px"])
    total = templates.sum(axis=0)
    share = np.where(
        total > 0, templates / np.where(total > 0, total, 1.0), np.array([1.0, 0.0])[:, None, None]
    )
    return image * share * footprint


def load_settings(root: Path) -> dict:
    return json.loads((Path(root) / "config.json").read_text())["settings"]


class SymmetricDeblender:
    def __init__(self, root: Path) -> None:
        self.settings = load_settings(root)

    def predict(self, images: np.ndarray) -> np.ndarray:
        """images: float32 [B, 1, H, W] blends in e-/s -> [B, 2, 1, H, W] float32 e-/s
        (central galaxy, companion)."""
        images = np.asarray(images)
        b, _, h, w = images.shape
        out = np.zeros((b, 2, 1, h, w), dtype=np.float32)
        for n in range(b):
            out[n, :, 0] = deblend(images[n, 0], self.settings)
        return out
