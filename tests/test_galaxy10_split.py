"""galaxy10@1: the real Galaxy10 SDSS -> DECaLS transfer task, built from synthetic HDF5 files.

The published files (210 MB and 2.5 GB) are not here, so the tests write files with their exact
layout and row counts (chunked, so rows never written take no space), serve them from a mirror
folder, and point galbench's table of remote files at their sha256 and size for the test only.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from galbench.challenge import challenge_task
from galbench.cli import main as cli_main
from galbench.data import download
from galbench.data.build import build_split
from galbench.data.download import ChecksumError
from galbench.data.split import load_split
from galbench.errors import GalbenchError
from galbench.evaluate import evaluate
from galbench.real.galaxy10 import (
    GALAXY10,
    class_lookup,
    read_row_order,
    stratified_order,
)
from galbench.sim import get_recipe
from galbench.tasks import FrozenDict, builtin_task_dir, get_task, load_task_file

TASK = get_task("galaxy10@1")
K = 12  # objects built per split
CLASSES = ["round_smooth", "in_between_smooth", "cigar_smooth", "edge_on_bulge",
           "edge_on_no_bulge", "spiral"]
# Galaxy10 class -> task class, written out by hand from the class names (-1: dropped).
SDSS_LOOKUP = [-1, 0, 1, 2, 3, 3, 4, 5, 5, 5]
DECALS_LOOKUP = [-1, -1, 0, 1, 2, 5, 5, 5, 4, 3]
SPLITS = {  # split: (file, mapped rows skipped, stratified)
    "train": ("sdss", 0, False),
    "val": ("sdss", 15000, False),
    "target_train": ("decals", 0, True),
    "test": ("decals", 1000, False),
}


def committed_order(which: str) -> np.ndarray:
    text = (builtin_task_dir() / "galaxy10" / f"{which}_rows.txt").read_text()
    return np.array([int(x) for x in text.split("\n") if x and not x.startswith("#")])


def expected_rows(which: str, labels: np.ndarray, skip: int, n: int, stratify: bool,
                  first: int | None = None) -> list[int]:
    """The first ``first`` rows of a split of ``n``, recomputed here: mapped rows in the
    committed order, then (target pool) sorted by (j / n_c, position) in floating point."""
    lookup = np.array(SDSS_LOOKUP if which == "sdss" else DECALS_LOOKUP)
    kept = [int(r) for r in committed_order(which) if lookup[labels[r]] >= 0]
    rows = kept[skip:skip + n]
    if stratify:
        classes = [int(lookup[labels[r]]) for r in rows]
        counts = {c: classes.count(c) for c in set(classes)}
        keys, seen = [], {}
        for pos, c in enumerate(classes):
            keys.append((seen.get(c, 0) / counts[c], pos))
            seen[c] = seen.get(c, 0) + 1
        rows = [rows[pos] for _, pos in sorted(keys)]
    return rows[:first]


def split_prefix(split: str, labels: np.ndarray, first: int = K) -> list[int]:
    which, skip, stratify = SPLITS[split]
    return expected_rows(which, labels, skip, TASK.split(split).n, stratify, first)


def write_file(path: Path, which: str, labels: np.ndarray, filled: list[int],
               rng: np.random.Generator) -> dict[int, np.ndarray]:
    """A Galaxy10 file with the published row count; random pixels in rows ``filled`` only."""
    s = GALAXY10[which].image_size
    n = len(labels)
    pixels = {r: rng.integers(0, 256, (s, s, 3), dtype=np.uint8) for r in sorted(set(filled))}
    with h5py.File(path, "w") as f:
        images = f.create_dataset("images", (n, s, s, 3), np.uint8, chunks=(1, s, s, 3),
                                  compression="gzip")
        for r, img in pixels.items():
            images[r] = img
        f["ans"] = labels.astype(np.uint8)
        if which == "decals":
            f["ra"] = rng.uniform(0, 360, n)
            f["dec"] = rng.uniform(-20, 30, n)
            f["redshift"] = rng.uniform(0.005, 0.3, n)
            f["pxscale"] = rng.uniform(0.262, 0.6, n)
    return pixels


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory):
    """Synthetic files in a mirror folder, the remote table pointed at them, a data home, and
    every split's first K objects built."""
    tmp = tmp_path_factory.mktemp("galaxy10")
    mirror = tmp / "mirror"
    (mirror / "galaxy10").mkdir(parents=True)
    rng = np.random.default_rng(7)
    files = {}
    for which in ("sdss", "decals"):
        layout = GALAXY10[which]
        labels = rng.integers(0, 10, layout.n_published)
        filled = []
        for split, (w, skip, stratify) in SPLITS.items():
            if w == which:
                filled += split_prefix(split, labels)
        path = mirror / "galaxy10" / layout.filename
        pixels = write_file(path, which, labels, filled, rng)
        with h5py.File(path, "r") as f:
            extras = {c: f[c][()] for c in layout.extra_columns}
        files[which] = {"labels": labels, "pixels": pixels, "extras": extras, "path": path}
    home = tmp / "home"
    with pytest.MonkeyPatch.context() as mp:
        table = download._table()
        for which in ("sdss", "decals"):
            real = download.remote_file(GALAXY10[which].key)
            data = files[which]["path"].read_bytes()
            fake = dataclasses.replace(real, sha256=hashlib.sha256(data).hexdigest(),
                                       size=len(data), approx_size=None)
            mp.setitem(table, real.key, fake)
        mp.setenv(download.MIRROR_ENV, str(mirror))
        mp.setenv("GALBENCH_HOME", str(home))
        for split in SPLITS:
            build_split(TASK, split, K, home=home, workers=1, progress=False)
        yield {"files": files, "home": home, "mirror": mirror, "tmp": tmp}


def test_task_parses_with_real_splits_and_committed_orders():
    assert TASK.type == "classification" and TASK.image_shape == (3, 64, 64)
    assert list(TASK.simulation.params["classes"]) == CLASSES
    assert {s: (sp.n, sp.real) for s, sp in TASK.splits.items()} == {
        "train": (15000, True), "val": (3000, True), "target_train": (1000, True),
        "test": (10000, True)}
    assert TASK.split("train").sources == ("galaxy10/Galaxy10.h5",)
    assert TASK.split("test").sources == ("galaxy10/Galaxy10_DECals.h5",)
    assert list(TASK.extra["label_budgets"]) == [0, 10, 50, 200, 1000]
    assert TASK.extra["ranked_label_budget"] == 200
    for split, (which, skip, stratify) in SPLITS.items():
        params = TASK.split(split).params
        assert params["skip"] == skip and bool(params.get("stratify", False)) == stratify
        # The committed order is a permutation of the published rows and has the pinned hash.
        order = read_row_order(builtin_task_dir() / params["order"], params["order_sha256"])
        np.testing.assert_array_equal(np.sort(order), np.arange(GALAXY10[which].n_published))
        np.testing.assert_array_equal(order, committed_order(which))
    # Source and target do not overlap in rows: train/val and target_train/test are disjoint
    # ranges of one order each (skip = the earlier split's n).
    assert TASK.split("val").params["skip"] == TASK.split("train").n
    assert TASK.split("test").params["skip"] == TASK.split("target_train").n


def test_class_map_matches_the_galaxy10_class_names():
    sdss, decals = class_lookup(TASK, "sdss"), class_lookup(TASK, "decals")
    assert sdss.tolist() == SDSS_LOOKUP and decals.tolist() == DECALS_LOOKUP
    words = {"round_smooth": ("round", "smooth"), "in_between_smooth": ("in-between",),
             "cigar_smooth": ("cigar",), "edge_on_bulge": ("edge-on", "bulge"),
             "edge_on_no_bulge": ("edge-on",), "spiral": ("spiral",)}
    for which, lookup in (("sdss", sdss), ("decals", decals)):
        names = GALAXY10[which].class_names
        for k, c in enumerate(lookup):
            if c < 0:
                continue
            name = names[k].lower()
            assert all(w in name for w in words[CLASSES[c]]), (which, k, name)
            if CLASSES[c] == "edge_on_no_bulge":
                assert "no bulge" in name or "without bulge" in name
            if CLASSES[c] == "edge_on_bulge":
                assert "no bulge" not in name and "without" not in name
        dropped = [names[k] for k in np.flatnonzero(lookup < 0)]
        assert dropped == (["Disk, Face-on, No Spiral"] if which == "sdss"
                           else ["Disturbed Galaxies", "Merging Galaxies"])


@pytest.mark.parametrize("split", list(SPLITS))
def test_built_prefix_rows_labels_and_images(world, split):
    which = SPLITS[split][0]
    f = world["files"][which]
    data = load_split(TASK, split, K, home=world["home"])
    cat = data.catalog
    rows = split_prefix(split, f["labels"])
    assert cat["source_row"].tolist() == rows
    assert cat["object_id"].tolist() == list(range(K))
    lookup = np.array(SDSS_LOOKUP if which == "sdss" else DECALS_LOOKUP)
    np.testing.assert_array_equal(cat["source_class"], f["labels"][rows])
    np.testing.assert_array_equal(cat["label"], lookup[f["labels"][rows]])
    assert (cat["label"] >= 0).all()  # dropped classes never enter
    images = np.asarray(data.images[:K])
    assert images.shape == (K, 3, 64, 64) and images.dtype == np.float32
    for i, row in enumerate(rows):
        src = f["pixels"][row]  # uint8 [S, S, 3]
        if which == "sdss":
            want = src[2:66, 2:66, :].transpose(2, 0, 1).astype(np.float32)
        else:
            want = (src.astype(np.int64).reshape(64, 4, 64, 4, 3).sum(axis=(1, 3)) / 16.0)
            want = want.transpose(2, 0, 1).astype(np.float32)
        np.testing.assert_array_equal(images[i], want)
        assert cat["mean_pixel"][i] == pytest.approx(want.astype(np.float64).mean(), rel=1e-12)
    if which == "sdss":
        assert cat[["redshift", "ra", "dec", "pixel_scale_arcsec"]].isna().all().all()
    else:
        for col in ("redshift", "ra", "dec"):
            np.testing.assert_array_equal(cat[col], f["extras"][col][rows])
        np.testing.assert_allclose(cat["pixel_scale_arcsec"], 4 * f["extras"]["pxscale"][rows])
    # The manifest pins the source file and the split definition.
    key = GALAXY10[which].key
    digest = hashlib.sha256(f["path"].read_bytes()).hexdigest()
    assert data.manifest.sources == {key: digest}
    assert data.manifest.split_sha256 == TASK.split(split).definition_sha256()


def test_objects_do_not_depend_on_shards_or_read_order(world, tmp_path, monkeypatch):
    """Read-ahead caching never changes an object: other shard sizes, other read windows and
    random access give the same stamps and the same content hash."""
    from galbench.real.galaxy10 import Galaxy10Recipe

    monkeypatch.setattr(Galaxy10Recipe, "READ_AHEAD_MIN", 2)
    monkeypatch.setattr(Galaxy10Recipe, "READ_AHEAD_MAX", 4)
    monkeypatch.setattr(Galaxy10Recipe, "ROWS_PER_READ", 3)
    build_split(TASK, "test", K, home=tmp_path, workers=1, shard_size=5, progress=False)
    a = load_split(TASK, "test", K, home=tmp_path)
    b = load_split(TASK, "test", K, home=world["home"])
    assert a.manifest.content_sha256 == b.manifest.content_sha256
    key = GALAXY10["decals"].key
    recipe = get_recipe(TASK, "test", {key: str(world["files"]["decals"]["path"])})
    for index in np.random.default_rng(3).permutation(K).tolist():
        obj = recipe.render_index(np.random.SeedSequence(0), index)
        np.testing.assert_array_equal(obj.image, recipe.image(recipe.rows[index]))
        np.testing.assert_array_equal(obj.image, b.images[index])


def test_dropped_rows_are_exactly_the_unmapped_classes(world):
    """Between two consecutive train objects, the order holds only rows of dropped classes."""
    f = world["files"]["sdss"]
    order = committed_order("sdss").tolist()
    rows = load_split(TASK, "train", K, home=world["home"]).catalog["source_row"].tolist()
    span = order[: order.index(rows[-1]) + 1]
    skipped = [r for r in span if r not in set(rows)]
    assert skipped and all(f["labels"][r] == 0 for r in skipped)  # SDSS 0: Disk, Face-on, No Spiral


def test_target_pool_prefixes_are_class_stratified(world):
    f = world["files"]["decals"]
    paths = {GALAXY10["decals"].key: str(download.download_path(GALAXY10["decals"].key,
                                                                world["home"]))}
    recipe = get_recipe(TASK, "target_train", paths)
    pool = recipe.rows
    assert pool.tolist() == split_prefix("target_train", f["labels"], None)
    kept = expected_rows("decals", f["labels"], 0, 1000, False)
    assert sorted(pool.tolist()) == sorted(kept)  # the pool is the first 1000 mapped rows
    labels = np.array(DECALS_LOOKUP)[f["labels"][pool]]
    assert sorted(labels[:6].tolist()) == list(range(6))  # one of each class first
    share = np.bincount(labels, minlength=6) / len(labels)
    for k in (10, 50, 200, 1000):
        counts = np.bincount(labels[:k], minlength=6)
        assert np.abs(counts - k * share).max() < 6, (k, counts, k * share)
    # Within a class the row order is kept.
    for c in range(6):
        members = pool[labels == c].tolist()
        assert members == [r for r in kept if DECALS_LOOKUP[f["labels"][r]] == c]
    # Hand-computed: keys 0, 1/3, 2/3 (class 0) and 0 (class 1) -> positions 0, 3, 1, 2.
    assert stratified_order(np.array([0, 0, 0, 1])).tolist() == [0, 3, 1, 2]
    assert stratified_order(np.array([1, 1, 0, 0])).tolist() == [0, 2, 1, 3]


def test_a_changed_source_file_is_refused(world, tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    shutil.copytree(world["mirror"], mirror)
    path = mirror / "galaxy10" / "Galaxy10.h5"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, one byte changed
    path.write_bytes(bytes(data))
    monkeypatch.setenv(download.MIRROR_ENV, str(mirror))
    with pytest.raises(ChecksumError) as info:
        build_split(TASK, "train", 2, home=tmp_path / "home", workers=1, progress=False)
    msg = str(info.value)
    assert "galaxy10/Galaxy10.h5" in msg and "sha256" in msg and str(path) in msg


def test_a_changed_row_order_is_refused(world, tmp_path):
    paths = {GALAXY10["sdss"].key: str(world["files"]["sdss"]["path"])}

    # A copy of the task file elsewhere: order files are found next to it.
    (tmp_path / "galaxy10").mkdir()
    shutil.copy(builtin_task_dir() / "galaxy10.toml", tmp_path / "galaxy10.toml")
    task = load_task_file(tmp_path / "galaxy10.toml")

    def with_params(**changes):
        split = task.split("train")
        params = FrozenDict({**split.params, **changes})
        splits = FrozenDict({**task.splits, "train": dataclasses.replace(split, params=params)})
        return dataclasses.replace(task, splits=splits)

    with pytest.raises(GalbenchError, match="cannot read the Galaxy10 row order"):
        get_recipe(task, "train", paths)
    shutil.copy(builtin_task_dir() / "galaxy10" / "sdss_rows.txt", tmp_path / "galaxy10")
    assert len(get_recipe(task, "train", paths).rows) == 15000
    with pytest.raises(GalbenchError, match=r"sdss_rows\.txt: the row order file has sha256"):
        get_recipe(with_params(order_sha256="0" * 64), "train", paths)
    short = tmp_path / "galaxy10" / "short.txt"
    short.write_text("0\n1\n2\n")
    digest = hashlib.sha256(short.read_bytes()).hexdigest()
    with pytest.raises(GalbenchError, match="not a permutation of the 21785 rows"):
        get_recipe(with_params(order="galaxy10/short.txt", order_sha256=digest), "train", paths)
    with pytest.raises(GalbenchError, match="must be a path relative to the task file's folder"):
        get_recipe(with_params(order="../galaxy10/short.txt"), "train", paths)
    with pytest.raises(GalbenchError, match="file has .* rows of the task's classes"):
        get_recipe(with_params(skip=21000), "train", paths)


def _submission(root: Path, files: dict[str, str], table: str) -> Path:
    root.mkdir()
    (root / "submission.toml").write_text(
        'name = "galaxy10-uniform"\nauthors = ["Test"]\ncontact = "t@example.org"\n'
        'license = "MIT"\nexternal_data = false\n\n[tasks."galaxy10@1"]\n' + table
    )
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def test_evaluate_a_floor_submission_on_the_test_split(world, tmp_path):
    root = _submission(tmp_path / "floor", {}, 'predictions = { test = "predictions/test.npz" }\n'
                                                'labels = 0\ntraining_data = ["galaxy10@1/train"]\n')
    # Floor: fixed class probabilities (spiral most likely), the same for every galaxy.
    probs = np.array([0.2, 0.15, 0.05, 0.1, 0.1, 0.4])
    (root / "predictions").mkdir()
    np.savez(root / "predictions" / "test.npz", object_id=np.arange(K),
             probabilities=np.tile(probs, (K, 1)))
    out = tmp_path / "receipt.json"
    rc = cli_main(["evaluate", str(root), "--split", "test", "--n", str(K), "--workers", "1",
                   "--home", str(world["home"]), "--out", str(out), "--quiet"])
    assert rc == 0
    receipt = json.loads(out.read_text())
    assert (receipt["task"], receipt["split"], receipt["n"]) == ("galaxy10@1", "test", K)
    assert receipt["partial"] and not receipt["leaderboard_eligible"]
    decals = world["files"]["decals"]["labels"]
    labels = np.array(DECALS_LOOKUP)[decals[split_prefix("test", decals)]]
    assert receipt["metrics"]["accuracy"] == pytest.approx(np.mean(labels == 5))
    assert receipt["metrics"]["log_loss"] == pytest.approx(-np.mean(np.log(probs[labels])))
    strata = receipt["strata"]
    assert sum(row["n"] for row in strata["redshift"]) == K
    assert sum(row["n"] for row in strata["source_class"]) == K


def test_the_challenge_split_is_refused(world, tmp_path):
    root = _submission(
        tmp_path / "code",
        {"model.py": "import numpy as np\n\nclass Uniform:\n    def __init__(self, root):\n"
                     "        pass\n\n    def predict(self, images):\n"
                     "        return np.full((len(images), 6), 1 / 6)\n"},
        'entry_point = "model:Uniform"\nlabels = 0\n',
    )
    with pytest.raises(GalbenchError, match="no hidden challenge split"):
        challenge_task(TASK)
    with pytest.raises(GalbenchError, match="no hidden challenge split.*score --split test"):
        evaluate(root, split="challenge", home=world["home"], progress=False)
