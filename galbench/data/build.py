"""Build a split on disk: render objects in shards, on a local process pool or a Dask cluster.

Layout of a finished split (``<home>/<task id>/<split>[-first<n>]/``)::

    manifest.json              task, split, n, seed, versions, per-file sha256/shape/dtype
    images/shard-00000.npy     float32 [rows, C, H, W], memory-mappable
    targets/<name>/shard-00000.npy   array-valued truth (e.g. isolated source images, clump
                               masks), [rows, *shape], for tasks whose recipe declares them
    catalog.parquet            object_id + truth + strata columns, one row per object

The build happens in ``<folder>.partial/``; finished shards are kept there, so an interrupted build
resumes where it stopped. The folder is renamed to its final name only once the manifest is
written, so a half-written split is never mistaken for a whole one.

Workers only compute; the parent process writes every file. So the bytes on disk depend on the
task, the split and ``n`` (and the shard size, for file boundaries) but never on the worker count,
the executor, or the order in which shards finish.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import json
import multiprocessing
import os
import shutil
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm.auto import tqdm

import galbench
from galbench.data.home import split_dir
from galbench.data.manifest import (
    MANIFEST_NAME,
    FileEntry,
    Manifest,
    atomic_write_bytes,
    sha256_file,
    verify_files,
)
from galbench.tasks import TaskSpec, get_task, published_split_hashes


class SplitMismatchWarning(UserWarning):
    """A full build of an official split differs from its published content hash."""

DEFAULT_SHARD_SIZE = 1000
IMAGE_DTYPE = np.dtype("<f4")
_BUILD_STATE = "build.json"


def render_shard(
    task: TaskSpec, split: str, start: int, stop: int, sources: dict[str, str] | None = None
) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Render objects ``start..stop-1`` of a split: images ``[k, C, H, W]``, catalog columns and
    target arrays ``{name: [k, *shape]}``. ``sources``: a real split's source files (key ->
    verified local path; on a Dask cluster, paths every worker can read).

    Top-level and argument-only, so it runs unchanged in a process pool or on a Dask worker.
    """
    from galbench.sim import get_recipe
    from galbench.sim.recipes import render_object, single_threaded_galsim

    recipe = get_recipe(task, split, sources)
    seed = task.split(split).seed
    images = np.empty((stop - start, *task.image_shape), dtype=IMAGE_DTYPE)
    targets = {
        name: np.empty((stop - start, *shape), dtype=np.dtype(dtype))
        for name, (shape, dtype) in recipe.target_arrays().items()
    }
    columns: dict[str, list] = {"object_id": list(range(start, stop))}
    columns.update({name: [] for name in recipe.columns})
    with single_threaded_galsim():
        for row, index in enumerate(range(start, stop)):
            obj = render_object(recipe, seed, index)
            images[row] = obj.image
            for name, array in targets.items():
                array[row] = obj.arrays[name]
            for name in recipe.columns:
                columns[name].append(obj.truth[name])
    dtypes = {"object_id": "int64", **recipe.columns}  # "str": text columns (source ids)
    return images, {
        k: np.asarray(v, dtype=object if dtypes[k] == "str" else dtypes[k]) for k, v in columns.items()
    }, targets


def _map_jobs(
    fn: Callable[..., Any],
    jobs: list[tuple],
    workers: int,
    scheduler: Any | None,
) -> Iterator[tuple[tuple, Any]]:
    """Run ``fn(*job)`` for every job; yield ``(job, result)`` as they finish, in any order."""
    if scheduler is not None:
        from distributed import Client
        from distributed import as_completed as dask_completed

        own = not isinstance(scheduler, Client)
        client = Client(scheduler) if own else scheduler
        try:
            futures = {client.submit(fn, *job, pure=False): job for job in jobs}
            for future in dask_completed(futures):
                yield futures[future], future.result()
                future.release()
        finally:
            if own:
                client.close()
    elif workers <= 1:
        for job in jobs:
            yield job, fn(*job)
    else:
        # spawn, not fork: a parent that already drew with GalSim holds OpenMP/FFTW threads, and a
        # forked child can deadlock on their locks.
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            futures = {pool.submit(fn, *job): job for job in jobs}
            for future in as_completed(futures):
                yield futures[future], future.result()


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def _parquet_bytes(columns: dict[str, np.ndarray]) -> bytes:
    # Built from numpy (not pandas) so no pandas metadata enters the file; no statistics so the
    # bytes do not depend on writer heuristics.
    table = pa.table({k: pa.array(v) for k, v in columns.items()})
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd", write_statistics=False)
    return sink.getvalue().to_pybytes()


def content_hash(
    image_files: Iterable[Path],
    catalog: dict[str, np.ndarray],
    target_files: dict[str, list[Path]] | None = None,
) -> str:
    """sha256 of the images in object order, the catalog columns and the target arrays (in
    object order, by name), independent of sharding and of file formats: the identity of a
    split's data. A split without target arrays hashes as before they existed."""
    h = hashlib.sha256(b"galbench-split-content/1\n")
    for path in image_files:
        _hash_rows(h, np.load(path, mmap_mode="r"), IMAGE_DTYPE)
    for name, values in catalog.items():
        if values.dtype.kind in "OUS":
            # Text (a real split's source ids): the UTF-8 bytes of each value with its length,
            # never the object array's memory, which holds pointers.
            h.update(f"{name}:str\n".encode())
            for value in values:
                data = str(value).encode("utf-8")
                h.update(len(data).to_bytes(8, "little") + data)
            continue
        h.update(f"{name}:{values.dtype.str}\n".encode())
        h.update(np.ascontiguousarray(values).data)
    for name, paths in sorted((target_files or {}).items()):
        arrays = [np.load(path, mmap_mode="r") for path in paths]
        # Name, dtype and per-object shape once: the hash must not depend on the shard count.
        h.update(f"target:{name}:{arrays[0].dtype.str}{arrays[0].shape[1:]}\n".encode())
        for array in arrays:
            _hash_rows(h, array, array.dtype)
    return h.hexdigest()


def _hash_rows(h: Any, array: np.ndarray, dtype: np.dtype) -> None:
    for start in range(0, len(array), 256):
        h.update(np.ascontiguousarray(array[start : start + 256], dtype=dtype).data)


def _versions() -> dict[str, str]:
    import galsim

    return {
        "galbench": galbench.__version__,
        "galsim": galsim.__version__,
        "numpy": np.__version__,
        "pyarrow": pa.__version__,
        "python": ".".join(map(str, sys.version_info[:3])),
    }


@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RuntimeError(
                f"another process is building this split ({lock_path} is locked); wait for it "
                "to finish"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def build_split(
    task: str | TaskSpec,
    split: str,
    n: int | None = None,
    *,
    home: str | os.PathLike[str] | None = None,
    workers: int = 1,
    scheduler: Any | None = None,
    shard_size: int = DEFAULT_SHARD_SIZE,
    progress: bool = True,
    overwrite: bool = False,
) -> Path:
    """Build the first ``n`` objects (default: all) of a split under the data home.

    Parameters
    ----------
    workers:
        Local processes (ignored when ``scheduler`` is given).
    scheduler:
        A Dask ``distributed`` scheduler address (``"tcp://host:8786"``) or ``Client``.
    shard_size:
        Objects per image shard. Objects never depend on it; only file boundaries do.
    overwrite:
        Rebuild even if a finished split exists.

    Returns the folder of the finished split.
    """
    spec = get_task(task)
    official = spec.split(split).n
    n = official if n is None else int(n)
    if not 1 <= n <= official:
        raise ValueError(f"n must be between 1 and {official} for {spec.id} {split}, got {n}")
    if shard_size < 1:
        raise ValueError(f"shard_size must be >= 1, got {shard_size}")
    final = split_dir(spec, split, n, home)
    if (final / MANIFEST_NAME).is_file() and not overwrite:
        return final

    partial = final.with_name(final.name + ".partial")
    with _exclusive(final.with_name(f".{final.name}.lock")):
        split_spec = spec.split(split)
        state = {"task_sha256": spec.sha256, "n": n, "shard_size": shard_size, "seed": split_spec.seed,
                 "split_sha256": split_spec.definition_sha256()}
        state_file = partial / _BUILD_STATE
        if partial.exists():
            try:
                same = json.loads(state_file.read_text()) == state
            except (OSError, ValueError):
                same = False
            if not same:  # left by a build with other settings: its shards are not ours
                shutil.rmtree(partial)
        from galbench.sim import get_recipe

        # A real split's source files: fetched (mirror or public URL) and checked against the
        # sha256 of remote_files.toml, so a changed source file stops the build here.
        sources = fetch_sources(spec, split, home=home, progress=progress)
        source_paths = {key: str(path) for key, (path, _) in sources.items()} or None
        target_specs = get_recipe(spec, split, source_paths).target_arrays()
        (partial / "images").mkdir(parents=True, exist_ok=True)
        (partial / "parts").mkdir(exist_ok=True)
        for name in target_specs:
            (partial / "targets" / name).mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(state_file, json.dumps(state, sort_keys=True).encode())

        shards = [(k, start, min(start + shard_size, n)) for k, start in enumerate(range(0, n, shard_size))]

        def paths(k: int) -> tuple[Path, Path]:
            return partial / "images" / f"shard-{k:05d}.npy", partial / "parts" / f"catalog-{k:05d}.parquet"

        def target_path(name: str, k: int) -> Path:
            return partial / "targets" / name / f"shard-{k:05d}.npy"

        def finished(k: int, start: int, stop: int) -> bool:
            image_path, part_path = paths(k)
            expected = {image_path: (stop - start, *spec.image_shape)}
            expected.update(
                {target_path(name, k): (stop - start, *shape) for name, (shape, _) in target_specs.items()}
            )
            if not part_path.is_file() or not all(p.is_file() for p in expected):
                return False
            try:  # a kept shard must at least have the right shape
                return all(np.load(p, mmap_mode="r").shape == shape for p, shape in expected.items())
            except (OSError, ValueError):
                return False

        extra = (source_paths,) if source_paths else ()  # a simulated split's job is unchanged
        todo = [(spec, split, start, stop, *extra) for k, start, stop in shards
                if not finished(k, start, stop)]
        index_of = {start: k for k, start, _ in shards}
        done = n - sum(job[3] - job[2] for job in todo)
        with tqdm(
            total=n,
            initial=done,
            unit="obj",
            desc=f"{spec.id} {split}",
            disable=not progress,
            dynamic_ncols=True,
        ) as bar:
            for job, (images, columns, targets) in _map_jobs(render_shard, todo, workers, scheduler):
                k = index_of[job[2]]
                image_path, part_path = paths(k)
                for name, array in targets.items():
                    atomic_write_bytes(target_path(name, k), _npy_bytes(array))
                atomic_write_bytes(part_path, _parquet_bytes(columns))
                atomic_write_bytes(image_path, _npy_bytes(images))
                bar.update(len(images))

        catalog = _merge_parts([paths(k)[1] for k, _, _ in shards])
        catalog_path = partial / "catalog.parquet"
        atomic_write_bytes(catalog_path, _parquet_bytes(catalog))
        shutil.rmtree(partial / "parts")

        files = {}
        for k, start, stop in shards:
            image_path = paths(k)[0]
            files[f"images/{image_path.name}"] = FileEntry(
                sha256=sha256_file(image_path),
                bytes=image_path.stat().st_size,
                shape=(stop - start, *spec.image_shape),
                dtype=IMAGE_DTYPE.str,
                rows=(start, stop),
            )
            for name, (shape, dtype) in target_specs.items():
                path = target_path(name, k)
                files[f"targets/{name}/{path.name}"] = FileEntry(
                    sha256=sha256_file(path),
                    bytes=path.stat().st_size,
                    shape=(stop - start, *shape),
                    dtype=np.dtype(dtype).str,
                    rows=(start, stop),
                )
        files["catalog.parquet"] = FileEntry(
            sha256=sha256_file(catalog_path), bytes=catalog_path.stat().st_size
        )
        content = content_hash(
            [paths(k)[0] for k, _, _ in shards],
            catalog,
            {name: [target_path(name, k) for k, _, _ in shards] for name in target_specs},
        )
        published = published_split_hashes(spec).get(split) if n == official else None
        if published is not None and published != content:
            warnings.warn(
                f"{spec.id} {split}: the content of this build ({content[:12]}) differs from the "
                f"published split ({published[:12]}); its scores are not comparable with the "
                "leaderboard's. Check the GalSim and numpy versions against "
                "tasks/_published_splits.toml.",
                SplitMismatchWarning,
                stacklevel=2,
            )
        manifest = Manifest(
            task=spec.id,
            task_sha256=spec.sha256,
            split=split,
            n=n,
            n_official=official,
            seed=spec.split(split).seed,
            shard_size=shard_size,
            image_shape=spec.image_shape,
            image_dtype=IMAGE_DTYPE.str,
            image_units=spec.image_units,
            catalog_columns={k: "str" if v.dtype.kind in "OUS" else v.dtype.str for k, v in catalog.items()},
            target_arrays={
                name: {"shape": list(shape), "dtype": np.dtype(dtype).str}
                for name, (shape, dtype) in target_specs.items()
            },
            sources={key: digest for key, (_, digest) in sources.items()},
            split_sha256=split_spec.definition_sha256() if split_spec.real else None,
            files=files,
            content_sha256=content,
            versions=_versions(),
            matches_published=None if published is None else published == content,
        )
        verify_files(partial, manifest, check_hashes=False)
        state_file.unlink()
        atomic_write_bytes(partial / MANIFEST_NAME, manifest.to_json().encode())

        if final.exists():  # overwrite: swap in the new split, then drop the old one
            old = final.with_name(final.name + ".old")
            shutil.rmtree(old, ignore_errors=True)
            os.rename(final, old)
            os.rename(partial, final)
            shutil.rmtree(old)
        else:
            os.rename(partial, final)
    return final


def fetch_sources(
    task: TaskSpec, split: str, *, home: str | os.PathLike[str] | None = None, progress: bool = True
) -> dict[str, tuple[Path, str]]:
    """Verified local copies of a real split's source files: ``{key: (path, sha256)}`` (empty
    for a simulated split). Raises :class:`galbench.data.download.ChecksumError` naming the file
    when a copy differs from the sha256 galbench knows, and ``DownloadError`` saying what to
    fetch from where when no copy can be had (offline without ``$GALBENCH_MIRROR``)."""
    from galbench.data.download import fetch, remote_file, verify_file

    out = {}
    for key in task.split(split).sources:
        path = fetch(key, home=home, progress=progress)
        entry = remote_file(key)
        out[key] = (path, entry.sha256 if entry.sha256 is not None else verify_file(key, path))
    return out


def _merge_parts(part_paths: list[Path]) -> dict[str, np.ndarray]:
    tables = [pq.read_table(p) for p in part_paths]
    table = pa.concat_tables(tables)
    return {name: table.column(name).to_numpy() for name in table.column_names}
