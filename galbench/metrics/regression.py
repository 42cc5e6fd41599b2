"""Regression metrics: bias, robust scatter, outliers, calibration of predicted uncertainties.

All take residuals ``r = prediction - truth`` as arrays; reductions run over axis ``-2`` when
given ``[..., n, P]`` arrays, so one call scores many parameters (and many bootstrap resamples).
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr

from galbench.metrics import declare, metric

#: sigma_NMAD = NMAD_FACTOR * median(|r - median(r)|); 1/Phi^-1(3/4), so it equals the standard
#: deviation for Gaussian residuals.
NMAD_FACTOR = 1.482602218505602
#: Probability mass within one standard deviation of a Gaussian: the ideal 68% coverage.
ONE_SIGMA_COVERAGE = 0.6826894921370859


def residuals(prediction: np.ndarray, truth: np.ndarray, period: float | None = None) -> np.ndarray:
    """``prediction - truth``, wrapped into ``[-period/2, period/2)`` when ``period`` is given
    (a position angle modulo 180 deg: predicting 179 for a true 1 is a 2 deg error)."""
    r = np.asarray(prediction, dtype=np.float64) - np.asarray(truth, dtype=np.float64)
    if period is not None:
        r = (r + period / 2.0) % period - period / 2.0
        # Floating-point modulo can round a value just below -period/2 up to +period/2.
        r = np.where(r >= period / 2.0, r - period, r)
    return r


@metric("bias", "ideal", "median residual (prediction - truth)", ideal=0.0)
def bias(r: np.ndarray, axis: int = -2) -> np.ndarray:
    return np.median(r, axis=axis)


@metric("scatter", "lower", "sigma_NMAD = 1.4826 x median(|r - median(r)|)")
def sigma_nmad(r: np.ndarray, axis: int = -2) -> np.ndarray:
    med = np.median(r, axis=axis, keepdims=True)
    return NMAD_FACTOR * np.median(np.abs(r - med), axis=axis)


@metric("outlier_fraction", "lower", "fraction of objects with |residual| > the target's threshold")
def outlier_fraction(r: np.ndarray, threshold: np.ndarray | float, axis: int = -2) -> np.ndarray:
    return np.mean(np.abs(r) > threshold, axis=axis)


@metric(
    "coverage68",
    "ideal",
    "fraction of objects with |residual| <= predicted sigma (0.6827 if calibrated)",
    ideal=ONE_SIGMA_COVERAGE,
)
def coverage(r: np.ndarray, sigma: np.ndarray, axis: int = -2) -> np.ndarray:
    return np.mean(np.abs(r) <= sigma, axis=axis)


@metric("crps", "lower", "mean CRPS of the Gaussian N(prediction, sigma^2), in target units")
def gaussian_crps(r: np.ndarray, sigma: np.ndarray, axis: int = -2) -> np.ndarray:
    """Mean continuous ranked probability score of Gaussian predictive distributions.

    CRPS(N(mu, s^2), y) = s [z (2 Phi(z) - 1) + 2 phi(z) - 1/sqrt(pi)], z = (y - mu) / s
    (Gneiting & Raftery 2007, eq. 21); symmetric in z, so r = mu - y may be passed.
    """
    z = r / sigma
    pdf = np.exp(-0.5 * z * z) / np.sqrt(2.0 * np.pi)
    crps = sigma * (z * (2.0 * ndtr(z) - 1.0) + 2.0 * pdf - 1.0 / np.sqrt(np.pi))
    return np.mean(crps, axis=axis)


declare("normalized_scatter", "lower", "sigma_NMAD divided by the target's scale")
declare("normalized_crps", "lower", "CRPS divided by the target's scale")
declare(
    "mean_normalized_scatter",
    "lower",
    "mean over targets of sigma_NMAD / scale (scale = width of the prior range)",
)
declare("mean_normalized_abs_bias", "lower", "mean over targets of |median residual| / scale")
declare("mean_outlier_fraction", "lower", "mean over targets of the outlier fraction")
declare(
    "mean_coverage68",
    "ideal",
    "mean over targets of the 1-sigma coverage of predicted uncertainties",
    ideal=ONE_SIGMA_COVERAGE,
)
declare("mean_normalized_crps", "lower", "mean over targets of CRPS / scale")


def sersic_b(n: np.ndarray | float) -> np.ndarray:
    """b_n of a Sersic profile I(r) ∝ exp(-b_n (r/r_e)^(1/n)): the root of P(2n, b_n) = 1/2, so
    that r_e encloses half the light."""
    from scipy.special import gammaincinv

    return gammaincinv(2.0 * np.asarray(n, dtype=np.float64), 0.5)


def sersic_enclosed_fraction(radius: np.ndarray, r_e: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Fraction of a circular Sersic profile's light within ``radius``: P(2n, b_n (R/r_e)^(1/n))."""
    from scipy.special import gammainc

    n = np.asarray(n, dtype=np.float64)
    x = sersic_b(n) * (np.asarray(radius, dtype=np.float64) / r_e) ** (1.0 / n)
    return gammainc(2.0 * n, x)


def bulge_disk_half_light_radius(
    bulge_to_total: np.ndarray, n_bulge: np.ndarray, r_bulge: np.ndarray, r_disk: np.ndarray,
    q_bulge: np.ndarray, q_disk: np.ndarray, *, iterations: int = 60,
) -> np.ndarray:
    """Circular half-light radius of a Sersic bulge + exponential disk (radii are major-axis
    half-light radii, in any one unit; the result is in the same unit).

    Each component is circularised (r_e sqrt(q), exact for the half-light radius in elliptical
    apertures and within a few per cent in circular ones for q > 0.3), and the radius R with
    B/T P_b(R) + (1 - B/T) P_d(R) = 1/2 is found by bisection in log R: it lies between the two
    components' circularised radii.
    """
    bt = np.clip(np.asarray(bulge_to_total, dtype=np.float64), 0.0, 1.0)
    n_b = np.clip(np.asarray(n_bulge, dtype=np.float64), 0.3, 8.0)
    rb = np.asarray(r_bulge, dtype=np.float64) * np.sqrt(np.clip(q_bulge, 1e-3, 1.0))
    rd = np.asarray(r_disk, dtype=np.float64) * np.sqrt(np.clip(q_disk, 1e-3, 1.0))
    lo = np.log(np.minimum(rb, rd))
    hi = np.log(np.maximum(rb, rd))
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        radius = np.exp(mid)
        light = bt * sersic_enclosed_fraction(radius, rb, n_b) + (1 - bt) * sersic_enclosed_fraction(
            radius, rd, 1.0)
        inside = light >= 0.5
        hi = np.where(inside, mid, hi)
        lo = np.where(inside, lo, mid)
    return np.exp(0.5 * (lo + hi))
