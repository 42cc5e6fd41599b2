"""galbench.real.galaxy10 on tiny synthetic files with the astroNN Galaxy10 layout."""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import h5py
import numpy as np
import pytest

from galbench.data import download
from galbench.data.download import RemoteFile
from galbench.errors import UnknownNameError
from galbench.real import GALAXY10, Galaxy10FormatError, load_galaxy10

SIZE = {"sdss": 69, "decals": 256}


def write_galaxy10(path: Path, which: str, n: int = 5, *, seed: int = 0,
                   drop: tuple[str, ...] = (), replace: dict | None = None) -> dict:
    """A Galaxy10-like HDF5 file with ``n`` random images; returns what it wrote."""
    rng = np.random.default_rng(seed)
    s = SIZE[which]
    data = {
        "images": rng.integers(0, 256, (n, s, s, 3), dtype=np.uint8),
        "ans": (np.arange(n) * 3 % 10).astype(np.uint8),
    }
    if which == "decals":
        data.update(ra=rng.uniform(0, 360, n), dec=rng.uniform(-20, 30, n),
                    redshift=rng.uniform(0.01, 0.2, n), pxscale=np.full(n, 0.262))
    data.update(replace or {})
    with h5py.File(path, "w") as f:
        for name, value in data.items():
            if name not in drop:
                f[name] = value
    return data


def test_sdss_images_labels_classes_catalog(tmp_path: Path) -> None:
    path = tmp_path / "Galaxy10.h5"
    src = write_galaxy10(path, "sdss", n=5)
    with load_galaxy10("sdss", path) as g:
        assert len(g) == 5 and g.which == "sdss" and g.bands == ("g", "r", "i")
        assert g.images.shape == (5, 3, 69, 69) and g.images.dtype == np.float32
        every = g.images[:]
        assert every.shape == (5, 3, 69, 69) and every.dtype == np.float32
        assert every.flags.c_contiguous
        # Channels first, values the file's 0-255 unscaled.
        np.testing.assert_array_equal(every, src["images"].transpose(0, 3, 1, 2))
        assert every[2, 1, 10, 20] == float(src["images"][2, 10, 20, 1])
        assert g.labels.dtype == np.int64
        np.testing.assert_array_equal(g.labels, [0, 3, 6, 9, 2])
        assert len(g.class_names) == 10
        assert g.class_names[0] == "Disk, Face-on, No Spiral"
        assert g.class_names[5] == "Disk, Edge-on, Boxy Bulge"
        assert g.class_names[9] == "Disk, Face-on, Loose Spiral"
        assert list(g.catalog.columns) == ["object_id", "class", "class_name"]
        np.testing.assert_array_equal(g.catalog["object_id"], np.arange(5))
        np.testing.assert_array_equal(g.catalog["class"], g.labels)
        assert g.catalog["class_name"].tolist() == [g.class_names[k] for k in (0, 3, 6, 9, 2)]


def test_decals_extra_columns_and_class_names(tmp_path: Path) -> None:
    path = tmp_path / "Galaxy10_DECals.h5"
    src = write_galaxy10(path, "decals", n=3)
    with load_galaxy10("DECaLS", path) as g:
        assert g.which == "decals" and g.bands == ("g", "r", "z")
        assert g.images.shape == (3, 3, 256, 256)
        np.testing.assert_array_equal(g.images[1], src["images"][1].transpose(2, 0, 1))
        assert g.class_names[0] == "Disturbed Galaxies"
        assert g.class_names[3] == "In-between Round Smooth Galaxies"
        assert g.class_names[9] == "Edge-on Galaxies with Bulge"
        assert "Disk, Edge-on, Boxy Bulge" not in g.class_names
        assert list(g.catalog.columns) == ["object_id", "class", "class_name", "ra", "dec",
                                           "redshift", "pxscale"]
        for col in ("ra", "dec", "redshift", "pxscale"):
            assert g.catalog[col].dtype == np.float64
            np.testing.assert_array_equal(g.catalog[col], src[col])
        assert g.catalog["class_name"].tolist() == [
            "Disturbed Galaxies", "In-between Round Smooth Galaxies",
            "Unbarred Tight Spiral Galaxies",
        ]


def test_lazy_indexing(tmp_path: Path) -> None:
    path = tmp_path / "Galaxy10.h5"
    src = write_galaxy10(path, "sdss", n=7)
    want = src["images"].transpose(0, 3, 1, 2).astype(np.float32)
    g = load_galaxy10("sdss", path)
    images = g.images
    np.testing.assert_array_equal(images[-1], want[6])
    np.testing.assert_array_equal(images[np.int64(2)], want[2])
    np.testing.assert_array_equal(images[1:6:2], want[1:6:2])
    np.testing.assert_array_equal(images[5:2], want[5:2])
    np.testing.assert_array_equal(images[[4, 0, 4, -1]], want[[4, 0, 4, -1]])  # any order
    mask = np.array([True, False, False, True, False, False, True])
    np.testing.assert_array_equal(images[mask], want[mask])
    assert images[[]].shape == (0, 3, 69, 69)
    np.testing.assert_array_equal(images[3, 0], want[3, 0])
    np.testing.assert_array_equal(images[2:4, 1], want[2:4, 1])
    np.testing.assert_array_equal(np.asarray(images), want)
    with pytest.raises(IndexError, match="out of range for 7 images"):
        images[7]
    with pytest.raises(IndexError, match="out of range"):
        images[[0, -8]]
    with pytest.raises(IndexError, match="boolean mask must have shape"):
        images[mask[:3]]

    batches = list(images.iter_batches(batch_size=3))
    assert [len(ids) for ids, _ in batches] == [3, 3, 1]
    np.testing.assert_array_equal(np.concatenate([ids for ids, _ in batches]), np.arange(7))
    np.testing.assert_array_equal(np.concatenate([b for _, b in batches]), want)

    # DataLoader workers get a pickled copy that reopens the file itself.
    clone = pickle.loads(pickle.dumps(images))
    np.testing.assert_array_equal(clone[[5, 1]], want[[5, 1]])
    clone.close()
    g.close()
    np.testing.assert_array_equal(images[0], want[0])  # reopens after close
    g.close()


def _message(tmp_path: Path, which: str, **kwargs) -> str:
    path = tmp_path / "bad.h5"
    write_galaxy10(path, kwargs.pop("as_", which), n=4, **kwargs)
    with pytest.raises(Galaxy10FormatError) as info:
        load_galaxy10(which, path)
    msg = str(info.value)
    assert str(path) in msg and "Expected layout" in msg
    return msg


def test_malformed_files_say_what_and_where(tmp_path: Path) -> None:
    msg = _message(tmp_path, "sdss", drop=("ans",))
    assert "no dataset 'ans'" in msg and "['images']" in msg
    assert "images    uint8 [N, 69, 69, 3]" in msg and "ans       integer [N]" in msg

    rng = np.random.default_rng(1)
    msg = _message(tmp_path, "sdss",
                   replace={"images": rng.integers(0, 256, (4, 3, 69, 69), dtype=np.uint8)})
    assert "'images' is uint8 [4, 3, 69, 69], expected uint8 [N, 69, 69, 3]" in msg

    msg = _message(tmp_path, "sdss", replace={"images": np.zeros((4, 69, 69, 3), np.float32)})
    assert "'images' is float32" in msg

    msg = _message(tmp_path, "sdss", replace={"ans": np.zeros(3, np.uint8)})
    assert "'ans' is uint8 [3], expected integer [4]" in msg

    msg = _message(tmp_path, "sdss", replace={"ans": np.array([0, 1, 10, 2], np.uint8)})
    assert "'ans'[2] = 10, expected a class 0-9" in msg

    msg = _message(tmp_path, "decals", drop=("redshift",))
    assert "no dataset 'redshift'" in msg
    assert "redshift  number [N]" in msg and "[N, 256, 256, 3]" in msg

    msg = _message(tmp_path, "decals", replace={"ra": np.array(["a", "b", "c", "d"], "S1")})
    assert "'ra' is |S1 [4], expected numbers [4] (right ascension, deg)" in msg

    # The wrong variant for the file: say which one it looks like.
    msg = _message(tmp_path, "decals", as_="sdss")
    assert "(this looks like Galaxy10 SDSS: use which='sdss')" in msg

    text = tmp_path / "not.h5"
    text.write_text("not hdf5")
    with pytest.raises(Galaxy10FormatError, match="cannot be opened as HDF5"):
        load_galaxy10("sdss", text)
    with pytest.raises(Galaxy10FormatError, match="no such file.*path=None"):
        load_galaxy10("sdss", tmp_path / "missing.h5")
    with pytest.raises(UnknownNameError, match="unknown Galaxy10 variant 'hubble'"):
        load_galaxy10("hubble", text)


def test_layouts_match_the_download_table() -> None:
    for layout in GALAXY10.values():
        entry = download.remote_file(layout.key)
        assert entry.url.endswith("/" + layout.filename)
        assert entry.sha256 is not None
    assert GALAXY10["sdss"].n_published == 21785 and GALAXY10["decals"].n_published == 17736


def test_path_none_fetches_through_the_mirror(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    mirror = tmp_path / "mirror"
    (mirror / "galaxy10").mkdir(parents=True)
    src = write_galaxy10(mirror / "galaxy10" / "Galaxy10.h5", "sdss", n=4, seed=3)
    data = (mirror / "galaxy10" / "Galaxy10.h5").read_bytes()
    real = download.remote_file("galaxy10/Galaxy10.h5")
    fake = RemoteFile(key=real.key, url=real.url, sha256=hashlib.sha256(data).hexdigest(),
                      size=len(data), license=real.license)
    monkeypatch.setitem(download._table(), real.key, fake)
    monkeypatch.setenv(download.MIRROR_ENV, str(mirror))
    home = tmp_path / "home"
    with load_galaxy10("sdss", home=home, progress=False) as g:
        assert g.path == home / "downloads" / "galaxy10" / "Galaxy10.h5"
        np.testing.assert_array_equal(g.images[3], src["images"][3].transpose(2, 0, 1))
