"""Galaxy10 SDSS and Galaxy10 DECaLS (Leung & Bovy, astroNN): real galaxies in 10 classes.

Both are single HDF5 files (astroNN docs, ``galaxy10sdss.rst`` / ``galaxy10.rst``):

- **SDSS** ``Galaxy10.h5`` (210 MB): ``images`` uint8 ``[21785, 69, 69, 3]``, colour composites
  of SDSS g, r, i cutouts (424x424 cropped to 207x207, downscaled 3x); ``ans`` uint8 ``[21785]``.
- **DECaLS** ``Galaxy10_DECals.h5`` (2.54 GB): ``images`` uint8 ``[17736, 256, 256, 3]`` (g, r, z
  composites from the DESI Legacy Imaging Surveys); ``ans``; ``ra``, ``dec`` (deg), ``redshift``
  and ``pxscale`` (arcsec/pixel), each ``[17736]``.

Labels come from Galaxy Zoo volunteer votes; the two class lists differ (DECaLS dropped the
17-image "Disk, Edge-on, Boxy Bulge" class and added disturbed and merging galaxies).

:func:`load_galaxy10` returns a :class:`Galaxy10`: images as float32 ``[N, 3, H, W]`` (channels
first, the galbench convention) read from the file on demand, so the 3.5 GB of DECaLS pixels are
never loaded at once unless asked; labels, class names and a pandas catalog. Pixel values are
the file's 8-bit values 0-255 cast to float32, **not rescaled**: they are display colours of a
composite, not calibrated fluxes. The channels are the file's three colour planes in order; the
file does not say which band went to which plane (the usual composite puts the reddest band in
the first).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from galbench.errors import GalbenchError, UnknownNameError

__all__ = [
    "GALAXY10",
    "Galaxy10",
    "Galaxy10FormatError",
    "Galaxy10Images",
    "Galaxy10Layout",
    "load_galaxy10",
]


class Galaxy10FormatError(GalbenchError, ValueError):
    """A Galaxy10 file is missing, not HDF5, or does not have the expected datasets/shapes."""


@dataclass(frozen=True)
class Galaxy10Layout:
    """What one Galaxy10 file holds (astroNN documentation)."""

    which: str
    title: str
    key: str  # galbench.data.download key
    filename: str
    image_size: int  # H = W, pixels
    bands: tuple[str, ...]
    class_names: tuple[str, ...]
    n_published: int
    extra_columns: tuple[str, ...] = ()
    extra_units: dict[str, str] = field(default_factory=dict)

    @property
    def expected_format(self) -> str:
        """The layout, as error messages show it."""
        s = self.image_size
        bands = ", ".join(self.bands)
        lines = [
            (f"{self.title} ({self.filename}) is an HDF5 file with these datasets "
             f"(N = {self.n_published} in the published file):"),
            f"  images    uint8 [N, {s}, {s}, 3]  colour composites of {bands}, channels last",
            "  ans       integer [N]          class 0-9",
        ]
        for col in self.extra_columns:
            lines.append(f"  {col:<9} number [N]           {self.extra_units[col]}")
        return "\n".join(lines)


GALAXY10: dict[str, Galaxy10Layout] = {
    "sdss": Galaxy10Layout(
        which="sdss",
        title="Galaxy10 SDSS",
        key="galaxy10/Galaxy10.h5",
        filename="Galaxy10.h5",
        image_size=69,
        bands=("g", "r", "i"),
        class_names=(
            "Disk, Face-on, No Spiral",
            "Smooth, Completely round",
            "Smooth, in-between round",
            "Smooth, Cigar shaped",
            "Disk, Edge-on, Rounded Bulge",
            "Disk, Edge-on, Boxy Bulge",
            "Disk, Edge-on, No Bulge",
            "Disk, Face-on, Tight Spiral",
            "Disk, Face-on, Medium Spiral",
            "Disk, Face-on, Loose Spiral",
        ),
        n_published=21785,
    ),
    "decals": Galaxy10Layout(
        which="decals",
        title="Galaxy10 DECaLS",
        key="galaxy10/Galaxy10_DECals.h5",
        filename="Galaxy10_DECals.h5",
        image_size=256,
        bands=("g", "r", "z"),
        # The astroNN docs' names (its galaxy10.py lookup table mislabels class 3).
        class_names=(
            "Disturbed Galaxies",
            "Merging Galaxies",
            "Round Smooth Galaxies",
            "In-between Round Smooth Galaxies",
            "Cigar Shaped Smooth Galaxies",
            "Barred Spiral Galaxies",
            "Unbarred Tight Spiral Galaxies",
            "Unbarred Loose Spiral Galaxies",
            "Edge-on Galaxies without Bulge",
            "Edge-on Galaxies with Bulge",
        ),
        n_published=17736,
        extra_columns=("ra", "dec", "redshift", "pxscale"),
        extra_units={"ra": "right ascension, deg", "dec": "declination, deg",
                     "redshift": "redshift", "pxscale": "pixel scale, arcsec/pixel"},
    ),
}


def _layout(which: str) -> Galaxy10Layout:
    key = str(which).lower()
    if key not in GALAXY10:
        raise UnknownNameError(
            f"unknown Galaxy10 variant {which!r}; expected one of {sorted(GALAXY10)}"
        )
    return GALAXY10[key]


def _h5py():
    try:
        import h5py
    except ImportError as exc:  # pragma: no cover - h5py is a dependency
        raise ImportError("reading Galaxy10 needs h5py: `pip install h5py`") from exc
    return h5py


class Galaxy10Images:
    """The images of a Galaxy10 file as float32 ``[N, 3, H, W]`` (values 0-255, unscaled),
    read from the HDF5 file only when indexed.

    Index it like an array along the first axis (an int, a slice, an array of ints in any
    order, with repeats, or a boolean mask of length N); ``iter_batches`` walks the file in
    order. ``np.asarray(images)`` reads everything (SDSS 1.2 GB, DECaLS 14 GB as float32).
    The file handle is opened lazily per process and dropped when pickled, so the object can
    be sent to DataLoader workers.
    """

    dtype = np.dtype(np.float32)
    ndim = 4

    def __init__(self, path: str | os.PathLike[str], n: int, image_size: int) -> None:
        self.path = Path(path)
        self.shape = (int(n), 3, int(image_size), int(image_size))
        self._file: Any = None
        self._pid: int | None = None

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        return f"Galaxy10Images({str(self.path)!r}, shape={self.shape}, dtype=float32)"

    def _dataset(self) -> Any:
        if self._file is None or self._pid != os.getpid():
            self._file = _h5py().File(self.path, "r")
            self._pid = os.getpid()
        return self._file["images"]

    def close(self) -> None:
        """Close the HDF5 handle (reopened by the next read)."""
        if self._file is not None and self._pid == os.getpid():
            self._file.close()
        self._file = None
        self._pid = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_file"] = None
        state["_pid"] = None
        return state

    @staticmethod
    def _to_float(raw: np.ndarray) -> np.ndarray:
        """uint8 [k, H, W, 3] -> float32 [k, 3, H, W], contiguous."""
        out = np.empty((raw.shape[0], raw.shape[3], raw.shape[1], raw.shape[2]), np.float32)
        out[...] = raw.transpose(0, 3, 1, 2)
        return out

    def _rows(self, index: Any) -> np.ndarray:
        """Normalise a first-axis index to an int64 array of row numbers."""
        n = len(self)
        idx = np.asarray(index)
        if idx.ndim == 1 and idx.size == 0:  # [] comes as float64
            return np.empty(0, np.int64)
        if idx.dtype == bool:
            if idx.shape != (n,):
                raise IndexError(f"{self.path}: a boolean mask must have shape ({n},), "
                                 f"got {idx.shape}")
            return np.flatnonzero(idx)
        if idx.dtype.kind not in "iu" or idx.ndim != 1:
            raise IndexError(f"{self.path}: index the images with an int, a slice, a 1-D "
                             f"array of ints or a boolean mask, got {index!r}")
        idx = idx.astype(np.int64)
        bad = (idx < -n) | (idx >= n)
        if bad.any():
            raise IndexError(f"{self.path}: image index {int(idx[bad][0])} is out of range "
                             f"for {n} images")
        return np.where(idx < 0, idx + n, idx)

    def __getitem__(self, index: Any) -> np.ndarray:
        if isinstance(index, tuple):
            first, rest = (index[0], index[1:]) if index else (slice(None), ())
            out = self[first]
            if not rest:
                return out
            return out[rest] if np.ndim(out) == 3 else out[(slice(None), *rest)]
        n = len(self)
        if isinstance(index, (int, np.integer)):
            i = int(index)
            if not -n <= i < n:
                raise IndexError(f"{self.path}: image index {i} is out of range for {n} images")
            i %= n
            return self._to_float(self._dataset()[i : i + 1])[0]
        if isinstance(index, slice):
            start, stop, step = index.indices(n)
            if step == 1:
                return self._to_float(self._dataset()[start:max(start, stop)])
            rows = np.arange(start, stop, step, dtype=np.int64)
        else:
            rows = self._rows(index)
        if rows.size == 0:
            return np.empty((0, *self.shape[1:]), np.float32)
        # h5py reads a sorted, repeat-free selection; put the rows back in the asked order.
        unique, inverse = np.unique(rows, return_inverse=True)
        return self._to_float(self._dataset()[unique])[inverse.reshape(-1)]

    def iter_batches(self, batch_size: int = 256) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(object_ids [b], images [b, 3, H, W])`` in file order, ``batch_size`` at a
        time, holding one batch in memory."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        for start in range(0, len(self), batch_size):
            stop = min(start + batch_size, len(self))
            yield np.arange(start, stop, dtype=np.int64), self[start:stop]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self[:]
        return out if dtype is None else out.astype(dtype, copy=False)


@dataclass(frozen=True, eq=False)
class Galaxy10:
    """One Galaxy10 file, opened.

    Attributes
    ----------
    images:
        float32 ``[N, 3, H, W]``, values 0-255 (unscaled 8-bit colours), read on demand.
    labels:
        int64 ``[N]``, class 0-9.
    class_names:
        The 10 class names, index = label.
    catalog:
        One row per image: ``object_id`` (the row index in the file), ``class``,
        ``class_name`` and, for DECaLS, ``ra``, ``dec`` (deg), ``redshift``, ``pxscale``
        (arcsec/pixel).
    bands:
        The bands the colour composites were made from.
    """

    which: str
    path: Path
    images: Galaxy10Images
    labels: np.ndarray
    class_names: tuple[str, ...]
    catalog: pd.DataFrame
    bands: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def layout(self) -> Galaxy10Layout:
        return GALAXY10[self.which]

    def close(self) -> None:
        self.images.close()

    def __enter__(self) -> Galaxy10:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _format_error(path: Path, layout: Galaxy10Layout, problem: str) -> Galaxy10FormatError:
    hint = ""
    for other in GALAXY10.values():
        if other is not layout and f"{other.image_size}, {other.image_size}, 3]" in problem:
            hint = f" (this looks like {other.title}: use which={other.which!r})"
    return Galaxy10FormatError(
        f"{path}: {problem}{hint}; not a valid {layout.title} file.\nExpected layout: "
        f"{layout.expected_format}"
    )


def _dataset(f: Any, name: str, path: Path, layout: Galaxy10Layout) -> Any:
    h5py = _h5py()
    if name not in f:
        raise _format_error(path, layout, f"no dataset {name!r} (the file holds "
                                          f"{sorted(f.keys())})")
    ds = f[name]
    if not isinstance(ds, h5py.Dataset):
        raise _format_error(path, layout, f"{name!r} is an HDF5 {type(ds).__name__}, not a dataset")
    return ds


def _read_layout(f: Any, path: Path, layout: Galaxy10Layout) -> tuple[np.ndarray,
                                                                        dict[str, np.ndarray]]:
    """Check every dataset of ``f`` against ``layout``; the labels and the extra columns."""
    images = _dataset(f, "images", path, layout)
    s = layout.image_size
    shape = tuple(images.shape)
    if len(shape) != 4 or shape[1:] != (s, s, 3) or images.dtype != np.uint8:
        got = f"[{', '.join(map(str, shape))}]"
        raise _format_error(path, layout, f"'images' is {images.dtype} {got}, expected uint8 "
                                          f"[N, {s}, {s}, 3]")
    n = shape[0]
    if n == 0:
        raise _format_error(path, layout, "'images' holds no image")
    ans = _dataset(f, "ans", path, layout)
    if ans.shape != (n,) or ans.dtype.kind not in "iu":
        raise _format_error(path, layout, f"'ans' is {ans.dtype} {list(ans.shape)}, expected "
                                          f"integer [{n}] (one class per image)")
    labels = np.asarray(ans[()], dtype=np.int64)
    bad = (labels < 0) | (labels >= len(layout.class_names))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise _format_error(path, layout, f"'ans'[{i}] = {labels[i]}, expected a class 0-9 "
                                          f"({int(bad.sum())} such labels)")
    extras: dict[str, np.ndarray] = {}
    for col in layout.extra_columns:
        ds = _dataset(f, col, path, layout)
        if ds.shape != (n,) or ds.dtype.kind not in "fiu":
            raise _format_error(path, layout, f"{col!r} is {ds.dtype} {list(ds.shape)}, "
                                              f"expected numbers [{n}] ({layout.extra_units[col]})")
        extras[col] = np.asarray(ds[()], dtype=np.float64)
    return labels, extras


def load_galaxy10(which: str, path: str | os.PathLike[str] | None = None, *,
                  home: str | os.PathLike[str] | None = None,
                  mirror: str | os.PathLike[str] | None = None,
                  progress: bool = True) -> Galaxy10:
    """Open Galaxy10 ``which`` (``"sdss"`` or ``"decals"``).

    With ``path=None`` the file is fetched (and sha256-verified) by
    :func:`galbench.data.download.fetch` into ``<data home>/downloads/galaxy10/``, from
    ``mirror`` / ``$GALBENCH_MIRROR`` or Zenodo; a ``path`` you give is used as it is, its
    layout checked but not its checksum (``galbench.data.download.verify_file`` does that).

    Raises :class:`Galaxy10FormatError` naming the file, the missing or ill-shaped dataset and
    the expected layout.
    """
    layout = _layout(which)
    if path is None:
        from galbench.data.download import fetch

        path = fetch(layout.key, home=home, mirror=mirror, progress=progress)
    path = Path(path)
    if not path.is_file():
        raise Galaxy10FormatError(
            f"{path}: no such file. Pass path=None to download {layout.title} (key "
            f"{layout.key!r}), or the path of {layout.filename}."
        )
    h5py = _h5py()
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise _format_error(path, layout, f"cannot be opened as HDF5 ({exc})") from None
    with f:
        labels, extras = _read_layout(f, path, layout)
    n = len(labels)
    catalog = pd.DataFrame({
        "object_id": np.arange(n, dtype=np.int64),
        "class": labels,
        "class_name": pd.Categorical.from_codes(labels, categories=list(layout.class_names)),
        **extras,
    })
    return Galaxy10(
        which=layout.which,
        path=path,
        images=Galaxy10Images(path, n, layout.image_size),
        labels=labels,
        class_names=layout.class_names,
        catalog=catalog,
        bands=layout.bands,
    )
