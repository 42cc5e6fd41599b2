"""anomaly@1's recipe: normal galaxies are morphometry's, anomalies only where the split allows
them, each kind adds what its definition says and records its parameters."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from galbench.errors import TaskSpecError
from galbench.sim import get_instrument, get_recipe
from galbench.sim.anomalies import KINDS, AnomalyRecipe
from galbench.sim.recipes import render_object
from galbench.tasks import FrozenDict, SimulationSpec, get_task

TASK = get_task("anomaly@1")
SIGMA = get_instrument("hst_wfc3_f160w").sky_sigma
SEED = 424242


def with_params(**changes) -> object:
    params = FrozenDict({**TASK.simulation.params, **changes})
    return dataclasses.replace(TASK, simulation=SimulationSpec("anomaly", "hst_wfc3_f160w", params))


def always(kind: str) -> AnomalyRecipe:
    """A recipe that makes every object an anomaly of ``kind``."""
    return get_recipe(with_params(kinds=[kind], anomaly_fraction={"test": 1.0}), "test")


NEVER = get_recipe(with_params(anomaly_fraction={"test": 0.0}), "test")


def pair(kind: str, index: int):
    """The same object with and without the anomaly: host truth and noise seeds are shared."""
    return render_object(always(kind), SEED, index), render_object(NEVER, SEED, index)


def test_task_is_listed_with_the_stated_fractions():
    assert TASK.type == "anomaly" and TASK.main_metric == "auroc"
    assert tuple(TASK.simulation.params["kinds"]) == KINDS
    assert get_recipe(TASK, "train").fraction == 0.0
    assert get_recipe(TASK, "val").fraction == get_recipe(TASK, "test").fraction == 0.05
    # The hidden challenge split (not listed) follows the test split.
    assert get_recipe(TASK, "challenge").fraction == 0.05


def test_normal_objects_are_morphometry_galaxies():
    """A normal object is drawn by BulgeDiskRecipe's own code with the same priors."""
    obj = render_object(NEVER, SEED, 3)
    assert obj.truth["is_anomaly"] == 0 and obj.truth["anomaly_kind"] == 0
    assert math.isnan(obj.truth["companion_mag"]) and obj.truth["n_clumps"] == 0
    lo, hi = TASK.simulation.params["mag"]
    assert lo <= obj.truth["mag"] <= hi
    assert set(AnomalyRecipe.columns) <= set(obj.truth)


def test_train_split_has_no_anomalies_and_test_about_five_percent():
    train, test = get_recipe(TASK, "train"), get_recipe(TASK, "test")
    # Only the anomaly draw is needed: render() makes it before any GalSim work, but rendering
    # a few hundred objects is cheap enough to test the real path.
    assert all(render_object(train, SEED, i).truth["is_anomaly"] == 0 for i in range(150))
    flags = [render_object(test, SEED, i).truth["anomaly_kind"] for i in range(400)]
    count = sum(f > 0 for f in flags)
    assert 6 <= count <= 40  # Binomial(400, 0.05): mean 20, 5-sigma band
    assert all(0 <= f <= len(KINDS) for f in flags)


def test_objects_are_deterministic():
    a = render_object(always("ring"), SEED, 5)
    b = render_object(always("ring"), SEED, 5)
    assert np.array_equal(a.image, b.image) and a.truth.keys() == b.truth.keys()
    assert all(
        (math.isnan(a.truth[k]) and math.isnan(b.truth[k])) or a.truth[k] == b.truth[k] for k in a.truth
    )


@pytest.mark.parametrize("index", [0, 1, 2])
def test_cosmic_rays_are_few_sharp_pixels(index):
    anomaly, normal = pair("cosmic_rays", index)
    assert anomaly.truth["anomaly_kind"] == 1 and anomaly.truth["is_anomaly"] == 1
    diff = (anomaly.image - normal.image)[0] / SIGMA
    hit = diff > 1.0
    # 1-4 tracks of <= 8 px: at most ~4 x 17 pixels, each >= 20 sigma.
    assert 1 <= hit.sum() <= 70
    assert diff[hit].min() >= 19.9
    # The brightest track's amplitude is recorded; crossing tracks only add to it.
    assert diff.max() >= anomaly.truth["artifact_peak_sigma"] * (1 - 1e-3)
    assert 20.0 <= anomaly.truth["artifact_peak_sigma"] <= 500.0


@pytest.mark.parametrize("index", [0, 1])
def test_bad_column_is_one_column(index):
    anomaly, normal = pair("bad_column", index)
    diff = (anomaly.image - normal.image)[0]
    columns = np.flatnonzero(np.abs(diff).max(axis=0) > 0)
    assert len(columns) == 1
    amplitude = anomaly.truth["artifact_peak_sigma"]
    assert 5.0 <= abs(amplitude) <= 50.0
    values = diff[:, columns[0]]
    np.testing.assert_allclose(values[values != 0], amplitude * SIGMA, rtol=1e-4)
    assert (values != 0)[-1]  # full column or from a row to the edge


def test_satellite_trail_is_a_straight_line():
    anomaly, normal = pair("satellite_trail", 0)
    diff = (anomaly.image - normal.image)[0] / SIGMA
    peak = anomaly.truth["artifact_peak_sigma"]
    assert 3.0 <= peak <= 30.0
    assert diff.max() <= peak * 1.0001 and diff.max() >= 0.5 * peak
    # The trail crosses the whole stamp: bright pixels on at least 40 rows or columns.
    bright = diff > 0.5 * peak
    assert max(bright.any(axis=0).sum(), bright.any(axis=1).sum()) >= 40


@pytest.mark.parametrize("kind,column", [("merger", None), ("clumpy", "clump_flux_fraction"), ("ring", "ring_flux_fraction")])
def test_extra_light_has_the_recorded_flux(kind, column):
    """The added light (companion, clumps, ring) carries the flux the catalog records; the
    comparison uses bright hosts so that Poisson noise is negligible."""
    for index in range(40):
        anomaly, normal = pair(kind, index)
        if anomaly.truth["mag"] < 20.5:
            break
    else:  # pragma: no cover
        pytest.fail("no bright host in 40 draws")
    t = anomaly.truth
    added = float((anomaly.image - normal.image).sum())
    if kind == "merger":
        expected = get_instrument("hst_wfc3_f160w").flux_from_mag(t["companion_mag"])
        assert 0.0 <= t["companion_mag"] - t["mag"] <= 1.5
        assert 6.0 <= t["companion_sep_px"] <= 20.0
        # The companion can spill over the stamp edge: at least half of it is inside.
        assert 0.5 * expected <= added <= 1.02 * expected
    else:
        expected = t[column] * t["flux"]
        assert added == pytest.approx(expected, rel=0.15)
        if kind == "clumpy":
            assert 3 <= t["n_clumps"] <= 8 and 0.09 <= t[column] <= 0.8
        else:
            assert 4.0 <= t["ring_radius_px"] <= 24.0 and t["q_disk"] >= 0.4


@pytest.mark.parametrize(
    "change,message",
    [
        ({"kinds": ["merger", "unicorn"]}, "kinds"),
        ({"kinds": []}, "kinds"),
        ({"kinds": ["ring", "ring"]}, "kinds"),
        ({"anomaly_fraction": {"val": 0.1}}, "anomaly_fraction"),
        ({"anomaly_fraction": {"test": 1.5}}, "anomaly_fraction"),
    ],
)
def test_bad_parameters_are_named(change, message):
    with pytest.raises(TaskSpecError, match=f"simulation.params.{message}"):
        get_recipe(with_params(**change), "test")


def test_split_bytes_do_not_depend_on_workers(tmp_path):
    from galbench.data.build import build_split
    from galbench.data.manifest import Manifest

    manifests = []
    for workers in (1, 2):
        home = tmp_path / f"w{workers}"
        folder = build_split(TASK, "test", 60, home=home, workers=workers, shard_size=25, progress=False)
        manifests.append(Manifest.read(folder / "manifest.json"))
    assert manifests[0].content_sha256 == manifests[1].content_sha256
    assert manifests[0].files == manifests[1].files
