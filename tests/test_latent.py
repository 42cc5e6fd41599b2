"""Latent-space figures of a VAE-like model (galbench.viz.latent) and ``galbench latent``, with a
tiny linear "VAE": encode is a fixed random projection, decode its pseudo-inverse."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from galbench.cli import main
from galbench.errors import PredictionError, SubmissionError
from galbench.viz.latent import (
    encode_images,
    interpolation_endpoints,
    latent_projection,
    noise_scale,
    plot_interpolation,
    plot_latent_space,
)

SHAPE = (1, 16, 16)


class LinearVAE:
    """encode: a fixed random linear map of the flattened image to D numbers; decode: its
    pseudo-inverse. Records what it was given, to check the calls."""

    def __init__(self, d: int = 4, shape: tuple[int, ...] = SHAPE, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.shape = shape
        self.weights = rng.normal(size=(d, int(np.prod(shape)))).astype(np.float32)
        self.inverse = np.linalg.pinv(self.weights).astype(np.float32)
        self.encoded_batches: list[int] = []
        self.decoded: list[np.ndarray] = []

    def encode(self, images: np.ndarray) -> np.ndarray:
        assert images.dtype == np.float32 and not images.flags.writeable
        self.encoded_batches.append(len(images))
        return images.reshape(len(images), -1) @ self.weights.T

    def decode(self, z: np.ndarray) -> np.ndarray:
        assert z.dtype == np.float32
        self.decoded.append(z.copy())
        return (z @ self.inverse.T).reshape(len(z), *self.shape)


def _images(n: int = 120, seed: int = 1) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Noise (sigma 1) plus a central square whose brightness and size vary with two values."""
    rng = np.random.default_rng(seed)
    images = rng.normal(size=(n, *SHAPE)).astype(np.float32)
    flux = rng.uniform(0.0, 30.0, n)
    half = rng.integers(1, 5, n)
    for i in range(n):
        images[i, 0, 8 - half[i] : 8 + half[i], 8 - half[i] : 8 + half[i]] += flux[i]
    return images, {"flux": flux, "size": half.astype(np.float64)}


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        assert im.format == "PNG"
        return np.asarray(im.convert("RGB"), dtype=np.float64)


# -- the projection ------------------------------------------------------------------------------


def test_two_dimensional_latents_are_drawn_as_they_are():
    means = np.random.default_rng(0).normal(size=(50, 2))
    coords, label = latent_projection(means)
    np.testing.assert_array_equal(coords, means)
    assert label == "2-D latent means"


def test_projection_is_sklearn_pca_with_a_fixed_sign():
    decomposition = pytest.importorskip("sklearn.decomposition")
    rng = np.random.default_rng(2)
    means = rng.normal(size=(200, 6)) * np.array([5.0, 3.0, 1.0, 0.5, 0.2, 0.1]) + 7.0
    coords, label = latent_projection(means)

    pca = decomposition.PCA(n_components=2, svd_solver="full").fit(means)
    components = pca.components_.copy()
    signs = np.sign(components[np.arange(2), np.argmax(np.abs(components), axis=1)])
    expected = pca.transform(means) * signs
    np.testing.assert_allclose(coords, expected, atol=1e-9)
    share = pca.explained_variance_ratio_.sum()
    assert label == f"PCA of 6-D latent means (explains {share:.0%} of variance)"
    assert 0.9 < share < 1.0  # the first two axes hold most of this data's variance
    # The sign convention, not the SVD's whims, fixes the orientation: negating the latents
    # negates the coordinates, and each component's largest loading is positive.
    np.testing.assert_allclose(latent_projection(-means)[0], -coords, atol=1e-9)
    np.testing.assert_allclose(coords.mean(axis=0), 0.0, atol=1e-9)


@pytest.mark.parametrize(
    ("means", "match"),
    [(np.zeros((5, 1)), "D >= 2"), (np.zeros(5), r"\[N, D\]"), (np.full((5, 3), np.nan), "NaN")],
)
def test_projection_rejects_bad_means(means, match):
    with pytest.raises(ValueError, match=match):
        latent_projection(means)


def test_interpolation_endpoints_lowest_and_highest_among_kept():
    values = np.array([3.0, 0.5, 9.0, 0.1, np.nan, 4.0, 0.1])
    assert interpolation_endpoints(values) == (3, 2)  # ties: the first; NaN never chosen
    keep = np.array([1, 1, 0, 0, 1, 1, 1], dtype=bool)  # e.g. not anomalies
    assert interpolation_endpoints(values, keep=keep) == (6, 5)
    with pytest.raises(ValueError, match="found 1"):
        interpolation_endpoints(values, keep=np.arange(7) == 0)


def test_noise_scale_is_the_border_sigma():
    rng = np.random.default_rng(3)
    images = rng.normal(0.0, 2.5, size=(2, 1, 64, 64))
    images[..., 16:48, 16:48] += 1000.0  # a bright source inside the border frame is ignored
    assert noise_scale(images) == pytest.approx(2.5, rel=0.05)
    assert noise_scale(np.zeros((1, 1, 8, 8))) == 1.0
    flat = np.zeros((1, 1, 8, 8))
    flat[..., 4, 4] = 50.0
    assert noise_scale(flat) == pytest.approx(0.5)  # noiseless: 1% of the peak


def test_encoding_does_not_depend_on_batch_size():
    images, _ = _images(50)
    model = LinearVAE()
    whole = encode_images(model, images, batch_size=50)
    small = encode_images(model, images, batch_size=7)
    assert model.encoded_batches == [50] + [7] * 7 + [1]
    np.testing.assert_allclose(small, whole, rtol=1e-6)


# -- the figures ---------------------------------------------------------------------------------


@pytest.mark.parametrize("d", [2, 4])
def test_latent_space_png(tmp_path, d):
    images, values = _images()
    model = LinearVAE(d)
    path = plot_latent_space(
        model, images, values, tmp_path / "sub" / "space.png", batch_size=32,
        labels={"flux": "flux [e-/s]"}, highlight=values["flux"] > 25,
    )
    assert path == tmp_path / "sub" / "space.png"
    pixels = _pixels(path)
    assert pixels.shape == (350, 800, 3)  # 400 x 350 px per parameter at dpi=100
    assert pixels.std() > 0
    assert model.encoded_batches == [32, 32, 32, 24]
    with Image.open(path) as im:
        assert "Software" not in im.info  # no matplotlib version (and never a date)
    again = plot_latent_space(
        LinearVAE(d), images, values, tmp_path / "again.png", batch_size=32,
        labels={"flux": "flux [e-/s]"}, highlight=values["flux"] > 25,
    )
    assert again.read_bytes() == path.read_bytes()
    # A different colouring draws a different figure (the values are used, not just checked).
    other = plot_latent_space(
        LinearVAE(d), images, {"flux": values["size"], "size": values["flux"]},
        tmp_path / "other.png", batch_size=32, labels={"flux": "flux [e-/s]"},
        highlight=values["flux"] > 25,
    )
    assert other.read_bytes() != path.read_bytes()


def test_latent_space_one_panel_per_parameter(tmp_path):
    import matplotlib

    before = dict(matplotlib.rcParams)
    images, values = _images(40)
    path = plot_latent_space(LinearVAE(3), images, {"flux": values["flux"]}, tmp_path / "one.png")
    assert _pixels(path).shape == (350, 400, 3)
    assert dict(matplotlib.rcParams) == before  # the session's settings are left as they were


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        ({"flux": None, "size": np.r_[np.ones(119), np.nan]}, r"values\['size'\] has 1 non-finite"),
        ({"flux": None, "size": np.ones(119)},
         r"values\['size'\] has shape \(119,\); expected \[120\]"),
        ({"flux": np.full(120, np.inf)}, r"values\['flux'\] has 120 non-finite"),
        ({"flux": np.ones((120, 2))}, r"values\['flux'\] has shape \(120, 2\)"),
        ({}, "values is empty"),
    ],
)
def test_latent_space_rejects_bad_values(tmp_path, bad, match):
    images, values = _images()
    given = {k: values[k] if v is None else v for k, v in bad.items()}
    model = LinearVAE()
    with pytest.raises(ValueError, match=match):
        plot_latent_space(model, images, given, tmp_path / "x.png")
    assert model.encoded_batches == []  # checked before the model runs
    assert not (tmp_path / "x.png").exists()


def test_interpolation_png(tmp_path):
    images, _ = _images()
    model = LinearVAE(4)
    path = plot_interpolation(model, images[0], images[1], tmp_path / "strip.png", steps=5)
    pixels = _pixels(path)
    assert pixels.shape == (275, 625, 3)  # 125 px per step x 275 px at dpi=100
    assert pixels.std() > 0
    # The decoded path is the straight line between the two latent means, endpoints included.
    (z,) = model.decoded
    za, zb = encode_images(LinearVAE(4), images[:2])
    expected = np.linspace(0.0, 1.0, 5)[:, None] * (zb - za) + za
    np.testing.assert_allclose(z, expected, rtol=1e-5, atol=1e-4)
    again = plot_interpolation(LinearVAE(4), images[0], images[1], tmp_path / "again.png", steps=5)
    assert again.read_bytes() == path.read_bytes()
    # A fixed stretch is a different figure from the estimated one.
    fixed = plot_interpolation(
        LinearVAE(4), images[0], images[1], tmp_path / "fixed.png", steps=5, stretch=20.0
    )
    assert fixed.read_bytes() != path.read_bytes()


def test_interpolation_rejects_bad_input(tmp_path):
    images, _ = _images(4)
    with pytest.raises(ValueError, match="at least 2"):
        plot_interpolation(LinearVAE(), images[0], images[1], tmp_path / "x.png", steps=1)
    with pytest.raises(ValueError, match="one-channel"):
        plot_interpolation(LinearVAE(), images[0, 0], images[1, 0], tmp_path / "x.png")
    with pytest.raises(ValueError, match="stretch"):
        plot_interpolation(LinearVAE(), images[0], images[1], tmp_path / "x.png", stretch=0.0)

    class WrongDecoder(LinearVAE):
        def decode(self, z):
            return np.zeros((len(z), 8, 8))

    with pytest.raises(PredictionError, match=r"decode\(\) returned shape \(8, 8, 8\)"):
        plot_interpolation(WrongDecoder(), images[0], images[1], tmp_path / "x.png")


def test_a_model_without_decode_is_named(tmp_path):
    class EncoderOnly:
        def encode(self, images):
            return np.zeros((len(images), 2))

    images, _ = _images(4)
    with pytest.raises(SubmissionError, match=r"EncoderOnly\) has no decode\(\) method"):
        plot_interpolation(EncoderOnly(), images[0], images[1], tmp_path / "x.png")


def test_viz_imports_no_matplotlib_or_torch():
    code = (
        "import json, sys, galbench.viz\n"
        "print(json.dumps(sorted(m for m in ('matplotlib', 'torch') if m in sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []


# -- galbench latent on a submission folder ------------------------------------------------------

FAKE_VAE = '''
import numpy as np


class LinearVAE:
    """Not trained: a fixed random projection of the 64x64 stamp to 3 numbers, and back."""

    def __init__(self, root):
        weights = np.random.default_rng(0).normal(size=(3, 64 * 64)).astype(np.float32)
        self.weights, self.inverse = weights, np.linalg.pinv(weights).astype(np.float32)

    def predict(self, images):
        return np.zeros((len(images), 8), dtype=np.float32)

    def encode(self, images):
        return images.reshape(len(images), -1) @ self.weights.T

    def decode(self, z):
        return (z @ self.inverse.T).reshape(len(z), 1, 64, 64)
'''


def _fake_submission(folder: Path, source: str) -> Path:
    folder.mkdir(parents=True)
    (folder / "model.py").write_text(source)
    (folder / "submission.toml").write_text(
        'name = "linear-vae"\nauthors = ["T. Ester"]\ncontact = "t@example.org"\n'
        'license = "MIT"\nexternal_data = false\n\n[tasks."morphometry@1"]\n'
        'entry_point = "model:LinearVAE"\nlabels = 0\nbatch_size = 16\n'
    )
    return folder


def _latent_args(sub: Path, out: Path, color: str = "n_bulge,log10_r_disk") -> list[str]:
    return ["latent", str(sub), "--task", "morphometry@1", "--split", "test", "--n", "40",
            "--color", color, "--out", str(out)]


def test_cli_latent_on_a_tiny_split(tmp_path, tiny_split_dir, capsys):
    sub = _fake_submission(tmp_path / "vae", FAKE_VAE)
    out = tmp_path / "figures"
    assert main(_latent_args(sub, out)) == 0
    printed = capsys.readouterr().out.split()
    assert printed == [str(out / "latent_space.png"), str(out / "latent_interpolation.png")]
    space, strip = _pixels(out / "latent_space.png"), _pixels(out / "latent_interpolation.png")
    assert space.shape == (350, 800, 3) and strip.shape == (275, 1000, 3)  # 2 colours, 8 steps
    assert space.std() > 0 and strip.std() > 0
    first = (out / "latent_space.png").read_bytes()
    assert main(_latent_args(sub, tmp_path / "again")) == 0
    assert (tmp_path / "again" / "latent_space.png").read_bytes() == first


def test_cli_latent_errors_name_the_folder_and_what_is_missing(tmp_path, tiny_split_dir, capsys):
    no_decode = FAKE_VAE.replace("def decode(self, z):", "def _decode(self, z):")
    sub = _fake_submission(tmp_path / "encoder-only", no_decode)
    assert main(_latent_args(sub, tmp_path / "out")) == 2
    err = capsys.readouterr().err
    assert str(sub) in err and "has no decode() method" in err
    assert not (tmp_path / "out").exists()

    sub = _fake_submission(tmp_path / "vae", FAKE_VAE)
    assert main(_latent_args(sub, tmp_path / "out", "n_bulge,nosuch")) == 2
    assert "no column 'nosuch'" in capsys.readouterr().err
    # The default task, whether or not it exists yet: this submission does not enter it.
    assert main(["latent", str(sub), "--out", str(tmp_path / "out")]) == 2
    assert "anomaly@1" in capsys.readouterr().err
