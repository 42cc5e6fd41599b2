"""Load a built split: memory-mapped image shards, the catalog, target arrays.

``load_split`` checks the files against the manifest (sizes always, sha256 by default) before
anything is read, so a corrupted or truncated shard is reported with its path and the fix
instead of surfacing as garbage inside a model.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from galbench.data.home import data_home, split_dir
from galbench.data.manifest import MANIFEST_NAME, Manifest, verify_files
from galbench.errors import SplitCorruptedError, SplitNotFoundError
from galbench.tasks import TaskSpec, get_task


class ShardedImages:
    """A read-only ``[n, ...]`` array (the images, float32 ``[n, C, H, W]``, or a target array)
    backed by memory-mapped ``.npy`` shards.

    Supports ``len``, integer and slice indexing, integer-array gathers (one vectorised read per
    shard touched) and ``np.asarray``.
    """

    def __init__(self, paths: list[Path], limit: int | None = None) -> None:
        self._paths = [Path(p) for p in paths]
        shards = [np.load(p, mmap_mode="r") for p in self._paths]
        self._shards = shards
        sizes = np.array([len(s) for s in shards], dtype=np.int64)
        self._starts = np.concatenate([[0], np.cumsum(sizes)])
        total = int(self._starts[-1])
        self._n = total if limit is None else min(limit, total)
        first = shards[0]
        self.shape = (self._n, *first.shape[1:])
        self.dtype = first.dtype

    def __len__(self) -> int:
        return self._n

    def __reduce__(self) -> tuple:
        # Pickle by file paths, so a DataLoader worker re-opens the memory maps instead of
        # receiving a copy of every image.
        return (ShardedImages, (self._paths, self._n))

    def __getitem__(self, index: int | slice | np.ndarray) -> np.ndarray:
        if isinstance(index, (int, np.integer)):
            i = int(index) + (self._n if index < 0 else 0)
            if not 0 <= i < self._n:
                raise IndexError(f"index {index} out of range for {self._n} images")
            k = int(np.searchsorted(self._starts, i, side="right") - 1)
            return np.asarray(self._shards[k][i - self._starts[k]])
        if isinstance(index, slice):
            return self.take(np.arange(*index.indices(self._n)))
        return self.take(np.asarray(index))

    def take(self, indices: np.ndarray) -> np.ndarray:
        """Gather images by object index into a new ``[len(indices), C, H, W]`` array."""
        indices = np.asarray(indices, dtype=np.int64)
        if indices.size and (indices.min() < 0 or indices.max() >= self._n):
            raise IndexError(f"indices out of range for {self._n} images")
        out = np.empty((len(indices), *self.shape[1:]), dtype=self.dtype)
        if not indices.size:
            return out
        which = np.searchsorted(self._starts, indices, side="right") - 1
        for k in np.unique(which):
            mask = which == k
            local = indices[mask] - self._starts[k]
            if mask.all() and np.all(np.diff(local) == 1):  # contiguous: one slice read
                out[:] = self._shards[k][local[0] : local[-1] + 1]
            else:
                out[mask] = self._shards[k][local]
        return out

    def __array__(self, dtype: np.dtype | None = None, copy: bool | None = None) -> np.ndarray:
        array = self.take(np.arange(self._n))
        return array if dtype is None else array.astype(dtype)

    def iter_batches(self, batch_size: int):
        """Yield ``(start, images)`` over consecutive batches."""
        for start in range(0, self._n, batch_size):
            yield start, self.take(np.arange(start, min(start + batch_size, self._n)))


@dataclass
class Split:
    """A split on disk, opened: ``images`` ``[n, C, H, W]``, ``catalog`` (one row per object)."""

    task: TaskSpec
    name: str
    root: Path
    manifest: Manifest
    images: ShardedImages
    catalog: pd.DataFrame

    @property
    def n(self) -> int:
        return len(self.images)

    @property
    def partial(self) -> bool:
        """True when this is fewer objects than the official split (never leaderboard-eligible)."""
        return self.n < self.manifest.n_official

    @property
    def object_ids(self) -> np.ndarray:
        return self.catalog["object_id"].to_numpy()

    @property
    def target_columns(self) -> tuple[str, ...]:
        """The catalog columns :meth:`targets` returns: the task's targets, or on a real split
        that has truth for only some of them, those plus the derived targets it is scored on
        (morphometry@1 ``real_cosmos``: ``mag``, ``log10_r_half``)."""
        if self.task.type != "regression" or all(
            name in self.catalog.columns for name in self.task.target_names
        ):
            return tuple(self.task.target_names)
        from galbench.scoring.regression import scored_targets

        return tuple(t.name for t, _ in scored_targets(self.task, self.catalog))

    def targets(self) -> np.ndarray:
        """Regression targets ``[n, P]`` float64, columns in :attr:`target_columns` order (the
        task's target order on simulated splits)."""
        return self.catalog[list(self.target_columns)].to_numpy(dtype=np.float64)

    @property
    def target_array_names(self) -> tuple[str, ...]:
        """Names of the split's array-valued truth (isolated source images, clump masks, ...)."""
        return tuple(self.manifest.target_arrays)

    def target_array(self, name: str) -> ShardedImages:
        """Array-valued truth ``name``, ``[n, *shape]``, memory-mapped like the images."""
        if name not in self.manifest.target_arrays:
            raise KeyError(
                f"{self.task.id} {self.name} has no target array {name!r}; it has "
                f"{list(self.manifest.target_arrays) or 'none'}"
            )
        paths = [self.root / rel for rel, _ in self.manifest.target_shards(name)]
        return ShardedImages(paths, limit=self.n)

    def __repr__(self) -> str:
        return (
            f"Split({self.task.id} {self.name}, n={self.n}/{self.manifest.n_official}, "
            f"root={str(self.root)!r})"
        )


def _find_built(spec: TaskSpec, split: str, n: int, home: Path) -> Path | None:
    """The smallest finished build that holds the first ``n`` objects of the split."""
    full = split_dir(spec, split, spec.split(split).n, home)
    if (full / MANIFEST_NAME).is_file():
        return full
    candidates = []
    task_dir = home / spec.id
    if task_dir.is_dir():
        for folder in task_dir.glob(f"{split}-first*"):
            try:
                size = int(folder.name.rsplit("-first", 1)[1])
            except ValueError:
                continue
            if size >= n and (folder / MANIFEST_NAME).is_file():
                candidates.append((size, folder))
    return min(candidates)[1] if candidates else None


def load_split(
    task: str | TaskSpec,
    split: str,
    n: int | None = None,
    *,
    home: str | os.PathLike[str] | None = None,
    build: bool = False,
    verify: bool = True,
    workers: int = 1,
    progress: bool = True,
) -> Split:
    """Open the first ``n`` objects (default: all) of a built split.

    Parameters
    ----------
    build:
        Build the split first if it is not on disk (``galbench generate`` does the same).
    verify:
        Check every file's sha256 against the manifest (sizes are always checked).
    """
    spec = get_task(task)
    official = spec.split(split).n
    n = official if n is None else int(n)
    if not 1 <= n <= official:
        raise ValueError(f"n must be between 1 and {official} for {spec.id} {split}, got {n}")
    root_home = data_home(home)
    root = _find_built(spec, split, n, root_home)
    if root is None:
        if not build:
            hint = "" if n == official else f" --n {n}"
            raise SplitNotFoundError(
                f"{spec.id} split {split!r} is not built under {root_home}; build it with "
                f"`galbench generate {spec.id} --split {split}{hint}` or pass build=True"
            )
        from galbench.data.build import build_split

        root = build_split(spec, split, n, home=root_home, workers=workers, progress=progress)
    return open_split(root, spec=spec, limit=n, verify=verify)


def open_split(
    root: str | os.PathLike[str],
    *,
    spec: TaskSpec | None = None,
    limit: int | None = None,
    verify: bool = True,
) -> Split:
    """Open a split folder directly (used by ``load_split`` and ``galbench export``)."""
    root = Path(root)
    manifest = Manifest.read(root / MANIFEST_NAME)
    spec = spec or get_task(manifest.task)
    if manifest.task != spec.id:
        raise SplitCorruptedError(f"{root}: manifest is for {manifest.task}, not {spec.id}")
    if manifest.task_sha256 != spec.sha256:
        raise SplitCorruptedError(
            f"{root}: built from a different {spec.id} task file (sha256 "
            f"{manifest.task_sha256[:12]} vs {spec.sha256[:12]}); published tasks never change, "
            "so this folder is stale: delete it and rebuild"
        )
    split_spec = spec.splits.get(manifest.split)
    if split_spec is not None and split_spec.real and manifest.split_sha256 != split_spec.definition_sha256():
        raise SplitCorruptedError(
            f"{root}: built from another definition of the real split {spec.id} {manifest.split} "
            f"(its id list, sources or parameters changed since: definition sha256 "
            f"{str(manifest.split_sha256)[:12]} vs {split_spec.definition_sha256()[:12]}); this "
            f"folder is stale: rebuild it with `galbench generate {spec.id} --split "
            f"{manifest.split} --overwrite`"
        )
    verify_files(root, manifest, check_hashes=verify)
    for rel, entry in manifest.array_shards():
        try:
            shard = np.load(root / rel, mmap_mode="r")
        except (OSError, ValueError) as exc:
            raise SplitCorruptedError(f"{root / rel}: not a readable .npy file ({exc})") from None
        if shard.shape != tuple(entry.shape) or shard.dtype.str != entry.dtype:
            raise SplitCorruptedError(
                f"{root / rel}: array is {shard.dtype} {shard.shape}, the manifest says "
                f"{entry.dtype} {tuple(entry.shape)}"
            )
    limit = manifest.n if limit is None else min(limit, manifest.n)
    catalog = pd.read_parquet(root / "catalog.parquet")
    if len(catalog) != manifest.n:
        raise SplitCorruptedError(
            f"{root / 'catalog.parquet'}: {len(catalog)} rows, the manifest says {manifest.n}"
        )
    catalog = catalog.iloc[:limit].reset_index(drop=True)
    return Split(
        task=spec,
        name=manifest.split,
        root=root,
        manifest=manifest,
        images=ShardedImages([root / rel for rel, _ in manifest.image_shards()], limit=limit),
        catalog=catalog,
    )
