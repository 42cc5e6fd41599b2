"""Split building versus raw GalSim drawing of the same objects.

The figure of merit is ``ratio_to_raw`` (build time / raw drawing time, in extra_info): what
galbench adds on top of GalSim (seeding, truth sampling, catalog, .npy/.parquet writes, sha256
hashes, manifest). Both run in one process on the same objects, after a warm-up that fills
GalSim's Sersic cache.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from galbench.data.build import build_split
from galbench.sim import get_recipe
from galbench.sim.recipes import galsim_deviate, object_seed, single_threaded_galsim
from galbench.tasks import get_task

N = 400
TASK = get_task("morphometry@1")
_results: dict[str, float] = {}


@pytest.fixture(scope="module")
def prepared():
    recipe = get_recipe(TASK)
    seed = TASK.split("test").seed
    truths, noise_seeds = [], []
    for i in range(N):
        truth_seed, noise_seed = object_seed(seed, i).spawn(2)
        truths.append(recipe.sample_truth(np.random.default_rng(truth_seed)))
        noise_seeds.append(noise_seed)
    return recipe, truths, noise_seeds


def _raw(recipe, truths, noise_seeds) -> None:
    # GalSim configured as the build configures it (one OpenMP thread per process), so that the
    # ratio measures galbench's additions, not a thread setting.
    with single_threaded_galsim():
        for truth, noise_seed in zip(truths, noise_seeds):
            recipe.add_noise(recipe.draw_noiseless(truth), galsim_deviate(noise_seed))


def test_raw_galsim_drawing(benchmark, prepared):
    _raw(*prepared)  # warm-up: GalSim's per-n Sersic tables
    benchmark.group = "build-vs-raw"
    benchmark.pedantic(_raw, args=prepared, rounds=3, iterations=1)
    _results["raw"] = benchmark.stats.stats.min
    benchmark.extra_info["objects_per_second"] = N / benchmark.stats.stats.min


def _bench_build(benchmark, folder, n: int, workers: int, rounds: int) -> None:
    """Time ``build_split`` of ``n`` objects, each round into a fresh home."""
    homes = (folder / f"w{workers}-{k}" for k in itertools.count())

    def build(home):
        build_split(TASK, "test", n, home=home, workers=workers, shard_size=100, progress=False)

    benchmark.pedantic(build, setup=lambda: ((), {"home": next(homes)}), rounds=rounds, iterations=1)
    benchmark.extra_info["objects_per_second"] = n / benchmark.stats.stats.min


def test_build_split_one_worker(benchmark, prepared, bench_home):
    _raw(*prepared)
    benchmark.group = "build-vs-raw"
    _bench_build(benchmark, bench_home, N, workers=1, rounds=3)
    if "raw" in _results:
        benchmark.extra_info["ratio_to_raw"] = benchmark.stats.stats.min / _results["raw"]


def test_build_split_two_workers(benchmark, bench_home):
    """Throughput with a local pool of 2 processes (spawn start-up included)."""
    benchmark.group = "build-parallel"
    _bench_build(benchmark, bench_home, 2 * N, workers=2, rounds=2)
