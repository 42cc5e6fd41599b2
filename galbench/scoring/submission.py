"""Submission folders (DESIGN.md contract 5): ``submission.toml`` plus code or prediction files.

::

    name = "morphometry-floor"          # lowercase letters, digits, '-', '_'
    authors = ["A. Person"]
    contact = "a.person@example.org"
    license = "MIT"
    external_data = false               # trained on anything beyond galbench's public splits?
    paper = "https://arxiv.org/abs/..." # optional
    code = "https://github.com/..."     # optional
    description = "..."                 # optional

    [tasks."morphometry@1"]
    entry_point = "model:MedianRegressor"   # module:Class, module path relative to the folder
    training_data = ["morphometry@1/train"]
    labels = 100000                         # labelled objects used in training
    parameters = 2300000                    # optional: trainable parameters of the model
    batch_size = 512                        # optional, images per predict() call
    # or, instead of entry_point, prediction files for public splits (.npz with object_id,
    # mean [, std]):
    # predictions = { test = "predictions/morphometry-test.npz" }

A code entry point is a class built as ``Class(root)`` (``root``: the submission folder, a
``pathlib.Path``) with ``predict(images) -> array``: ``images`` float32 ``[B, C, H, W]`` in the
task's image units; the result is what the task type expects (``[B, P]`` for regression, or a
dict ``{"mean": [B, P], "std": [B, P]}``).

This module only parses and hashes; importing and running the code is ``galbench.runner``'s job.
"""

from __future__ import annotations

import hashlib
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from galbench.errors import SubmissionError
from galbench.tasks import PUBLIC_SPLITS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SUBMISSION_FILE = "submission.toml"
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_ENTRY_RE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
_IGNORED_PARTS = {"__pycache__", ".ipynb_checkpoints", ".git"}

EXAMPLE = """\
name = "my-model"
authors = ["A. Person"]
contact = "a.person@example.org"
license = "MIT"
external_data = false

[tasks."morphometry@1"]
entry_point = "model:MyModel"
training_data = ["morphometry@1/train"]
labels = 100000
"""


@dataclass(frozen=True)
class TaskEntry:
    """How a submission enters one task."""

    task: str
    entry_point: str | None
    predictions: Mapping[str, str]
    training_data: tuple[str, ...]
    labels: int | None
    batch_size: int
    parameters: int | None = None  # trainable parameters of the model, shown on the leaderboard


@dataclass(frozen=True)
class Submission:
    root: Path
    name: str
    authors: tuple[str, ...]
    contact: str
    license: str
    external_data: bool
    paper: str
    code: str
    description: str
    tasks: Mapping[str, TaskEntry]
    #: Hash of every file, taken when the folder was loaded: a receipt names the code that ran,
    #: even if the folder changes while it runs.
    content_sha256: str = ""

    def entry(self, task_id: str) -> TaskEntry:
        if task_id not in self.tasks:
            raise SubmissionError(
                f"{self.root / SUBMISSION_FILE}: does not enter task {task_id!r} (it enters "
                f"{', '.join(self.tasks) or 'no task'}); add a [tasks.\"{task_id}\"] table"
            )
        return self.tasks[task_id]

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "authors": list(self.authors),
            "contact": self.contact,
            "license": self.license,
            "external_data": self.external_data,
            "paper": self.paper,
            "code": self.code,
        }


def submission_files(root: Path) -> list[Path]:
    """Files that make up a submission (caches excluded), sorted."""
    return sorted(
        p
        for p in root.rglob("*")
        if p.is_file()
        and not (_IGNORED_PARTS & set(p.relative_to(root).parts))
        and p.suffix != ".pyc"
    )


def submission_content_sha256(root: Path) -> str:
    """sha256 over every file's relative path and bytes: changes when any file changes."""
    h = hashlib.sha256(b"galbench-submission/1\n")
    for path in submission_files(root):
        h.update(path.relative_to(root).as_posix().encode() + b"\0")
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


def _err(path: Path, field: str, problem: str) -> SubmissionError:
    return SubmissionError(
        f"{path}: field {field!r}: {problem}\nA valid submission.toml looks like:\n{EXAMPLE}"
    )


def _take(
    table: dict, path: Path, key: str, kind: type | tuple, default: Any = ..., where: str = ""
) -> Any:
    """Pop ``key`` from ``table`` checking its type; errors name ``where.key`` in ``path``."""
    field = f"{where}.{key}" if where else key
    if key not in table:
        if default is ...:
            raise _err(path, field, "missing")
        return default
    value = table.pop(key)
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in kinds:
        raise _err(path, field, f"expected {'/'.join(k.__name__ for k in kinds)}, got a boolean")
    if not isinstance(value, kinds):
        raise _err(path, field, f"expected {'/'.join(k.__name__ for k in kinds)}, got {value!r}")
    return value


def _public_splits(task_id: str) -> tuple[str, ...]:
    """The splits prediction files may be given for: train/val/test, plus the task's other
    public splits (transfer@1 ``target_train``, real splits such as ``real_cosmos``) when the
    task is known here."""
    from galbench.errors import GalbenchError
    from galbench.tasks import get_task

    try:
        spec = get_task(task_id)
    except (GalbenchError, KeyError):
        return PUBLIC_SPLITS
    return tuple(dict.fromkeys([*PUBLIC_SPLITS, *spec.splits]))


def load_submission(root: str | Path) -> Submission:
    """Parse and check a submission folder; errors name the file, the field and the fix."""
    root = Path(root)
    path = root / SUBMISSION_FILE
    if not root.is_dir():
        raise SubmissionError(f"{root}: not a folder; a submission is a folder with {SUBMISSION_FILE}")
    if not path.is_file():
        raise SubmissionError(
            f"{root}: no {SUBMISSION_FILE}; create one, for example:\n{EXAMPLE}"
        )
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SubmissionError(f"{path}: not valid TOML ({exc})\nExpected, for example:\n{EXAMPLE}") from None

    name = _take(data, path, "name", str)
    if not _NAME_RE.match(name):
        raise _err(path, "name", f"{name!r} must be lowercase letters, digits, '-' or '_'")
    authors = _take(data, path, "authors", list)
    if not authors or not all(isinstance(a, str) and a.strip() for a in authors):
        raise _err(path, "authors", "expected a non-empty list of names")
    contact = _take(data, path, "contact", str)
    license_ = _take(data, path, "license", str)
    external = _take(data, path, "external_data", bool)
    paper = _take(data, path, "paper", str, "")
    code = _take(data, path, "code", str, "")
    description = _take(data, path, "description", str, "")
    tasks_table = _take(data, path, "tasks", dict)
    if data:
        raise _err(path, sorted(data)[0], "unknown field")
    if not tasks_table:
        raise _err(path, "tasks", "enters no task")

    tasks = {}
    for task_id, table in tasks_table.items():
        where = f'tasks."{task_id}"'
        if "@" not in task_id:
            raise _err(path, where, "task ids are name@version, e.g. morphometry@1")
        if not isinstance(table, dict):
            raise _err(path, where, "expected a table")
        table = dict(table)
        entry = TaskEntry(
            task=task_id,
            entry_point=_take(table, path, "entry_point", str, None, where),
            predictions=_take(table, path, "predictions", dict, {}, where),
            training_data=tuple(_take(table, path, "training_data", list, [], where)),
            labels=_take(table, path, "labels", int, None, where),
            batch_size=_take(table, path, "batch_size", int, 256, where),
            parameters=_take(table, path, "parameters", int, None, where),
        )
        if table:
            raise _err(path, f"{where}.{sorted(table)[0]}", "unknown field")
        if entry.entry_point is None and not entry.predictions:
            raise _err(path, where, "needs entry_point (code) or predictions (files)")
        if entry.entry_point is not None and not _ENTRY_RE.match(entry.entry_point):
            raise _err(path, f"{where}.entry_point", f"{entry.entry_point!r} is not module:Class")
        if not all(isinstance(v, str) for v in entry.predictions.values()):
            raise _err(path, f"{where}.predictions", "expected a table split = \"file.npz\"")
        for split, rel in entry.predictions.items():
            if split == "challenge":
                raise _err(path, f"{where}.predictions", "the challenge split takes code only")
            allowed = _public_splits(task_id)
            if split not in allowed:
                raise _err(
                    path, f"{where}.predictions.{split}",
                    f"unknown split; prediction files are for {', '.join(allowed)}",
                )
            file = (root / rel).resolve()
            if root.resolve() not in file.parents:
                # Files outside the folder would escape the submission's content hash.
                raise _err(path, f"{where}.predictions.{split}", f"{rel!r} is outside the folder")
            if not file.is_file():
                raise _err(path, f"{where}.predictions.{split}", f"file {root / rel} not found")
        if entry.labels is not None and entry.labels < 0:
            raise _err(path, f"{where}.labels", "expected a non-negative integer")
        if entry.batch_size < 1:
            raise _err(path, f"{where}.batch_size", "expected a positive integer")
        if not all(isinstance(t, str) for t in entry.training_data):
            raise _err(path, f"{where}.training_data", "expected a list of strings")
        if entry.entry_point is not None:
            module = entry.entry_point.split(":")[0].replace(".", "/")
            if not ((root / f"{module}.py").is_file() or (root / module / "__init__.py").is_file()):
                raise _err(
                    path,
                    f"{where}.entry_point",
                    f"module file {root / (module + '.py')} not found in the submission folder",
                )
        tasks[task_id] = entry

    return Submission(
        root=root,
        name=name,
        authors=tuple(authors),
        contact=contact,
        license=license_,
        external_data=external,
        paper=paper,
        code=code,
        description=description,
        tasks=tasks,
        content_sha256=submission_content_sha256(root),
    )
