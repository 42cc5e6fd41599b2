"""The floor and deep morphometry baselines: their entry points and the CNN recipe's pieces."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import import_baseline
from galbench.scoring.submission import load_submission
from galbench.sim import get_recipe
from galbench.tasks import get_task

REPO = Path(__file__).resolve().parents[1]
TASK = get_task("morphometry@1")
torch = pytest.importorskip("torch")


def _import(folder: str, module: str):
    return import_baseline(folder, module)


@pytest.mark.parametrize("folder", ["morphometry-floor", "morphometry-cnn"])
def test_baseline_folders_are_valid_submissions(folder):
    sub = load_submission(REPO / "baselines" / folder)
    assert list(sub.tasks) == ["morphometry@1"]
    assert sub.tasks["morphometry@1"].entry_point


def test_floor_predicts_the_training_medians():
    model_mod = _import("morphometry-floor", "model")
    root = REPO / "baselines" / "morphometry-floor"
    medians = json.loads((root / "medians.json").read_text())
    assert medians["targets"] == list(TASK.target_names) and medians["n"] == 100_000
    out = model_mod.MedianRegressor(root).predict(np.zeros((3, 1, 64, 64), np.float32))
    assert out.shape == (3, 8)
    np.testing.assert_array_equal(out[2], [medians["medians"][t] for t in TASK.target_names])
    # Medians of the uniform priors sit mid-range.
    assert abs(medians["medians"]["mag"] - 21.0) < 0.1 and abs(medians["medians"]["pa"] - 90) < 3


def test_cnn_target_encoding_round_trips():
    model_mod = _import("morphometry-cnn", "model")
    config = json.loads((REPO / "baselines" / "morphometry-cnn" / "config.json").read_text())
    rng = np.random.default_rng(0)
    targets = torch.tensor(
        np.column_stack([rng.uniform(18, 24, 5), rng.uniform(0, 1, (5, 6)), rng.uniform(0, 180, 5)]),
        dtype=torch.float32,
    )
    encoded = model_mod.encode_targets(targets, config)
    assert encoded.shape == (5, 9)
    torch.testing.assert_close(model_mod.decode_outputs(encoded, config), targets, atol=1e-3, rtol=1e-4)
    # PA 0 and PA 180 are the same direction: identical encodings.
    a = targets.clone()
    b = targets.clone()
    a[:, 7], b[:, 7] = 0.0, 180.0
    torch.testing.assert_close(model_mod.encode_targets(a, config), model_mod.encode_targets(b, config), atol=1e-5, rtol=0)


def test_cnn_augmentation_matches_the_physics():
    """Each of the 8 rotations/flips of a rendered galaxy equals the galaxy rendered with the
    transformed position angle."""
    train_mod = _import("morphometry-cnn", "train")
    recipe = get_recipe(TASK)
    truth = recipe.sample_truth(np.random.default_rng(3))
    truth.update(dx=0.0, dy=0.0, pa=30.0, q_disk=0.3, q_bulge=0.4, bulge_to_total=0.5)
    image = torch.from_numpy(recipe.draw_noiseless(truth)[None, None].astype(np.float32))
    images = image.repeat(32, 1, 1, 1)
    targets = torch.zeros(32, 8)
    targets[:, 7] = 30.0
    out_images, out_targets = train_mod.dihedral(images, targets, 7, torch.Generator().manual_seed(1))
    seen = set()
    for k in range(32):
        pa = float(out_targets[k, 7])
        seen.add(round(pa))
        expected = recipe.draw_noiseless(dict(truth, pa=pa))
        assert np.abs(out_images[k, 0].numpy() - expected).max() < 1e-5 * expected.max()
    assert seen == {30, 120, 60, 150}  # rotations and flips give all four distinct angles


def test_cnn_predicts_finite_parameters(tiny_split_dir):
    from galbench.data.split import open_split

    model_mod = _import("morphometry-cnn", "model")
    model = model_mod.CNNRegressor(REPO / "baselines" / "morphometry-cnn")
    split = open_split(tiny_split_dir)
    out = model.predict(np.asarray(split.images))
    assert out.shape == (40, 8) and np.isfinite(out).all()
    assert ((out[:, 7] >= 0) & (out[:, 7] < 180)).all()
    truth = split.targets()
    # On these 40 galaxies the trained network is far better than a constant on magnitude.
    mag_err = np.median(np.abs(out[:, 0] - truth[:, 0]))
    assert mag_err < 0.3
