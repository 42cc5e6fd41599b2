"""Regression scoring on tiny synthetic catalogs, prediction validation, receipt helpers."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pandas as pd
import pytest

from galbench.errors import PredictionError, UnknownNameError
from galbench.metrics.regression import NMAD_FACTOR, ONE_SIGMA_COVERAGE
from galbench.scoring import get_scorer
from galbench.scoring import regression as reg
from galbench.scoring.base import Predictions, stratum_masks
from galbench.scoring.receipt import _clean, predictions_sha256, read_receipt, write_receipt
from galbench.tasks import get_task

TASK = get_task("morphometry@1")
#: the same task with few bootstrap resamples, to keep tests fast
FAST = dataclasses.replace(TASK, bootstrap_resamples=20)
NAMES = TASK.target_names
P = len(NAMES)
J = {name: j for j, name in enumerate(NAMES)}
SCALE = np.array([t.scale for t in TASK.targets])
PRIOR = {
    "mag": (18.0, 24.0),
    "bulge_to_total": (0.0, 1.0),
    "n_bulge": (1.0, 4.0),
    "log10_r_bulge": (0.2, 1.3),
    "log10_r_disk": (0.2, 1.5),
    "q_bulge": (0.05, 0.95),
    "q_disk": (0.05, 0.95),
    "pa": (0.0, 180.0),
}


def make_catalog(n: int, seed: int = 0) -> pd.DataFrame:
    """Truth drawn uniformly over the morphometry priors, plus an S/N column."""
    rng = np.random.default_rng(seed)
    columns = {"object_id": np.arange(5000, 5000 + n, dtype=np.int64)}
    for name in NAMES:
        lo, hi = PRIOR[name]
        columns[name] = rng.uniform(lo, hi, n)
    columns["snr"] = 10.0 ** rng.uniform(0.5, 3.5, n)  # 3 .. 3000: every S/N bin populated
    return pd.DataFrame(columns)


def truth_of(catalog: pd.DataFrame) -> np.ndarray:
    return catalog[list(NAMES)].to_numpy(dtype=np.float64, copy=True)


def predictions(catalog: pd.DataFrame, mean: np.ndarray, std: np.ndarray | None = None):
    values = {"mean": mean} if std is None else {"mean": mean, "std": std}
    return Predictions(catalog["object_id"].to_numpy(), values)


def score(catalog, mean, std=None, task=FAST):
    scorer = get_scorer("regression")
    checked = scorer.validate(task, predictions(catalog, mean, std), "preds.npz")
    return scorer.score(task, checked, catalog)


@pytest.fixture(scope="module")
def catalog() -> pd.DataFrame:
    return make_catalog(300, seed=1)


# ------------------------------------------------------------------------------------------
# Scores


def test_scorer_registry():
    assert get_scorer("regression").task_type == "regression"
    with pytest.raises(UnknownNameError, match="did you mean 'regression'"):
        get_scorer("regresion")


def test_perfect_predictions(catalog):
    s = score(catalog, truth_of(catalog))
    m = s.metrics
    assert m["mean_normalized_scatter"] == 0.0
    assert m["mean_normalized_abs_bias"] == 0.0
    assert m["mean_outlier_fraction"] == 0.0
    for name in NAMES:
        assert m[f"scatter/{name}"] == 0.0
        assert m[f"bias/{name}"] == 0.0
        assert m[f"outlier_fraction/{name}"] == 0.0
        assert m[f"normalized_scatter/{name}"] == 0.0
    # no std given -> no calibration metrics
    assert not any(k.startswith(("coverage68", "crps", "normalized_crps", "mean_coverage68",
                                 "mean_normalized_crps")) for k in m)
    assert set(s.intervals) == set(m)
    assert s.intervals["mean_normalized_scatter"] == (0.0, 0.0)
    assert all(isinstance(v, float) for v in m.values())


def test_metric_names(catalog):
    m = score(catalog, truth_of(catalog)).metrics
    families = ["bias", "scatter", "outlier_fraction", "normalized_scatter"]
    expected = {"mean_normalized_scatter", "mean_normalized_abs_bias", "mean_outlier_fraction"}
    expected |= {f"{f}/{t}" for f in families for t in NAMES}
    assert set(m) == expected


def test_constant_offset_on_one_target(catalog):
    rng = np.random.default_rng(2)
    noisy = truth_of(catalog) + rng.normal(size=(len(catalog), P)) * 0.05 * SCALE
    shifted = noisy.copy()
    shifted[:, J["n_bulge"]] += 0.3
    a = score(catalog, noisy).metrics
    b = score(catalog, shifted).metrics
    assert b["bias/n_bulge"] - a["bias/n_bulge"] == pytest.approx(0.3, abs=1e-12)
    assert b["scatter/n_bulge"] == pytest.approx(a["scatter/n_bulge"], abs=1e-12)
    assert b["mean_normalized_scatter"] == pytest.approx(a["mean_normalized_scatter"], abs=1e-12)
    for name in NAMES:
        if name != "n_bulge":
            assert b[f"bias/{name}"] == a[f"bias/{name}"]
    # a pure offset: bias = offset exactly, scatter 0
    exact = truth_of(catalog)
    exact[:, J["mag"]] -= 0.25
    m = score(catalog, exact).metrics
    assert m["bias/mag"] == pytest.approx(-0.25, abs=1e-12)
    assert m["scatter/mag"] == pytest.approx(0.0, abs=1e-12)
    assert m["mean_normalized_abs_bias"] == pytest.approx(0.25 / 6.0 / P, abs=1e-12)
    assert m["mean_outlier_fraction"] == 0.0  # 0.25 < 0.9 mag threshold


def test_outlier_fraction_per_target(catalog):
    mean = truth_of(catalog)
    mean[:10, J["q_disk"]] += 0.2  # threshold 0.135
    mean[10:20, J["q_disk"]] += 0.1  # below threshold
    m = score(catalog, mean).metrics
    assert m["outlier_fraction/q_disk"] == pytest.approx(10 / len(catalog))
    assert m["mean_outlier_fraction"] == pytest.approx(10 / len(catalog) / P)


def test_pa_off_by_180_is_no_error(catalog):
    mean = truth_of(catalog)
    sign = np.where(np.arange(len(catalog)) % 2 == 0, 1.0, -1.0)
    mean[:, J["pa"]] += 180.0 * sign
    m = score(catalog, mean).metrics
    assert m["scatter/pa"] == pytest.approx(0.0, abs=1e-9)
    assert m["bias/pa"] == pytest.approx(0.0, abs=1e-9)
    assert m["outlier_fraction/pa"] == 0.0


def test_pa_wraps_across_zero():
    cat = make_catalog(4, seed=3)
    cat["pa"] = [179.5, 0.5, 90.0, 10.0]
    mean = truth_of(cat)
    mean[:, J["pa"]] = [0.5, 179.5, 90.0, 10.0]  # +1, -1, 0, 0 after wrapping
    m = score(cat, mean).metrics
    assert m["bias/pa"] == pytest.approx(0.0, abs=1e-12)
    # |r - 0| = [1, 1, 0, 0] -> median 0.5
    assert m["scatter/pa"] == pytest.approx(NMAD_FACTOR * 0.5, rel=1e-12)
    assert m["outlier_fraction/pa"] == 0.0


def test_median_prediction_of_uniform_truth():
    cat = make_catalog(20_000, seed=4)
    truth = truth_of(cat)
    mean = np.broadcast_to(np.median(truth, axis=0), truth.shape).copy()
    m = score(cat, mean, task=dataclasses.replace(TASK, bootstrap_resamples=5)).metrics
    # sigma_NMAD of a uniform of width w is 1.4826 * w / 4 = 0.3707 w
    expected = NMAD_FACTOR / 4
    assert expected == pytest.approx(0.3707, abs=1e-4)
    for name in NAMES:
        assert m[f"normalized_scatter/{name}"] == pytest.approx(expected, abs=0.01), name
    assert m["mean_normalized_scatter"] == pytest.approx(expected, abs=0.005)
    # an even N: the median residual is exactly 0, except for PA, where wrapping moves it
    for name in NAMES[:-1]:
        assert m[f"bias/{name}"] == pytest.approx(0.0, abs=1e-12), name
    assert m["bias/pa"] == pytest.approx(0.0, abs=2.0)


def test_calibrated_std_gives_one_sigma_coverage():
    cat = make_catalog(20_000, seed=5)
    sigma_true = 0.05 * SCALE
    rng = np.random.default_rng(6)
    mean = truth_of(cat) + rng.normal(size=(len(cat), P)) * sigma_true
    std = np.broadcast_to(sigma_true, mean.shape).copy()
    m = score(cat, mean, std, task=dataclasses.replace(TASK, bootstrap_resamples=5)).metrics
    for name in NAMES:
        j = J[name]
        assert m[f"coverage68/{name}"] == pytest.approx(ONE_SIGMA_COVERAGE, abs=0.015), name
        # E[CRPS] = sigma / sqrt(pi) for calibrated Gaussian predictions
        assert m[f"crps/{name}"] == pytest.approx(sigma_true[j] / math.sqrt(math.pi), rel=0.03)
        assert m[f"normalized_crps/{name}"] == pytest.approx(m[f"crps/{name}"] / SCALE[j],
                                                             rel=1e-12)
        assert m[f"scatter/{name}"] == pytest.approx(sigma_true[j], rel=0.05)
    assert m["mean_coverage68"] == pytest.approx(ONE_SIGMA_COVERAGE, abs=0.005)
    assert m["mean_normalized_crps"] == pytest.approx(0.05 / math.sqrt(math.pi), rel=0.02)
    # over-confident predictions cover less
    m_over = score(cat, mean, std / 2, task=dataclasses.replace(TASK, bootstrap_resamples=5))
    assert m_over.metrics["mean_coverage68"] < 0.45


def test_std_hand_values():
    cat = make_catalog(4, seed=7)
    truth = truth_of(cat)
    r = np.array([0.0, 0.5, -1.0, 2.0])
    mean = truth.copy()
    mean[:, J["mag"]] += r
    std = np.ones_like(mean)
    m = score(cat, mean, std).metrics
    # |r| <= 1 for 0, 0.5, -1 -> 3/4; the other targets have r = 0 -> coverage 1
    assert m["coverage68/mag"] == pytest.approx(0.75, abs=1e-12)
    assert m["coverage68/q_bulge"] == 1.0
    assert m["mean_coverage68"] == pytest.approx((0.75 + 7) / 8)

    def crps(z):
        phi = math.exp(-z * z / 2) / math.sqrt(2 * math.pi)
        Phi = 0.5 * (1 + math.erf(z / math.sqrt(2)))
        return z * (2 * Phi - 1) + 2 * phi - 1 / math.sqrt(math.pi)

    expected = np.mean([crps(z) for z in r])
    assert m["crps/mag"] == pytest.approx(expected, rel=1e-9)
    assert m["normalized_crps/mag"] == pytest.approx(expected / 6.0, rel=1e-9)
    assert m["crps/pa"] == pytest.approx(crps(0.0), rel=1e-9)


def test_strata_rows(catalog):
    rng = np.random.default_rng(8)
    mean = truth_of(catalog) + rng.normal(size=(len(catalog), P)) * 0.05 * SCALE
    s = score(catalog, mean)
    assert set(s.strata) == {"mag", "snr"}
    mag_rows = s.strata["mag"]
    assert [row["bin"] for row in mag_rows] == [
        "[18, 19)", "[19, 20)", "[20, 21)", "[21, 22)", "[22, 23)", "[23, 24)"
    ]
    assert [row["bin"] for row in s.strata["snr"]] == [
        "[0, 30)", "[30, 100)", "[100, 300)", "[300, 1000)", "[1000, 1e+09)"
    ]
    for column, rows in s.strata.items():
        assert sum(row["n"] for row in rows) == len(catalog), column
        assert all(row["n"] > 0 for row in rows)
    # the counts and the metrics of one bin, by hand
    values = catalog["mag"].to_numpy()
    in_bin = (values >= 20.0) & (values < 21.0)
    row = mag_rows[2]
    assert row["n"] == int(in_bin.sum())
    r = mean[in_bin] - truth_of(catalog)[in_bin]
    r[:, J["pa"]] = (r[:, J["pa"]] + 90.0) % 180.0 - 90.0
    expected = np.mean(
        NMAD_FACTOR * np.median(np.abs(r - np.median(r, axis=0)), axis=0) / SCALE
    )
    assert row["metrics"]["mean_normalized_scatter"] == pytest.approx(expected, rel=1e-12)


def test_strata_half_open_bins_and_empty_bins():
    cat = make_catalog(6, seed=9)
    cat["mag"] = [18.0, 18.999, 19.0, 23.5, 23.999, 21.0]
    cat["snr"] = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]  # all in [0, 30)
    s = score(cat, truth_of(cat))
    assert [row["n"] for row in s.strata["mag"]] == [2, 1, 0, 1, 0, 2]
    assert [row["n"] for row in s.strata["snr"]] == [6, 0, 0, 0, 0]
    assert s.strata["snr"][1]["metrics"] == {}
    assert s.strata["snr"][0]["metrics"]["mean_normalized_scatter"] == 0.0
    masks = dict(stratum_masks(TASK.strata[0], cat))
    np.testing.assert_array_equal(masks["[18, 19)"], [True, True, False, False, False, False])


def test_bootstrap_intervals_bracket_point_estimate(catalog):
    rng = np.random.default_rng(10)
    mean = truth_of(catalog) + rng.normal(size=(len(catalog), P)) * 0.1 * SCALE
    task = dataclasses.replace(TASK, bootstrap_resamples=200)
    s = score(catalog, mean, task=task)
    lo, hi = s.intervals["mean_normalized_scatter"]
    point = s.metrics["mean_normalized_scatter"]
    assert lo < point < hi
    assert point == pytest.approx(0.1, rel=0.1)
    assert 0.002 < hi - lo < 0.05
    for name in NAMES:
        lo, hi = s.intervals[f"scatter/{name}"]
        assert lo <= s.metrics[f"scatter/{name}"] <= hi
    # deterministic
    assert score(catalog, mean, task=task).intervals == s.intervals


def test_score_aligns_catalog_by_object_id(catalog):
    mean = truth_of(catalog)
    preds = reg.validate(FAST, predictions(catalog, mean), "preds.npz")
    shuffled = catalog.sample(frac=1.0, random_state=0).reset_index(drop=True)
    try:
        s = reg.score(FAST, preds, shuffled)
    except PredictionError:
        return  # rejecting the mismatch is fine too
    assert s.metrics["mean_normalized_scatter"] == 0.0


# ------------------------------------------------------------------------------------------
# Validation


N = 6
GOOD = np.zeros((N, P))


def _validate(values: dict):
    return reg.validate(TASK, Predictions(np.arange(N), values), "sub/preds.npz")


def test_valid_predictions_become_float64():
    out = _validate({"mean": np.arange(N * P, dtype=np.int32).reshape(N, P),
                     "std": np.ones((N, P), dtype=np.float32)})
    assert out.values["mean"].dtype == np.float64 and out.values["std"].dtype == np.float64
    np.testing.assert_array_equal(out.values["mean"][1], np.arange(P, 2 * P))
    np.testing.assert_array_equal(out.object_ids, np.arange(N))


@pytest.mark.parametrize(
    "values, field, pieces",
    [
        ({"mean": np.zeros((N, P - 1))}, "mean", ["shape (6, 7)", "expected (6, 8)"]),
        ({"mean": np.zeros((P, N))}, "mean", ["shape (8, 6)", "expected (6, 8)"]),
        ({"mean": np.zeros(N)}, "mean", ["shape (6,)"]),
        ({"mean": np.zeros((N + 1, P))}, "mean", ["shape (7, 8)"]),
        ({"mean": np.zeros((N, P), dtype=bool)}, "mean", ["dtype bool", "floating point"]),
        ({"mean": np.zeros((N, P), dtype=object)}, "mean", ["dtype object", "floating point"]),
        ({"mean": np.full((N, P), "1.0")}, "mean", ["floating point"]),
        ({"mean": GOOD, "std": np.ones((N, 2))}, "std", ["shape (6, 2)"]),
    ],
    ids=["7-cols", "transposed", "1d", "extra-row", "bool", "object", "str", "std-shape"],
)
def test_bad_shape_or_dtype(values, field, pieces):
    with pytest.raises(PredictionError) as info:
        _validate(values)
    msg = str(info.value)
    assert msg.startswith("sub/preds.npz: ")
    assert f"'{field}'" in msg
    for piece in pieces:
        assert piece in msg
    assert reg.expected_format(TASK) in msg


def test_expected_format_names_targets():
    text = reg.expected_format(TASK)
    assert "morphometry@1" in text and "[N, 8]" in text and "'std'" in text
    assert "mag [AB mag]" in text and "pa [deg]" in text
    assert text.index("mag [") < text.index("bulge_to_total") < text.index("pa [")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("field", ["mean", "std"])
def test_non_finite(bad, field):
    values = {"mean": GOOD.copy(), "std": np.ones((N, P))}
    values[field][3, J["q_bulge"]] = bad
    values[field][4, 0] = bad
    with pytest.raises(PredictionError) as info:
        _validate(values)
    msg = str(info.value)
    assert f"'{field}' has 2 non-finite value(s), first at row 3 (target 'q_bulge')" in msg
    assert "finite" in msg and msg.startswith("sub/preds.npz")


@pytest.mark.parametrize("bad", [0.0, -0.1])
def test_std_must_be_positive(bad):
    std = np.ones((N, P))
    std[2, J["pa"]] = bad
    with pytest.raises(PredictionError) as info:
        _validate({"mean": GOOD, "std": std})
    msg = str(info.value)
    assert "'std' must be > 0" in msg and "row 2 (target 'pa')" in msg


def test_unexpected_field():
    with pytest.raises(PredictionError) as info:
        _validate({"mean": GOOD, "sigma": np.ones((N, P))})
    msg = str(info.value)
    assert "unexpected prediction field(s) ['sigma']" in msg
    assert reg.expected_format(TASK) in msg


def test_missing_mean_says_missing():
    with pytest.raises(PredictionError, match="missing"):
        _validate({"std": np.ones((N, P))})


# ------------------------------------------------------------------------------------------
# Receipt helpers


def _preds(seed: int = 0, std: bool = True) -> Predictions:
    rng = np.random.default_rng(seed)
    values = {"mean": rng.normal(size=(5, P))}
    if std:
        values["std"] = rng.uniform(0.1, 1.0, size=(5, P))
    return Predictions(np.arange(10, 15), values)


def test_predictions_sha256_stable_and_sensitive():
    h = predictions_sha256(_preds())
    assert h == predictions_sha256(_preds())
    assert len(h) == 64 and int(h, 16) >= 0
    changed = _preds()
    changed.values["mean"][3, 4] += 1e-9
    assert predictions_sha256(changed) != h
    changed_std = _preds()
    changed_std.values["std"][0, 0] *= 2
    assert predictions_sha256(changed_std) != h
    ids = _preds()
    ids.object_ids[0] = 99
    assert predictions_sha256(ids) != h
    assert predictions_sha256(_preds(std=False)) != h
    # field order and integer/float dtype of equal values do not matter
    p = _preds()
    reordered = Predictions(p.object_ids.astype(np.int32), {"std": p.values["std"],
                                                             "mean": p.values["mean"]})
    assert predictions_sha256(reordered) == h


def test_clean_json_safe():
    raw = {
        "nan": float("nan"),
        "list": [np.inf, 1.5, np.float32(2.5)],
        "tuple": (np.float64(-np.inf), np.int64(3)),
        1: {"inner": np.nan, "s": "text", "none": None, "b": True},
    }
    out = _clean(raw)
    assert out == {
        "nan": None,
        "list": [None, 1.5, 2.5],
        "tuple": [None, 3],
        "1": {"inner": None, "s": "text", "none": None, "b": True},
    }
    assert type(out["list"][2]) is float and type(out["tuple"][1]) is int
    json.dumps(out, allow_nan=False)


def test_clean_numpy_bool():
    out = _clean({"flag": np.bool_(True), "flags": [np.bool_(False)]})
    assert json.dumps(out, allow_nan=False) == '{"flag": true, "flags": [false]}'


def test_write_receipt_atomic_round_trip(tmp_path):
    receipt = _clean({"schema": "galbench.receipt/1", "metrics": {"a": 0.5, "b": float("nan")},
                      "intervals": {"a": (0.4, 0.6)}, "n": np.int64(10)})
    path = tmp_path / "receipts" / "sub.morphometry@1.test.json"
    assert write_receipt(receipt, path) == path
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]
    assert read_receipt(path) == receipt
    assert read_receipt(path)["metrics"]["b"] is None
    # overwriting replaces the whole file, still without temporaries
    write_receipt({**receipt, "n": 11}, path)
    assert read_receipt(path)["n"] == 11
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


def test_write_receipt_failure_leaves_old_file(tmp_path):
    path = tmp_path / "r.json"
    write_receipt({"ok": 1}, path)
    before = path.read_bytes()
    with pytest.raises(ValueError):
        write_receipt({"bad": float("nan")}, path)  # not JSON: allow_nan=False
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]
