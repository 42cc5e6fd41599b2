"""Classical baseline for clumps@1: peaks of the PSF-filtered residual of a smooth galaxy model.

No learning. Per stamp (all numbers in ``config.json``, chosen by ``train.py`` on val):

1. Smooth galaxy model: a median filter ``window`` pixels wide (5 px, 1.7 PSF FWHM: a clump's
   9-pixel core is a minority of the window, so it barely moves the median); residual = image -
   model.
2. Noise: sigma of the residual and of the filtered residual from the median absolute deviation
   over the stamp (mostly sky), scaled up where the galaxy adds source Poisson noise,
   ``sigma(x) = sigma_sky_filtered * sqrt(1 + model(x) / (t_exp sigma_sky^2))`` (``t_exp``: the
   instrument's exposure time, which converts e-/s into detected electrons).
3. Detection: the residual is filtered with a Gaussian of ``fwhm_px`` (a matched filter for the
   PSF when ``fwhm_px`` is the PSF's 3 px; narrower keeps close clumps apart) and
   ``photutils.detection.find_peaks`` keeps the local maxima (``box_size`` 3, about the PSF)
   above ``k`` sigma. Peaks closer than ``central_exclusion_px`` to the stamp centre are the
   galaxy's own cusp (the median filter flattens it), not clumps: clumps@1 puts clumps at least
   3 px from the galaxy centre, which is within 0.5 px of the stamp centre on each axis.
4. Close pairs: PSF images at the peaks' sub-pixel positions (quadratic interpolation of the
   filtered map) are fitted jointly to the residual by linear least squares and subtracted; the
   peaks of what is left above ``k_pair`` sigma within ``pair_distance_px`` of a first-pass peak
   are clumps that the first pass merged with a brighter neighbour.
5. Output: probability 1 within ``mask_radius_px`` (1.5 px, the task's mask definition) of each
   clump, else 0. Pixels closer to another clump are given to it, and where two clumps' disks
   touch, the touching pixels (other than each clump's peak pixel) are set to 0, so that every
   clump stays one 8-connected component (the scorer's definition of a predicted clump).

The PSF images come from ``psf.npy`` (``train.py`` draws them with GalSim from the task's
instrument): the pixelised PSF at 4 x 4 sub-pixel phases, 11 x 11 pixels each.
Each stamp is processed alone, so the output does not depend on the batch size.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
from photutils.detection import find_peaks
from scipy import ndimage

#: Gaussian sigma over FWHM.
_FWHM_TO_SIGMA = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))
#: MAD of a Gaussian over its sigma.
_MAD_TO_SIGMA = 1.4826


def smooth_background(images: np.ndarray, window: int) -> np.ndarray:
    """Median-filtered images ``[B, H, W]`` float64 (window x window pixels, reflected edges)."""
    return ndimage.median_filter(
        np.asarray(images, dtype=np.float64), size=(1, window, window), mode="reflect"
    )


def gaussian_kernel(fwhm_px: float) -> np.ndarray:
    """Normalised Gaussian ``[2h+1, 2h+1]``, h = ceil(2 FWHM) (3.4 sigma)."""
    sigma = fwhm_px * _FWHM_TO_SIGMA
    half = int(np.ceil(2 * fwhm_px))
    a = np.arange(-half, half + 1)
    kernel = np.exp(-(a[:, None] ** 2 + a[None, :] ** 2) / (2 * sigma**2))
    return kernel / kernel.sum()


def mad_sigma(values: np.ndarray) -> float:
    values = np.asarray(values, dtype=np.float64).ravel()
    return float(_MAD_TO_SIGMA * np.median(np.abs(values - np.median(values))))


def _vertex(before: float, centre: float, after: float) -> float:
    """Offset in [-0.5, 0.5] of the maximum of the parabola through three equally spaced values."""
    curvature = before - 2 * centre + after
    return float(np.clip(0.5 * (before - after) / curvature, -0.5, 0.5)) if curvature < 0 else 0.0


def _subpixel(filtered: np.ndarray, y: int, x: int) -> tuple[float, float]:
    """(dx, dy) of a peak at pixel (x, y): parabolas through it and its neighbours on each axis."""
    h, w = filtered.shape
    dx = _vertex(filtered[y, x - 1], filtered[y, x], filtered[y, x + 1]) if 0 < x < w - 1 else 0.0
    dy = _vertex(filtered[y - 1, x], filtered[y, x], filtered[y + 1, x]) if 0 < y < h - 1 else 0.0
    return dx, dy


class PointSourceImages:
    """Pixelised PSF at sub-pixel phases: ``phases[i, j]`` ``[S, S]`` is a unit point source at
    ``(c + offsets[j], c + offsets[i])``, c = S // 2, offsets ``(k + 0.5) / O - 0.5``."""

    def __init__(self, phases: np.ndarray) -> None:
        self.phases = np.asarray(phases, dtype=np.float64)
        self.n_phases, self.size = self.phases.shape[0], self.phases.shape[-1]
        self.offsets = (np.arange(self.n_phases) + 0.5) / self.n_phases - 0.5

    def image(self, x: float, y: float, shape: tuple[int, int]) -> np.ndarray:
        """A unit point source at (x, y) (nearest phase) on a zero image of ``shape``."""
        xi, yi = round(x), round(y)
        j = int(np.argmin(np.abs(self.offsets - (x - xi))))
        i = int(np.argmin(np.abs(self.offsets - (y - yi))))
        out = np.zeros(shape)
        half, s = self.size // 2, self.size
        y0, x0 = yi - half, xi - half
        ys, xs = max(0, -y0), max(0, -x0)
        ye, xe = s - max(0, y0 + s - shape[0]), s - max(0, x0 + s - shape[1])
        if ye > ys and xe > xs:
            out[y0 + ys : y0 + ye, x0 + xs : x0 + xe] = self.phases[i, j, ys:ye, xs:xe]
        return out


def subtract_point_sources(
    residual: np.ndarray, positions: np.ndarray, psf: PointSourceImages
) -> np.ndarray:
    """``residual`` minus point sources at ``positions`` ``[k, 2]`` (x, y) whose fluxes are fitted
    jointly by linear least squares."""
    if len(positions) == 0:
        return residual
    design = np.stack([psf.image(x, y, residual.shape).ravel() for x, y in positions], axis=1)
    fluxes = np.linalg.lstsq(design, residual.ravel(), rcond=None)[0]
    return residual - (design @ fluxes).reshape(residual.shape)


def _peaks(filtered: np.ndarray, threshold: np.ndarray) -> list[tuple[int, int]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # photutils warns when there is no peak
        table = find_peaks(filtered, threshold=threshold, box_size=3)
    if table is None:
        return []
    return [(int(x), int(y)) for x, y in zip(table["x_peak"], table["y_peak"])]


def find_clumps(
    image: np.ndarray, background: np.ndarray, settings: dict, psf: PointSourceImages
) -> tuple[np.ndarray, np.ndarray]:
    """Clumps of one stamp ``[H, W]`` e-/s given its smooth model ``[H, W]``:
    ``(positions [k, 2] float (x, y), peak pixels [k, 2] int (x, y))``."""
    image = np.asarray(image, dtype=np.float64)
    residual = image - background
    kernel = gaussian_kernel(settings["fwhm_px"])
    filtered = ndimage.convolve(residual, kernel, mode="constant")
    sigma_pixel = max(mad_sigma(residual), 1e-12)
    model = ndimage.convolve(np.maximum(background, 0.0), kernel, mode="constant")
    sigma = mad_sigma(filtered) * np.sqrt(
        1.0 + model / (settings["exposure_time_s"] * sigma_pixel**2)
    )
    h, w = image.shape
    cy, cx = (h - 1) / 2, (w - 1) / 2

    def off_centre(x: float, y: float) -> bool:
        return np.hypot(x - cx, y - cy) >= settings["central_exclusion_px"]

    positions, anchors = [], []
    for x, y in _peaks(filtered, settings["k"] * sigma):
        if off_centre(x, y):
            dx, dy = _subpixel(filtered, y, x)
            positions.append((x + dx, y + dy))
            anchors.append((x, y))
    first = np.array(positions, dtype=np.float64).reshape(-1, 2)
    if len(first) and settings["k_pair"] is not None:
        rest = subtract_point_sources(residual, first, psf)
        rest_filtered = ndimage.convolve(rest, kernel, mode="constant")
        candidates = []
        for x, y in _peaks(rest_filtered, settings["k_pair"] * sigma):
            distance = np.hypot(first[:, 0] - x, first[:, 1] - y).min()
            if off_centre(x, y) and 1.5 <= distance <= settings["pair_distance_px"]:
                candidates.append((rest_filtered[y, x] / sigma[y, x], x, y))
        # Strongest first; a clump's peak pixel must not touch another's (one component each).
        for _, x, y in sorted(candidates, reverse=True):
            if all(max(abs(x - ax), abs(y - ay)) >= 2 for ax, ay in anchors):
                dx, dy = _subpixel(rest_filtered, y, x)
                positions.append((x + dx, y + dy))
                anchors.append((x, y))
    return (
        np.array(positions, dtype=np.float64).reshape(-1, 2),
        np.array(anchors, dtype=np.int64).reshape(-1, 2),
    )


def clump_map(
    positions: np.ndarray, anchors: np.ndarray, shape: tuple[int, int], radius: float
) -> np.ndarray:
    """0/1 map ``[H, W]`` float32: the pixels within ``radius`` of each clump position, each given
    to its nearest clump, with the pixels where two clumps touch removed (peak pixels kept)."""
    h, w = shape
    if len(positions) == 0:
        return np.zeros(shape, dtype=np.float32)
    rows, cols = np.indices(shape)
    distance = np.hypot(
        cols[None] - positions[:, 0, None, None], rows[None] - positions[:, 1, None, None]
    )
    labels = np.where(distance.min(axis=0) <= radius, distance.argmin(axis=0) + 1, 0)
    is_anchor = np.zeros(shape, dtype=bool)
    inside = (anchors[:, 0] >= 0) & (anchors[:, 0] < w) & (anchors[:, 1] >= 0) & (anchors[:, 1] < h)
    labels[anchors[inside, 1], anchors[inside, 0]] = np.arange(1, len(anchors) + 1)[inside]
    is_anchor[anchors[inside, 1], anchors[inside, 0]] = True
    if len(positions) > 1:
        big = len(positions) + 1
        highest = ndimage.maximum_filter(labels, size=3, mode="constant", cval=0)
        lowest = ndimage.minimum_filter(
            np.where(labels > 0, labels, big), size=3, mode="constant", cval=big
        )
        touching = (labels > 0) & ((highest != labels) | (lowest != labels))
        labels = np.where(touching & ~is_anchor, 0, labels)
    return (labels > 0).astype(np.float32)


def load_settings(root: Path) -> dict:
    config = json.loads((Path(root) / "config.json").read_text())
    return config["settings"]


class ClumpPeaks:
    def __init__(self, root: Path) -> None:
        root = Path(root)
        self.settings = load_settings(root)
        self.psf = PointSourceImages(np.load(root / "psf.npy"))

    def predict(self, images: np.ndarray) -> np.ndarray:
        """images: float32 [B, 1, H, W] e-/s -> clump probabilities [B, 1, H, W] float32, 0 or 1."""
        images = np.asarray(images, dtype=np.float64)
        out = np.zeros(images.shape, dtype=np.float32)
        backgrounds = smooth_background(images[:, 0], self.settings["window"])
        for n, (image, background) in enumerate(zip(images[:, 0], backgrounds)):
            positions, anchors = find_clumps(image, background, self.settings, self.psf)
            out[n, 0] = clump_map(positions, anchors, image.shape, self.settings["mask_radius_px"])
        return out
