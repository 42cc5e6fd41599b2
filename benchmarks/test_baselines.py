"""Inference speed of the morphometry baselines on the same CPU (Tuccillo+18's comparison: the CNN
was ~50x faster than GALFIT). The figure is ``objects_per_second`` in extra_info; the ratio of
the CNN's to the fit's is the speed-up."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from galbench.data.build import build_split
from galbench.data.split import open_split

REPO = Path(__file__).resolve().parents[1]


def _model(folder: str, module: str, cls: str):
    root = REPO / "baselines" / folder
    sys.path.insert(0, str(root))
    try:
        spec = importlib.util.spec_from_file_location(f"_bench_{folder.replace('-', '_')}", root / f"{module}.py")
        mod = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = mod  # dataclasses in the module look themselves up there
        spec.loader.exec_module(mod)
        return getattr(mod, cls)(root)
    finally:
        sys.path.remove(str(root))


@pytest.fixture(scope="module")
def images(bench_home):
    root = build_split("morphometry@1", "test", 2000, home=bench_home, workers=2, progress=False)
    return np.asarray(open_split(root, verify=False).images)


def test_cnn_inference(benchmark, images):
    pytest.importorskip("torch")
    model = _model("morphometry-cnn", "model", "CNNRegressor")
    batches = [images[s : s + 500] for s in range(0, len(images), 500)]
    model.predict(batches[0])  # warm-up
    benchmark.group = "baseline-inference"
    benchmark.pedantic(lambda: [model.predict(b) for b in batches], rounds=3, iterations=1)
    benchmark.extra_info["objects_per_second"] = len(images) / benchmark.stats.stats.min


def test_sersic_fit_inference(benchmark, images):
    model = _model("morphometry-sersic-fit", "model", "BulgeDiskFitter")
    subset = images[:40]
    model.predict(images[40:44])  # warm-up (pool start, allocator)
    benchmark.group = "baseline-inference"
    benchmark.pedantic(lambda: model.predict(subset), rounds=1, iterations=1)
    benchmark.extra_info["objects_per_second"] = len(subset) / benchmark.stats.stats.min
