"""The manifest of a split on disk (DESIGN.md contract 3) and its verification.

The manifest holds no timestamps or worker counts, so two builds of the same split are
byte-identical, manifest included. ``content_sha256`` hashes the data in object order,
independent of how it is sharded: it is the split's identity in receipts.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from galbench.errors import SplitCorruptedError

MANIFEST_NAME = "manifest.json"
SCHEMA = "galbench.split/1"
_CHUNK = 1 << 22


@dataclass(frozen=True)
class FileEntry:
    sha256: str
    bytes: int
    shape: tuple[int, ...] | None = None
    dtype: str | None = None
    rows: tuple[int, int] | None = None  # object index range [start, stop) of an image shard


@dataclass(frozen=True)
class Manifest:
    task: str
    task_sha256: str
    split: str
    n: int
    n_official: int
    seed: int
    shard_size: int
    image_shape: tuple[int, int, int]
    image_dtype: str
    image_units: str
    catalog_columns: dict[str, str]
    files: dict[str, FileEntry]
    content_sha256: str
    versions: dict[str, str] = field(default_factory=dict)
    #: Whether content_sha256 equals the published hash of this official split (None: a prefix
    #: build, or no published hash).
    matches_published: bool | None = None
    #: Array-valued truth per object, ``{name: {"shape": [...], "dtype": "<f4"}}``, stored in
    #: ``targets/<name>/`` shards (empty for tasks whose truth is all in the catalog).
    target_arrays: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: A real split's source files, ``{remote_files.toml key: sha256}`` (empty when simulated).
    sources: dict[str, str] = field(default_factory=dict)
    #: A real split's definition hash (:meth:`galbench.tasks.SplitSpec.definition_sha256`: its
    #: id list, sources, recipe and parameters), as real splits live outside the task file.
    split_sha256: str | None = None
    schema: str = SCHEMA

    @property
    def partial(self) -> bool:
        return self.n < self.n_official

    def image_shards(self) -> list[tuple[str, FileEntry]]:
        return sorted(
            ((k, v) for k, v in self.files.items() if k.startswith("images/")),
            key=lambda kv: kv[1].rows[0] if kv[1].rows else 0,
        )

    def target_shards(self, name: str) -> list[tuple[str, FileEntry]]:
        """The shards of target array ``name``, in object order."""
        prefix = f"targets/{name}/"
        return sorted(
            ((k, v) for k, v in self.files.items() if k.startswith(prefix)),
            key=lambda kv: kv[1].rows[0] if kv[1].rows else 0,
        )

    def array_shards(self) -> list[tuple[str, FileEntry]]:
        """Every ``.npy`` shard, images and targets."""
        return self.image_shards() + [e for name in self.target_arrays for e in self.target_shards(name)]

    def to_json(self) -> str:
        data = asdict(self)
        if not data["target_arrays"]:
            del data["target_arrays"]  # manifests of splits without target arrays keep their bytes
        for key in ("sources", "split_sha256"):  # likewise for simulated splits
            if not data[key]:
                del data[key]
        data["files"] = {k: _drop_none(asdict(v)) for k, v in sorted(self.files.items())}
        return json.dumps(data, indent=2, sort_keys=True) + "\n"

    @classmethod
    def read(cls, path: Path) -> "Manifest":
        try:
            data = json.loads(path.read_text())
            files = {
                k: FileEntry(
                    sha256=v["sha256"],
                    bytes=v["bytes"],
                    shape=tuple(v["shape"]) if v.get("shape") is not None else None,
                    dtype=v.get("dtype"),
                    rows=tuple(v["rows"]) if v.get("rows") is not None else None,
                )
                for k, v in data.pop("files").items()
            }
            data["image_shape"] = tuple(data["image_shape"])
            return cls(files=files, **data)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise SplitCorruptedError(
                f"{path}: unreadable split manifest ({exc.__class__.__name__}: {exc}); delete "
                f"the folder {path.parent} and build the split again (galbench generate)"
            ) from None

    def sha256(self) -> str:
        return hashlib.sha256(self.to_json().encode()).hexdigest()


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def verify_files(root: Path, manifest: Manifest, *, check_hashes: bool = True) -> None:
    """Raise :class:`SplitCorruptedError` naming the first file that is missing, has the wrong
    size (truncated) or the wrong sha256 (altered). Sizes are always checked; hashes on request."""
    for rel, entry in sorted(manifest.files.items()):
        path = root / rel
        fix = (
            f"delete {root} and rebuild it with `galbench generate {manifest.task} "
            f"--split {manifest.split}" + (f" --n {manifest.n}`" if manifest.partial else "`")
        )
        if not path.is_file():
            raise SplitCorruptedError(f"{path}: file listed in the manifest is missing; {fix}")
        size = path.stat().st_size
        if size != entry.bytes:
            raise SplitCorruptedError(
                f"{path}: {size} bytes, the manifest says {entry.bytes} (truncated or "
                f"overwritten); {fix}"
            )
        if check_hashes and sha256_file(path) != entry.sha256:
            raise SplitCorruptedError(
                f"{path}: sha256 differs from the manifest (the file was altered or corrupted); "
                f"{fix}"
            )


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that the path holds either nothing or all of it."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
