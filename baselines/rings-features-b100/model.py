"""Classical rings@1 baseline: non-parametric morphology, a radial profile and colours, and a
logistic regression (no deep learning). Shared, identical, by the rings-features-b{10,50,100,200}
folders; each holds its own config.json (written by ../rings-features-b100/train.py).

Features of one galaxy (``ring_features``), from the [3, 128, 128] display image:

- the mean of the three channels, binned 2x2 to 64x64; its sky level (median of the 6-pixel
  border) subtracted and the image divided by the sky scatter there (1.4826 MAD, at least
  1e-3), so values are in units of the sky noise;
- the 12 non-parametric morphology features of ``galbench.features.morphology_features``
  (C, A, S, Gini, M20, ellipticity, r50, ..., ``outer_excess``: light at 1.5-3 r50);
- the azimuthally averaged profile in 15 annuli of 2 px (to r = 30 px) divided by the central
  annulus, and its largest rise after a dip (``max_k p_k - min_{j<k} p_j``): a ring is a bump
  in the profile outside the bulge;
- colours: log ratios of the first to the third channel's sky-subtracted light inside r < 4 px
  and in 4 <= r < 12 px (64-px grid), the ring zone being bluer than the bulge in many rings.

The classifier is an L2 logistic regression on standardised features; ``config.json`` holds the
standardisation and the coefficients, so ``predict`` is numpy only (no pickled estimator).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from galbench.features import morphology_features

SIDE = 64
BORDER = 6
N_ANNULI = 15
ANNULUS_PX = 2.0


def _bin2(x: np.ndarray) -> np.ndarray:
    """[..., 128, 128] -> [..., 64, 64] by 2x2 block means."""
    *lead, h, w = x.shape
    return x.reshape(*lead, h // 2, 2, w // 2, 2).mean(axis=(-3, -1))


def _border(x: np.ndarray) -> np.ndarray:
    """The outer ``BORDER`` pixels of [B, H, W] stamps, as [B, P]."""
    mask = np.ones(x.shape[-2:], dtype=bool)
    mask[BORDER:-BORDER, BORDER:-BORDER] = False
    return x[:, mask]


def _radius(size: int) -> np.ndarray:
    c = (size - 1) / 2.0
    rows, cols = np.mgrid[0:size, 0:size]
    return np.hypot(rows - c, cols - c)


def ring_features(images: np.ndarray) -> np.ndarray:
    """images float32 [B, 3, 128, 128] (rings@1 display units) -> features [B, F] float64."""
    x = _bin2(np.asarray(images, dtype=np.float64))  # [B, 3, 64, 64]
    b = len(x)
    gray = x.mean(axis=1)
    border = _border(gray)
    sky = np.median(border, axis=1)
    scatter = np.maximum(1.4826 * np.median(np.abs(border - sky[:, None]), axis=1), 1e-3)
    norm = (gray - sky[:, None, None]) / scatter[:, None, None]
    morph = morphology_features(norm[:, None], 1.0)

    radius = _radius(SIDE)
    ring_index = np.minimum((radius / ANNULUS_PX).astype(int), N_ANNULI)  # N_ANNULI = outside
    profile = np.empty((b, N_ANNULI))
    for k in range(N_ANNULI):
        profile[:, k] = norm[:, ring_index == k].mean(axis=1)
    profile = profile / np.maximum(profile[:, :1], 1e-3)
    running_min = np.minimum.accumulate(profile, axis=1)
    bump = np.max(profile[:, 1:] - running_min[:, :-1], axis=1)

    channels = x - np.median(_border(x.reshape(b * 3, SIDE, SIDE)), axis=1).reshape(b, 3, 1, 1)
    inner = radius < 4
    outer = (radius >= 4) & (radius < 12)
    colours = []
    for zone in (inner, outer):
        light = np.maximum(channels[:, :, zone].sum(axis=2), 1e-3)  # [B, 3]
        colours.append(np.log10(light[:, 0] / light[:, 2]))
    return np.column_stack([morph, profile, bump, *colours])


class RingFeatureClassifier:
    def __init__(self, root: Path) -> None:
        self.config = json.loads((Path(root) / "config.json").read_text())
        head = self.config["head"]
        self.mean = np.array(head["mean"])
        self.scale = np.array(head["scale"])
        self.coef = np.array(head["coef"])
        self.intercept = float(head["intercept"])

    def predict(self, images: np.ndarray) -> np.ndarray:
        """images float32 [B, 3, 128, 128] -> [B, 2] probabilities (non_ring, ring)."""
        z = (ring_features(images) - self.mean) / self.scale
        logit = z @ self.coef + self.intercept
        ring = 1.0 / (1.0 + np.exp(-np.clip(logit, -50, 50)))
        return np.column_stack([1.0 - ring, ring])
