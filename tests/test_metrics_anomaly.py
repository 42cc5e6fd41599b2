"""Anomaly-detection metrics and scorer: hand-computed values, ties, weights, cross-checks against
sklearn, validation of predictions, per-kind metrics, strata and bootstrap."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

from galbench.errors import PredictionError
from galbench.metrics import METRICS, metric_info
from galbench.metrics.anomaly import (
    DetectionCurve,
    ScoreRanking,
    auroc,
    auroc_from_curve,
    average_precision,
    binary_curve,
    tpr_at_fpr,
    tpr_at_fpr01,
)
from galbench.scoring import anomaly as anom
from galbench.scoring import get_scorer
from galbench.scoring.base import Predictions
from galbench.scoring.receipt import _clean
from galbench.tasks import parse_task

KINDS = ["merger", "clumpy", "ring"]


def make_task(resamples: int = 50, seed: int = 7, kinds=KINDS):
    """A small anomaly task parsed like a task file (independent of tasks/anomaly.toml)."""
    return parse_task(
        {
            "name": "anomaly_test",
            "version": 1,
            "type": "anomaly",
            "title": "test",
            "image": {"shape": [1, 64, 64], "units": "e-/s per pixel"},
            "simulation": {
                "recipe": "anomaly",
                "instrument": "hst_wfc3_f160w",
                "params": {"kinds": list(kinds)},
            },
            "splits": {
                "train": {"n": 10, "seed": 1},
                "val": {"n": 10, "seed": 2},
                "test": {"n": 10, "seed": 3},
            },
            "metrics": {
                "main": "auroc",
                "direction": "higher",
                "secondary": ["average_precision", "tpr_at_fpr01"]
                + [f"auroc/{k}" for k in kinds],
                "bootstrap_resamples": resamples,
                "bootstrap_seed": seed,
            },
            "strata": [
                {"column": "mag", "edges": [18.0, 20.0, 22.0, 24.0, 26.0]},
                {"column": "snr", "edges": [0.0, 10.0, 1e6]},
            ],
        },
        source="test_anomaly.toml",
    )


TASK = make_task()
N = 6
IDS = np.arange(100, 100 + N)


def make_catalog(n: int = 400, seed: int = 0, fraction: float = 0.2) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    kind = np.where(rng.random(n) < fraction, rng.integers(1, len(KINDS) + 1, n), 0)
    return pd.DataFrame(
        {
            "object_id": np.arange(1000, 1000 + n, dtype=np.int64),
            "is_anomaly": (kind > 0).astype(np.int64),
            "anomaly_kind": kind.astype(np.int64),
            # no object fainter than 24: the [24, 26) bin stays empty
            "mag": rng.uniform(18.0, 24.0, n),
            "snr": 10.0 ** rng.uniform(0.0, 2.0, n),
        }
    )


def make_scores(catalog: pd.DataFrame, seed: int = 1) -> np.ndarray:
    """Kind k shifted by k (merger hardest), rounded so that ties occur."""
    rng = np.random.default_rng(seed)
    kind = catalog["anomaly_kind"].to_numpy()
    return np.round(rng.normal(size=len(kind)) + 0.8 * kind, 1)


def score(catalog, scores, task=TASK, field="score"):
    scorer = get_scorer("anomaly")
    preds = scorer.validate(
        task, Predictions(catalog["object_id"].to_numpy(), {field: scores}), "preds.npz"
    )
    return scorer.score(task, preds, catalog)


@pytest.fixture(scope="module")
def catalog() -> pd.DataFrame:
    return make_catalog()


# ------------------------------------------------------------------------------------------
# Hand-computed values


def test_sklearn_docstring_example():
    s, y = np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])
    assert auroc(s, y) == pytest.approx(0.75, abs=1e-15)
    assert average_precision(s, y) == pytest.approx(5 / 6, abs=1e-15)  # 1/2 x 1 + 1/2 x 2/3
    assert tpr_at_fpr01(s, y) == 0.5  # only 0.8 is above every negative


def test_ties_count_half():
    # positive at 2 ties one negative (1/2) and beats the other; positive at 3 beats both
    s, y = np.array([3.0, 2.0, 2.0, 1.0]), np.array([1, 1, 0, 0])
    assert auroc(s, y) == pytest.approx(3.5 / 4)
    # thresholds 3 (P=1, R=1/2) and 2 (P=2/3, R=1): the tied pair enters together
    assert average_precision(s, y) == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    assert tpr_at_fpr01(s, y) == 0.5


def test_all_tied():
    s, y = np.full(10, 0.3), np.array([1, 1, 1, 0, 0, 0, 0, 0, 0, 0])
    assert auroc(s, y) == 0.5
    assert average_precision(s, y) == pytest.approx(0.3)  # the prevalence
    assert tpr_at_fpr01(s, y) == 0.0  # the only threshold has FPR 1


def test_tie_between_one_positive_and_one_negative():
    s, y = np.array([1.0, 1.0, 0.0, 0.0]), np.array([1, 0, 1, 0])
    assert auroc(s, y) == 0.5
    assert average_precision(s, y) == pytest.approx(0.5)
    assert tpr_at_fpr01(s, y) == 0.0


def test_perfect_and_inverted():
    y = np.array([0, 0, 1, 1])
    s = np.array([0.0, 1.0, 2.0, 3.0])
    assert auroc(s, y) == 1.0 and average_precision(s, y) == 1.0 and tpr_at_fpr01(s, y) == 1.0
    assert auroc(-s, y) == 0.0
    # both negatives first; then P = 1/3 at R = 1/2 and P = 1/2 at R = 1
    assert average_precision(-s, y) == pytest.approx(0.5 / 3 + 0.5 / 2)
    assert tpr_at_fpr01(-s, y) == 0.0


def test_tpr_at_exactly_one_percent_fpr():
    # 100 negatives at 0..99, one negative at 200; positives at 150 and 300, 50.
    negatives = np.r_[np.arange(100.0), 200.0]
    s = np.r_[negatives, 300.0, 150.0, 50.0]
    y = np.r_[np.zeros(101, int), 1, 1, 1]
    # threshold 150: FP = 1 of 101 (< 1%); threshold 300: 0 -> TPR 2/3
    assert tpr_at_fpr01(s, y) == pytest.approx(2 / 3)
    # with exactly 100 negatives, FPR = 1/100 qualifies (<=), as in roc_curve
    s100, y100 = np.delete(s, 0), np.delete(y, 0)
    fpr, tpr, _ = roc_curve(y100, s100, drop_intermediate=False)
    assert 0.01 in fpr
    assert tpr_at_fpr01(s100, y100) == pytest.approx(2 / 3) == tpr[fpr <= 0.01].max()
    assert tpr_at_fpr(s100, y100, max_fpr=0.0) == pytest.approx(1 / 3)


def test_monotone_transform_changes_nothing():
    rng = np.random.default_rng(0)
    s, y = rng.normal(size=200), rng.integers(0, 2, 200)
    for f in (auroc, average_precision, tpr_at_fpr01):
        assert f(np.exp(3 * s) + 5, y) == pytest.approx(f(s, y), abs=1e-14)


@pytest.mark.parametrize("labels", [[1, 1, 1], [0, 0, 0]], ids=["no-negatives", "no-positives"])
def test_one_class_absent_is_nan(labels):
    s = np.array([0.2, 0.5, 0.1])
    for f in (auroc, average_precision, tpr_at_fpr01):
        assert np.isnan(f(s, np.array(labels)))


def test_empty_is_nan():
    assert np.isnan(auroc(np.array([]), np.array([], dtype=int)))
    assert np.isnan(average_precision(np.array([]), np.array([], dtype=int)))


def test_nan_only_where_a_resample_lacks_a_class():
    s, y = np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])
    weights = np.array([[1, 1, 1, 1], [2, 1, 0, 0], [0, 0, 1, 3]])
    for f in (auroc, average_precision, tpr_at_fpr01):
        values = f(s, y, weights)
        assert values.shape == (3,)
        assert values[0] == f(s, y) and np.isnan(values[1:]).all()


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="labels"):
        auroc(np.array([0.1, 0.2]), np.array([0, 2]))
    with pytest.raises(ValueError, match="finite"):
        auroc(np.array([0.1, np.nan]), np.array([0, 1]))
    with pytest.raises(ValueError, match="weights"):
        auroc(np.array([0.1, 0.2]), np.array([0, 1]), np.ones(3))
    with pytest.raises(ValueError, match="non-negative"):
        auroc(np.array([0.1, 0.2]), np.array([0, 1]), np.array([1.0, -1.0]))


# ------------------------------------------------------------------------------------------
# Weights


def test_integer_weights_equal_duplication():
    rng = np.random.default_rng(4)
    s, y = np.round(rng.normal(size=60), 1), rng.integers(0, 2, 60)
    w = rng.integers(0, 4, 60)
    s_dup, y_dup = np.repeat(s, w), np.repeat(y, w)
    for f in (auroc, average_precision, tpr_at_fpr01):
        assert f(s, y, w) == pytest.approx(f(s_dup, y_dup), abs=1e-13)


def test_zero_weight_equals_removal():
    rng = np.random.default_rng(5)
    s, y = np.round(rng.normal(size=50), 1), rng.integers(0, 2, 50)
    keep = rng.random(50) < 0.6
    for f in (auroc, average_precision, tpr_at_fpr01):
        assert f(s, y, keep.astype(float)) == pytest.approx(f(s[keep], y[keep]), abs=1e-13)


def test_batched_weights_equal_row_by_row():
    rng = np.random.default_rng(6)
    s, y = rng.integers(0, 10, 80).astype(float), rng.integers(0, 2, 80)
    w = rng.uniform(0, 2, (2, 3, 80))
    for f in (auroc, average_precision, tpr_at_fpr01):
        batched = f(s, y, w)
        assert batched.shape == (2, 3)
        for i in range(2):
            for j in range(3):
                assert batched[i, j] == pytest.approx(f(s, y, w[i, j]), abs=1e-13)


def test_resample_weights_equal_bincount_of_indices():
    rng = np.random.default_rng(7)
    s = rng.integers(0, 15, 40).astype(float)
    classes = rng.integers(0, 4, 40)
    indices = rng.integers(0, 40, (5, 40))
    ranking = ScoreRanking.from_scores(s)
    direct = ranking.resample_weights(classes, 4, indices)
    weights = np.stack([np.bincount(row, minlength=40) for row in indices])
    np.testing.assert_array_equal(direct, ranking.class_weights(classes, 4, weights))
    assert direct.shape == (5, 4, ranking.n_groups) == (5, 4, len(np.unique(s)))
    np.testing.assert_array_equal(direct.sum(axis=(1, 2)), 40)


def test_ranking_groups_distinct_scores_highest_first():
    ranking = ScoreRanking.from_scores(np.array([0.5, 2.0, 0.5, -1.0, 2.0]))
    assert ranking.n_groups == 3
    np.testing.assert_array_equal(ranking.group, [1, 0, 1, 2, 0])
    counts = ranking.class_weights(np.array([0, 1, 1, 0, 0]), 2)
    np.testing.assert_array_equal(counts, [[1, 1, 1], [1, 1, 0]])  # [class, distinct score]


def test_curve_from_counts():
    curve = DetectionCurve.from_counts(np.array([1.0, 1.0, 0.0]), np.array([0.0, 1.0, 1.0]))
    np.testing.assert_array_equal(curve.tp, [1, 2, 2])
    np.testing.assert_array_equal(curve.fp, [0, 1, 2])
    assert auroc_from_curve(curve) == pytest.approx(3.5 / 4)
    np.testing.assert_array_equal(binary_curve([3.0, 2, 2, 1], [1, 1, 0, 0]).tp, curve.tp)


# ------------------------------------------------------------------------------------------
# Cross-checks against sklearn


def _random_case(seed: int, n: int, weighted: str):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < rng.uniform(0.05, 0.5)).astype(int)
    y[:2] = [0, 1]
    s = np.round(rng.normal(size=n) + y * rng.uniform(0, 2), rng.integers(0, 3))  # many ties
    if weighted == "none":
        w = None
    elif weighted == "int":
        w = rng.integers(0, 4, n)
        w[:2] = 1
    else:
        w = rng.exponential(size=n) * (rng.random(n) < 0.9)
        w[:2] = 1.0
    return s, y, w


@pytest.mark.parametrize("weighted", ["none", "int", "float"])
@pytest.mark.parametrize("seed", range(8))
def test_matches_sklearn(seed, weighted):
    s, y, w = _random_case(seed, n=[30, 300, 3000][seed % 3], weighted=weighted)
    assert auroc(s, y, w) == pytest.approx(roc_auc_score(y, s, sample_weight=w), abs=1e-12)
    assert average_precision(s, y, w) == pytest.approx(
        average_precision_score(y, s, sample_weight=w), abs=1e-12
    )
    fpr, tpr, _ = roc_curve(y, s, sample_weight=w, drop_intermediate=False)
    for max_fpr in (0.0, 0.01, 0.05, 0.3):
        expected = tpr[fpr <= max_fpr].max()
        assert tpr_at_fpr(s, y, w, max_fpr=max_fpr) == pytest.approx(expected, abs=1e-12)


def test_tpr_at_fpr01_matches_roc_curve_on_a_large_sample():
    rng = np.random.default_rng(11)
    y = (rng.random(5000) < 0.1).astype(int)
    s = np.round(rng.normal(size=5000) + 2.0 * y, 2)
    fpr, tpr, _ = roc_curve(y, s, drop_intermediate=False)
    value = tpr_at_fpr01(s, y)
    assert value == pytest.approx(tpr[fpr <= 0.01].max(), abs=1e-15)
    assert 0.1 < value < 0.9  # a non-trivial threshold inside the curve


# ------------------------------------------------------------------------------------------
# Registry


def test_registered_with_directions():
    for name, fn in [
        ("auroc", auroc),
        ("average_precision", average_precision),
        ("tpr_at_fpr01", tpr_at_fpr01),
    ]:
        info = metric_info(name)
        assert name in METRICS and info.direction == "higher" and info.fn is fn
    assert metric_info("auroc/merger").name == "auroc"
    assert metric_info("average_precision/ring").name == "average_precision"


def test_task_type_scorer_registered():
    assert get_scorer("anomaly") is anom.SCORER
    assert anom.SCORER.task_type == "anomaly"


def test_kinds_from_task():
    assert anom.anomaly_kinds(TASK) == tuple(KINDS)


# ------------------------------------------------------------------------------------------
# Validation


def _validate(values: dict):
    return anom.validate(TASK, Predictions(IDS, values), "sub/preds.npz")


@pytest.mark.parametrize(
    "value",
    [
        np.linspace(0, 1, N),
        np.linspace(0, 1, N).astype(np.float32),
        np.arange(N, dtype=np.int32),
        np.arange(N, dtype=np.uint8).reshape(N, 1),
        list(range(N)),
    ],
    ids=["float64", "float32", "int32", "uint8-column", "list"],
)
def test_valid_scores_become_float64_vector(value):
    out = _validate({"score": value})
    assert set(out.values) == {"score"}
    assert out.values["score"].dtype == np.float64 and out.values["score"].shape == (N,)
    np.testing.assert_array_equal(out.values["score"], np.asarray(value, dtype=float).ravel())
    np.testing.assert_array_equal(out.object_ids, IDS)


def test_bare_array_delivered_as_mean_is_the_score():
    out = _validate({"mean": np.arange(N, dtype=float).reshape(N, 1)})
    assert set(out.values) == {"score"}
    np.testing.assert_array_equal(out.values["score"], np.arange(N))


@pytest.mark.parametrize(
    "values, pieces",
    [
        ({"score": np.zeros(N), "mean": np.zeros(N)}, ["unexpected prediction field(s) ['mean']"]),
        ({"score": np.zeros(N), "std": np.ones(N)}, ["unexpected prediction field(s) ['std']"]),
        ({"mean": np.zeros(N), "std": np.ones(N)}, ["'score' is missing", "['mean', 'std']"]),
        ({"scores": np.zeros(N)}, ["'score' is missing", "['scores']"]),
        ({}, ["'score' is missing"]),
    ],
    ids=["score+mean", "score+std", "mean+std", "misspelt", "nothing"],
)
def test_wrong_fields(values, pieces):
    with pytest.raises(PredictionError) as info:
        _validate(values)
    msg = str(info.value)
    assert msg.startswith("sub/preds.npz: ")
    for piece in pieces:
        assert piece in msg
    assert anom.expected_format(TASK) in msg


@pytest.mark.parametrize("field", ["score", "mean"])
@pytest.mark.parametrize(
    "value, pieces",
    [
        (np.zeros(N, dtype=bool), ["dtype bool", "floating point"]),
        (np.zeros(N, dtype=object), ["dtype object", "floating point"]),
        (np.full(N, "0.5"), ["dtype <U3", "floating point"]),
        (np.zeros(N, dtype=complex), ["dtype complex128"]),
        (np.zeros(N + 1), ["shape (7,)", "expected (6,) or (6, 1)"]),
        (np.zeros(N - 1), ["shape (5,)"]),
        (np.zeros((N, 2)), ["shape (6, 2)"]),
        (np.zeros((N, 1, 1)), ["shape (6, 1, 1)"]),
        (np.zeros((1, N)), ["shape (1, 6)"]),
        (np.float64(0.5), ["shape ()"]),
    ],
    ids=["bool", "object", "str", "complex", "long", "short", "2-cols", "3d", "row", "scalar"],
)
def test_bad_dtype_or_shape(field, value, pieces):
    with pytest.raises(PredictionError) as info:
        _validate({field: value})
    msg = str(info.value)
    assert msg.startswith("sub/preds.npz: ") and f"'{field}'" in msg
    for piece in pieces:
        assert piece in msg
    assert anom.expected_format(TASK) in msg


@pytest.mark.parametrize("field", ["score", "mean"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_names_first_row_and_object(field, bad):
    value = np.linspace(0, 1, N)
    value[[2, 4]] = bad
    with pytest.raises(PredictionError) as info:
        _validate({field: value})
    msg = str(info.value)
    assert msg.startswith("sub/preds.npz: ")
    assert f"'{field}' has 2 non-finite value(s), first at row 2 (object_id 102)" in msg
    assert "finite" in msg


def test_expected_format_text():
    text = anom.expected_format(TASK)
    assert text.startswith("anomaly_test@1 expects predictions keyed by object_id")
    for piece in ["'score'", "[N]", "higher = more anomalous", "finite"]:
        assert piece in text


# ------------------------------------------------------------------------------------------
# Scoring


def _subset(catalog, s, keep):
    return s[keep], catalog["is_anomaly"].to_numpy()[keep]


def test_score_matches_the_metric_functions_and_sklearn(catalog):
    s = make_scores(catalog)
    result = score(catalog, s)
    y = catalog["is_anomaly"].to_numpy()
    kind = catalog["anomaly_kind"].to_numpy()
    m = result.metrics
    expected_names = {"auroc", "average_precision", "tpr_at_fpr01"}
    expected_names |= {f"{f}/{k}" for f in ("auroc", "average_precision") for k in KINDS}
    assert set(m) == expected_names == set(result.intervals)
    assert m["auroc"] == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert m["average_precision"] == pytest.approx(average_precision_score(y, s), abs=1e-12)
    fpr, tpr, _ = roc_curve(y, s, drop_intermediate=False)
    assert m["tpr_at_fpr01"] == pytest.approx(tpr[fpr <= 0.01].max(), abs=1e-12)
    for k, name in enumerate(KINDS, start=1):
        keep = (kind == 0) | (kind == k)
        sk, yk = _subset(catalog, s, keep)
        assert m[f"auroc/{name}"] == pytest.approx(roc_auc_score(yk, sk), abs=1e-12)
        assert m[f"average_precision/{name}"] == pytest.approx(
            average_precision_score(yk, sk), abs=1e-12
        )
    # kinds get easier with k (scores shifted by 0.8 k)
    assert m["auroc/merger"] < m["auroc/clumpy"] < m["auroc/ring"]
    assert json.dumps(_clean(result.metrics))  # receipt-safe


def test_per_kind_metric_ignores_the_other_kinds(catalog):
    s = make_scores(catalog)
    kind = catalog["anomaly_kind"].to_numpy()
    moved = s.copy()
    # Put every ring above, and every clumpy anomaly tied with, the normals: merger unaffected.
    moved[kind == 3] = 100.0
    moved[kind == 2] = s[kind == 0][0]
    a, b = score(catalog, s).metrics, score(catalog, moved).metrics
    assert b["auroc/merger"] == a["auroc/merger"]
    assert b["average_precision/merger"] == a["average_precision/merger"]
    assert b["auroc/ring"] == 1.0 and b["average_precision/ring"] == 1.0
    assert b["auroc"] != a["auroc"]


def test_perfect_scores(catalog):
    result = score(catalog, catalog["anomaly_kind"].to_numpy().astype(float))
    assert all(v == 1.0 for v in result.metrics.values())
    assert result.intervals["auroc"] == (1.0, 1.0)


def test_bare_array_scores_the_same(catalog):
    s = make_scores(catalog)
    assert score(catalog, s, field="mean").metrics == score(catalog, s).metrics


def test_score_aligns_catalog_by_object_id(catalog):
    s = make_scores(catalog)
    reference = score(catalog, s)
    order = np.random.default_rng(3).permutation(len(catalog))
    shuffled = get_scorer("anomaly").score(
        TASK,
        Predictions(catalog["object_id"].to_numpy()[order], {"score": s[order]}),
        catalog,
    )
    for name, value in reference.metrics.items():
        assert shuffled.metrics[name] == pytest.approx(value, abs=1e-12)


def test_bootstrap_intervals(catalog):
    s = make_scores(catalog)
    task = make_task(resamples=200, seed=7)
    result = score(catalog, s, task)
    for name, (lo, hi) in result.intervals.items():
        assert lo <= result.metrics[name] <= hi, name
        assert hi - lo < 0.5, name
    lo, hi = result.intervals["auroc"]
    assert 0.01 < hi - lo < 0.2
    assert len(result.bootstrap_main) == 200
    again = score(catalog, s, task)
    assert again.intervals == result.intervals and again.bootstrap_main == result.bootstrap_main
    other = score(catalog, s, make_task(resamples=200, seed=8))
    assert other.intervals["auroc"] != result.intervals["auroc"]


def test_bootstrap_resample_equals_direct_computation(catalog):
    """Resample b's weighted metrics equal the plain metrics of the resampled objects, drawn
    as bootstrap_samples draws them (seed, b, n)."""
    s = make_scores(catalog)
    task = make_task(resamples=3, seed=7)
    result = score(catalog, s, task)
    y = catalog["is_anomaly"].to_numpy()
    children = np.random.SeedSequence(task.bootstrap_seed).spawn(3)
    for b, child in enumerate(children):
        idx = np.random.default_rng(child).integers(0, len(s), size=len(s))
        assert result.bootstrap_main[b] == pytest.approx(auroc(s[idx], y[idx]), abs=1e-12)
        assert result.bootstrap_main[b] == pytest.approx(roc_auc_score(y[idx], s[idx]), abs=1e-12)


def test_bootstrap_without_anomalies_in_resamples_gives_nan_samples():
    catalog = make_catalog(n=40, seed=2, fraction=0.0)
    catalog.loc[0, ["is_anomaly", "anomaly_kind"]] = [1, 1]  # one anomaly among 40
    result = score(catalog, make_scores(catalog), make_task(resamples=100))
    samples = np.array(result.bootstrap_main)
    # P(object 0 never drawn) = (39/40)^40 ~ 36%: some resamples lack the anomaly
    assert np.isnan(samples).any() and np.isfinite(samples).any()
    lo, hi = result.intervals["auroc"]
    assert np.isfinite(lo) and np.isfinite(hi)
    assert np.isnan(result.metrics["auroc/clumpy"])  # no clumpy anomaly at all
    assert np.isnan(result.intervals["auroc/clumpy"]).all()


def test_strata(catalog):
    s = make_scores(catalog)
    result = score(catalog, s)
    assert set(result.strata) == {"mag", "snr"}
    rows = result.strata["mag"]
    assert [r["bin"] for r in rows] == ["[18, 20)", "[20, 22)", "[22, 24)", "[24, 26)"]
    mag = catalog["mag"].to_numpy()
    y = catalog["is_anomaly"].to_numpy()
    kind = catalog["anomaly_kind"].to_numpy()
    for row, lo in zip(rows[:3], (18.0, 20.0, 22.0)):
        mask = (mag >= lo) & (mag < lo + 2.0)
        assert row["n"] == int(mask.sum()) > 0
        assert set(row) == {"bin", "n", "metrics"}
        assert row["metrics"]["auroc"] == pytest.approx(roc_auc_score(y[mask], s[mask]), abs=1e-12)
        assert row["metrics"]["average_precision"] == pytest.approx(
            average_precision_score(y[mask], s[mask]), abs=1e-12
        )
        keep = mask & ((kind == 0) | (kind == 2))
        assert row["metrics"]["auroc/clumpy"] == pytest.approx(
            roc_auc_score(y[keep], s[keep]), abs=1e-12
        )
    assert rows[3] == {"bin": "[24, 26)", "n": 0, "metrics": {}}
    assert sum(r["n"] for r in result.strata["snr"]) == len(catalog)


def test_stratum_of_normals_only_is_nan():
    catalog = make_catalog(n=60, seed=3)
    catalog.loc[catalog["mag"] < 21.0, ["is_anomaly", "anomaly_kind"]] = 0
    result = score(catalog, make_scores(catalog))
    first = result.strata["mag"][0]["metrics"]
    assert np.isnan(first["auroc"]) and np.isnan(first["tpr_at_fpr01"])
    assert json.dumps(_clean(result.strata), allow_nan=False)


@pytest.mark.parametrize(
    "column, value, match",
    [
        ("anomaly_kind", 4, "anomaly_kind of object_id 1005 is 4"),
        ("anomaly_kind", -1, "anomaly_kind of object_id 1005 is -1"),
        ("is_anomaly", 1, "is_anomaly must be 1 exactly when anomaly_kind > 0"),
    ],
)
def test_inconsistent_catalog_raises(column, value, match):
    catalog = make_catalog(n=20, seed=0, fraction=0.0)
    catalog.loc[5, column] = value
    with pytest.raises(ValueError, match=match):
        score(catalog, make_scores(catalog))


def test_scoring_a_larger_split_quickly():
    """10k objects, 3 kinds, 100 resamples: a smoke check on speed (full scale is ~1 s)."""
    catalog = make_catalog(n=10_000, seed=9, fraction=0.1)
    result = score(catalog, make_scores(catalog), make_task(resamples=100))
    assert 0.7 < result.metrics["auroc"] < 0.95
    assert len(result.bootstrap_main) == 100
