"""Classification metrics and scorer: hand-computed values, argmax ties, absent classes, ECE
binning, weights as duplication, cross-checks against sklearn, validation of predictions,
bootstrap and strata."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, f1_score, recall_score
from sklearn.metrics import log_loss as sklearn_log_loss

from galbench.errors import PredictionError, TaskSpecError
from galbench.metrics import METRICS, metric_info
from galbench.metrics.classification import (
    ECE_BINS,
    LOG_LOSS_CLIP,
    ClassifiedObjects,
    accuracy,
    classification_statistics,
    ece,
    log_loss,
    macro_f1,
    recall,
    resample_weights,
)
from galbench.scoring import classification as clf
from galbench.scoring import get_scorer
from galbench.scoring.base import Predictions
from galbench.tasks import FrozenDict, SimulationSpec, get_task

CLASSES = ["elliptical", "lenticular", "spiral", "edge_on", "clumpy", "merger"]
K = len(CLASSES)


def make_task(resamples: int = 200, seed: int = 11, classes=CLASSES):
    """A classification task built from morphometry@1 (its strata: mag, snr), independent of
    any classification task file."""
    return dataclasses.replace(
        get_task("morphometry@1"),
        type="classification",
        main_metric="accuracy",
        direction="higher",
        secondary_metrics=("macro_f1", "log_loss", "ece") + tuple(f"recall/{c}" for c in classes),
        simulation=SimulationSpec(
            recipe="x", instrument="hst_wfc3_f160w", params=FrozenDict({"classes": list(classes)})
        ),
        targets=(),
        bootstrap_resamples=resamples,
        bootstrap_seed=seed,
    )


TASK = make_task()
SCORER = get_scorer("classification")


def metrics_of(p, y, weights=None, names=None):
    objects = ClassifiedObjects.from_probabilities(p, y)
    names = names or [str(k) for k in range(objects.n_classes)]
    return classification_statistics(names, objects.counts(weights))


# ------------------------------------------------------------------------------------------
# hand-computed values

# Four objects, classes a, b, c; argmax 0, 1, 1, 2 (object 2 is wrong).
P = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.3, 0.4, 0.3], [0.2, 0.2, 0.6]])
Y = np.array([0, 1, 2, 2])


def test_hand_computed_values():
    m = metrics_of(P, Y, names=["a", "b", "c"])
    assert m["accuracy"] == pytest.approx(3 / 4)
    # a: TP 1 -> F1 1; b: TP 1, FP 1 -> 2/3; c: TP 1, FN 1 -> 2/3.
    assert m["macro_f1"] == pytest.approx((1 + 2 / 3 + 2 / 3) / 3)
    assert (m["recall/a"], m["recall/b"], m["recall/c"]) == (1.0, 1.0, 0.5)
    expected_loss = -(math.log(0.7) + math.log(0.8) + math.log(0.3) + math.log(0.6)) / 4
    assert m["log_loss"] == pytest.approx(expected_loss)
    # Confidences 0.7, 0.8, 0.4, 0.6 fall in four different bins, (2/3, 11/15], (11/15, 0.8],
    # (1/3, 0.4], (8/15, 0.6]; |correct - confidence| = 0.3, 0.2, 0.4, 0.4.
    assert m["ece"] == pytest.approx((0.3 + 0.2 + 0.4 + 0.4) / 4)
    # The registered functions agree with the shared statistics.
    assert accuracy(P, Y) == m["accuracy"] and macro_f1(P, Y) == m["macro_f1"]
    assert log_loss(P, Y) == m["log_loss"] and ece(P, Y) == m["ece"]
    np.testing.assert_array_equal(recall(P, Y), [1.0, 1.0, 0.5])


def test_hand_computed_weighted_values():
    w = np.array([1.0, 3.0, 2.0, 0.0])  # object 3 (correct, class c) drops out
    m = metrics_of(P, Y, w)
    assert m["accuracy"] == pytest.approx(4 / 6)
    # a: TP 1 -> 1; b: TP 3, FP 2 -> 6/8; c: TP 0, FN 2 -> 0.
    assert m["macro_f1"] == pytest.approx((1 + 6 / 8 + 0) / 3)
    assert m["recall/2"] == 0.0
    assert m["log_loss"] == pytest.approx(
        -(math.log(0.7) + 3 * math.log(0.8) + 2 * math.log(0.3)) / 6
    )
    assert m["ece"] == pytest.approx((0.3 + 3 * 0.2 + 2 * 0.4) / 6)


def test_argmax_ties_go_to_the_lowest_class():
    p = np.array([[0.4, 0.4, 0.2], [0.25, 0.375, 0.375]])
    assert accuracy(p, np.array([0, 1])) == 1.0
    assert accuracy(p, np.array([1, 2])) == 0.0
    np.testing.assert_array_equal(ClassifiedObjects.from_probabilities(p, [0, 1]).predicted, [0, 1])


def test_a_class_never_predicted_and_a_class_absent():
    # Class 1 has an object but is never predicted; class 2 has no object and no prediction.
    p = np.array([[0.9, 0.1, 0.0], [0.8, 0.2, 0.0]])
    m = metrics_of(p, np.array([0, 1]))
    # Class 0: TP 1, FP 1 -> 2/3; class 1: FN 1 -> 0, averaged in; class 2 absent, left out.
    assert m["macro_f1"] == pytest.approx((2 / 3 + 0) / 2)
    assert m["recall/0"] == 1.0 and m["recall/1"] == 0.0 and np.isnan(m["recall/2"])
    # A class that is only predicted (no true object) is present: F1 0, recall NaN.
    # Class 0: FP 1 -> F1 0; class 1: TP 1, FN 1 -> 2/3.
    p = np.array([[0.9, 0.1], [0.2, 0.8]])
    m = metrics_of(p, np.array([1, 1]))
    assert m["macro_f1"] == pytest.approx((0 + 2 / 3) / 2) and np.isnan(m["recall/0"])
    assert m["macro_f1"] == pytest.approx(
        f1_score([1, 1], [0, 1], average="macro", zero_division=0)
    )


def test_ece_bins_by_hand():
    # K = 2. Confidences 0.5 (a tie, argmax 0, correct) and 0.52 (wrong) share bin (7/15, 8/15];
    # 0.9 (correct) is alone in (13/15, 14/15]; 1.0 (correct) in the last bin, (14/15, 1].
    p = np.array([[0.5, 0.5], [0.52, 0.48], [0.1, 0.9], [1.0, 0.0]])
    y = np.array([0, 1, 1, 0])
    objects = ClassifiedObjects.from_probabilities(p, y)
    np.testing.assert_array_equal(objects.confidence_bin, [7, 7, 13, 14])
    # Bin 7: 2/4 x |1/2 - 0.51| = 0.005; bin 13: 1/4 x |1 - 0.9| = 0.025; bin 14: 0.
    assert ece(p, y) == pytest.approx(0.005 + 0.025)
    # Errors of opposite sign within one bin cancel: |(1 - 0.95) + (0 - 0.95)| / 2.
    same_bin = np.array([[0.95, 0.05], [0.95, 0.05]])
    assert ece(same_bin, np.array([0, 1])) == pytest.approx(0.45)


def test_ece_bin_edges_belong_to_the_lower_bin():
    assert ECE_BINS == 15
    confidence = np.array([1 / 15, 0.2, 0.4, 0.4 + 1e-12, 0.6, 14 / 15, 1.0])
    p = np.stack([confidence, 1 - confidence], axis=1)[:, :1]  # one column: conf = p itself
    bins = ClassifiedObjects.from_probabilities(p, np.zeros(len(p), dtype=int)).confidence_bin
    np.testing.assert_array_equal(bins, [0, 2, 5, 6, 8, 13, 14])


def test_log_loss_clips_zero_probability():
    p = np.array([[1.0, 0.0], [0.5, 0.5]])
    y = np.array([1, 0])
    assert log_loss(p, y) == pytest.approx((-math.log(LOG_LOSS_CLIP) + math.log(2)) / 2)
    assert log_loss(np.array([[1.0, 0.0]]), np.array([0])) == 0.0


def test_no_weight_gives_nan():
    m = metrics_of(P, Y, np.zeros(4))
    assert all(np.isnan(v) for v in m.values())
    empty = metrics_of(np.zeros((0, 3)), np.zeros(0, dtype=int))
    assert np.isnan(empty["accuracy"]) and np.isnan(empty["macro_f1"])


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        ClassifiedObjects.from_probabilities(P, [0, 1, 2, 3])
    with pytest.raises(ValueError, match="integers"):
        ClassifiedObjects.from_probabilities(P, [0.0, 1.0, 2.0, 2.0])
    with pytest.raises(ValueError, match="finite"):
        ClassifiedObjects.from_probabilities(np.where(P > 0.75, np.nan, P), Y)
    with pytest.raises(ValueError, match="non-negative"):
        accuracy(P, Y, np.array([1.0, -1.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match="weights have shape"):
        accuracy(P, Y, np.ones(3))


# ------------------------------------------------------------------------------------------
# sklearn cross-checks, weights


def random_case(seed: int, n: int = 300, k: int = 5):
    """Softmax probabilities with a few exact zeros at the true class, and labels drawn from
    classes 0..k-2: class k-1 is absent from the truth (and rarely predicted)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k - 1, n)
    logits = rng.normal(size=(n, k)) + 1.5 * np.eye(k)[y]
    logits[:, k - 1] -= 1.0
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    p[:5, :] = 0.0
    p[np.arange(5), (y[:5] + 1) % k] = 1.0  # certain and wrong: p(true) = 0, clipped
    return p, y


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("weighted", [False, True])
def test_cross_check_with_sklearn(seed, weighted):
    p, y = random_case(seed)
    n, k = p.shape
    # sklearn weights are all positive here (see test_zero_weight_classes_differ_from_sklearn).
    w = np.random.default_rng(100 + seed).uniform(0.1, 3.0, n) if weighted else None
    pred = p.argmax(axis=1)
    m = metrics_of(p, y, w)
    assert m["accuracy"] == pytest.approx(accuracy_score(y, pred, sample_weight=w), rel=1e-12)
    assert m["macro_f1"] == pytest.approx(
        f1_score(y, pred, average="macro", zero_division=0, sample_weight=w), rel=1e-12
    )
    recalls = recall_score(
        y, pred, labels=list(range(k)), average=None, zero_division=0, sample_weight=w
    )
    present = np.isin(np.arange(k), y)
    for j in range(k):
        if present[j]:
            assert m[f"recall/{j}"] == pytest.approx(recalls[j], rel=1e-12)
        else:
            assert np.isnan(m[f"recall/{j}"])
    # Our convention clips p(true) to [1e-15, 1]; sklearn clips to [eps, 1 - eps] with the
    # float64 eps (2.2e-16, below 1e-15), so clipping its input first gives the same loss.
    clipped = np.clip(p, LOG_LOSS_CLIP, 1.0)
    expected = sklearn_log_loss(y, clipped, labels=list(range(k)), sample_weight=w)
    assert m["log_loss"] == pytest.approx(expected, rel=1e-12)


def test_zero_weight_classes_differ_from_sklearn_as_documented():
    # A class whose only object weighs 0: duplication removes it, sklearn's sample_weight keeps it
    # in the macro average as 0. We match sklearn on the duplicated objects.
    p = np.array([[0.9, 0.1, 0.0], [0.2, 0.8, 0.0], [0.1, 0.1, 0.8]])
    y = np.array([0, 1, 2])
    w = np.array([1.0, 2.0, 0.0])
    ours = metrics_of(p, y, w)["macro_f1"]
    assert ours == pytest.approx(1.0)
    assert f1_score(
        np.repeat(y, [1, 2, 0]), np.repeat(p.argmax(1), [1, 2, 0]), average="macro", zero_division=0
    ) == pytest.approx(ours)
    assert f1_score(y, p.argmax(1), average="macro", zero_division=0, sample_weight=w) == (
        pytest.approx(2 / 3)
    )


def test_weights_equal_duplication_and_batch_rows():
    rng = np.random.default_rng(5)
    p = rng.dirichlet(np.ones(4), size=60)
    y = rng.integers(0, 4, 60)
    counts = rng.integers(0, 3, 60)
    weighted = metrics_of(p, y, counts)
    repeated = metrics_of(np.repeat(p, counts, axis=0), np.repeat(y, counts))
    assert weighted.keys() == repeated.keys()
    for key in weighted:
        np.testing.assert_allclose(weighted[key], repeated[key], rtol=1e-12, equal_nan=True)
    # Weights [2, 3, n] give metrics [2, 3], each row as if scored alone.
    batch = rng.integers(0, 3, (2, 3, 60))
    together = metrics_of(p, y, batch)
    for i, j in np.ndindex(2, 3):
        alone = metrics_of(p, y, batch[i, j])
        for key in alone:
            np.testing.assert_allclose(together[key][i, j], alone[key], rtol=1e-12, equal_nan=True)


def test_resamples_equal_indexing_the_objects():
    rng = np.random.default_rng(3)
    p = rng.dirichlet(np.ones(3), size=40)
    y = rng.integers(0, 3, 40)
    indices = rng.integers(0, 40, (7, 40))
    np.testing.assert_array_equal(
        resample_weights(indices, 40)[2], np.bincount(indices[2], minlength=40)
    )
    objects = ClassifiedObjects.from_probabilities(p, y)
    stats = classification_statistics(["a", "b", "c"], objects.resample_counts(indices))
    for b, row in enumerate(indices):
        direct = metrics_of(p[row], y[row], names=["a", "b", "c"])
        for key in direct:
            np.testing.assert_allclose(stats[key][b], direct[key], rtol=1e-12, equal_nan=True)


def test_directions_are_registered():
    for name, fn, direction in [
        ("accuracy", accuracy, "higher"),
        ("macro_f1", macro_f1, "higher"),
        ("recall", recall, "higher"),
        ("log_loss", log_loss, "lower"),
        ("ece", ece, "lower"),
    ]:
        assert name in METRICS and metric_info(name).direction == direction
        assert metric_info(name).fn is fn
    assert metric_info("recall/spiral").name == "recall"


# ------------------------------------------------------------------------------------------
# the scorer


def predictions(values: dict, n: int = 4) -> Predictions:
    return Predictions(np.arange(100, 100 + n), values)


def uniform(n: int = 4) -> np.ndarray:
    return np.full((n, K), 1.0 / K)


def with_row(row: int, values) -> np.ndarray:
    p = uniform()
    p[row] = values
    return p


@pytest.mark.parametrize(
    "values,message",
    [
        ({"probs": uniform()}, r"'probabilities' is missing \(got field\(s\) \['probs'\]\)"),
        (
            {"probabilities": uniform(), "std": uniform()},
            r"unexpected prediction field\(s\) \['std'\]",
        ),
        ({"probabilities": uniform(), "mean": uniform()}, r"unexpected .*\['mean'\]"),
        ({"probabilities": uniform().astype(str)}, "'probabilities' has dtype <U"),
        ({"probabilities": uniform() > 0}, "'probabilities' has dtype bool"),
        (
            {"probabilities": uniform()[:, :3]},
            r"'probabilities' has shape \(4, 3\); expected \(4, 6\)",
        ),
        ({"probabilities": uniform(5)}, r"'probabilities' has shape \(5, 6\)"),
        ({"probabilities": np.arange(4)}, r"shape \(4,\).*class labels.*6 class probabilities"),
        ({"mean": np.arange(4)}, r"'mean' has shape \(4,\).*probabilities per object are expected"),
        (
            {"probabilities": with_row(2, np.nan)},
            r"'probabilities' .*non-finite.*row 2 \(object_id 102\)",
        ),
        (
            {"probabilities": with_row(1, [-0.1, 0.3, 0.2, 0.2, 0.2, 0.2])},
            r"negative.*object_id 101",
        ),
        (
            {"probabilities": with_row(3, 0.2)},
            r"not summing to 1.*row 3 \(object_id 103\): sum 1\.2",
        ),
    ],
)
def test_validation_names_the_field_and_the_format(values, message):
    with pytest.raises(PredictionError, match=message) as error:
        SCORER.validate(TASK, predictions(values), "sub/predictions.npz")
    text = str(error.value)
    assert text.startswith("sub/predictions.npz: ")
    assert text.endswith(clf.expected_format(TASK))


def test_validation_accepts_bare_arrays_and_renormalises():
    p = uniform().astype(np.float32) * np.float32(1 + 9e-4)  # within the 1e-3 tolerance
    out = SCORER.validate(TASK, predictions({"mean": p}), "x")
    assert set(out.values) == {"probabilities"}
    q = out.values["probabilities"]
    assert q.dtype == np.float64 and q.shape == (4, K)
    np.testing.assert_allclose(q.sum(axis=1), 1.0, rtol=0, atol=1e-15)
    np.testing.assert_allclose(q, 1.0 / K, rtol=1e-7)
    one_hot = np.eye(K, dtype=np.int64)[[0, 1, 2, 5]]  # integer one-hot rows are probabilities
    out = SCORER.validate(TASK, predictions({"probabilities": one_hot}), "x")
    np.testing.assert_array_equal(out.values["probabilities"], one_hot)


def test_expected_format_names_the_classes_in_order():
    text = clf.expected_format(TASK)
    assert "'probabilities'" in text and f"[N, {K}]" in text
    assert "0 elliptical, 1 lenticular, 2 spiral, 3 edge_on, 4 clumpy, 5 merger" in text
    assert "\n" not in text


@pytest.mark.parametrize("classes", [[], ["a"], ["a", "a"], ["a", ""], ["a", 3]])
def test_bad_class_lists_are_task_errors(classes):
    task = dataclasses.replace(
        TASK, simulation=SimulationSpec("x", "hst_wfc3_f160w", FrozenDict({"classes": classes}))
    )
    with pytest.raises(TaskSpecError, match="simulation.params.classes"):
        clf.class_names(task)


def make_catalog(n: int = 500, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """A catalog (object ids 1000.., labels, mag and snr strata) and informative probabilities."""
    rng = np.random.default_rng(seed)
    labels = rng.choice(K, n, p=[0.2, 0.15, 0.3, 0.1, 0.1, 0.15])
    p = rng.dirichlet(np.ones(K), n)
    p[np.arange(n), labels] += 0.3
    p /= p.sum(axis=1, keepdims=True)
    catalog = pd.DataFrame(
        {
            "object_id": np.arange(1000, 1000 + n, dtype=np.int64),
            "label": labels,
            "mag": rng.uniform(18, 24, n),
            "snr": rng.uniform(5, 2000, n),
        }
    )
    return catalog, p


def test_score_end_to_end():
    catalog, p = make_catalog()
    order = np.random.default_rng(1).permutation(len(p))  # predictions in another order
    pred = SCORER.validate(
        TASK, Predictions(catalog["object_id"].to_numpy()[order], {"probabilities": p[order]}), "x"
    )
    scores = SCORER.score(TASK, pred, catalog)
    labels = catalog["label"].to_numpy()
    expected = metrics_of(p, labels, names=CLASSES)
    assert scores.metrics.keys() == expected.keys()
    assert set(scores.metrics) == {"accuracy", "macro_f1", "log_loss", "ece"} | {
        f"recall/{c}" for c in CLASSES
    }
    for key, value in expected.items():
        assert scores.metrics[key] == pytest.approx(float(value), rel=1e-12)
    assert scores.metrics["accuracy"] == pytest.approx(np.mean(p.argmax(1) == labels))
    assert scores.metrics["macro_f1"] == pytest.approx(
        f1_score(labels, p.argmax(1), average="macro", zero_division=0)
    )
    for key, value in scores.metrics.items():
        lo, hi = scores.intervals[key]
        assert lo <= value <= hi, key
    lo, hi = scores.intervals["accuracy"]
    assert hi - lo < 0.15
    assert len(scores.bootstrap_main) == TASK.bootstrap_resamples
    assert np.mean(scores.bootstrap_main) == pytest.approx(scores.metrics["accuracy"], abs=0.02)
    # Strata: the bins partition the objects and each bin's metrics are its objects' metrics.
    rows = scores.strata["mag"]
    assert [r["bin"] for r in rows][:1] and sum(r["n"] for r in rows) == len(p)
    first = (catalog["mag"] >= 18) & (catalog["mag"] < 19)
    in_bin = metrics_of(p[first], labels[first], names=CLASSES)
    assert rows[0]["n"] == int(first.sum())
    assert rows[0]["metrics"]["accuracy"] == pytest.approx(float(in_bin["accuracy"]))
    assert rows[0]["metrics"]["ece"] == pytest.approx(float(in_bin["ece"]))
    assert set(scores.strata) == {"mag", "snr"}
    # Reproducible; another seed gives other resamples.
    again = SCORER.score(TASK, pred, catalog)
    assert again.intervals == scores.intervals and again.bootstrap_main == scores.bootstrap_main
    other = SCORER.score(dataclasses.replace(TASK, bootstrap_seed=12), pred, catalog)
    assert other.bootstrap_main != scores.bootstrap_main


def test_a_rare_class_missing_from_resamples_gives_nan_recall_there():
    catalog, p = make_catalog(n=40, seed=4)
    labels = catalog["label"].to_numpy().copy()
    labels[labels == 4] = 0
    labels[7] = 4  # one clumpy galaxy: absent from ~37% of the resamples
    catalog = catalog.assign(label=labels)
    task = make_task(resamples=100)
    pred = SCORER.validate(
        task, Predictions(catalog["object_id"].to_numpy(), {"probabilities": p}), "x"
    )
    scores = SCORER.score(task, pred, catalog)
    assert scores.metrics["recall/clumpy"] in (0.0, 1.0)
    lo, hi = scores.intervals["recall/clumpy"]
    assert np.isfinite(lo) and np.isfinite(hi)  # NaN resamples are dropped
    objects = ClassifiedObjects.from_probabilities(p, labels)
    from galbench.metrics.bootstrap import bootstrap_samples

    samples = bootstrap_samples(
        lambda idx: classification_statistics(CLASSES, objects.resample_counts(idx)),
        len(p),
        n_resamples=100,
        seed=task.bootstrap_seed,
    )
    missing = np.isnan(samples["recall/clumpy"])
    assert 10 < missing.sum() < 70
    assert np.isfinite(samples["accuracy"]).all() and np.isfinite(samples["macro_f1"]).all()


def test_catalog_label_outside_the_classes_names_the_object():
    catalog, p = make_catalog(n=20)
    pred = Predictions(catalog["object_id"].to_numpy(), {"probabilities": p})
    bad = catalog.assign(label=np.where(np.arange(20) == 7, K, catalog["label"]))
    with pytest.raises(
        ValueError, match=r"label of object_id 1007 is 6; expected an integer in 0\.\.5"
    ):
        SCORER.score(TASK, pred, bad)
    negative = catalog.assign(label=np.where(np.arange(20) == 3, -1, catalog["label"]))
    with pytest.raises(ValueError, match="object_id 1003"):
        SCORER.score(TASK, pred, negative)
    with pytest.raises(ValueError, match="no 'label' column"):
        SCORER.score(TASK, pred, catalog.drop(columns="label"))


def test_predictions_must_cover_the_split():
    catalog, p = make_catalog(n=20)
    pred = Predictions(catalog["object_id"].to_numpy()[:-1], {"probabilities": p[:-1]})
    with pytest.raises(PredictionError, match="predictions cover 19 objects"):
        SCORER.score(TASK, pred, catalog)
