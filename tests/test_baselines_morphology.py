"""The morphology@1 baselines: valid folders, the floor's frequencies, the forest's and the
CNN's probabilities."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import import_baseline
from galbench.scoring.submission import load_submission
from galbench.sim import get_recipe
from galbench.sim.recipes import render_object
from galbench.tasks import get_task

REPO = Path(__file__).resolve().parents[1]
TASK = get_task("morphology@1")
CLASSES = list(TASK.simulation.params["classes"])


def _import(folder: str, module: str):
    return import_baseline(folder, module)


@pytest.fixture(scope="module")
def stamps():
    recipe = get_recipe(TASK, "test")
    return np.stack([render_object(recipe, 77, i).image for i in range(12)]).astype(np.float32)


@pytest.mark.parametrize("folder", ["morphology-floor", "morphology-random-forest", "morphology-cnn"])
def test_baseline_folders_are_valid_submissions(folder):
    sub = load_submission(REPO / "baselines" / folder)
    assert list(sub.tasks) == ["morphology@1"] and sub.tasks["morphology@1"].labels == 30000


def test_floor_gives_the_training_frequencies(stamps):
    root = REPO / "baselines" / "morphology-floor"
    data = json.loads((root / "frequencies.json").read_text())
    assert data["classes"] == CLASSES and data["n"] == 30000
    out = _import("morphology-floor", "model").ClassFrequencies(root).predict(stamps)
    assert out.shape == (12, 6)
    np.testing.assert_allclose(out[3], [data["frequencies"][c] for c in CLASSES])
    # The frequencies follow the task's priors (30,000 draws).
    for c in CLASSES:
        assert abs(data["frequencies"][c] - TASK.simulation.params["class_priors"][c]) < 0.015


@pytest.mark.parametrize(
    "folder,cls", [("morphology-random-forest", "RandomForestClassifierModel"), ("morphology-cnn", "CNNClassifier")]
)
def test_probabilities_are_valid(folder, cls, stamps):
    if folder == "morphology-cnn":
        pytest.importorskip("torch")
    model = getattr(_import(folder, "model"), cls)(REPO / "baselines" / folder)
    p = model.predict(stamps)
    assert p.shape == (12, 6) and np.isfinite(p).all() and (p >= 0).all()
    np.testing.assert_allclose(p.sum(1), 1.0, atol=1e-6)
    # Better than chance on these 12 galaxies.
    labels = [render_object(get_recipe(TASK, "test"), 77, i).truth["label"] for i in range(12)]
    assert (p.argmax(1) == np.array(labels)).mean() > 0.4
