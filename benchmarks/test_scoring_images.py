"""Scoring cost of the image tasks: reducing image predictions to per-object results (the
step that needs the truth images), then the metrics with their 1000 bootstrap resamples."""

from __future__ import annotations

import numpy as np
import pytest

from galbench.data.build import build_split
from galbench.data.split import open_split
from galbench.scoring import get_scorer
from galbench.scoring.base import Predictions

N = 2000


@pytest.fixture(scope="module")
def clump_split(bench_home):
    return open_split(build_split("clumps@1", "test", N, home=bench_home, workers=2, progress=False))


@pytest.fixture(scope="module")
def blend_split(bench_home):
    return open_split(build_split("deblending@1", "test", N, home=bench_home, workers=2, progress=False))


def _bench(benchmark, split, predictions, group):
    scorer = get_scorer(split.task.type)
    benchmark.group = group
    per_object = benchmark.pedantic(lambda: scorer.reduce(split.task, predictions, split), rounds=3, iterations=1)
    benchmark.extra_info["objects_per_second_reduce"] = N / benchmark.stats.stats.min
    scores = scorer.score(split.task, per_object, split.catalog)
    assert np.isfinite(scores.metrics[split.task.main_metric])


def test_reduce_clump_maps(benchmark, clump_split):
    # A noisy map: the true mask plus scattered false positives, so components and matching work.
    rng = np.random.default_rng(0)
    prob = np.asarray(clump_split.target_array("clump_mask"), dtype=np.float32)
    prob = np.clip(prob * 0.9 + (rng.random(prob.shape) > 0.999), 0, 1).astype(np.float32)
    _bench(benchmark, clump_split, Predictions(clump_split.object_ids, {"probability": prob}), "score clumps")


def test_reduce_deblended_images(benchmark, blend_split):
    true = np.asarray(blend_split.target_array("isolated"), dtype=np.float32)
    pred = true * 1.05 + np.random.default_rng(0).normal(0, 0.002, true.shape).astype(np.float32)
    _bench(benchmark, blend_split, Predictions(blend_split.object_ids, {"images": pred}), "score deblending")


@pytest.mark.parametrize("task", ["clumps@1", "deblending@1"])
def test_metrics_and_bootstrap(benchmark, task, clump_split, blend_split):
    split = clump_split if task == "clumps@1" else blend_split
    scorer = get_scorer(split.task.type)
    if task == "clumps@1":
        raw = Predictions(split.object_ids, {"probability": np.asarray(split.target_array("clump_mask"), np.float32)})
    else:
        raw = Predictions(split.object_ids, {"images": 1.1 * np.asarray(split.target_array("isolated"))})
    per_object = scorer.reduce(split.task, raw, split)
    benchmark.group = "score " + task.split("@")[0]
    benchmark.pedantic(lambda: scorer.score(split.task, per_object, split.catalog), rounds=3, iterations=1)
