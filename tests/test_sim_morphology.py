"""Ground-based instruments (SDSS-like, DES-like) and the morphology recipe: disjoint class
definitions, stated priors, one galaxy renderable by either instrument."""

from __future__ import annotations

import collections
import dataclasses

import galsim
import numpy as np
import pytest

from galbench.errors import TaskSpecError
from galbench.sim import get_instrument, get_recipe
from galbench.sim.morphology import _STRUCTURE, CLASSES, MorphologyRecipe
from galbench.sim.recipes import render_object
from galbench.tasks import FrozenDict, SimulationSpec, get_task

TASK = get_task("morphology@1")
SEED = 31337


@pytest.mark.parametrize("name,scale,fwhm", [("sdss_r", 0.396, 1.4), ("des_r", 0.263, 0.95)])
def test_ground_based_instruments(name, scale, fwhm):
    inst = get_instrument(name)
    assert inst.pixel_scale_arcsec == scale
    # Drawn on the pixels, the FWHM is the seeing broadened slightly by the pixel response.
    assert fwhm <= inst.psf_fwhm_arcsec <= fwhm * 1.1
    assert inst.noise.correlation == "white" and inst.correlation_gain == 1.0
    # Monte Carlo: a point source at the depth has S/N ~ 5 in the depth aperture.
    size = 2 * int(np.ceil(2 * inst.noise.aperture_radius_arcsec / scale)) + 1
    yy, xx = np.indices((size, size)) - size // 2
    aperture = np.hypot(xx, yy) * scale <= inst.noise.aperture_radius_arcsec
    rng = galsim.BaseDeviate(5)
    sums = []
    for _ in range(400):
        image = galsim.ImageD(size, size, scale=scale)
        image.addNoise(inst.correlated_noise(rng))
        sums.append(image.array[aperture].sum())
    signal = inst.flux_from_mag(inst.noise.depth_mag) * inst.aperture_fraction
    assert signal / np.std(sums) == pytest.approx(5.0, rel=0.15)


def test_des_is_deeper_and_sharper_than_sdss():
    sdss, des = get_instrument("sdss_r"), get_instrument("des_r")
    assert des.noise.depth_mag > sdss.noise.depth_mag + 2
    assert des.psf_fwhm_arcsec < sdss.psf_fwhm_arcsec


def test_class_regions_are_disjoint():
    """Two classes overlap only if every one of their ranges overlaps; none do (the merger is
    defined by its companion, the clumpy class by its clumps)."""

    def overlaps(a, b):
        return a[0] < b[1] and b[0] < a[1]

    smooth = ["elliptical", "lenticular", "spiral", "edge_on"]
    for i, a in enumerate(smooth):
        for b in smooth[i + 1 :]:
            assert not all(overlaps(ra, rb) for ra, rb in zip(_STRUCTURE[a], _STRUCTURE[b])), (a, b)


def test_labels_follow_the_priors_and_the_definitions():
    recipe = get_recipe(TASK, "test")
    assert recipe.instrument.name == "sdss_r"
    objects = [render_object(recipe, SEED, i) for i in range(600)]
    counts = collections.Counter(o.truth["label"] for o in objects)
    priors = TASK.simulation.params["class_priors"]
    for k, name in enumerate(recipe.classes):
        expected = 600 * priors[name]
        assert abs(counts[k] - expected) < 5 * np.sqrt(expected), name
    for o in objects:
        t, name = o.truth, recipe.classes[o.truth["label"]]
        if name == "elliptical":
            assert t["bulge_to_total"] >= 0.8 and t["n_bulge"] >= 3.0
        elif name == "lenticular":
            assert 0.4 <= t["bulge_to_total"] < 0.8 and t["q_disk"] >= 0.35
        elif name == "spiral":
            assert t["bulge_to_total"] < 0.4 and t["q_disk"] >= 0.35
        elif name == "edge_on":
            assert t["bulge_to_total"] < 0.4 and t["q_disk"] <= 0.25
        elif name == "clumpy":
            assert 3 <= t["n_clumps"] <= 8 and t["bulge_to_total"] < 0.3
            assert 0.15 <= t["clump_flux_fraction"] <= 1.2
        else:
            assert 0 <= t["companion_mag"] - t["mag"] <= 1.5 and 2.0 <= t["companion_sep_arcsec"] <= 6.0
        if name != "clumpy":
            assert t["n_clumps"] == 0
        assert t["r_bulge_arcsec"] <= t["r_disk_arcsec"]
        assert 14.0 <= t["mag"] <= 17.77


def test_the_same_galaxy_by_either_instrument():
    """The truth draw does not depend on the instrument: SDSS and DES render one galaxy."""
    params = FrozenDict(
        {**TASK.simulation.params, "instrument_by_split": {"test": "sdss_r", "other": "des_r"}}
    )
    task = dataclasses.replace(TASK, simulation=SimulationSpec("morphology", "sdss_r", params))
    sdss = render_object(get_recipe(task, "test"), SEED, 4)
    des = render_object(get_recipe(task, "other"), SEED, 4)
    assert get_recipe(task, "challenge").instrument.name == "sdss_r"  # unlisted -> test's
    shared = set(sdss.truth) - {"flux", "snr"}
    assert all(
        sdss.truth[k] == des.truth[k] or (np.isnan(sdss.truth[k]) and np.isnan(des.truth[k])) for k in shared
    )
    # Same AB magnitude, different zero points and noise: both images hold the galaxy's flux.
    for obj, inst in ((sdss, get_instrument("sdss_r")), (des, get_instrument("des_r"))):
        assert obj.truth["flux"] == pytest.approx(inst.flux_from_mag(obj.truth["mag"]))
    assert des.truth["snr"] > sdss.truth["snr"]


def test_objects_are_deterministic():
    recipe = get_recipe(TASK, "train")
    a, b = render_object(recipe, SEED, 9), render_object(recipe, SEED, 9)
    assert np.array_equal(a.image, b.image)


@pytest.mark.parametrize(
    "change,field",
    [
        ({"classes": ["elliptical", "spiral"]}, "classes"),
        ({"class_priors": {c: 0.2 for c in CLASSES}}, "class_priors"),
        ({"instrument_by_split": {"train": "sdss_r"}}, "instrument_by_split"),
    ],
)
def test_bad_parameters_are_named(change, field):
    params = FrozenDict({**TASK.simulation.params, **change})
    task = dataclasses.replace(TASK, simulation=SimulationSpec("morphology", "sdss_r", params))
    with pytest.raises(TaskSpecError, match=field):
        MorphologyRecipe(task, "test")


def test_split_bytes_do_not_depend_on_workers(tmp_path):
    from galbench.data.build import build_split
    from galbench.data.manifest import Manifest

    manifests = []
    for workers in (1, 2):
        folder = build_split(TASK, "test", 40, home=tmp_path / f"w{workers}", workers=workers, shard_size=15, progress=False)
        manifests.append(Manifest.read(folder / "manifest.json"))
    assert manifests[0].content_sha256 == manifests[1].content_sha256
    assert manifests[0].files == manifests[1].files
