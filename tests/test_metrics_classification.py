"""Classification metrics (hand values, scikit-learn cross-checks, weights) and the scorer."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, f1_score, recall_score

from galbench.errors import PredictionError
from galbench.metrics import metric_info
from galbench.metrics.classification import ECE_BINS, classification_metrics
from galbench.scoring import get_scorer
from galbench.scoring.base import Predictions
from galbench.tasks import get_task

TASK = get_task("morphology@1")
SCORER = get_scorer("classification")

# Four objects, three classes; predicted classes 0, 1, 1, 2.
P = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.3, 0.4, 0.3], [0.2, 0.2, 0.6]])
Y = np.array([0, 1, 2, 2])


def test_hand_computed_values():
    m = classification_metrics(P, Y, classes=("a", "b", "c"))
    assert m["accuracy"] == pytest.approx(3 / 4)
    # Class a: TP 1, FP 0, FN 0 -> F1 1. b: TP 1, FP 1 -> 2/3. c: TP 1, FN 1 -> 2/3.
    assert m["macro_f1"] == pytest.approx((1 + 2 / 3 + 2 / 3) / 3)
    assert m["recall/a"] == 1 and m["recall/b"] == 1 and m["recall/c"] == pytest.approx(0.5)
    assert m["log_loss"] == pytest.approx(-(math.log(0.7) + math.log(0.8) + math.log(0.3) + math.log(0.6)) / 4)
    # Confidences 0.7, 0.8, 0.4, 0.6 fall in bins (0.667, 0.733], (0.733, 0.8], (0.4-, 0.4],
    # (0.533, 0.6]: one object each, |correct - confidence| = 0.3, 0.2, 0.4, 0.4.
    assert m["ece"] == pytest.approx((0.3 + 0.2 + 0.4 + 0.4) / 4)


def test_argmax_ties_go_to_the_lowest_class():
    p = np.array([[0.4, 0.4, 0.2]])
    assert classification_metrics(p, np.array([0]))["accuracy"] == 1.0
    assert classification_metrics(p, np.array([1]))["accuracy"] == 0.0


def test_ece_pools_objects_within_a_bin():
    # Both confidences in (0.933, 1]: one right, one wrong -> |1 - 0.95 - 0.95| / 2... per bin
    # |sum(correct - conf)| / N = |(1 - 0.95) + (0 - 0.95)| / 2 = 0.45.
    p = np.array([[0.95, 0.05], [0.95, 0.05]])
    assert classification_metrics(p, np.array([0, 1]))["ece"] == pytest.approx(0.45)
    assert ECE_BINS == 15


def test_a_class_never_predicted_or_absent():
    p = np.array([[0.9, 0.1, 0.0], [0.8, 0.2, 0.0]])
    m = classification_metrics(p, np.array([0, 1]))
    assert m["macro_f1"] == pytest.approx((2 / 3 + 0 + 0) / 3)  # class 2: no TP, FP or FN -> 0
    assert np.isnan(m["recall/2"]) and m["recall/1"] == 0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cross_check_with_sklearn(seed):
    rng = np.random.default_rng(seed)
    k, n = 5, 400
    logits = rng.normal(size=(n, k))
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    y = rng.integers(0, k, n)
    y[:3] = 0
    w = rng.integers(0, 4, n).astype(float)
    pred = p.argmax(1)
    for weights in (None, w):
        m = classification_metrics(p, y, weights)
        assert m["accuracy"] == pytest.approx(accuracy_score(y, pred, sample_weight=weights))
        assert m["macro_f1"] == pytest.approx(
            f1_score(y, pred, labels=list(range(k)), average="macro", zero_division=0, sample_weight=weights)
        )
        recalls = recall_score(y, pred, labels=list(range(k)), average=None, zero_division=0, sample_weight=weights)
        for j in range(k):
            assert m[f"recall/{j}"] == pytest.approx(recalls[j])
        ref = -np.average(np.log(p[np.arange(n), y]), weights=weights)
        assert m["log_loss"] == pytest.approx(ref)


def test_weights_equal_duplication_and_batch_rows():
    rng = np.random.default_rng(5)
    p = rng.dirichlet(np.ones(4), size=50)
    y = rng.integers(0, 4, 50)
    counts = rng.integers(0, 3, 50)
    weighted = classification_metrics(p, y, counts.astype(float))
    repeated = classification_metrics(np.repeat(p, counts, 0), np.repeat(y, counts))
    for key in weighted:
        np.testing.assert_allclose(weighted[key], repeated[key], equal_nan=True)
    both = classification_metrics(p, y, np.stack([np.ones(50), counts.astype(float)]))
    np.testing.assert_allclose(both["ece"], [classification_metrics(p, y)["ece"], weighted["ece"]])


def test_directions_are_registered():
    assert metric_info("accuracy").direction == "higher"
    assert metric_info("recall/spiral").direction == "higher"
    assert metric_info("log_loss").direction == "lower" and metric_info("ece").direction == "lower"


# ------------------------------------------------------------------------------------------
# the scorer

K = len(TASK.simulation.params["classes"])


def predictions(values: dict, n: int = 4) -> Predictions:
    return Predictions(np.arange(100, 100 + n), values)


def good(n: int = 4) -> np.ndarray:
    return np.full((n, K), 1.0 / K)


@pytest.mark.parametrize(
    "values,message",
    [
        ({"probabilities": good()[:, :3]}, "shape"),
        ({"probabilities": np.zeros(4)}, "labels instead of probabilities"),
        ({"probabilities": good().astype(str)}, "dtype"),
        ({"probabilities": np.where(np.eye(4, K) > 0, np.nan, good())}, "non-finite.*object_id 100"),
        ({"probabilities": good() * 2}, "not summing to 1.*object_id 100"),
        ({"probabilities": np.hstack([np.full((4, 1), -0.1), np.full((4, K - 1), 1.1 / (K - 1))])}, "negative"),
        ({"probabilities": good(), "extra": good()}, "unexpected"),
        ({"probs": good()}, "'probabilities' is missing"),
    ],
)
def test_validation_names_the_problem(values, message):
    with pytest.raises(PredictionError, match=message):
        SCORER.validate(TASK, predictions(values), "sub/predictions.npz")


def test_bare_arrays_are_accepted_and_rows_renormalised():
    p = good() * (1 + 5e-4)
    out = SCORER.validate(TASK, predictions({"mean": p}), "x")
    assert set(out.values) == {"probabilities"}
    np.testing.assert_allclose(out.values["probabilities"].sum(1), 1.0)


def test_score_end_to_end():
    rng = np.random.default_rng(9)
    n = 600
    labels = rng.integers(0, K, n)
    p = rng.dirichlet(np.ones(K), n)
    p[np.arange(n), labels] += 0.2  # informative, not perfect
    p /= p.sum(1, keepdims=True)
    catalog = pd.DataFrame(
        {
            "object_id": np.arange(n),
            "label": labels,
            "mag": rng.uniform(14, 17.77, n),
            "size_arcsec": rng.uniform(0, 5, n),
            "snr": rng.uniform(10, 2000, n),
        }
    )
    task = dataclasses.replace(TASK, bootstrap_resamples=200)
    pred = SCORER.validate(task, Predictions(np.arange(n)[::-1], {"probabilities": p[::-1]}), "x")
    scores = SCORER.score(task, pred, catalog)
    assert scores.metrics["accuracy"] == pytest.approx((p.argmax(1) == labels).mean())
    lo, hi = scores.intervals["accuracy"]
    assert lo < scores.metrics["accuracy"] < hi and hi - lo < 0.15
    assert len(scores.bootstrap_main) == 200
    assert scores.strata["mag"][0]["n"] + scores.strata["mag"][1]["n"] > 0
    again = SCORER.score(task, pred, catalog)
    assert again.intervals == scores.intervals
    bad = catalog.assign(label=np.where(np.arange(n) == 7, K, labels))
    with pytest.raises(ValueError, match="object_id 7"):
        SCORER.score(task, pred, bad)
