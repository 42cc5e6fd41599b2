"""Receipts (DESIGN.md contract 6): one JSON per submission x task x split.

A receipt records what was scored (task file, split manifest and content hashes), by what
(galbench version and git commit, submission content hash), the predictions' hash, every metric
with its bootstrap 95% interval, per-stratum metrics, inference speed and the environment.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import os
import subprocess
from pathlib import Path
from typing import Any

import numpy as np

from galbench.metrics import metric_info
from galbench.scoring.base import Predictions, Scores

RECEIPT_SCHEMA = "galbench.receipt/1"


def predictions_sha256(predictions: Predictions) -> str:
    """sha256 of the predictions as float64 little-endian arrays in object-id order."""
    h = hashlib.sha256(b"galbench-predictions/1\n")
    h.update(np.ascontiguousarray(predictions.object_ids, dtype="<i8").data)
    for name in sorted(predictions.values):
        h.update(f"\n{name}\n".encode())
        h.update(np.ascontiguousarray(predictions.values[name], dtype="<f8").data)
    return h.hexdigest()


def predictions_path(receipt_path: str | Path) -> Path:
    """Where a receipt's predictions are stored: beside it, ``<name>.predictions.npz``."""
    receipt_path = Path(receipt_path)
    return receipt_path.with_name(receipt_path.name.removesuffix(".json") + ".predictions.npz")


def write_predictions(predictions: Predictions, path: str | Path) -> Path:
    """Store predictions losslessly (float64, keyed by ``object_id``), atomically, so that
    ``galbench verify`` can recompute every metric from them."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}.npz")
    arrays = {k: np.asarray(v, dtype=np.float64) for k, v in predictions.values.items()}
    np.savez_compressed(tmp, object_id=np.asarray(predictions.object_ids, dtype=np.int64), **arrays)
    os.replace(tmp, path)
    return path


def galbench_git_commit() -> tuple[str | None, bool | None]:
    """``(commit, dirty)`` of the galbench source checkout, or ``(None, None)`` if not a checkout.
    Dirty: tracked files changed outside ``leaderboard/`` (untracked files do not count)."""
    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():
        return None, None
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
            timeout=10, check=True,
        ).stdout.strip()
        status = subprocess.run(
            # The leaderboard's receipts and pages are outputs of scoring, not code: writing one
            # receipt must not mark the next run of the same `galbench score` as dirty.
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no", "--", ".",
             ":(exclude)leaderboard"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout
        return commit or None, bool(status.strip())
    except (OSError, subprocess.SubprocessError):
        return None, None


def _portable_path(path: Path) -> str:
    """The submission folder relative to the working directory when it lies inside it (so a
    receipt made in a checkout names ``baselines/...``, valid on every clone)."""
    path = Path(path)
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def _clean(value: Any) -> Any:
    """JSON-safe: NaN/inf become null, numpy scalars become Python numbers, tuples lists."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (np.floating, float)):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def _run_record(
    task: Any,
    split: Any,
    submission: Any,
    entry: Any,
    environment: dict[str, Any],
    code_version: tuple[str | None, bool | None] | None,
) -> dict[str, Any]:
    """What every receipt says, scored or failed: what ran, on what, where."""
    import galbench

    commit, dirty = code_version if code_version is not None else galbench_git_commit()
    manifest = split.manifest
    return {
        "task": task.id,
        "split": split.name,
        "n": split.n,
        "n_official": manifest.n_official,
        "partial": split.partial,
        "challenge": split.name == "challenge",
        "main_metric": task.main_metric,
        "direction": task.direction,
        "task_sha256": task.sha256,
        "split_manifest_sha256": manifest.sha256(),
        "split_content_sha256": manifest.content_sha256,
        "split_matches_published": manifest.matches_published,
        # The challenge seed is secret: never written down.
        "split_seed": None if split.name == "challenge" else manifest.seed,
        "galbench": {"version": galbench.__version__, "git_commit": commit, "git_dirty": dirty},
        "submission": {
            **submission.summary(),
            "path": _portable_path(submission.root),
            "content_sha256": submission.content_sha256,
            "entry_point": entry.entry_point,
            "prediction_file": entry.predictions.get(split.name),
            "training_data": list(entry.training_data),
            "labels": entry.labels,
            "parameters": entry.parameters,
        },
        "environment": environment,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def make_receipt(
    *,
    task: Any,
    split: Any,
    submission: Any,
    entry: Any,
    predictions: Predictions,
    scores: Scores,
    inference: dict[str, Any] | None,
    environment: dict[str, Any],
    code_version: tuple[str | None, bool | None] | None = None,
    per_object: Predictions | None = None,
) -> dict[str, Any]:
    """Assemble a receipt. ``code_version`` is galbench's ``(git commit, dirty)`` as it was when
    the run started (default: now). ``per_object``: the per-object results that were scored and
    are stored, for task types whose predictions are images (their hash is recorded beside the
    hash of the full predictions)."""
    receipt = {
        "schema": RECEIPT_SCHEMA,
        "status": "ok",
        # A partial run (--n) is a smoke test and never enters the leaderboard; neither does code
        # that ran outside the sandbox (isolate=False, for debugging).
        "leaderboard_eligible": not split.partial
        and (inference is None or inference.get("isolated", False)),
        **_run_record(task, split, submission, entry, environment, code_version),
        "metrics": scores.metrics,
        "intervals": {k: list(v) for k, v in scores.intervals.items()},
        "interval_method": (
            f"percentile bootstrap, 95%, {task.bootstrap_resamples} resamples of objects, "
            f"seed {task.bootstrap_seed}"
        ),
        "bootstrap_main": scores.bootstrap_main,
        "directions": {
            k: {"direction": (info := metric_info(k)).direction, "ideal": info.ideal}
            for k in scores.metrics
        },
        "strata": scores.strata,
        "predictions_sha256": predictions_sha256(predictions),
        **(
            {"per_object_sha256": predictions_sha256(per_object)} if per_object is not None else {}
        ),
        "inference": inference,
    }
    return _clean(receipt)


def make_failure_receipt(
    *,
    task: Any,
    split: Any,
    submission: Any,
    entry: Any,
    error: BaseException,
    environment: dict[str, Any],
    code_version: tuple[str | None, bool | None] | None = None,
) -> dict[str, Any]:
    """A receipt for a run that produced no valid predictions: what ran, on what, and why it
    failed. It has no metrics and never enters the ranking."""
    receipt = {
        "schema": RECEIPT_SCHEMA,
        "status": "failed",
        "leaderboard_eligible": False,
        "failure": {
            "status": getattr(error, "status", "error"),
            "error": type(error).__name__,
            "reason": str(error),
            "sandbox": getattr(error, "sandbox", None),
        },
        **_run_record(task, split, submission, entry, environment, code_version),
    }
    return _clean(receipt)


def write_receipt(receipt: dict[str, Any], path: str | Path) -> Path:
    """Write atomically (a reader never sees half a receipt)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(receipt, indent=2, sort_keys=False, allow_nan=False) + "\n")
    os.replace(tmp, path)
    return path


def read_receipt(path: str | Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text())
