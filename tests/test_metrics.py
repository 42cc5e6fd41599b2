"""Metrics: hand-computed values, cross-checks against scipy/sklearn, directions, bootstrap."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, stats
from sklearn.metrics import median_absolute_error

from galbench.errors import UnknownNameError
from galbench.metrics import METRICS, MetricInfo, metric, metric_info
from galbench.metrics.bootstrap import bootstrap_intervals
from galbench.metrics.regression import (
    NMAD_FACTOR,
    ONE_SIGMA_COVERAGE,
    bias,
    coverage,
    gaussian_crps,
    outlier_fraction,
    residuals,
    sigma_nmad,
)
from galbench.tasks import get_task


def col(values) -> np.ndarray:
    """A ``[n, 1]`` column: the metrics reduce over axis -2."""
    return np.asarray(values, dtype=np.float64).reshape(-1, 1)


# ------------------------------------------------------------------------------------------
# residuals


class TestResiduals:
    def test_plain_difference(self):
        r = residuals(np.array([1.0, 2.5, -3.0]), np.array([0.5, 2.5, 1.0]))
        np.testing.assert_array_equal(r, [0.5, 0.0, -4.0])
        assert r.dtype == np.float64

    def test_int_inputs_become_float(self):
        r = residuals(np.array([3, 1]), np.array([1, 3]))
        assert r.dtype == np.float64
        np.testing.assert_array_equal(r, [2.0, -2.0])

    @pytest.mark.parametrize(
        "pred, truth, expected",
        [
            (179.0, 1.0, -2.0),
            (1.0, 179.0, 2.0),
            (10.0, 5.0, 5.0),
            (5.0, 10.0, -5.0),
            (0.0, 0.0, 0.0),
            (180.0, 0.0, 0.0),  # a full turn of an axis is no error
            (0.0, 180.0, 0.0),
            (359.0, 0.0, -1.0),
            (90.0, 0.0, -90.0),  # boundary: +90 maps to -90 (half-open [-90, 90))
            (0.0, 90.0, -90.0),
            (89.5, 0.0, 89.5),
            (0.0, 89.5, -89.5),
            (135.0, 44.0, 91.0 - 180.0),
        ],
    )
    def test_pa_wrapping(self, pred, truth, expected):
        r = residuals(np.array([pred]), np.array([truth]), period=180.0)
        assert r[0] == pytest.approx(expected, abs=1e-12)

    def test_wrapped_range_is_half_open(self):
        rng = np.random.default_rng(3)
        pred = rng.uniform(-400, 400, 10_000)
        truth = rng.uniform(0, 180, 10_000)
        r = residuals(pred, truth, period=180.0)
        assert r.min() >= -90.0 and r.max() < 90.0
        # same angle modulo 180
        np.testing.assert_allclose(
            np.cos(np.deg2rad(2 * r)), np.cos(np.deg2rad(2 * (pred - truth))), atol=1e-9
        )

    def test_wrapped_range_at_rounding_edge(self):
        truth = np.array([np.nextafter(90.0, 100.0), 90.0 + 1e-14])
        r = residuals(np.zeros(2), truth, period=180.0)
        assert (r >= -90.0).all() and (r < 90.0).all()


# ------------------------------------------------------------------------------------------
# bias, scatter, outliers, coverage


def test_bias_is_the_median():
    r = col([3.0, -1.0, 10.0, 0.5, 2.0])
    np.testing.assert_array_equal(bias(r), [2.0])
    np.testing.assert_array_equal(bias(col([1.0, 2.0, 3.0, 100.0])), [2.5])


def test_nmad_factor():
    assert NMAD_FACTOR == pytest.approx(1.0 / stats.norm.ppf(0.75), rel=1e-14)
    assert ONE_SIGMA_COVERAGE == pytest.approx(stats.norm.cdf(1) - stats.norm.cdf(-1), rel=1e-14)


def test_sigma_nmad_hand_value():
    # median 3; |r - 3| = [2, 1, 0, 1, 97] -> median 1
    r = col([1.0, 2.0, 3.0, 4.0, 100.0])
    assert sigma_nmad(r)[0] == pytest.approx(NMAD_FACTOR * 1.0, rel=1e-15)
    # robust: the outlier does not matter
    assert sigma_nmad(col([1.0, 2.0, 3.0, 4.0, 1e9]))[0] == pytest.approx(NMAD_FACTOR)
    # shift invariant, scales linearly
    assert sigma_nmad(3.0 * r - 7.0)[0] == pytest.approx(3.0 * NMAD_FACTOR)
    assert sigma_nmad(col([5.0] * 7))[0] == 0.0


def test_sigma_nmad_matches_scipy():
    rng = np.random.default_rng(0)
    r = rng.standard_t(df=3, size=(301, 4)) * np.array([0.1, 1.0, 10.0, 3.0])
    expected = stats.median_abs_deviation(r, axis=0, scale="normal")
    np.testing.assert_allclose(sigma_nmad(r), expected, rtol=1e-12)


def test_sigma_nmad_of_gaussian_is_sigma():
    rng = np.random.default_rng(1)
    r = rng.normal(2.0, 0.7, size=(200_000, 1))
    assert sigma_nmad(r)[0] == pytest.approx(0.7, rel=0.01)


def test_median_abs_matches_sklearn_for_zero_median_residuals():
    rng = np.random.default_rng(2)
    half = rng.exponential(size=(50, 3)) * np.array([1.0, 0.2, 5.0])
    r = np.concatenate([half, -half])  # symmetric: median exactly 0
    truth = rng.normal(size=r.shape)
    pred = truth + r
    np.testing.assert_allclose(bias(residuals(pred, truth)), 0.0, atol=1e-12)
    expected = median_absolute_error(truth, pred, multioutput="raw_values")
    np.testing.assert_allclose(sigma_nmad(residuals(pred, truth)) / NMAD_FACTOR, expected,
                               rtol=1e-12)
    np.testing.assert_allclose(np.median(np.abs(r), axis=0), expected, rtol=1e-12)


def test_outlier_fraction_hand_values():
    r = col([-0.5, 0.2, 1.0, -2.0, 0.9, -0.9])
    # strictly greater than the threshold: 1.0 and -2.0 only
    assert outlier_fraction(r, 0.9)[0] == pytest.approx(2 / 6)
    assert outlier_fraction(r, 5.0)[0] == 0.0
    assert outlier_fraction(r, 0.0)[0] == 1.0
    # per-target thresholds broadcast over [n, P]
    r2 = np.array([[0.1, 10.0], [0.3, 30.0], [0.5, 50.0], [0.7, 70.0]])
    np.testing.assert_allclose(outlier_fraction(r2, np.array([0.4, 60.0])), [0.5, 0.25])


def test_coverage_hand_values():
    r = col([0.5, 1.0, -1.5, -0.2])
    # |r| <= sigma, inclusive: 0.5, 1.0, 0.2 -> 3/4
    assert coverage(r, np.ones_like(r))[0] == pytest.approx(0.75)
    sigma = col([0.4, 2.0, 2.0, 0.1])
    assert coverage(r, sigma)[0] == pytest.approx(0.5)
    assert coverage(r, col([10.0] * 4))[0] == 1.0


def test_coverage_of_calibrated_gaussian():
    rng = np.random.default_rng(4)
    sigma = rng.uniform(0.1, 3.0, size=(100_000, 1))
    r = rng.normal(size=sigma.shape) * sigma
    assert coverage(r, sigma)[0] == pytest.approx(ONE_SIGMA_COVERAGE, abs=0.005)


# ------------------------------------------------------------------------------------------
# CRPS


def _phi(z: float) -> float:
    return math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)


def _Phi(z: float) -> float:
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def _crps_hand(r: float, s: float) -> float:
    z = r / s
    return s * (z * (2 * _Phi(z) - 1) + 2 * _phi(z) - 1 / math.sqrt(math.pi))


def _crps_by_integration(r: float, s: float) -> float:
    """CRPS(F, y) = integral of (F(x) - 1{x >= y})^2 dx with F = N(r, s^2), y = 0."""
    F = stats.norm(loc=r, scale=s).cdf
    below, _ = integrate.quad(lambda x: F(x) ** 2, -np.inf, 0.0, epsabs=1e-12, epsrel=1e-10)
    above, _ = integrate.quad(lambda x: (1 - F(x)) ** 2, 0.0, np.inf, epsabs=1e-12, epsrel=1e-10)
    return below + above


@pytest.mark.parametrize("sigma", [0.1, 1.0, 7.5])
def test_crps_at_zero_residual(sigma):
    expected = sigma * (2 * _phi(0.0) - 1 / math.sqrt(math.pi))
    assert expected == pytest.approx(sigma * (math.sqrt(2) - 1) / math.sqrt(math.pi))
    got = gaussian_crps(col([0.0]), col([sigma]))[0]
    assert got == pytest.approx(expected, rel=1e-13)


@pytest.mark.parametrize(
    "r, sigma", [(0.0, 1.0), (0.3, 1.0), (-2.0, 0.5), (5.0, 2.0), (1e-3, 1e-2)]
)
def test_crps_matches_numerical_integration(r, sigma):
    got = gaussian_crps(col([r]), col([sigma]))[0]
    assert got == pytest.approx(_crps_by_integration(r, sigma), rel=1e-6)
    assert got == pytest.approx(_crps_hand(r, sigma), rel=1e-12)


def test_crps_is_symmetric_and_means_over_objects():
    r = col([0.3, -0.3, 2.0, 0.0])
    s = col([1.0, 1.0, 0.5, 3.0])
    expected = np.mean([_crps_hand(0.3, 1.0), _crps_hand(-0.3, 1.0), _crps_hand(2.0, 0.5),
                        _crps_hand(0.0, 3.0)])
    assert gaussian_crps(r, s)[0] == pytest.approx(expected, rel=1e-12)
    assert _crps_hand(0.3, 1.0) == pytest.approx(_crps_hand(-0.3, 1.0))


def test_crps_tends_to_absolute_error_for_tiny_sigma():
    assert gaussian_crps(col([2.0]), col([1e-9]))[0] == pytest.approx(2.0, rel=1e-6)


def test_crps_expectation_for_calibrated_gaussian():
    # E[CRPS] = sigma / sqrt(pi) when y ~ N(mu, sigma^2)
    rng = np.random.default_rng(5)
    r = rng.normal(0.0, 2.0, size=(200_000, 1))
    assert gaussian_crps(r, np.full_like(r, 2.0))[0] == pytest.approx(2.0 / math.sqrt(math.pi),
                                                                     rel=0.01)


# ------------------------------------------------------------------------------------------
# Batched [B, n, P] arrays


def test_batched_equals_per_slice():
    rng = np.random.default_rng(6)
    r = rng.normal(size=(4, 25, 3)) * np.array([1.0, 0.1, 10.0])
    sigma = rng.uniform(0.05, 5.0, size=r.shape)
    threshold = np.array([0.5, 0.05, 12.0])
    batched = {
        "bias": bias(r),
        "scatter": sigma_nmad(r),
        "outliers": outlier_fraction(r, threshold),
        "coverage": coverage(r, sigma),
        "crps": gaussian_crps(r, sigma),
    }
    for value in batched.values():
        assert value.shape == (4, 3)
    for b in range(4):
        np.testing.assert_allclose(batched["bias"][b], bias(r[b]), rtol=1e-14)
        np.testing.assert_allclose(batched["scatter"][b], sigma_nmad(r[b]), rtol=1e-14)
        np.testing.assert_allclose(batched["outliers"][b], outlier_fraction(r[b], threshold))
        np.testing.assert_allclose(batched["coverage"][b], coverage(r[b], sigma[b]))
        np.testing.assert_allclose(batched["crps"][b], gaussian_crps(r[b], sigma[b]), rtol=1e-14)
        # and per target, column by column
        for j in range(3):
            assert batched["scatter"][b, j] == pytest.approx(
                stats.median_abs_deviation(r[b, :, j], scale="normal"), rel=1e-12
            )


# ------------------------------------------------------------------------------------------
# Directions and the metric registry


class TestMetricInfo:
    def test_higher(self):
        info = MetricInfo("acc", "higher", "")
        assert info.better(0.9, 0.8) and not info.better(0.8, 0.9) and not info.better(0.8, 0.8)

    def test_lower(self):
        info = MetricInfo("err", "lower", "")
        assert info.better(0.1, 0.2) and not info.better(0.2, 0.1) and not info.better(0.2, 0.2)

    def test_ideal(self):
        info = MetricInfo("cov", "ideal", "", ideal=ONE_SIGMA_COVERAGE)
        assert info.better(0.70, 0.60)  # 0.017 from ideal vs 0.083
        assert not info.better(0.60, 0.70)
        assert info.better(0.66, 0.71)  # below the ideal can beat above it
        assert not info.better(0.5, 0.5)
        assert MetricInfo("b", "ideal", "", ideal=0.0).better(-0.1, 0.2)

    def test_registered_directions(self):
        assert metric_info("bias").direction == "ideal" and metric_info("bias").ideal == 0.0
        assert metric_info("scatter").direction == "lower"
        assert metric_info("coverage68").ideal == ONE_SIGMA_COVERAGE
        assert metric_info("mean_coverage68").direction == "ideal"
        assert metric_info("mean_normalized_scatter").direction == "lower"
        assert metric_info("crps").fn is gaussian_crps
        assert metric_info("scatter").fn is sigma_nmad
        assert metric_info("mean_normalized_scatter").fn is None  # declared, derived

    def test_family_resolution(self):
        info = metric_info("scatter/mag")
        assert info.name == "scatter" and info.direction == "lower"
        assert metric_info("coverage68/pa").name == "coverage68"
        assert metric_info("normalized_scatter/q_disk").name == "normalized_scatter"

    def test_unknown_metric_suggests(self):
        with pytest.raises(UnknownNameError, match="did you mean 'scatter'"):
            metric_info("scater/mag")

    def test_task_metrics_are_registered(self):
        task = get_task("morphometry@1")
        info = metric_info(task.main_metric)
        assert info.direction == task.direction
        for name in task.secondary_metrics:
            assert name in METRICS

    @pytest.mark.parametrize(
        "direction, ideal",
        [("up", None), ("ideal", None), ("lower", 0.0), ("higher", 1.0)],
    )
    def test_bad_declaration(self, direction, ideal):
        n_before = len(METRICS)
        with pytest.raises(ValueError, match="bad direction"):
            metric("never_registered_metric", direction, "", ideal)
        assert len(METRICS) == n_before


# ------------------------------------------------------------------------------------------
# Bootstrap


def _mean_statistics(x: np.ndarray):
    def statistics(indices: np.ndarray) -> dict[str, np.ndarray]:
        assert indices.ndim == 2 and indices.shape[1] == len(x)
        sample = x[indices]
        return {"mean": sample.mean(axis=-1), "median": np.median(sample, axis=-1)}

    return statistics


def test_bootstrap_same_seed_identical():
    x = np.random.default_rng(7).normal(size=200)
    a = bootstrap_intervals(_mean_statistics(x), len(x), n_resamples=300, seed=11)
    b = bootstrap_intervals(_mean_statistics(x), len(x), n_resamples=300, seed=11)
    assert a == b
    c = bootstrap_intervals(_mean_statistics(x), len(x), n_resamples=300, seed=12)
    assert c["mean"] != a["mean"]
    assert set(a) == {"mean", "median"}


@pytest.mark.parametrize("batch_size", [1, 7, 64, 300, 1000])
def test_bootstrap_independent_of_batch_size(batch_size):
    x = np.random.default_rng(8).normal(size=150)
    reference = bootstrap_intervals(_mean_statistics(x), len(x), n_resamples=300, seed=3,
                                    batch_size=50)
    got = bootstrap_intervals(_mean_statistics(x), len(x), n_resamples=300, seed=3,
                              batch_size=batch_size)
    assert got == reference


def test_bootstrap_interval_of_the_mean():
    mu, sigma, n = 3.0, 2.0, 2000
    x = np.random.default_rng(9).normal(mu, sigma, size=n)
    lo, hi = bootstrap_intervals(_mean_statistics(x), n, n_resamples=1000, seed=0)["mean"]
    assert lo < mu < hi
    assert lo < x.mean() < hi
    analytic = 1.96 * 2 * sigma / math.sqrt(n)
    assert hi - lo == pytest.approx(analytic, rel=0.15)


def test_bootstrap_level():
    x = np.random.default_rng(10).normal(size=500)
    wide = bootstrap_intervals(_mean_statistics(x), len(x), n_resamples=400, seed=1, level=0.99)
    narrow = bootstrap_intervals(_mean_statistics(x), len(x), n_resamples=400, seed=1, level=0.5)
    assert wide["mean"][0] < narrow["mean"][0] < narrow["mean"][1] < wide["mean"][1]


def test_bootstrap_constant_statistic_and_errors():
    out = bootstrap_intervals(lambda idx: {"c": np.full(len(idx), 4.0)}, 10, n_resamples=20)
    assert out == {"c": (4.0, 4.0)}
    with pytest.raises(ValueError, match="at least one object"):
        bootstrap_intervals(lambda idx: {}, 0)
