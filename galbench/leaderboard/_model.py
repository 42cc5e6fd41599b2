"""The leaderboard as data: per task, its ranked splits, rows and unranked receipts.

Renderers (Markdown, HTML, CSV) read only this model, so the three outputs always agree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from galbench.errors import GalbenchError
from galbench.leaderboard._receipts import CHALLENGE, ReceiptRecord
from galbench.errors import LeaderboardError
from galbench.leaderboard.tiers import Standing, rank_with_tiers

#: The split entries are ranked by when a task has receipts on it (the simulated test split).
RANKING_SPLIT = "test"
#: The stratum the "main metric vs magnitude" plots use.
MAG_STRATUM = "mag"


@dataclass(frozen=True)
class TaskView:
    """What the pages say about a task: from its registered spec, or (for a task this galbench
    does not know, e.g. a plugin not installed) from its receipts."""

    id: str
    title: str
    task_file: str | None  # repository-relative, e.g. "tasks/morphometry.toml"
    main_metric: str
    direction: str
    secondary: tuple[str, ...]
    split_order: tuple[str, ...]
    split_sizes: Mapping[str, int]
    mag_label: str
    #: Tasks with label budgets (transfer@1): the budgets, and the one entries are ranked at;
    #: an entry's budget is its submission's ``labels``.
    label_budgets: tuple[int, ...] = ()
    ranked_label_budget: int | None = None
    #: Real splits of a task whose ranking split is simulated (deblending@1 ``real_cosmos``):
    #: the pages show each beside the simulated one, with the sim-to-real gap.
    real_splits: tuple[str, ...] = ()


@dataclass(frozen=True)
class SplitBoard:
    """The ranked receipts of one task split, best first."""

    split: str
    standings: tuple[Standing, ...]
    records: Mapping[str, ReceiptRecord]  # entry name -> its ranked receipt

    def standing(self, name: str) -> Standing | None:
        return next((s for s in self.standings if s.name == name), None)


@dataclass(frozen=True)
class TaskBoard:
    view: TaskView
    ranking_split: str | None
    public_splits: tuple[str, ...]  # splits with ranked receipts, ranking split first
    splits: Mapping[str, SplitBoard]  # every split with ranked receipts, challenge included
    rows: tuple[str, ...]  # entry names of the main table, in table order
    secondary: tuple[str, ...]  # the task's secondary metrics that some ranked receipt has
    not_ranked: tuple[ReceiptRecord, ...]
    records: tuple[ReceiptRecord, ...]  # every receipt of the task

    @property
    def challenge(self) -> SplitBoard | None:
        return self.splits.get(CHALLENGE)

    def not_ranked_reason(self, record: ReceiptRecord) -> str | None:
        """Why a receipt is not ranked on this task (its own reasons, or a label budget other
        than the one the task ranks at), or ``None``."""
        return record.not_ranked_reason() or budget_reason(self.view, record)

    def record(self, split: str, name: str) -> ReceiptRecord | None:
        board = self.splits.get(split)
        return board.records.get(name) if board else None

    def standing(self, split: str, name: str) -> Standing | None:
        board = self.splits.get(split)
        return board.standing(name) if board else None

    def row_record(self, name: str) -> ReceiptRecord:
        """The receipt a row's entry details come from: its ranking-split receipt, else the one
        of the first split it has."""
        for split in self.public_splits:
            record = self.record(split, name)
            if record is not None:
                return record
        raise KeyError(name)  # pragma: no cover - rows are built from these records


@dataclass(frozen=True)
class Leaderboard:
    tasks: tuple[TaskBoard, ...]
    records: tuple[ReceiptRecord, ...]


def task_view(task_id: str, records: Sequence[ReceiptRecord]) -> TaskView:
    from galbench.tasks import builtin_task_dir, get_task

    try:
        spec = get_task(task_id)
    except (GalbenchError, KeyError):
        spec = None
    if spec is None or spec.id != task_id:
        first = next((r.receipt for r in records if r.status == "ok"), records[0].receipt)
        splits = sorted({r.split for r in records})
        return TaskView(
            id=task_id,
            title=task_id,
            task_file=None,
            main_metric=str(first.get("main_metric", "")),
            direction=str(first.get("direction", "")),
            secondary=(),
            split_order=tuple(splits),
            split_sizes={},
            mag_label="magnitude",
        )
    task_file = None
    source = Path(spec.source) if spec.source else None
    if source is not None and source.parent.resolve() == builtin_task_dir().resolve():
        task_file = f"tasks/{source.name}"
    mag = next((s for s in spec.strata if s.column == MAG_STRATUM), None)
    mag_label = "magnitude"
    if mag is not None:
        mag_label = (mag.label or mag.column) + (f" ({mag.unit})" if mag.unit else "")
    return TaskView(
        id=spec.id,
        title=spec.title,
        task_file=task_file,
        main_metric=spec.main_metric,
        direction=spec.direction,
        secondary=tuple(spec.secondary_metrics),
        split_order=tuple(spec.splits),
        split_sizes={name: s.n for name, s in spec.splits.items()},
        mag_label=mag_label,
        label_budgets=tuple(int(b) for b in spec.extra.get("label_budgets", ())),
        ranked_label_budget=spec.extra.get("ranked_label_budget"),
        real_splits=tuple(
            name for name, s in spec.splits.items()
            if s.real and RANKING_SPLIT in spec.splits and not spec.splits[RANKING_SPLIT].real
        ),
    )


def build_model(records: Sequence[ReceiptRecord]) -> Leaderboard:
    """Group receipts by task and split, rank each split, and lay out the tables.

    Raises :class:`LeaderboardError` when ranked receipts of one split cannot be compared (two
    receipts of one entry, another main metric or direction than the task's, bootstrap samples of
    different lengths or sizes).
    """
    by_task: dict[str, list[ReceiptRecord]] = {}
    for record in sorted(records, key=lambda r: r.path):
        by_task.setdefault(record.task, []).append(record)
    return Leaderboard(
        tasks=tuple(_task_board(task_id, by_task[task_id]) for task_id in sorted(by_task)),
        records=tuple(sorted(records, key=lambda r: r.path)),
    )


def budget_reason(view: TaskView, record: ReceiptRecord) -> str | None:
    budget = view.ranked_label_budget
    if budget is None or record.status != "ok":
        return None
    labels = record.receipt.get("submission", {}).get("labels")
    if labels == budget:
        return None
    return (
        f"label budget {labels} ({view.id} ranks entries at {budget} labels; every budget is in "
        "the learning curve)"
    )


def _task_board(task_id: str, records: list[ReceiptRecord]) -> TaskBoard:
    view = task_view(task_id, records)
    ranked: dict[str, dict[str, ReceiptRecord]] = {}
    not_ranked = []
    for record in records:
        if record.not_ranked_reason() is not None or budget_reason(view, record) is not None:
            not_ranked.append(record)
            continue
        where = f"{task_id} {record.split}"
        if (record.receipt["main_metric"], record.receipt["direction"]) != (
            view.main_metric,
            view.direction,
        ):
            raise LeaderboardError(
                f"{record.path}: main metric {record.receipt['main_metric']} "
                f"({record.receipt['direction']} is better) is not {view.id}'s "
                f"{view.main_metric} ({view.direction} is better)"
            )
        split_records = ranked.setdefault(record.split, {})
        if record.name in split_records:
            raise LeaderboardError(
                f"{where}: two receipts for entry {record.name!r} "
                f"({split_records[record.name].path}, {record.path}); keep one"
            )
        split_records[record.name] = record

    def split_key(split: str) -> tuple[int, int, str]:
        """The ranking split first, the hidden challenge split last, the others in task order."""
        group = 0 if split == RANKING_SPLIT else 2 if split == CHALLENGE else 1
        order = (
            view.split_order.index(split) if split in view.split_order else len(view.split_order)
        )
        return (group, order, split)

    boards = {}
    for split in sorted(ranked, key=split_key):
        split_records = ranked[split]
        where = f"{task_id} {split}"
        # Paired differences compare entries on the same objects: same n, same split content.
        sizes = {r.receipt["n"] for r in split_records.values()}
        if len(sizes) > 1:
            raise LeaderboardError(
                f"{where}: ranked receipts were scored on different n {sorted(sizes)}"
            )
        contents: dict[str, list[str]] = {}
        for name, r in split_records.items():
            contents.setdefault(str(r.receipt.get("split_content_sha256")), []).append(name)
        if len(contents) > 1:
            groups = "; ".join(
                f"{h[:12]}: {', '.join(sorted(n))}" for h, n in sorted(contents.items())
            )
            raise LeaderboardError(
                f"{where}: ranked receipts were scored on different split contents ({groups}); "
                "they are not comparable (re-score on the published split)"
            )
        for record in split_records.values():
            if not isinstance(record.receipt.get("bootstrap_main"), list):
                raise LeaderboardError(f"{record.path}: field 'bootstrap_main' (a list) is missing")
        standings = rank_with_tiers(
            {name: r.main_value for name, r in split_records.items()},  # type: ignore[misc]
            {name: r.receipt["bootstrap_main"] for name, r in split_records.items()},
            view.direction,
            where=where,
        )
        boards[split] = SplitBoard(split, tuple(standings), dict(sorted(split_records.items())))

    public = tuple(s for s in boards if s != CHALLENGE)
    ranking_split = public[0] if public else None
    rows = [s.name for s in boards[ranking_split].standings] if ranking_split else []
    rows += sorted({n for s in public[1:] for n in boards[s].records} - set(rows))
    secondary = tuple(
        m
        for m in view.secondary
        if any(m in r.receipt["metrics"] for b in boards.values() for r in b.records.values())
    )

    def record_key(r: ReceiptRecord) -> tuple:
        return (split_key(r.split), r.name, r.path)

    return TaskBoard(
        view=view,
        ranking_split=ranking_split,
        public_splits=public,
        splits=boards,
        rows=tuple(rows),
        secondary=secondary,
        not_ranked=tuple(sorted(not_ranked, key=record_key)),
        records=tuple(sorted(records, key=record_key)),
    )
