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

:class:`Galaxy10Recipe` (recipe ``"galaxy10"``) cuts the real splits of ``galaxy10@1``
(``tasks/galaxy10.toml``) from the two files: rows taken in a committed order
(``tasks/galaxy10/*_rows.txt``, pinned by sha256), classes mapped onto the six classes both
files share, SDSS stamps centre-cropped and DECaLS stamps 4x4 block-averaged to ``[3, 64, 64]``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from galbench.errors import GalbenchError, UnknownNameError
from galbench.sim.recipes import RECIPES, RealRecipe, RenderedObject

__all__ = [
    "GALAXY10",
    "GALAXY10_RECIPE",
    "Galaxy10",
    "Galaxy10FormatError",
    "Galaxy10Images",
    "Galaxy10Layout",
    "Galaxy10Recipe",
    "block_mean",
    "centre_crop",
    "class_lookup",
    "load_galaxy10",
    "read_row_order",
    "split_rows",
    "stratified_order",
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


# --------------------------------------------------------------------------------------------
# galaxy10@1: the real splits cut from the two files (tasks/galaxy10.toml)

#: The task-level recipe name (``[simulation] recipe``).
GALAXY10_RECIPE = "galaxy10"
#: How a stamp of the file becomes the task's ``[3, H, W]`` image (``simulation.params.images``).
IMAGE_STEPS = ("centre_crop", "block_mean")
_SPLIT_PARAMS = {"order", "order_sha256", "skip", "stratify"}


def centre_crop(image: np.ndarray, size: int) -> np.ndarray:
    """The central ``size x size`` pixels of ``[C, S, S]``: rows and columns ``(S - size) // 2``
    on, so the file's central pixel ``S // 2`` lands on ``size // 2`` (69 -> 64: pixels 2..65)."""
    s = image.shape[-1]
    if size > s:
        raise ValueError(f"cannot crop a {s}x{s} image to {size}x{size}")
    start = (s - size) // 2
    return image[..., start:start + size, start:start + size]


def block_mean(image: np.ndarray, size: int) -> np.ndarray:
    """``[C, S, S]`` -> ``[C, size, size]``: the mean of each ``f x f`` block, ``f = S / size``
    (which must be whole). Computed in float64, so for 8-bit values it is exact in float32."""
    c, s = image.shape[0], image.shape[-1]
    if s % size:
        raise ValueError(f"a {s}x{s} image has no whole {size}x{size} grid of blocks")
    f = s // size
    blocks = np.asarray(image, dtype=np.float64).reshape(c, size, f, size, f)
    return blocks.mean(axis=(2, 4))


def read_row_order(path: str | os.PathLike[str], sha256: str | None = None) -> np.ndarray:
    """A committed row-order file (``tasks/galaxy10/*_rows.txt``): ``#`` comment lines, then one
    0-based row index per line. With ``sha256`` the file's bytes must hash to it."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise GalbenchError(f"{path}: cannot read the Galaxy10 row order: {exc}") from None
    if sha256 is not None:
        import hashlib

        digest = hashlib.sha256(data).hexdigest()
        if digest != sha256:
            raise GalbenchError(
                f"{path}: the row order file has sha256 {digest}, but the task pins {sha256}; "
                "the split would not be the published one (a changed order is a new task version)"
            )
    rows = []
    for number, line in enumerate(data.decode("ascii").splitlines(), start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        if not text.isdigit():
            raise GalbenchError(f"{path}, line {number}: expected a row index, got {text!r}")
        rows.append(int(text))
    return np.asarray(rows, dtype=np.int64)


def stratified_order(labels: np.ndarray) -> np.ndarray:
    """Positions ``0..n-1`` reordered so that every prefix is class-stratified.

    The j-th member (j = 0, 1, ..., in position order) of a class with ``n_c`` members gets the
    key ``j / n_c`` (an exact fraction); positions are sorted by ``(key, position)``. The first
    objects are one of each class; a prefix of ``k`` holds each class ``k n_c / n`` give or take
    fewer objects than there are classes.
    """
    from fractions import Fraction

    labels = np.asarray(labels)
    counts: dict[int, int] = {}
    for label in labels.tolist():
        counts[label] = counts.get(label, 0) + 1
    seen: dict[int, int] = {}
    keys = []
    for position, label in enumerate(labels.tolist()):
        j = seen.get(label, 0)
        seen[label] = j + 1
        keys.append((Fraction(j, counts[label]), position))
    return np.asarray([position for _, position in sorted(keys)], dtype=np.int64)


def class_lookup(task: Any, which: str) -> np.ndarray:
    """``[10]`` int64: the task class (index into ``simulation.params.classes``) of each Galaxy10
    class of file ``which``, -1 for a dropped class (``simulation.params.class_map.<which>``)."""
    layout = _layout(which)
    params = task.simulation.params
    where = f"{task.id}: simulation.params.class_map.{layout.which}"
    classes = list(params.get("classes", ()))
    table = params.get("class_map", {}).get(layout.which)
    if not isinstance(table, Mapping) or not table:
        raise GalbenchError(f"{where}: missing; expected {{task class = [Galaxy10 classes]}}")
    lookup = np.full(len(layout.class_names), -1, dtype=np.int64)
    for name, members in table.items():
        if name not in classes:
            raise GalbenchError(f"{where}: {name!r} is not one of the task's classes {classes}")
        for k in members:
            if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k < len(lookup):
                raise GalbenchError(f"{where}.{name}: {k!r} is not a Galaxy10 class 0-9")
            if lookup[k] >= 0:
                raise GalbenchError(f"{where}: Galaxy10 class {k} ({layout.class_names[k]}) is "
                                    f"mapped twice")
            lookup[k] = classes.index(name)
    return lookup


def split_rows(order: np.ndarray, mapped: np.ndarray, skip: int, n: int, *,
               stratify: bool = False, where: str = "split") -> np.ndarray:
    """The file rows of a split, in split order: the rows of ``order`` whose mapped class
    ``mapped[row]`` is not -1, from the ``skip``-th such row on, ``n`` of them; with
    ``stratify`` reordered by :func:`stratified_order` of their classes."""
    kept = order[mapped[order] >= 0]
    if skip < 0 or skip + n > len(kept):
        raise GalbenchError(
            f"{where}: needs mapped rows {skip}..{skip + n - 1} of the row order, but the file "
            f"has {len(kept)} rows of the task's classes"
        )
    rows = kept[skip:skip + n]
    if stratify:
        rows = rows[stratified_order(mapped[rows])]
    return rows


def _task_dir(task: Any) -> Path:
    """Where a task's companion files live: its file's folder, else the shipped task folder."""
    source = Path(task.source) if task.source else None
    if source is not None and source.is_file():
        return source.parent
    from galbench.tasks import builtin_task_dir

    return builtin_task_dir()


@RECIPES.register(GALAXY10_RECIPE)
class Galaxy10Recipe(RealRecipe):
    """galaxy10@1's recipe: object ``i`` of a split is row ``rows[i]`` of one Galaxy10 file.

    The split names one source (a Galaxy10 file key of ``remote_files.toml``; which file it is
    picks the class map and the image step); its ``params``: ``order`` (a row-order file, relative
    to the task file's folder), ``order_sha256``, ``skip`` and optional ``stratify`` (see
    :func:`split_rows`). Images are ``[3, H, W]`` float32, 0-255; nothing is random, the seed is
    unused.

    Catalog: ``label`` (task class), ``source_row`` (row in the file), ``source_class`` (the
    file's Galaxy10 class), ``redshift``, ``ra``, ``dec`` (deg) and ``pixel_scale_arcsec`` (the
    file's pxscale times the block size) where the file has them, else NaN (SDSS), and
    ``mean_pixel`` (mean of the output stamp, 0-255).
    """

    columns: ClassVar[Mapping[str, str]] = {
        "label": "int64",
        "source_row": "int64",
        "source_class": "int64",
        "redshift": "float64",
        "ra": "float64",
        "dec": "float64",
        "pixel_scale_arcsec": "float64",
        "mean_pixel": "float64",
    }
    #: Read-ahead window (objects) and HDF5 read size (rows); caching only, never the output.
    READ_AHEAD_MIN: ClassVar[int] = 16
    READ_AHEAD_MAX: ClassVar[int] = 1024
    ROWS_PER_READ: ClassVar[int] = 64

    def __init__(self, task: Any, split: str | None = None,
                 sources: Mapping[str, Any] | None = None) -> None:
        super().__init__(task, split, sources)
        keys = {layout.key: layout for layout in GALAXY10.values()}
        if len(self.spec.sources) != 1 or self.spec.sources[0] not in keys:
            raise GalbenchError(f"{self.where}: sources must be one Galaxy10 file, one of "
                                f"{sorted(keys)}; got {list(self.spec.sources)}")
        key = self.spec.sources[0]
        self.layout = keys[key]
        params = dict(self.params)
        unknown = set(params) - _SPLIT_PARAMS
        missing = {"order", "order_sha256", "skip"} - set(params)
        if unknown or missing:
            raise GalbenchError(f"{self.where}: params {sorted(params)}; expected order, "
                                f"order_sha256, skip and optionally stratify")
        channels, height, width = task.image_shape
        if channels != 3 or height != width:
            raise GalbenchError(f"{self.where}: image shape {list(task.image_shape)}; Galaxy10 "
                                "stamps are [3, H, H]")
        self.size = height
        step = task.simulation.params.get("images", {}).get(self.layout.which)
        if step not in IMAGE_STEPS:
            raise GalbenchError(f"{task.id}: simulation.params.images.{self.layout.which} is "
                                f"{step!r}; expected one of {IMAGE_STEPS}")
        self.step = step
        s = self.layout.image_size
        if (step == "centre_crop" and s < self.size) or (step == "block_mean" and s % self.size):
            raise GalbenchError(f"{task.id}: {step} cannot make {self.size}x{self.size} stamps "
                                f"from {self.layout.title}'s {s}x{s}")
        self.block = s // self.size if step == "block_mean" else 1
        self.class_lookup = class_lookup(task, self.layout.which)

        self.data = load_galaxy10(self.layout.which, self.sources[key])
        order_file = str(params["order"])
        parts = order_file.split("/")
        if order_file.startswith("/") or any(part in ("", ".", "..") for part in parts):
            raise GalbenchError(f"{self.where}: params.order {order_file!r} must be a path "
                                "relative to the task file's folder, e.g. 'galaxy10/sdss_rows.txt'")
        skip, stratify = params["skip"], params.get("stratify", False)
        if isinstance(skip, bool) or not isinstance(skip, int) or not isinstance(stratify, bool):
            raise GalbenchError(f"{self.where}: params.skip must be a whole number and "
                                f"params.stratify true or false, got {skip!r} and {stratify!r}")
        order_path = _task_dir(task).joinpath(*parts)
        order = read_row_order(order_path, params["order_sha256"])
        n_rows = len(self.data)
        if len(order) != n_rows or not np.array_equal(np.sort(order), np.arange(n_rows)):
            raise GalbenchError(
                f"{order_path}: not a permutation of the {n_rows} rows of "
                f"{self.sources[key]} ({self.layout.title}, {len(order)} rows listed)"
            )
        self.mapped = self.class_lookup[self.data.labels]
        self.rows = split_rows(order, self.mapped, skip, self.spec.n, stratify=stratify,
                               where=self.where)
        catalog = self.data.catalog
        self._extra = {
            col: catalog[col].to_numpy(np.float64) if col in catalog else None
            for col in ("redshift", "ra", "dec", "pxscale")
        }
        self._stamps: dict[int, np.ndarray] = {}
        self._window = 0
        self._window_end = -1

    def stamp(self, raw: np.ndarray) -> np.ndarray:
        """The task's ``[3, H, W]`` float32 stamp of a file image ``[3, S, S]``."""
        if self.step == "centre_crop":
            out = centre_crop(raw, self.size)
        else:
            out = block_mean(raw, self.size)
        return np.ascontiguousarray(out, dtype=np.float32)

    def image(self, row: int) -> np.ndarray:
        """The task's ``[3, H, W]`` float32 stamp of file row ``row``."""
        return self.stamp(self.data.images[int(row)])

    def _read_ahead(self, index: int) -> None:
        """Cache the stamps of objects ``index, index + 1, ...``: a window that doubles while the
        split is read in order (up to :attr:`READ_AHEAD_MAX`), read in row order
        :attr:`ROWS_PER_READ` rows at a time. The published files are gzip-compressed HDF5; if
        their chunks span many rows (h5py's default chunking would give DECaLS (555, 16, 16, 1)
        chunks), reading objects one by one in split order would decompress a chunk per image."""
        if index == self._window_end:
            self._window = min(2 * self._window, self.READ_AHEAD_MAX)
        else:
            self._window = self.READ_AHEAD_MIN
        stop = min(index + self._window, len(self.rows))
        rows = self.rows[index:stop]
        by_row = np.argsort(rows, kind="stable")
        self._stamps = {}
        for k in range(0, len(by_row), self.ROWS_PER_READ):
            pick = by_row[k:k + self.ROWS_PER_READ]
            for j, raw in zip(pick.tolist(), self.data.images[rows[pick]]):
                self._stamps[index + j] = self.stamp(raw)
        self._window_end = stop

    def render_index(self, seed: np.random.SeedSequence, index: int) -> RenderedObject:
        if not 0 <= index < len(self.rows):
            raise IndexError(f"{self.where}: object {index} is outside the split's "
                             f"{len(self.rows)} objects")
        row = int(self.rows[index])
        if index not in self._stamps:
            self._read_ahead(index)
        image = self._stamps[index]

        def column(name: str) -> float:
            values = self._extra[name]
            return float("nan") if values is None else float(values[row])

        truth = {
            "label": int(self.mapped[row]),
            "source_row": row,
            "source_class": int(self.data.labels[row]),
            "redshift": column("redshift"),
            "ra": column("ra"),
            "dec": column("dec"),
            "pixel_scale_arcsec": column("pxscale") * self.block,
            "mean_pixel": float(image.mean(dtype=np.float64)),
        }
        return RenderedObject(image=image, truth=truth)
