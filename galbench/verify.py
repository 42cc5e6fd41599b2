"""``galbench verify``: re-check a receipt from first principles.

A receipt verifies when
- its task file is the published one (task sha256),
- the split rebuilt (or found) under the data home has the same content hash,
- the submission folder, where it is available, has the same content hash,
- the stored predictions (``<receipt>.predictions.npz``, beside it) have the recorded hash, and
- validating and scoring them again gives every recorded metric, interval, stratum and bootstrap
  sample.

Image-valued predictions (deblending, clump maps) are too large to commit. Their receipts store
the per-object results the scorer reduced them to (PSNR per source, clump counts, ...; see
``TaskScorer.per_object``) with their own hash (``per_object_sha256``), and every metric is
recomputed from those. That the per-object results come from the submission is spot-checked: its
code is run again, in the sandbox, on the first ``SPOT_CHECK_OBJECTS`` objects (``galbench verify
--rerun-objects all``: on every object), and their
per-object results must agree with the stored ones (to ``SPOT_CHECK_RTOL``; another CPU may move
the last bits of a network's output, so at most ``SPOT_CHECK_MAX_MISMATCH`` of the values may
differ by more).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from galbench.challenge import CHALLENGE, challenge_task
from galbench.errors import GalbenchError
from galbench.scoring import get_scorer
from galbench.scoring.base import Predictions
from galbench.scoring.receipt import _clean, predictions_sha256
from galbench.scoring.submission import submission_content_sha256
from galbench.tasks import get_task, published_split_hashes

_REL_TOL = 1e-9
SPOT_CHECK_OBJECTS = 64
SPOT_CHECK_RTOL = 1e-3
SPOT_CHECK_MAX_MISMATCH = 0.02


@dataclass
class Verification:
    path: Path
    problems: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)
    #: Set when a real split had to be rebuilt and its public source files could not be had
    #: (offline, no mirror): the receipt could not be checked, which is not a wrong receipt.
    sources_unavailable: str | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


def _same(a: Any, b: Any) -> bool:
    """Deep equality with a relative tolerance on floats (JSON round trips are exact, but a
    different BLAS may move the last bits of a median)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) or isinstance(b, float):
        if a is None or b is None:
            return a is b
        return math.isclose(a, b, rel_tol=_REL_TOL, abs_tol=1e-12)
    return a == b


def verify_receipt(
    path: str | os.PathLike[str],
    *,
    home: str | os.PathLike[str] | None = None,
    build: bool = True,
    repo_root: str | os.PathLike[str] | None = None,
    rerun_objects: int | None = SPOT_CHECK_OBJECTS,
) -> Verification:
    """Check one receipt; problems are collected, not raised, so every one gets reported.

    ``rerun_objects``: for task types whose receipts store per-object results (image-valued
    predictions), run the submission's code again on this many first objects and compare
    (0: no re-run; None: every object, a full re-run)."""
    path = Path(path)
    result = Verification(path)
    try:
        receipt = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        result.problems.append(f"{path}: unreadable receipt ({exc})")
        return result
    try:
        _verify(receipt, path, result, home, build, Path(repo_root) if repo_root else Path.cwd(), rerun_objects)
    except GalbenchError as exc:
        from galbench.data.download import ChecksumError, DownloadError

        if isinstance(exc, DownloadError) and not isinstance(exc, ChecksumError):
            result.sources_unavailable = str(exc)
        result.problems.append(f"{path}: {exc}")
    return result


def _spot_check(receipt, path, folder, spec, stored, scorer, home, result, objects) -> None:
    """Run the submission again on the first ``objects`` objects (None: all) and compare their
    per-object results with the stored ones (see the module docstring)."""
    from galbench.data.split import load_split
    from galbench.runner import run_submission
    from galbench.scoring.submission import load_submission

    n = receipt["n"] if objects is None else min(objects, receipt["n"])
    split = load_split(spec, receipt["split"], n, home=home, build=True, progress=False)
    submission = load_submission(folder)
    entry = submission.entry(spec.id)
    raw, _ = run_submission(submission, entry, split, progress=False)
    raw = scorer.validate(spec, raw, f"{folder} (re-run on the first {n} objects)")
    fresh = scorer.reduce(spec, raw, split)
    position = {int(i): k for k, i in enumerate(stored.object_ids)}
    rows = np.array([position.get(int(i), -1) for i in fresh.object_ids])
    if (rows < 0).any():
        result.problems.append(f"{path}: stored per-object results lack objects of the re-run")
        return
    compared = mismatched = 0
    for name, value in fresh.values.items():
        old = np.asarray(stored.values[name])[rows]
        close = np.isclose(np.asarray(value, dtype=float), old, rtol=SPOT_CHECK_RTOL, atol=1e-6, equal_nan=True)
        compared += close.size
        mismatched += int((~close).sum())
    if compared == 0 or mismatched > SPOT_CHECK_MAX_MISMATCH * compared:
        result.problems.append(
            f"{path}: re-running {folder} on the first {n} objects gives per-object results "
            f"that differ from the stored ones ({mismatched} of {compared} values)"
        )
    result.checked.append(f"re-run of the first {n} objects")


def _verify(receipt, path, result, home, build, repo_root, rerun_objects=SPOT_CHECK_OBJECTS) -> None:
    from galbench.data.split import load_split

    problems, checked = result.problems, result.checked
    spec = get_task(receipt["task"])
    if receipt.get("split") == CHALLENGE:
        spec = challenge_task(spec)  # needs the secret; without it this is reported as a problem
    if receipt.get("task_sha256") != spec.sha256:
        problems.append(f"{path}: task file hash differs from the published {spec.id}")
    checked.append("task")
    if receipt.get("status") != "ok":
        # A failure receipt records why; there is nothing to recompute.
        return
    split = load_split(spec, receipt["split"], receipt["n"], home=home, build=build, progress=False)
    if split.manifest.content_sha256 != receipt.get("split_content_sha256"):
        problems.append(
            f"{path}: split content hash {receipt.get('split_content_sha256', '')[:12]} does not "
            f"match the {spec.id} {receipt['split']} split ({split.manifest.content_sha256[:12]})"
        )
    published = published_split_hashes(spec).get(receipt["split"])
    if published and not receipt.get("partial") and receipt.get("split_content_sha256") != published:
        problems.append(
            f"{path}: scored on a split whose content differs from the published {spec.id} "
            f"{receipt['split']} ({published[:12]}); not comparable"
        )
    checked.append("split")

    sub_path = receipt.get("submission", {}).get("path")
    if sub_path:
        folder = Path(sub_path)
        folder = folder if folder.is_absolute() else repo_root / folder
        if folder.is_dir():
            if submission_content_sha256(folder) != receipt["submission"]["content_sha256"]:
                problems.append(f"{path}: submission folder {folder} changed since it was scored")
            checked.append("submission")

    stored = path.with_name(receipt.get("predictions_file") or "")
    if not receipt.get("predictions_file") or not stored.is_file():
        problems.append(f"{path}: stored predictions {stored.name or '(none)'} not found")
        return
    with np.load(stored, allow_pickle=False) as data:
        values = {k: data[k] for k in data.files}
    predictions = Predictions(values.pop("object_id"), values)
    scorer = get_scorer(spec.type)
    reduced = scorer.per_object is not None
    hash_key, what = ("per_object_sha256", "per-object results") if reduced else ("predictions_sha256", "predictions")
    if predictions_sha256(predictions) != receipt.get(hash_key):
        problems.append(f"{path}: {stored.name} does not match the recorded {what} hash")
    checked.append("predictions")

    if reduced:
        # Per-object results are scored as they are; the raw images are not kept.
        folder = Path(sub_path) if sub_path else None
        folder = folder if folder is None or folder.is_absolute() else repo_root / folder
        entry_point = receipt.get("submission", {}).get("entry_point")
        if rerun_objects != 0 and entry_point and folder is not None and folder.is_dir():
            _spot_check(receipt, path, folder, spec, predictions, scorer, home, result, rerun_objects)
    else:
        predictions = scorer.validate(spec, predictions, str(stored))
    scores = scorer.score(spec, predictions, split.catalog)
    recomputed = _clean(
        {
            "metrics": scores.metrics,
            "intervals": {k: list(v) for k, v in scores.intervals.items()},
            "strata": scores.strata,
            "bootstrap_main": scores.bootstrap_main,
        }
    )
    for key, value in recomputed.items():
        if not _same(receipt.get(key), value):
            detail = ""
            if key == "metrics":
                diff = [
                    k for k in value if not _same(receipt.get(key, {}).get(k), value[k])
                ]
                detail = f" (e.g. {diff[0]}: recorded {receipt[key].get(diff[0])}, recomputed {value[diff[0]]})" if diff else ""
            problems.append(f"{path}: recorded {key} differ from the recomputed ones{detail}")
    checked.append("metrics")
