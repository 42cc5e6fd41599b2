"""Run a submission over a split: import its entry point, feed image batches, collect predictions.

The model sees images only (float32 ``[B, C, H, W]``), never the catalog. By default it runs in
the sandbox of :mod:`galbench.harness` (a separate process without labels, secrets or network,
under time, memory and process limits); ``isolate=False`` runs it in this process, for debugging
one's own code only.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import platform
import sys
import time
import traceback
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from galbench.data.split import Split
from galbench.errors import PredictionError, SubmissionError
from galbench.harness import InferenceReport, SandboxLimits, run_in_sandbox
from galbench.scoring.base import Predictions
from galbench.scoring.submission import Submission, TaskEntry

__all__ = [
    "InferenceReport",
    "environment",
    "load_model",
    "load_prediction_file",
    "run_submission",
]


@contextlib.contextmanager
def _on_path(folder: Path) -> Iterator[None]:
    sys.path.insert(0, str(folder))
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(str(folder))


def load_model(submission: Submission, entry: TaskEntry) -> Any:
    """Import ``module:Class`` from the submission folder and build ``Class(root)``."""
    module_name, class_name = entry.entry_point.split(":")
    rel = Path(*module_name.split("."))
    file = submission.root / f"{rel}.py"
    if not file.is_file():
        file = submission.root / rel / "__init__.py"
    # A unique module name per submission, so two submissions' `model.py` never collide.
    tag = hashlib.sha256(str(submission.root.resolve()).encode()).hexdigest()[:10]
    unique = f"galbench_submission_{tag}_{module_name.replace('.', '_')}"
    where = f"{submission.root}/{rel}.py:{class_name}"
    with _on_path(submission.root):
        try:
            spec = importlib.util.spec_from_file_location(unique, file)
            module = importlib.util.module_from_spec(spec)
            sys.modules[unique] = module
            spec.loader.exec_module(module)
        except Exception as exc:
            raise SubmissionError(
                f"{file}: importing the entry point failed: {type(exc).__name__}: {exc}\n"
                + _short_traceback(exc)
            ) from exc
        cls = getattr(module, class_name, None)
        if cls is None:
            raise SubmissionError(f"{file}: no class {class_name!r} (entry_point {entry.entry_point})")
        try:
            model = cls(submission.root)
        except Exception as exc:
            raise SubmissionError(
                f"{where}: constructing {class_name}(root) failed: {type(exc).__name__}: {exc}\n"
                + _short_traceback(exc)
            ) from exc
    if not callable(getattr(model, "predict", None)):
        raise SubmissionError(f"{where}: the model has no predict(images) method")
    return model


def _short_traceback(exc: BaseException, limit: int = 6) -> str:
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__, limit=-limit))


def _as_fields(output: Any, where: str, batch_start: int, batch_len: int) -> dict[str, np.ndarray]:
    if isinstance(output, Mapping):
        fields = {str(k): np.asarray(v) for k, v in output.items()}
    elif isinstance(output, (np.ndarray, list, tuple)) or hasattr(output, "__array__"):
        fields = {"mean": np.asarray(output)}
    else:
        raise PredictionError(
            f"{where}: predict() returned {type(output).__name__} for the batch at object "
            f"{batch_start}; expected an array or a dict of arrays"
        )
    for name, value in fields.items():
        if value.ndim == 0 or len(value) != batch_len:
            raise PredictionError(
                f"{where}: predict() returned '{name}' with shape {value.shape} for a batch of "
                f"{batch_len} images starting at object {batch_start}; expected {batch_len} rows"
            )
    return fields


def run_submission(
    submission: Submission,
    entry: TaskEntry,
    split: Split,
    *,
    progress: bool = True,
    isolate: bool = True,
    limits: SandboxLimits | None = None,
) -> tuple[Predictions, InferenceReport]:
    """Predict every object of ``split`` with the submission's code.

    ``isolate`` (default): in the sandbox (:func:`galbench.harness.run_in_sandbox`), under
    ``limits``; failures raise :class:`~galbench.harness.SandboxFailure` with a ``status``.
    ``isolate=False``: in this process, without any protection (debugging only; the code can
    read everything this process can, labels included)."""
    if isolate:
        values, report = run_in_sandbox(
            submission, entry, split.images, limits=limits, progress=progress,
            desc=f"{submission.name} {split.task.id} {split.name}",
        )
        return Predictions(object_ids=split.object_ids.copy(), values=values), report
    model = load_model(submission, entry)
    where = f"{submission.root}/{entry.entry_point}"
    chunks: dict[str, list[np.ndarray]] = {}
    predict_seconds = 0.0
    with _on_path(submission.root), tqdm(
        total=split.n, unit="obj", desc=f"{submission.name} {split.task.id} {split.name}",
        disable=not progress, dynamic_ncols=True,
    ) as bar:
        for start, images in split.images.iter_batches(entry.batch_size):
            images.setflags(write=False)  # the model gets a read-only view of the data
            t0 = time.perf_counter()
            try:
                output = model.predict(images)
            except Exception as exc:
                raise SubmissionError(
                    f"{where}: predict() raised on the batch at object {start}: "
                    f"{type(exc).__name__}: {exc}\n" + _short_traceback(exc)
                ) from exc
            predict_seconds += time.perf_counter() - t0
            fields = _as_fields(output, where, start, len(images))
            if chunks and set(fields) != set(chunks):
                raise PredictionError(
                    f"{where}: predict() returned fields {sorted(fields)} at object {start}, "
                    f"but {sorted(chunks)} before"
                )
            for name, value in fields.items():
                chunks.setdefault(name, []).append(value)
            bar.update(len(images))
    values = {name: np.concatenate(parts) for name, parts in chunks.items()}
    report = InferenceReport(
        seconds=predict_seconds,
        objects_per_second=split.n / predict_seconds if predict_seconds > 0 else float("inf"),
        batch_size=entry.batch_size,
        device=str(getattr(model, "device", "cpu")),
    )
    return Predictions(object_ids=split.object_ids.copy(), values=values), report


def load_prediction_file(path: Path, split: Split, *, allow_extra: bool = False) -> Predictions:
    """Read an ``.npz`` prediction file keyed by ``object_id`` and order it like the split.

    ``allow_extra`` drops rows of objects outside the split (scoring a prefix of the split)."""
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise PredictionError(f"{path}: not a readable .npz file ({exc})") from None
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise PredictionError(
            f"{path}: a single array; prediction files are .npz archives with 'object_id' and "
            "the task's fields (np.savez(path, object_id=..., mean=...))"
        )
    with data:
        try:
            values = {k: data[k] for k in data.files}
        except (OSError, ValueError) as exc:  # object arrays (pickles) are refused, not loaded
            raise PredictionError(f"{path}: not a readable .npz file ({exc})") from None
    if "object_id" not in values:
        raise PredictionError(
            f"{path}: no 'object_id' array; prediction files are keyed by object id"
        )
    ids = values.pop("object_id")
    if ids.ndim != 1 or ids.dtype.kind not in "iu":
        raise PredictionError(f"{path}: 'object_id' must be a 1-D integer array, got {ids.dtype} {ids.shape}")
    unique, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():
        raise PredictionError(f"{path}: duplicated object_id(s), e.g. {unique[counts > 1][:5].tolist()}")
    expected = split.object_ids
    missing = np.setdiff1d(expected, ids)
    if missing.size:
        raise PredictionError(
            f"{path}: {missing.size} object_id(s) of {split.task.id} {split.name} missing, "
            f"e.g. {missing[:5].tolist()}"
        )
    for name, value in values.items():
        if value.ndim == 0 or len(value) != len(ids):
            raise PredictionError(f"{path}: '{name}' has {value.shape}, expected {len(ids)} rows")
    unknown = np.setdiff1d(ids, expected)
    if unknown.size and allow_extra:
        keep = np.isin(ids, expected)
        ids, values = ids[keep], {k: v[keep] for k, v in values.items()}
    elif unknown.size:
        raise PredictionError(
            f"{path}: {unknown.size} object_id(s) not in {split.task.id} {split.name} "
            f"(n={split.n}), e.g. {unknown[:5].tolist()}"
        )
    order = np.argsort(ids)[np.searchsorted(np.sort(ids), expected)]
    return Predictions(expected.copy(), {k: v[order] for k, v in values.items()})


def environment() -> dict[str, Any]:
    """Where a run happened: interpreter, platform, CPU, package versions."""
    import galbench

    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    import os

    packages = {"galbench": galbench.__version__, "numpy": np.__version__}
    for name in ("torch", "timm", "galsim", "scipy", "pandas"):
        module = sys.modules.get(name)
        if module is not None:
            packages[name] = getattr(module, "__version__", "?")
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "packages": packages,
    }
