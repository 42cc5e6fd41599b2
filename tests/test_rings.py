"""rings@1: the real Galaxy Zoo DECaLS ring task, its recipe, its committed splits and baselines.

Builds go through the shared data mirror (../shared/data, as tests/test_download.py finds it);
the tests that need it skip cleanly without it.
"""

from __future__ import annotations

import csv
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from galbench import get_task, load_split
from galbench.data import download
from galbench.data.build import build_split
from galbench.data.download import ChecksumError, known_files
from galbench.real import gz_rings
from galbench.tasks import published_split_hashes

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
MIRROR = ROOT.parent / "shared" / "data"
CSV = MIRROR / "gz_decals_rings" / "example_ring_catalog_basic.csv"
needs_mirror = pytest.mark.skipif(not CSV.is_file(), reason=f"no shared data mirror at {MIRROR}")
TASK = "rings@1"


@pytest.fixture(autouse=True)
def _mirror_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(download.MIRROR_ENV, str(MIRROR))


@pytest.fixture(scope="module")
def csv_rows() -> dict[str, dict[str, str]]:
    if not CSV.is_file():
        pytest.skip(f"no shared data mirror at {MIRROR}")
    with open(CSV, newline="") as fh:
        return {row["id_str"]: {**row, "row": str(k)} for k, row in enumerate(csv.DictReader(fh))}


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data home holding the whole val split (70 galaxies) and the first 5 of test."""
    if not CSV.is_file():
        pytest.skip(f"no shared data mirror at {MIRROR}")
    path = tmp_path_factory.mktemp("rings_home")
    old = os.environ.get(download.MIRROR_ENV)
    os.environ[download.MIRROR_ENV] = str(MIRROR)
    try:
        build_split(TASK, "val", home=path, progress=False)
        build_split(TASK, "test", 5, home=path, progress=False)
    finally:
        if old is None:
            del os.environ[download.MIRROR_ENV]
        else:
            os.environ[download.MIRROR_ENV] = old
    return path


def block_mean_reference(png: Path) -> np.ndarray:
    """The task's image definition, written independently of the recipe: the central 384x384 of
    the 424x424 PNG, 3x3 block means of the 8-bit values, / 255, channels first."""
    rgb = np.array(Image.open(png).convert("RGB"), dtype=np.float64)
    out = np.zeros((3, 128, 128))
    for dy in range(3):
        for dx in range(3):
            out += rgb[20 + dy : 404 : 3, 20 + dx : 404 : 3].transpose(2, 0, 1)
    return (out / 9.0 / 255.0).astype(np.float32)


# ------------------------------------------------------------------------------ the task file


def test_task_parses_with_its_declared_contract() -> None:
    task = get_task(TASK)
    assert (task.type, task.image_shape, task.main_metric, task.direction) == (
        "classification", (3, 128, 128), "accuracy", "higher")
    assert tuple(task.simulation.params["classes"]) == ("non_ring", "ring")
    assert task.simulation.recipe == "gz_decals_rings"
    assert {s: task.split(s).n for s in ("train", "val", "test")} == {"train": 200, "val": 70, "test": 200}
    assert all(task.split(s).real for s in task.splits)
    assert tuple(task.extra["label_budgets"]) == (0, 10, 50, 100, 200)
    assert task.extra["ranked_label_budget"] == 100
    assert [s.column for s in task.strata] == [
        "featured_fraction", "no_spiral_arms_fraction", "not_edge_on_fraction"]
    assert {c.key for c in task.citations} == {"Walmsley2022", "Walmsley2023"}
    assert set(published_split_hashes(task)) == {"train", "val", "test"}


def test_ids_are_470_distinct_galaxies_each_with_its_pinned_png() -> None:
    task = get_task(TASK)
    ids = [i for s in ("train", "val", "test") for i in task.split(s).ids]
    assert len(ids) == len(set(ids)) == 470
    table = known_files("gz_decals_rings/*")
    for name in ("train", "val", "test"):
        split = task.split(name)
        assert len(split.ids) == split.n
        assert split.sources == (gz_rings.CATALOG_KEY, *(gz_rings.image_key(i) for i in split.ids))
        assert all(key in table and table[key].sha256 for key in split.sources)


@needs_mirror
def test_ids_are_the_documented_draw_and_every_budget_is_balanced(csv_rows) -> None:
    task = get_task(TASK)
    drawn = gz_rings.pick_splits(gz_rings.read_catalog(CSV), seed=20223966)
    for name in ("train", "val", "test"):
        assert tuple(drawn[name]) == task.split(name).ids, name
    labels = {name: [int(csv_rows[i]["ring"]) for i in task.split(name).ids] for name in drawn}
    assert sum(labels["test"]) == 100 and sum(labels["val"]) == 35
    for budget in (10, 50, 100, 200):
        assert sum(labels["train"][:budget]) == budget // 2, budget
    # test and val are shuffled, not laid out by class
    assert labels["test"][:100].count(1) not in (0, 100)


# ------------------------------------------------------------------------------ built splits


def test_built_split_shapes_values_and_catalog(home, csv_rows) -> None:
    task = get_task(TASK)
    test = load_split(TASK, "test", 5, home=home)
    images = np.asarray(test.images[:])
    assert images.shape == (5, 3, 128, 128) and images.dtype == np.float32
    assert 0.0 <= images.min() and images.max() <= 1.0
    object_id = task.split("test").ids[3]
    png = MIRROR / "gz_decals_rings" / "images" / f"{object_id}.png"
    np.testing.assert_array_equal(images[3], block_mean_reference(png))
    catalog = test.catalog
    assert list(catalog.columns) == ["object_id", "label", "id_str", "catalog_row", "featured_fraction",
                                     "not_edge_on_fraction", "no_spiral_arms_fraction"]
    for k, object_id in enumerate(task.split("test").ids[:5]):
        row = csv_rows[object_id]
        assert catalog["object_id"][k] == k
        assert catalog["id_str"][k] == object_id
        assert catalog["label"][k] == int(row["ring"])
        assert catalog["catalog_row"][k] == int(row["row"])
        assert catalog["featured_fraction"][k] == float(row["smooth-or-featured_featured-or-disk_fraction"])
        assert catalog["no_spiral_arms_fraction"][k] == float(row["has-spiral-arms_no_fraction"])


def test_full_val_build_matches_its_published_hash(home) -> None:
    val = load_split(TASK, "val", home=home)
    assert val.manifest.content_sha256 == published_split_hashes(TASK)["val"]
    assert val.manifest.matches_published is True
    assert set(val.manifest.sources) == set(get_task(TASK).split("val").sources)
    assert val.catalog["label"].sum() == 35


@needs_mirror
def test_changed_source_png_is_named_and_stops_the_build(tmp_path, monkeypatch) -> None:
    task = get_task(TASK)
    mirror = tmp_path / "mirror" / "gz_decals_rings"
    (mirror / "images").mkdir(parents=True)
    for key in task.split("val").sources:
        rel = key.removeprefix("gz_decals_rings/")
        os.symlink(MIRROR / key, mirror / rel)
    altered = task.split("val").ids[-1]  # beyond the n built: every source is checked
    target = mirror / "images" / f"{altered}.png"
    data = bytearray(target.read_bytes())
    target.unlink()
    data[-100] ^= 0xFF
    target.write_bytes(bytes(data))
    monkeypatch.setenv(download.MIRROR_ENV, str(tmp_path / "mirror"))
    with pytest.raises(ChecksumError, match=rf"gz_decals_rings/images/{altered}\.png"):
        build_split(TASK, "val", 2, home=tmp_path / "home", progress=False)
    assert not (tmp_path / "home" / TASK / "val-first2" / "manifest.json").exists()


def test_recipe_rejects_a_png_of_the_wrong_size(tmp_path) -> None:
    path = tmp_path / "small.png"
    Image.new("RGB", (256, 256)).save(path)
    with pytest.raises(gz_rings.RingsFormatError, match="expected a 424x424 RGB PNG, got RGB 256x256"):
        gz_rings.png_to_image(path)


# ------------------------------------------------------------------------------ baselines


@pytest.mark.parametrize("entry", ["rings-floor", "rings-features-b10"])
def test_baseline_end_to_end_on_a_few_objects(home, tmp_path, entry) -> None:
    import importlib.util

    from galbench.evaluate import evaluate

    folder = ROOT / "baselines" / entry
    receipt, path = evaluate(folder, task=TASK, split="test", n=5, home=home,
                             out=tmp_path / "r.json", progress=False)
    assert receipt["status"] == "ok" and receipt["partial"] is True
    declared = tomllib.loads((folder / "submission.toml").read_text())["tasks"][TASK]["labels"]
    assert receipt["submission"]["labels"] == declared
    if entry == "rings-floor":
        spec = importlib.util.spec_from_file_location("_rings_floor", folder / "model.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        cls = module.ClassFrequencies
    else:
        from galbench.models.rings import RingFeatureClassifier as cls
    split = load_split(TASK, "test", 5, home=home)
    proba = cls(folder).predict(np.asarray(split.images[:]))
    assert proba.shape == (5, 2) and np.allclose(proba.sum(axis=1), 1.0)
    expected = np.mean(proba.argmax(axis=1) == split.catalog["label"].to_numpy())
    assert receipt["metrics"]["accuracy"] == pytest.approx(expected)


@pytest.mark.parametrize("entry, cls", [("rings-cnn-transfer-b10", "TransferRingClassifier"),
                                        ("rings-cnn-finetune-b10", "FineTunedRingClassifier")])
def test_deep_baselines_predict_probabilities(home, entry, cls) -> None:
    pytest.importorskip("timm")
    import galbench.models.rings as rings

    folder = ROOT / "baselines" / entry
    assert f"from galbench.models.rings import {cls}" in (folder / "model.py").read_text()
    model = getattr(rings, cls)(folder)
    images = np.asarray(load_split(TASK, "test", 5, home=home).images[:])
    proba = model.predict(images)
    assert proba.shape == (5, 2) and np.all(proba >= 0) and np.allclose(proba.sum(axis=1), 1.0)
    # a galaxy's class does not depend on its orientation: both models average the 8 D4 views
    np.testing.assert_allclose(model.predict(np.rot90(images, 1, axes=(-2, -1)).copy()), proba, atol=1e-5)
