"""transfer@1: the source splits are morphology@1's, the target is DES-like, entries declare
their label budgets, and the baselines are valid submissions at every budget."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from galbench.scoring.submission import load_submission
from galbench.sim import get_instrument, get_recipe
from galbench.sim.recipes import render_object
from galbench.tasks import get_task

REPO = Path(__file__).resolve().parents[1]
TASK = get_task("transfer@1")
MORPHOLOGY = get_task("morphology@1")
FOLDERS = ["transfer-source-only"] + [
    f"transfer-{s}-b{k}" for s in ("head", "all", "scratch") for k in (10, 50, 200, 1000)
]


def test_source_splits_are_morphology_splits_and_the_target_is_des():
    for split in ("train", "val"):
        assert TASK.split(split).seed == MORPHOLOGY.split(split).seed
        assert get_recipe(TASK, split).instrument.name == "sdss_r"
        a = render_object(get_recipe(TASK, split), TASK.split(split).seed, 3)
        b = render_object(get_recipe(MORPHOLOGY, split), MORPHOLOGY.split(split).seed, 3)
        assert np.array_equal(a.image, b.image)
    for split in ("target_train", "test", "challenge"):
        assert get_recipe(TASK, split).instrument.name == "des_r"
    assert TASK.simulation.params["classes"] == MORPHOLOGY.simulation.params["classes"]
    assert list(TASK.extra["label_budgets"]) == [0, 10, 50, 200, 1000]
    assert TASK.split("target_train").n == 1000


@pytest.mark.parametrize("folder", FOLDERS)
def test_baseline_folders_declare_their_budget(folder):
    sub = load_submission(REPO / "baselines" / folder)
    entry = sub.tasks["transfer@1"]
    budget = 0 if folder.endswith("source-only") else int(folder.rsplit("-b", 1)[1])
    assert entry.labels == budget
    config = json.loads((REPO / "baselines" / folder / "config.json").read_text())
    assert config["train"]["budget"] == budget


def test_flux_scale_puts_des_counts_on_the_sdss_scale():
    config = json.loads((REPO / "baselines" / "transfer-source-only" / "config.json").read_text())
    sdss, des = get_instrument("sdss_r"), get_instrument("des_r")
    # The same AB magnitude gives the same count after scaling.
    assert des.flux_from_mag(17.0) * config["flux_scale"] == pytest.approx(sdss.flux_from_mag(17.0))


def test_classifier_entry_point_gives_probabilities():
    torch = pytest.importorskip("torch")  # noqa: F841
    from galbench.models.classifier import TimmClassifier

    recipe = get_recipe(TASK, "test")
    images = np.stack([render_object(recipe, 5, i).image for i in range(6)]).astype(np.float32)
    p = TimmClassifier(REPO / "baselines" / "transfer-all-b200").predict(images)
    assert p.shape == (6, 6) and np.isfinite(p).all()
    np.testing.assert_allclose(p.sum(1), 1.0, atol=1e-9)
