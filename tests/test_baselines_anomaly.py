"""The anomaly@1 baselines: their entry points, the morphology features, the autoencoder/VAE and
its anomaly scores."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import import_baseline
from galbench.scoring.submission import load_submission
from galbench.sim import get_instrument, get_recipe
from galbench.sim.recipes import render_object
from galbench.tasks import get_task

REPO = Path(__file__).resolve().parents[1]
TASK = get_task("anomaly@1")
SIGMA = get_instrument("hst_wfc3_f160w").sky_sigma
FOLDERS = ["anomaly-floor", "anomaly-isoforest", "anomaly-autoencoder", "anomaly-vae"]


def _import(folder: str, module: str):
    return import_baseline(folder, module)


@pytest.fixture(scope="module")
def stamps():
    """Six normal galaxies and one of each anomaly kind, [12, 1, 64, 64]."""
    normal = get_recipe(TASK, "train")
    images = [render_object(normal, 99, i).image for i in range(6)]
    for kind in TASK.simulation.params["kinds"]:
        import dataclasses

        from galbench.tasks import FrozenDict, SimulationSpec

        params = FrozenDict({**TASK.simulation.params, "kinds": [kind], "anomaly_fraction": {"test": 1.0}})
        task = dataclasses.replace(TASK, simulation=SimulationSpec("anomaly", "hst_wfc3_f160w", params))
        images.append(render_object(get_recipe(task, "test"), 99, 0).image)
    return np.stack(images).astype(np.float32)


@pytest.mark.parametrize("folder", FOLDERS)
def test_baseline_folders_are_valid_submissions(folder):
    sub = load_submission(REPO / "baselines" / folder)
    assert list(sub.tasks) == ["anomaly@1"]
    # Training is label-free; the deep baselines chose their score definition with the 5,000
    # val labels, which anomaly@1 allows for model selection and asks entries to declare.
    entry = sub.tasks["anomaly@1"]
    assert entry.labels == (5000 if folder in ("anomaly-autoencoder", "anomaly-vae") else 0)


def test_floor_scores_are_a_function_of_the_image_only(stamps):
    model = _import("anomaly-floor", "model").RandomScorer(REPO / "baselines" / "anomaly-floor")
    scores = model.predict(stamps)
    assert scores.shape == (len(stamps),) and ((scores >= 0) & (scores < 1)).all()
    # Batch size and order do not change an image's score.
    np.testing.assert_array_equal(model.predict(stamps[::-1])[::-1], scores)
    np.testing.assert_array_equal(np.concatenate([model.predict(stamps[:5]), model.predict(stamps[5:])]), scores)


class TestMorphologyFeatures:
    @pytest.fixture(scope="class")
    def features(self):
        import galbench.features

        return galbench.features

    def test_shapes_and_finiteness(self, features, stamps):
        f = features.morphology_features(stamps, SIGMA)
        assert f.shape == (len(stamps), len(features.NAMES)) and np.isfinite(f).all()
        assert features.morphology_features(stamps[:, 0], SIGMA).shape == f.shape

    def test_symmetric_smooth_profile(self, features):
        """A round Gaussian at the centre: A = 0, no defects, C and r50 as computed by hand."""
        n = 64
        c = (n - 1) / 2
        rows, cols = np.mgrid[0:n, 0:n]
        r2 = (rows - c) ** 2 + (cols - c) ** 2
        s = 3.0
        image = np.exp(-r2 / (2 * s**2))[None, None]
        f = dict(zip(features.NAMES, features.morphology_features(image, 1e-3)[0]))
        assert f["asymmetry"] == pytest.approx(0.0, abs=1e-12)
        assert f["n_peaks"] == 0
        # Gaussian: r_f = s sqrt(-2 ln(1 - f)); r50 = 1.177 s, C = 5 log10(r80/r20) = 2.77 for a
        # continuous profile (pixelisation moves the radii by < 0.5 px).
        assert 10 ** f["log_r50"] == pytest.approx(1.177 * s, abs=0.5)
        assert f["concentration"] == pytest.approx(5 * np.log10(np.sqrt(np.log(5)) / np.sqrt(np.log(1.25))), abs=0.6)
        assert f["ellipticity"] == pytest.approx(0.0, abs=1e-9)

    def test_defect_indicators_respond(self, features):
        rng = np.random.default_rng(1)
        sky = rng.normal(0, SIGMA, (3, 1, 64, 64))
        sky[1, 0, 40, 10] += 200 * SIGMA  # a cosmic-ray hit
        sky[2, 0, :, 20] += 20 * SIGMA  # a hot column
        f = features.morphology_features(sky, SIGMA)
        sharp, column = features.NAMES.index("sharpness"), features.NAMES.index("column_offset")
        assert f[1, sharp] > 5 * f[0, sharp]
        assert f[2, column] > 3 * f[0, column]


def test_isolation_forest_scores_a_batch(stamps):
    root = REPO / "baselines" / "anomaly-isoforest"
    model = _import("anomaly-isoforest", "model").IsolationForestScorer(root)
    scores = model.predict(stamps)
    assert scores.shape == (len(stamps),) and np.isfinite(scores).all()
    # Refitting from the stored features is deterministic.
    again = _import("anomaly-isoforest", "model").IsolationForestScorer(root).predict(stamps)
    np.testing.assert_array_equal(scores, again)


torch = pytest.importorskip("torch")


class TestAutoencoder:
    def test_shapes_and_modes(self):
        from galbench.models.autoencoder import ConvAutoencoder, kl_divergence

        torch.manual_seed(0)
        x = torch.randn(4, 1, 64, 64)
        for variational in (False, True):
            net = ConvAutoencoder(channels=(4, 8), latent=3, variational=variational)
            r, mean, log_var = net(x)
            assert r.shape == x.shape and mean.shape == (4, 3)
            assert (log_var is None) == (not variational)
            if variational:
                net.eval()  # eval: z = mean, deterministic
                assert torch.equal(net(x)[0], net(x)[0])
                assert torch.all(kl_divergence(mean, log_var) >= 0)
        assert kl_divergence(torch.zeros(2, 3), torch.zeros(2, 3)).abs().max() == 0

    def test_scores_by_hand(self):
        from galbench.models.autoencoder import SCORES

        s = torch.zeros(2, 1, 64, 64)
        r = torch.zeros(2, 1, 64, 64)
        r[1, 0, 10, 10] = 2.0  # one pixel off by 2 in object 1
        kl = torch.tensor([1.0, 0.0])
        assert SCORES["mse"](s, r, kl).tolist() == pytest.approx([0.0, 4.0 / 4096])
        assert SCORES["top50"](s, r, kl).tolist() == pytest.approx([0.0, 4.0 / 50])
        assert SCORES["smooth_top50"](s, r, kl).tolist() == pytest.approx([0.0, 9 * (2.0 / 9) ** 2 / 50])
        assert SCORES["elbo"](s, r, kl).tolist() == pytest.approx([1.0, 4.0])

    @pytest.mark.parametrize("folder", ["anomaly-autoencoder", "anomaly-vae"])
    def test_trained_baselines_score_and_encode(self, folder, stamps):
        root = REPO / "baselines" / folder
        config = json.loads((root / "config.json").read_text())
        model = _import(folder, "model").AutoencoderAnomalyScorer(root)
        scores = model.predict(stamps)
        assert scores.shape == (len(stamps),) and np.isfinite(scores).all()
        assert config["variational"] == (folder == "anomaly-vae")
        z = model.encode(stamps)
        assert z.shape == (len(stamps), config["latent"])
        decoded = model.decode(z)
        assert decoded.shape == stamps.shape and np.isfinite(decoded).all()
        # The reconstruction of a normal galaxy holds most of its flux.
        assert decoded[0].sum() == pytest.approx(stamps[0].sum(), rel=0.3)
