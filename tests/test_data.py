"""Splits on disk: determinism across workers/executors/shard sizes, atomic and resumable builds,
corruption detection, memory-mapped access, the torch Dataset and FITS export."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

from galbench.data import build as build_module
from galbench.data.build import build_split
from galbench.data.home import split_dir
from galbench.data.manifest import MANIFEST_NAME, Manifest
from galbench.data.split import load_split, open_split
from galbench.errors import SplitCorruptedError, SplitNotFoundError
from galbench.tasks import get_task

TASK = get_task("morphometry@1")


def _file_hashes(folder: Path) -> dict[str, str]:
    manifest = json.loads((folder / MANIFEST_NAME).read_text())
    return {k: v["sha256"] for k, v in manifest["files"].items()}


N = 200  # the acceptance figure: --n 200 with --workers 1, --workers 2 and Dask
SHARD = 50


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """test split, first 200 objects, 1 worker, shards of 50."""
    home = tmp_path_factory.mktemp("ref")
    return build_split(TASK, "test", N, home=home, shard_size=SHARD, workers=1, progress=False)


def test_same_bytes_with_one_or_two_workers(reference, tmp_path):
    two = build_split(TASK, "test", N, home=tmp_path, shard_size=SHARD, workers=2, progress=False)
    assert _file_hashes(two) == _file_hashes(reference)
    assert (two / MANIFEST_NAME).read_bytes() == (reference / MANIFEST_NAME).read_bytes()


def test_same_bytes_on_a_dask_local_cluster(reference, tmp_path):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster, distributed.Client(cluster) as client:
        # Given as an address, as a user pointing at a remote scheduler would.
        folder = build_split(
            TASK, "test", N, home=tmp_path, shard_size=SHARD, scheduler=client.scheduler.address,
            progress=False,
        )
    assert _file_hashes(folder) == _file_hashes(reference)


def test_objects_do_not_depend_on_shard_size_or_n(reference, tmp_path):
    other = build_split(TASK, "test", 60, home=tmp_path, shard_size=60, progress=False)
    a, b = open_split(reference), open_split(other)
    np.testing.assert_array_equal(np.asarray(a.images)[:60], np.asarray(b.images))
    assert a.catalog.iloc[:60].equals(b.catalog)
    # The content hash identifies the data whatever the sharding.
    same = build_split(TASK, "test", N, home=tmp_path / "x", shard_size=N, progress=False)
    assert Manifest.read(same / MANIFEST_NAME).content_sha256 == a.manifest.content_sha256
    assert _file_hashes(same) != _file_hashes(reference)  # different files, same content


def test_manifest_records_the_split(reference):
    m = Manifest.read(reference / MANIFEST_NAME)
    assert (m.task, m.split, m.n, m.n_official, m.seed) == ("morphometry@1", "test", N, 10000, TASK.split("test").seed)
    assert m.partial and m.shard_size == SHARD and m.task_sha256 == TASK.sha256
    assert m.image_shape == (1, 64, 64) and m.image_dtype == "<f4"
    assert set(m.versions) >= {"galbench", "galsim", "numpy"}
    shards = m.image_shards()
    assert [e.rows for _, e in shards] == [(0, 50), (50, 100), (100, 150), (150, 200)]
    assert all(e.shape == (SHARD, 1, 64, 64) for _, e in shards)
    assert "catalog.parquet" in m.files
    assert reference.name == "test-first200"
    assert split_dir(TASK, "test", 10000, reference.parent.parent) == reference.parent / "test"


class _Interrupted(Exception):
    pass


def test_interrupted_build_is_not_a_split_and_resumes(reference, tmp_path, monkeypatch):
    calls = []
    real = build_module.render_shard

    def flaky(task, split, start, stop):
        calls.append(start)
        if start == 100:
            raise _Interrupted
        return real(task, split, start, stop)

    monkeypatch.setattr(build_module, "render_shard", flaky)
    with pytest.raises(_Interrupted):
        build_split(TASK, "test", N, home=tmp_path, shard_size=SHARD, progress=False)
    partial = tmp_path / "morphometry@1" / "test-first200.partial"
    assert sorted(p.name for p in (partial / "images").iterdir()) == ["shard-00000.npy", "shard-00001.npy"]
    with pytest.raises(SplitNotFoundError, match="not built"):
        load_split(TASK, "test", N, home=tmp_path)

    calls.clear()
    monkeypatch.setattr(build_module, "render_shard", real)
    monkeypatch.setattr(build_module, "render_shard", lambda *a: (calls.append(a[2]), real(*a))[1])
    folder = build_split(TASK, "test", N, home=tmp_path, shard_size=SHARD, progress=False)
    assert calls == [100, 150]  # only the missing shards were rendered
    assert not partial.exists()
    assert _file_hashes(folder) == _file_hashes(reference)


def test_leftover_partial_with_other_settings_is_discarded(reference, tmp_path):
    partial = tmp_path / "morphometry@1" / "test-first200.partial"
    (partial / "images").mkdir(parents=True)
    np.save(partial / "images" / "shard-00000.npy", np.zeros((SHARD, 1, 64, 64), np.float32))
    (partial / "build.json").write_text('{"shard_size": 3}')
    folder = build_split(TASK, "test", N, home=tmp_path, shard_size=SHARD, progress=False)
    assert _file_hashes(folder) == _file_hashes(reference)


def _copy(reference: Path, tmp_path: Path) -> Path:
    target = tmp_path / "morphometry@1" / reference.name
    shutil.copytree(reference, target)
    return target


def test_truncated_shard_is_reported(reference, tmp_path):
    folder = _copy(reference, tmp_path)
    shard = folder / "images" / "shard-00001.npy"
    shard.write_bytes(shard.read_bytes()[:-100])
    with pytest.raises(SplitCorruptedError, match=r"shard-00001\.npy.*truncated.*galbench generate"):
        load_split(TASK, "test", N, home=tmp_path)


def test_altered_shard_is_reported(reference, tmp_path):
    folder = _copy(reference, tmp_path)
    shard = folder / "images" / "shard-00002.npy"
    data = bytearray(shard.read_bytes())
    data[-5] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(SplitCorruptedError, match=r"shard-00002\.npy: sha256 differs"):
        load_split(TASK, "test", N, home=tmp_path)
    # Without hashing, the size check alone cannot see a same-size change; that is the
    # documented trade-off of verify=False.
    assert load_split(TASK, "test", N, home=tmp_path, verify=False).n == N


def test_missing_file_and_bad_manifest_are_reported(reference, tmp_path):
    folder = _copy(reference, tmp_path)
    (folder / "catalog.parquet").unlink()
    with pytest.raises(SplitCorruptedError, match=r"catalog\.parquet: file listed in the manifest is missing"):
        load_split(TASK, "test", N, home=tmp_path)
    (folder / MANIFEST_NAME).write_text("{not json")
    with pytest.raises(SplitCorruptedError, match="unreadable split manifest"):
        open_split(folder)


def test_split_from_another_task_file_is_stale(reference, tmp_path):
    folder = _copy(reference, tmp_path)
    manifest = json.loads((folder / MANIFEST_NAME).read_text())
    manifest["task_sha256"] = "0" * 64
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(SplitCorruptedError, match="different morphometry@1 task file"):
        open_split(folder)


def test_load_split_uses_a_larger_build_and_slices(reference, tmp_path):
    home = reference.parent.parent
    split = load_split(TASK, "test", 10, home=home)
    assert split.n == 10 and split.partial and split.root == reference
    assert split.images.shape == (10, 1, 64, 64)
    assert split.object_ids.tolist() == list(range(10))
    assert split.targets().shape == (10, 8)
    with pytest.raises(SplitNotFoundError, match="galbench generate morphometry@1 --split test --n 300"):
        load_split(TASK, "test", 300, home=home)
    with pytest.raises(ValueError, match="between 1 and 10000"):
        load_split(TASK, "test", 0, home=home)


def test_sharded_images_indexing(reference):
    split = open_split(reference)
    full = np.concatenate([np.load(p) for p in sorted((reference / "images").glob("*.npy"))])
    images = split.images
    assert len(images) == N and images.dtype == np.float32
    np.testing.assert_array_equal(np.asarray(images), full)
    np.testing.assert_array_equal(images[59], full[59])
    np.testing.assert_array_equal(images[-1], full[-1])
    np.testing.assert_array_equal(images[45:160:7], full[45:160:7])
    idx = np.array([199, 0, 50, 49, 150, 151, 50])  # across shard boundaries, repeated
    np.testing.assert_array_equal(images.take(idx), full[idx])
    with pytest.raises(IndexError):
        images[N]
    with pytest.raises(IndexError):
        images.take(np.array([3, N]))
    # Pickled by path: a DataLoader worker gets a handle, not a copy of the pixels.
    blob = pickle.dumps(images)
    assert len(blob) < 2000
    np.testing.assert_array_equal(pickle.loads(blob).take(idx), full[idx])


def test_torch_dataset(reference):
    torch = pytest.importorskip("torch")
    from torch.utils.data import DataLoader

    from galbench.data.datasets import GalaxyDataset

    home = reference.parent.parent
    ds = GalaxyDataset(TASK, "test", root=home, n=24)
    assert len(ds) == 24
    image, target = ds[3]
    assert image.shape == (1, 64, 64) and image.dtype == torch.float32
    np.testing.assert_allclose(target.numpy(), ds.split.targets()[3].astype(np.float32))
    batch = ds.__getitems__([5, 1, 20])
    torch.testing.assert_close(batch[2][0], ds[20][0])
    torch.testing.assert_close(batch[0][1], ds[5][1])

    def batches(workers: int) -> list:
        loader = DataLoader(
            ds, batch_size=5, shuffle=True, num_workers=workers,
            generator=torch.Generator().manual_seed(3),
        )
        return [(x.clone(), y.clone()) for x, y in loader]

    serial, parallel = batches(0), batches(2)
    assert len(serial) == 5
    for (xa, ya), (xb, yb) in zip(serial, parallel):
        torch.testing.assert_close(xa, xb)
        torch.testing.assert_close(ya, yb)

    flipped = GalaxyDataset(
        TASK, "test", root=home, n=24, transform=lambda x: x.flip(-1), target_transform=lambda y: y * 2
    )
    torch.testing.assert_close(flipped[4][0], ds[4][0].flip(-1))
    torch.testing.assert_close(flipped.__getitems__([4])[0][1], ds[4][1] * 2)


def test_export_fits(reference, tmp_path):
    from astropy.io import fits

    from galbench.data.export import export_fits

    split = open_split(reference)
    images_path, catalog_path = export_fits(split, tmp_path)
    with fits.open(images_path) as hdul:
        header, cube = hdul[0].header, hdul[0].data
        assert cube.shape == (N, 1, 64, 64)
        np.testing.assert_array_equal(cube.astype(np.float32), np.asarray(split.images))
        assert header["PIXSCALE"] == 0.06 and header["FILTER"] == "F160W"
        assert header["TASK"] == "morphometry@1" and header["NOBJ"] == N
        assert header["CONTENT"] == split.manifest.content_sha256
        assert header["MAGZP"] == pytest.approx(25.946)
    with fits.open(catalog_path) as hdul:
        table = hdul[1].data
        assert len(table) == N
        np.testing.assert_allclose(table["mag"], split.catalog["mag"])
        assert list(table["object_id"]) == list(range(N))
