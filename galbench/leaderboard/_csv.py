"""``leaderboard/leaderboard.csv``: one row per receipt (task, split, entry)."""

from __future__ import annotations

import csv
import io
import math
from typing import Any

from galbench.leaderboard import _format as F
from galbench.leaderboard._model import Leaderboard, TaskBoard
from galbench.leaderboard._receipts import ReceiptRecord

FIXED_COLUMNS = (
    "task", "split", "entry", "challenge", "status", "ranked", "not_ranked_reason",
    "rank", "tier", "tier_leader", "diff_to_tier_leader_lo", "diff_to_tier_leader_hi",
    "n", "n_official", "partial", "main_metric", "direction", "main_value", "main_lo", "main_hi",
    "parameters", "labels", "objects_per_second", "device", "cpu", "cpu_count",
    "external_data", "paper", "code", "receipt", "predictions_file",
    "task_sha256", "split_manifest_sha256", "split_content_sha256",
    "submission_content_sha256", "predictions_sha256",
    "galbench_version", "galbench_commit", "galbench_dirty", "created",
)  # fmt: skip


def _cell(value: Any) -> str:
    """Floats in shortest round-trip form, booleans as true/false, missing as empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ""
    if isinstance(value, (int, str)):
        return str(value)
    return ""


def _ordered(task: TaskBoard) -> list[ReceiptRecord]:
    """Per split (ranking split first): ranked receipts by rank, then the others by name."""
    ordered: list[ReceiptRecord] = []
    for split in dict.fromkeys(r.split for r in task.records):
        board = task.splits.get(split)
        ranked = [board.records[s.name] for s in board.standings] if board else []
        ordered += ranked
        ordered += [r for r in task.records if r.split == split and all(r is not q for q in ranked)]
    return ordered


def _row(task: TaskBoard, record: ReceiptRecord) -> dict[str, Any]:
    r = record.receipt
    sub = r["submission"]
    env = r.get("environment") or {}
    inference = r.get("inference") if isinstance(r.get("inference"), dict) else {}
    gb = r.get("galbench") or {}
    reason = task.not_ranked_reason(record)
    standing = task.standing(record.split, record.name) if reason is None else None
    lo, hi = record.main_interval
    versus = standing.versus_leader if standing and standing.versus_leader else (None, None)
    return {
        "task": record.task,
        "split": record.split,
        "entry": record.name,
        "challenge": record.challenge,
        "status": record.status,
        "ranked": reason is None,
        "not_ranked_reason": F.one_line(reason) if reason else None,
        "rank": standing.rank if standing else None,
        "tier": standing.tier if standing else None,
        "tier_leader": standing.tier_leader if standing else None,
        "diff_to_tier_leader_lo": versus[0],
        "diff_to_tier_leader_hi": versus[1],
        "n": r.get("n"),
        "n_official": r.get("n_official"),
        "partial": r.get("partial"),
        "main_metric": r.get("main_metric"),
        "direction": r.get("direction"),
        "main_value": record.main_value,
        "main_lo": lo,
        "main_hi": hi,
        "parameters": sub.get("parameters"),
        "labels": sub.get("labels"),
        "objects_per_second": inference.get("objects_per_second"),
        "device": inference.get("device"),
        "cpu": env.get("cpu"),
        "cpu_count": env.get("cpu_count"),
        "external_data": sub.get("external_data"),
        "paper": sub.get("paper") or None,
        "code": sub.get("code") or None,
        "receipt": record.path,
        "predictions_file": r.get("predictions_file"),
        "task_sha256": r.get("task_sha256"),
        "split_manifest_sha256": r.get("split_manifest_sha256"),
        "split_content_sha256": r.get("split_content_sha256"),
        "submission_content_sha256": sub.get("content_sha256"),
        "predictions_sha256": r.get("predictions_sha256"),
        "galbench_version": gb.get("version"),
        "galbench_commit": gb.get("git_commit"),
        "galbench_dirty": gb.get("git_dirty"),
        "created": r.get("created"),
    }


def render_csv(board: Leaderboard) -> str:
    """Fixed columns (see :data:`FIXED_COLUMNS`), then every scalar metric any receipt has, by
    name (a metric whose name clashes with a fixed column is written as ``metric:<name>``)."""
    metric_names = sorted(
        {
            name
            for record in board.records
            for name, value in (record.receipt.get("metrics") or {}).items()
            if value is None or F.is_number(value)
        }
    )
    metric_columns = {m: (f"metric:{m}" if m in FIXED_COLUMNS else m) for m in metric_names}
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*FIXED_COLUMNS, *metric_columns.values()])
    for task in board.tasks:
        for record in _ordered(task):
            row = _row(task, record)
            metrics = record.receipt.get("metrics") or {}
            values = [row[c] for c in FIXED_COLUMNS]
            values += [
                metrics.get(m) if F.is_number(metrics.get(m)) else None for m in metric_names
            ]
            writer.writerow([_cell(float(v) if isinstance(v, float) else v) for v in values])
    return buffer.getvalue()
