"""Finding and reading the receipts under ``<root>/receipts/<task id>/<split>/<name>.json``."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from galbench.errors import LeaderboardError
from galbench.scoring.receipt import RECEIPT_SCHEMA

RECEIPTS_DIR = "receipts"
CHALLENGE = "challenge"  # the hidden split (galbench.challenge.CHALLENGE)
FAILED_SUFFIX = ".failed.json"  # failure receipts sit beside receipts (galbench.evaluate)
PREDICTIONS_SUFFIX = ".predictions.npz"
LAYOUT = f"{RECEIPTS_DIR}/<task id>/<split>/<submission name>.json"


@dataclass(frozen=True)
class ReceiptRecord:
    """One receipt file. ``path`` is relative to the leaderboard root, with ``/`` separators."""

    path: str
    receipt: Mapping[str, Any]

    @property
    def task(self) -> str:
        return self.receipt["task"]

    @property
    def split(self) -> str:
        return self.receipt["split"]

    @property
    def name(self) -> str:
        return self.receipt["submission"]["name"]

    @property
    def status(self) -> str:
        return self.receipt["status"]

    @property
    def challenge(self) -> bool:
        return self.split == CHALLENGE

    @property
    def main_value(self) -> float | None:
        value = (self.receipt.get("metrics") or {}).get(self.receipt.get("main_metric"))
        return float(value) if _is_number(value) and math.isfinite(value) else None

    @property
    def main_interval(self) -> tuple[float | None, float | None]:
        lo_hi = (self.receipt.get("intervals") or {}).get(self.receipt.get("main_metric"))
        if not isinstance(lo_hi, list) or len(lo_hi) != 2:
            return None, None
        lo, hi = (float(v) if _is_number(v) else None for v in lo_hi)
        return lo, hi

    @property
    def failure_reason(self) -> str:
        failure = self.receipt.get("failure")
        reason = self.receipt.get("reason")
        if isinstance(failure, Mapping):
            reason = reason or failure.get("reason")
            kind = failure.get("status") or failure.get("error")
            if kind:
                return f"{kind}: {reason or 'no reason recorded'}"
        return str(reason or "no reason recorded")

    def not_ranked_reason(self) -> str | None:
        """Why this receipt is not ranked, or ``None`` when it is."""
        r = self.receipt
        if self.status != "ok":
            return f"{self.status} ({self.failure_reason})"
        if r.get("partial"):
            size = f"n = {_int(r.get('n'))} of {_int(r.get('n_official'))}"
            return f"partial run ({size}): a smoke test, never ranked"
        if r.get("leaderboard_eligible") is not True:
            return "marked not leaderboard-eligible"
        if r.get("split_matches_published") is False:
            return "scored on a split whose content differs from the published one"
        if self.main_value is None:
            return "main metric undefined (null)"
        return None


def _int(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def receipt_files(root: Path) -> list[str]:
    """Receipt files under ``root/receipts`` (hidden and temporary files skipped), as sorted
    root-relative posix paths."""
    folder = root / RECEIPTS_DIR
    if not folder.is_dir():
        return []
    found = []
    for path in folder.rglob("*.json"):
        rel = path.relative_to(root)
        if path.is_file() and not any(part.startswith(".") for part in rel.parts):
            found.append(rel.as_posix())
    return sorted(found)


def orphan_prediction_files(
    root: Path, receipts: list[str], records: list[ReceiptRecord]
) -> list[str]:
    """``*.predictions.npz`` files that no receipt names (``predictions_file``) or sits beside."""
    folder = root / RECEIPTS_DIR
    if not folder.is_dir():
        return []
    expected = {p.removesuffix(".json") + PREDICTIONS_SUFFIX for p in receipts}
    for record in records:
        named = record.receipt.get("predictions_file")
        if isinstance(named, str) and named:
            expected.add(
                f"{record.path.rsplit('/', 1)[0]}/{named}" if "/" in record.path else named
            )
    found = []
    for path in folder.rglob("*" + PREDICTIONS_SUFFIX):
        rel = path.relative_to(root)
        if not any(part.startswith(".") for part in rel.parts) and rel.as_posix() not in expected:
            found.append(rel.as_posix())
    return sorted(found)


def read_receipt_record(root: Path, rel: str) -> ReceiptRecord:
    """Read and check the fields the leaderboard uses; errors name the file and the field."""
    try:
        receipt = json.loads((root / rel).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise LeaderboardError(f"{rel}: unreadable receipt ({exc})") from None
    if not isinstance(receipt, dict):
        raise LeaderboardError(f"{rel}: a receipt is a JSON object, got {type(receipt).__name__}")
    if receipt.get("schema") != RECEIPT_SCHEMA:
        raise LeaderboardError(f"{rel}: schema {receipt.get('schema')!r} is not {RECEIPT_SCHEMA!r}")
    for key in ("task", "split", "status"):
        if not isinstance(receipt.get(key), str) or not receipt[key]:
            raise LeaderboardError(f"{rel}: field {key!r} must be a non-empty string")
    submission = receipt.get("submission")
    if not isinstance(submission, dict) or not isinstance(submission.get("name"), str):
        raise LeaderboardError(f"{rel}: field 'submission.name' must be a string")
    if receipt["status"] == "ok":
        for key, kind in (
            ("main_metric", str),
            ("direction", str),
            ("metrics", dict),
            ("intervals", dict),
            ("n", int),
        ):
            if not isinstance(receipt.get(key), kind):
                raise LeaderboardError(f"{rel}: field {key!r} must be a {kind.__name__}")
        if receipt["direction"] not in ("higher", "lower"):
            raise LeaderboardError(
                f"{rel}: field 'direction' must be 'higher' or 'lower', "
                f"got {receipt['direction']!r}"
            )
    return ReceiptRecord(rel, receipt)


def layout_problems(record: ReceiptRecord) -> list[str]:
    """Where ``record`` sits versus where its content says it belongs (empty when in place)."""
    parts = record.path.split("/")
    file = parts[-1]
    base = file.removesuffix(FAILED_SUFFIX) if file.endswith(FAILED_SUFFIX) else file[:-5]
    # A failure receipt may also sit beside the receipt of an earlier run, as <name>.failed.json.
    allowed = [f"{record.name}.json"]
    if record.status != "ok":
        allowed.append(f"{record.name}{FAILED_SUFFIX}")
    expected_file = allowed[-1]
    expected = f"{RECEIPTS_DIR}/{record.task}/{record.split}/{expected_file}"
    if any(record.path == f"{RECEIPTS_DIR}/{record.task}/{record.split}/{f}" for f in allowed):
        return []
    if len(parts) != 4 or parts[0] != RECEIPTS_DIR:
        return [f"{record.path}: receipts go in {LAYOUT}; this one belongs at {expected}"]
    problems = []
    if parts[1] != record.task:
        problems.append(
            f"{record.path}: in folder {parts[1]!r} but is a receipt of task {record.task!r}"
        )
    if parts[2] != record.split:
        problems.append(
            f"{record.path}: in folder {parts[2]!r} but is a receipt of split {record.split!r}"
        )
    if base != record.name or file not in allowed:
        problems.append(
            f"{record.path}: file name {file!r} does not match submission {record.name!r} "
            f"(expected {expected_file!r})"
        )
    return [p + f" (move it to {expected})" for p in problems]
