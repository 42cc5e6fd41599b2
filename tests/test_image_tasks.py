"""clumps@1 and deblending@1: recipes (physics and conventions), splits with target arrays,
scorers (validation, per-object reduction, metrics), receipts and their verification."""

from __future__ import annotations

import json
import math
import shutil

import galsim
import numpy as np
import pytest
from scipy import ndimage

from galbench import get_task, load_split
from galbench.data.build import build_split
from galbench.errors import PredictionError, SplitCorruptedError
from galbench.scoring import get_scorer
from galbench.scoring.base import Predictions
from galbench.sim import get_instrument, get_recipe
from galbench.sim.recipes import render_object

CLUMPS, DEBLENDING = "clumps@1", "deblending@1"


@pytest.fixture(scope="module")
def clump_split(session_home):
    return load_split(CLUMPS, "test", 24, home=session_home, build=True, progress=False)


@pytest.fixture(scope="module")
def blend_split(session_home):
    return load_split(DEBLENDING, "test", 24, home=session_home, build=True, progress=False)


# -- instruments and recipes ---------------------------------------------------------------------

def test_acs_psf_fwhm_matches_drizzled_acs_mosaics():
    # Koekemoer et al. 2011: ~0.09" for ACS optical mosaics drizzled to 0.03"/px.
    assert get_instrument("hst_acs_f606w").psf_fwhm_arcsec == pytest.approx(0.09, abs=0.005)


def test_clump_positions_are_where_the_light_is():
    """A clump's catalog (x, y) is the centroid of its own PSF-convolved light, in numpy pixel
    coordinates (x = column, y = row)."""
    recipe = get_recipe(get_task(CLUMPS), "test")
    scale = recipe.instrument.pixel_scale_arcsec
    dx, dy, ox, oy = 0.3, -0.4, 7.2, -5.6
    profile = galsim.Convolve(
        galsim.DeltaFunction(flux=100).shift(ox * scale, oy * scale), recipe.instrument.galsim_psf()
    )
    image = profile.drawImage(nx=64, ny=64, scale=scale, offset=(dx, dy), dtype=np.float64).array
    yy, xx = np.indices(image.shape)
    core = image > 0.05 * image.max()
    x0, y0 = recipe.centre(dx, dy)
    assert (image * xx)[core].sum() / image[core].sum() == pytest.approx(x0 + ox, abs=0.02)
    assert (image * yy)[core].sum() / image[core].sum() == pytest.approx(y0 + oy, abs=0.02)


def test_clump_truth_follows_the_stated_priors():
    task = get_task(CLUMPS)
    recipe = get_recipe(task, "test")
    p = task.simulation.params
    counts, fractions = [], []
    for i in range(60):
        obj = render_object(recipe, 123, i)
        clumps = obj.arrays["clumps"]
        k = int(obj.truth["n_clumps"])
        counts.append(k)
        assert np.isnan(clumps[k:]).all() and not np.isnan(clumps[:k]).any()
        fractions.extend(clumps[:k, 3])
        assert clumps[:k, 3].sum() <= p["max_clump_light"] + 1e-6
        assert obj.truth["clump_light_fraction"] == pytest.approx(float(clumps[:k, 3].sum()), rel=1e-5)
        np.testing.assert_allclose(clumps[:k, 2], obj.truth["flux"] * clumps[:k, 3], rtol=1e-5)
        # Off-centre: at least min_clump_radius from the galaxy centre.
        cx, cy = recipe.centre(obj.truth["dx"], obj.truth["dy"])
        assert (np.hypot(clumps[:k, 0] - cx, clumps[:k, 1] - cy) >= p["min_clump_radius"] - 1e-4).all()
        assert ((clumps[:k, :2] >= 2 - 1e-4) & (clumps[:k, :2] <= 61 + 1e-4)).all()  # in the stamp
        # Resolved: clumps at least min_clump_separation apart.
        if k > 1:
            d = np.hypot(*(clumps[:k, None, :2] - clumps[None, :k, :2]).transpose(2, 0, 1))
            assert d[~np.eye(k, dtype=bool)].min() >= p["min_clump_separation"] - 1e-4
        # The mask lies within mask_radius of the clumps, and each clump is exactly one
        # 8-connected component of it (pixels touching another clump's pixels are out).
        mask = obj.arrays["clump_mask"][0]
        assert obj.arrays["clump_mask"].dtype == np.uint8 and set(np.unique(mask)) <= {0, 1}
        yy, xx = np.indices((64, 64))
        near = np.stack([np.hypot(xx - x, yy - y) for x, y in clumps[:k, :2]]) if k else np.full((1, 64, 64), np.inf)
        assert (near.min(axis=0)[mask == 1] <= p["mask_radius"] + 1e-4).all()
        labels, n_components = ndimage.label(mask, structure=np.ones((3, 3)))
        assert n_components == k
        owner = near.argmin(axis=0)
        owners = [np.unique(owner[labels == c]) for c in range(1, n_components + 1)]
        assert all(len(o) == 1 for o in owners)  # one clump per component ...
        assert sorted(int(o[0]) for o in owners) == list(range(k))  # ... and one per clump
    assert min(counts) == 0 and max(counts) == p["max_clumps"]
    lo, hi = p["clump_flux_fraction"]
    assert lo - 1e-7 <= min(fractions) and max(fractions) <= hi + 1e-7


def test_blend_is_the_sum_of_its_isolated_galaxies_plus_noise():
    task = get_task(DEBLENDING)
    recipe = get_recipe(task, "test")
    sky = recipe.instrument.sky_sigma
    for i in range(6):
        obj = render_object(recipe, 7, i)
        iso = obj.arrays["isolated"].astype(np.float64)
        assert iso.shape == (2, 1, 64, 64) and obj.arrays["isolated"].dtype == np.float32
        residual = obj.image - iso.sum(axis=0)
        # Pure noise: zero mean (the pixels are correlated: the mean of 64^2 of them has the
        # variance of 64^2 / correlation_gain independent ones), at least the sky's sigma.
        gain = recipe.instrument.correlation_gain
        assert abs(residual.mean()) < 5 * residual.std() * math.sqrt(gain) / 64
        assert residual.std() >= 0.9 * sky
        # The central galaxy is at the centre; the companion at the stated separation.
        t = obj.truth
        flux = recipe.instrument.flux_from_mag(t["mag"])
        assert iso[0].sum() == pytest.approx(flux, rel=0.35)  # light beyond the stamp is lost
        assert iso[1].sum() / iso[0].sum() == pytest.approx(t["flux_ratio"], rel=0.6)
        sep_px = t["separation"] / recipe.instrument.pixel_scale_arcsec
        expected = [31.5 + t["dx"] + sep_px * math.cos(math.radians(t["angle"])),
                    31.5 + t["dy"] + sep_px * math.sin(math.radians(t["angle"]))]
        peak_row, peak_col = np.unravel_index(np.argmax(iso[1, 0]), (64, 64))
        if min(expected) > 1 and max(expected) < 62:  # inside the stamp
            np.testing.assert_allclose([peak_col, peak_row], expected, atol=0.71)
        peak_row, peak_col = np.unravel_index(np.argmax(iso[0, 0]), (64, 64))
        np.testing.assert_allclose([peak_col, peak_row], [31.5 + t["dx"], 31.5 + t["dy"]], atol=0.71)
        # Blendedness, as defined in the recipe.
        total = iso.sum(axis=0)
        b = [1 - (s**2).sum() / (s * total).sum() for s in iso]
        assert t["blendedness_central"] == pytest.approx(b[0], rel=1e-6, abs=1e-9)
        assert t["blendedness"] == pytest.approx(max(b), rel=1e-6, abs=1e-9)


# -- splits with target arrays -------------------------------------------------------------------

def test_target_arrays_are_stored_hashed_and_verified(clump_split, tmp_path):
    manifest = clump_split.manifest
    assert manifest.target_arrays == {
        "clumps": {"shape": [8, 4], "dtype": "<f4"},
        "clump_mask": {"shape": [1, 64, 64], "dtype": "|u1"},
    }
    mask = clump_split.target_array("clump_mask")
    assert mask.shape == (24, 1, 64, 64) and mask.dtype == np.uint8
    x = np.asarray(clump_split.target_array("clumps"))[:, :, 0]
    np.testing.assert_array_equal(
        ~np.isnan(x), np.arange(8)[None, :] < clump_split.catalog["n_clumps"].to_numpy()[:, None]
    )
    with pytest.raises(KeyError, match="no target array 'isolated'"):
        clump_split.target_array("isolated")
    # Same bytes with other shards and workers; the content hash covers the targets.
    other = build_split(CLUMPS, "test", 24, home=tmp_path / "b", shard_size=7, workers=2, progress=False)
    reopened = load_split(CLUMPS, "test", 24, home=tmp_path / "b")
    assert reopened.manifest.content_sha256 == manifest.content_sha256
    np.testing.assert_array_equal(np.asarray(reopened.target_array("clumps")), np.asarray(clump_split.target_array("clumps")))
    # An altered target shard is caught, with its path.
    shard = other / "targets" / "clump_mask" / "shard-00000.npy"
    data = bytearray(shard.read_bytes())
    data[-1] ^= 1
    shard.write_bytes(bytes(data))
    with pytest.raises(SplitCorruptedError, match="clump_mask/shard-00000.npy: sha256 differs"):
        load_split(CLUMPS, "test", 24, home=tmp_path / "b")


def test_splits_without_target_arrays_keep_their_manifest_bytes(tiny_split_dir):
    text = (tiny_split_dir / "manifest.json").read_text()
    assert "target_arrays" not in json.loads(text)


# -- scoring -------------------------------------------------------------------------------------

def _truth_predictions(split, name):
    return Predictions(split.object_ids, {"probability": np.asarray(split.target_array(name), dtype=np.float32)})


def test_perfect_clump_map_scores_one_and_empty_map_zero(clump_split):
    task, scorer = clump_split.task, get_scorer("segmentation")
    perfect = scorer.validate(task, _truth_predictions(clump_split, "clump_mask"), "perfect")
    scores = scorer.score(task, scorer.reduce(task, perfect, clump_split), clump_split.catalog)
    # The true mask's components are the clumps: it scores 1 on every metric.
    assert scores.metrics["dice"] == 1.0 and scores.metrics["iou"] == 1.0
    assert scores.metrics["purity"] == 1.0 and scores.metrics["completeness"] == 1.0
    assert scores.metrics["clump_f1"] == 1.0
    empty = Predictions(clump_split.object_ids, {"probability": np.zeros((24, 1, 64, 64), np.float32)})
    scores = scorer.score(task, scorer.reduce(task, empty, clump_split), clump_split.catalog)
    assert scores.metrics["clump_f1"] == 0.0 and scores.metrics["completeness"] == 0.0
    assert math.isnan(scores.metrics["purity"])


def test_clump_counts_by_hand(clump_split):
    """A one-pixel prediction on every clump of object 0 but its first (clumps are >= 3 px
    apart, so the pixels never touch), one spurious pixel in a corner of object 1."""
    task, scorer = clump_split.task, get_scorer("segmentation")
    clumps = np.asarray(clump_split.target_array("clumps"))
    k = int(clump_split.catalog["n_clumps"][0])
    assert k >= 2
    pixels = np.round(clumps[0, 1:k, :2]).astype(int)
    prob = np.zeros((24, 1, 64, 64), np.float32)
    prob[0, 0, pixels[:, 1], pixels[:, 0]] = 1.0
    prob[1, 0, 0, 0] = 1.0  # far from any clump of object 1 (clumps lie >= 2 px inside the stamp)
    counts = scorer.reduce(task, Predictions(clump_split.object_ids, {"probability": prob}), clump_split).values
    assert (counts["tp"][0], counts["fp"][0], counts["fn"][0]) == (k - 1, 0, 1)
    assert (counts["tp"][1], counts["fp"][1]) == (0, 1)
    assert counts["predicted"][0] == k - 1
    assert counts["true_clumps_by_fraction"].sum() == clump_split.catalog["n_clumps"].sum()
    assert (counts["found_clumps_by_fraction"] <= counts["true_clumps_by_fraction"]).all()


def test_segmentation_predictions_are_validated(clump_split):
    task, scorer = clump_split.task, get_scorer("segmentation")
    ids = clump_split.object_ids
    with pytest.raises(PredictionError, match=r"shape \(24, 2, 64, 64\); expected \(24, 1, 64, 64\)"):
        scorer.validate(task, Predictions(ids, {"probability": np.zeros((24, 2, 64, 64))}), "f.npz")
    bad = np.zeros((24, 1, 64, 64))
    bad[3, 0, 5, 5] = 1.5
    with pytest.raises(PredictionError, match=r"not probabilities.*row 3 \(object_id 3\).*sigmoid"):
        scorer.validate(task, Predictions(ids, {"probability": bad}), "f.npz")
    bad[3, 0, 5, 5] = np.nan
    with pytest.raises(PredictionError, match="NaN"):
        scorer.validate(task, Predictions(ids, {"probability": bad}), "f.npz")
    # A bare array ([N, H, W] too) is accepted.
    ok = scorer.validate(task, Predictions(ids, {"mean": np.zeros((24, 64, 64))}), "f.npz")
    assert ok.values["probability"].shape == (24, 1, 64, 64)


def test_perfect_deblending_scores_the_cap_and_order_matters(blend_split):
    task, scorer = blend_split.task, get_scorer("deblending")
    true = np.asarray(blend_split.target_array("isolated"))
    perfect = scorer.validate(task, Predictions(blend_split.object_ids, {"images": true}), "perfect")
    scores = scorer.score(task, scorer.reduce(task, perfect, blend_split), blend_split.catalog)
    assert scores.metrics["psnr"] == pytest.approx(100.0)
    assert scores.metrics["ssim"] == pytest.approx(1.0)
    assert scores.metrics["abs_flux_error"] == 0.0
    swapped = Predictions(blend_split.object_ids, {"images": perfect.values["images"][:, ::-1]})
    worse = scorer.score(task, scorer.reduce(task, swapped, blend_split), blend_split.catalog)
    assert worse.metrics["psnr"] < 40


def test_deblending_metrics_by_hand_and_keyed_by_object_id(blend_split):
    task, scorer = blend_split.task, get_scorer("deblending")
    true = np.asarray(blend_split.target_array("isolated"), dtype=np.float64)
    pred = 1.1 * true  # every galaxy 10% too bright
    values = scorer.reduce(task, Predictions(blend_split.object_ids, {"images": pred}), blend_split).values
    np.testing.assert_allclose(values["flux_error"], 0.1, rtol=1e-5)
    peak = true.max(axis=(2, 3, 4))
    mse = ((0.1 * true) ** 2).mean(axis=(2, 3, 4))
    np.testing.assert_allclose(values["psnr"], 10 * np.log10(peak**2 / mse), rtol=1e-5)
    # Shuffled rows with their object ids give the same per-object values and scores.
    order = np.random.default_rng(0).permutation(24)
    shuffled = Predictions(blend_split.object_ids[order], {"images": pred[order]})
    again = scorer.reduce(task, shuffled, blend_split)
    np.testing.assert_allclose(again.values["psnr"], values["psnr"][order])
    a = scorer.score(task, Predictions(blend_split.object_ids, values), blend_split.catalog)
    b = scorer.score(task, again, blend_split.catalog)
    assert a.metrics == pytest.approx(b.metrics)
    assert a.metrics["flux_error"] == pytest.approx(0.1, rel=1e-5)


def test_deblending_predictions_are_validated(blend_split):
    task, scorer = blend_split.task, get_scorer("deblending")
    ids = blend_split.object_ids
    with pytest.raises(PredictionError, match=r"expected \(24, 2, 1, 64, 64\).*central', 'companion'"):
        scorer.validate(task, Predictions(ids, {"images": np.zeros((24, 1, 64, 64))}), "f.npz")
    bad = np.zeros((24, 2, 1, 64, 64))
    bad[5, 1, 0, 3, 3] = np.inf
    with pytest.raises(PredictionError, match=r"non-finite.*row 5 \(object_id 5\)"):
        scorer.validate(task, Predictions(ids, {"images": bad}), "f.npz")


# -- evaluate, receipts, verify ------------------------------------------------------------------

def _floor(tmp_path, task):
    from tests.conftest import REPO

    folder = tmp_path / f"{task}-floor"
    shutil.copytree(REPO / "baselines" / f"{task}-floor", folder)
    return folder


@pytest.mark.parametrize("task", ["clumps", "deblending"])
def test_receipts_store_per_object_results_and_verify_by_re_running(task, tmp_path, session_home, clump_split, blend_split):
    from galbench.evaluate import evaluate
    from galbench.verify import verify_receipt

    folder = _floor(tmp_path, task)
    receipt, path = evaluate(folder, n=24, out=tmp_path / "r.json", home=session_home, progress=False)
    assert receipt["status"] == "ok"
    assert receipt["per_object_sha256"] != receipt["predictions_sha256"]
    with np.load(path.with_name("r.predictions.npz")) as stored:
        assert "probability" not in stored.files and "images" not in stored.files  # no images kept
    result = verify_receipt(path, home=session_home, repo_root=tmp_path)
    assert result.ok, result.problems
    assert any(c.startswith("re-run of the first 24") for c in result.checked)
    assert verify_receipt(path, home=session_home, repo_root=tmp_path, rerun_objects=5).checked.count(
        "re-run of the first 5 objects"
    ) == 1
    assert not any("re-run" in c for c in verify_receipt(path, home=session_home, repo_root=tmp_path, rerun_objects=0).checked)

    # A submission whose code no longer gives the stored results fails the spot check.
    model = folder / "model.py"
    if task == "clumps":
        model.write_text(model.read_text().replace("np.zeros(images.shape", "np.ones(images.shape"))
    else:
        model.write_text(model.read_text().replace("/ N_SOURCES\n", "/ N_SOURCES * 1.5\n"))
    result = verify_receipt(path, home=session_home, repo_root=tmp_path)
    assert any("re-running" in p for p in result.problems), result.problems


def test_torch_dataset_serves_the_target_images(clump_split, blend_split, session_home):
    torch = pytest.importorskip("torch")
    from torch.utils.data import DataLoader

    from galbench.data.datasets import GalaxyDataset

    blends = GalaxyDataset(DEBLENDING, "test", root=session_home, n=24)
    image, target = blends[3]
    assert target.shape == (2, 1, 64, 64) and target.dtype == torch.float32
    np.testing.assert_array_equal(target.numpy(), np.asarray(blend_split.target_array("isolated"))[3])
    images, targets = next(iter(DataLoader(blends, batch_size=8)))
    assert images.shape == (8, 1, 64, 64) and targets.shape == (8, 2, 1, 64, 64)
    np.testing.assert_array_equal(targets.numpy(), np.asarray(blend_split.target_array("isolated"))[:8])
    masks = GalaxyDataset(CLUMPS, "test", root=session_home, n=24)
    assert masks[0][1].shape == (1, 64, 64)
    lists = GalaxyDataset(CLUMPS, "test", root=session_home, n=24, target_array="clumps")
    assert lists[0][1].shape == (8, 4)
