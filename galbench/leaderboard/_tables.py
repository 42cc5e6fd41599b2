"""The leaderboard's tables and lists as plain structures, rendered by both the Markdown and the
HTML writer (so the two pages always show the same rows)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple
from urllib.parse import quote

from galbench.leaderboard import _format as F
from galbench.leaderboard._model import RANKING_SPLIT, TaskBoard
from galbench.leaderboard._receipts import CHALLENGE, ReceiptRecord


class Part(NamedTuple):
    """A piece of a cell or line. ``raw``: text galbench wrote (numbers, fixed words), shown as
    is; other text comes from a receipt and is escaped for the page it goes into."""

    text: str
    href: str | None = None
    raw: bool = False


Parts = tuple[Part, ...]


@dataclass(frozen=True)
class Cell:
    parts: Parts
    sort: str | None = None  # numeric sort key for the HTML table ("" = missing, sorts last)


@dataclass(frozen=True)
class Column:
    title: str
    numeric: bool = False


@dataclass(frozen=True)
class Table:
    id: str  # HTML id, stable: derived from the task id and the table's role
    columns: tuple[Column, ...]
    rows: tuple[tuple[Cell, ...], ...]


def href(link: str) -> str:
    """A link as written into a page: web URLs (already checked by ``safe_url``) as they are,
    receipt paths percent-encoded."""
    return link if link.startswith(("http://", "https://")) else quote(link, safe="/@")


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _text(text: str, sort: str | None = None, *, raw: bool = True) -> Cell:
    return Cell((Part(text, raw=raw),), sort)


def _number(value: object, text: str) -> Cell:
    return Cell((Part(text, raw=True),), repr(float(value)) if F.is_number(value) else "")


def _entry(record: ReceiptRecord) -> Cell:
    paper, code = F.entry_links(record)
    parts = [Part(record.name, paper or code)]
    if paper and code:
        parts += [Part(" (", raw=True), Part("code", code, raw=True), Part(")", raw=True)]
    return Cell(tuple(parts), record.name)


def _metric(record: ReceiptRecord | None, standing_tier: int | None = None) -> Cell:
    if record is None:
        return _text(F.MISSING, "")
    lo, hi = record.main_interval
    text = F.fmt_value(record.main_value)
    interval = F.fmt_interval(lo, hi, like=record.main_value)
    if interval:
        text += f" {interval}"
    if standing_tier is not None:
        text += f", tier {standing_tier}"
    return _number(record.main_value, text)


def _rank(board: TaskBoard, split: str | None, name: str) -> Cell:
    standing = board.standing(split, name) if split else None
    if standing is None:
        return _text(F.MISSING, "")
    return _text(f"{standing.rank} (tier {standing.tier})", str(standing.rank))


def _details(record: ReceiptRecord) -> list[Cell]:
    rate = F.throughput(record)
    return [
        _number(F.parameters(record), F.fmt_si(F.parameters(record))),
        _number(rate, F.fmt_si(rate)),
        _number(F.labels(record), F.fmt_count(F.labels(record))),
        _text(F.measured_on(record), raw=False),
    ]


_DETAIL_COLUMNS = (
    Column("Parameters", numeric=True),
    Column("Throughput (objects/s)", numeric=True),
    Column("Labels", numeric=True),
    Column("Measured on"),
)


def _split_parts(board: TaskBoard, split: str) -> set[str]:
    parts: set[str] = set()
    for name in board.rows:
        record = board.record(split, name)
        if record is not None:
            parts |= _parts_of(record.receipt.get("metrics") or {})
    return parts


def _over(board: TaskBoard, split: str) -> str:
    """`` (over mag, log10_r_half)`` for a split whose receipts report other parts (targets,
    sources) than the ranking split's: its main metric then averages something else
    (morphometry@1 ``real_cosmos`` scores only the targets real galaxies have truth for)."""
    if split == board.ranking_split or board.ranking_split is None:
        return ""
    mine, ranked = _split_parts(board, split), _split_parts(board, board.ranking_split)
    if not mine or mine == ranked:
        return ""
    return f" (over {', '.join(sorted(mine))})"


def main_table(board: TaskBoard) -> Table:
    """Rank (tier) on the ranking split, entry, the main metric on each public split side by
    side, secondary metrics, parameters, throughput, label budget, where it was measured."""
    view = board.view
    metric = f"{view.main_metric} {F.arrow(view.direction)}"
    columns = [
        Column(f"Rank (tier) on {board.ranking_split}" if board.ranking_split else "Rank"),
        Column("Entry"),
    ]
    columns += [
        Column(f"{metric} · {split}" + (" (95% interval)" if i == 0 else "") + _over(board, split),
               numeric=True)
        for i, split in enumerate(board.public_splits)
    ]
    columns += [Column(m, numeric=True) for m in board.secondary]
    columns += _DETAIL_COLUMNS
    rows = []
    for name in board.rows:
        info = board.row_record(name)
        cells = [_rank(board, board.ranking_split, name), _entry(info)]
        for split in board.public_splits:
            standing = board.standing(split, name)
            tier = standing.tier if standing and split != board.ranking_split else None
            cells.append(_metric(board.record(split, name), tier))
        metrics = info.receipt["metrics"]
        cells += [_number(metrics.get(m), F.fmt_value(metrics.get(m))) for m in board.secondary]
        cells += _details(info)
        rows.append(tuple(cells))
    return Table(f"{slug(view.id)}-main", tuple(columns), tuple(rows))


def breakdown_table(board: TaskBoard, metric: str | None = None) -> Table | None:
    """A metric's breakdown (default: the main metric's), when receipts report one as
    ``<metric>/<part>`` (anomaly@1: ``auroc/merger``, ``auroc/ring``, ...; clumps@1:
    ``completeness/0.03-0.05``, ...): one column per part, one row per ranked entry, on the
    ranking split. None when no receipt has such metrics."""
    if not board.ranking_split or not board.rows:
        return None
    main = metric is None or metric == board.view.main_metric
    metric = board.view.main_metric if metric is None else metric
    prefix = metric + "/"
    parts: list[str] = []
    for name in board.rows:
        record = board.record(board.ranking_split, name)
        for metric in (record.receipt.get("metrics") or {}) if record else ():
            if metric.startswith(prefix) and metric not in parts:
                parts.append(metric)
    if not parts:
        return None
    columns = [Column("Entry")] + [Column(m[len(prefix):], numeric=True) for m in parts]
    rows = []
    for name in board.rows:
        record = board.record(board.ranking_split, name)
        if record is None:
            continue
        metrics = record.receipt.get("metrics") or {}
        intervals = record.receipt.get("intervals") or {}
        cells = [_entry(record)]
        for m in parts:
            value = metrics.get(m)
            text = F.fmt_value(value)
            lo_hi = intervals.get(m)
            if F.is_number(value) and isinstance(lo_hi, (list, tuple)) and len(lo_hi) == 2:
                interval = F.fmt_interval(lo_hi[0], lo_hi[1], like=value)
                text += f" {interval}" if interval else ""
            cells.append(_number(value, text))
        rows.append(tuple(cells))
    name = "breakdown" if main else f"{slug(metric)}-breakdown"
    return Table(f"{slug(board.view.id)}-{name}", tuple(columns), tuple(rows))


_BUDGET_SUFFIX = re.compile(r"-b\d+$")


def learning_curve_table(board: TaskBoard) -> Table | None:
    """For tasks with label budgets: the main metric on the ranking split per method (entry
    name without its ``-b<budget>`` suffix) and budget (the submission's ``labels``)."""
    view = board.view
    if view.ranked_label_budget is None:
        return None
    curves: dict[str, dict[int, ReceiptRecord]] = {}
    for r in board.records:
        if r.split != RANKING_SPLIT or r.not_ranked_reason() is not None:
            continue
        labels = F.labels(r)
        if isinstance(labels, int) and not isinstance(labels, bool):
            curves.setdefault(_BUDGET_SUFFIX.sub("", r.name), {})[labels] = r
    if not curves:
        return None
    budgets = sorted(set(view.label_budgets) | {b for c in curves.values() for b in c})
    columns = [Column("Method")] + [
        Column(f"{b:,} labels" + (" (ranked)" if b == view.ranked_label_budget else ""), numeric=True)
        for b in budgets
    ]
    rows = []
    for method in sorted(curves):
        cells = [_text(method, method, raw=False)]
        cells += [_metric(curves[method].get(b)) for b in budgets]
        rows.append(tuple(cells))
    return Table(f"{slug(view.id)}-learning-curve", tuple(columns), tuple(rows))


def _parts_of(metrics: dict) -> set[str]:
    return {k.split("/", 1)[1] for k in metrics if "/" in k}


def _comparable_metrics(board: TaskBoard, split: str, names: list[str]) -> list[str]:
    """Metrics that mean the same on the ranking split and on real split ``split`` for every
    entry with both receipts: an aggregate (``psnr``, ``mean_normalized_scatter``) only when
    both receipts report the same parts (sources, targets); else the per-target ``scatter`` and
    ``bias`` of the targets both splits score (morphometry@1's real split scores only `mag` and
    a derived size, so its mean over targets is not the simulated one's)."""
    pairs = []
    for name in names:
        sim, real = board.record(RANKING_SPLIT, name), board.record(split, name)
        if sim is not None and real is not None:
            pairs.append((sim.receipt.get("metrics") or {}, real.receipt.get("metrics") or {}))
    if not pairs:
        return []
    if all(_parts_of(a) == _parts_of(b) for a, b in pairs):
        wanted = [board.view.main_metric, *board.secondary]
    else:
        shared = set.intersection(*(_parts_of(a) & _parts_of(b) for a, b in pairs))
        wanted = [f"{family}/{part}" for part in sorted(shared) for family in ("scatter", "bias")]
    return [m for m in wanted if all(F.is_number(a.get(m)) and F.is_number(b.get(m)) for a, b in pairs)]


def sim_to_real_table(board: TaskBoard, split: str) -> Table | None:
    """Entries scored on both the simulated ranking split and real split ``split``: each
    comparable metric as ``sim → real (real − sim)``, the gap Tuccillo+18 asked about."""
    names = [n for n in board.rows if board.record(split, n) is not None]
    metrics = _comparable_metrics(board, split, names)
    if not names or not metrics:
        return None
    columns = [Column("Entry")] + [
        Column(f"{m}: {RANKING_SPLIT} → {split} (gap)", numeric=True) for m in metrics
    ]
    rows = []
    for name in names:
        sim = board.record(RANKING_SPLIT, name).receipt["metrics"]
        real = board.record(split, name).receipt["metrics"]
        cells = [_entry(board.record(split, name))]
        for m in metrics:
            gap = float(real[m]) - float(sim[m])
            text = f"{F.fmt_value(sim[m])} → {F.fmt_value(real[m])} ({gap:+.3g})"
            cells.append(_number(gap, text))
        rows.append(tuple(cells))
    return Table(f"{slug(board.view.id)}-{slug(split)}-gap", tuple(columns), tuple(rows))


#: A caption as (text, is_code) pieces, so each page can mark the code pieces its own way.
Caption = tuple[tuple[str, bool], ...]


def supplementary_tables(board: TaskBoard) -> list[tuple[Caption, Table]]:
    """The tables shown under a task's main table, with their captions: the breakdown by part
    of the main metric and of each secondary metric that has one, and the learning curve of
    tasks with label budgets."""
    metric = board.view.main_metric
    out: list[tuple[Caption, Table]] = []
    for name in (metric, *board.secondary):
        breakdown = breakdown_table(board, name)
        if breakdown is not None:
            caption = ((name, True), (" by part on ", False), (str(board.ranking_split), True))
            out.append((caption + ((" (95% interval):", False),), breakdown))
    for split in board.view.real_splits:
        gap = sim_to_real_table(board, split)
        if gap is not None:
            caption = (("Sim to real: ", False), (RANKING_SPLIT, True), (" (simulated) against ", False),
                       (split, True), (" (real data); the gap is real minus simulated:", False))
            out.append((caption, gap))
    curve = learning_curve_table(board)
    if curve is not None:
        caption = (("Learning curve: ", False), (metric, True), (" on ", False), (RANKING_SPLIT, True))
        out.append((caption + ((" by label budget (95% interval):", False),), curve))
    return out


def challenge_table(board: TaskBoard) -> Table | None:
    split = board.challenge
    if split is None:
        return None
    metric = f"{board.view.main_metric} {F.arrow(board.view.direction)}"
    columns = (
        Column(f"Rank (tier) on {CHALLENGE}"),
        Column("Entry"),
        Column(f"{metric} · {CHALLENGE} (95% interval)", numeric=True),
        *_DETAIL_COLUMNS,
    )
    rows = []
    for standing in split.standings:
        record = split.records[standing.name]
        rows.append(
            (
                _rank(board, CHALLENGE, standing.name),
                _entry(record),
                _metric(record),
                *_details(record),
            )
        )
    return Table(f"{slug(board.view.id)}-challenge", columns, tuple(rows))


def not_ranked_lines(board: TaskBoard) -> list[Parts]:
    return [
        (Part(r.name), Part(" on ", raw=True), Part(r.split), Part(": ", raw=True),
         Part(F.one_line(board.not_ranked_reason(r))))
        for r in board.not_ranked
    ]  # fmt: skip


def receipt_lines(board: TaskBoard) -> list[Parts]:
    """One line per receipt: file, n, where it was measured, code version, predictions hash."""
    lines = []
    for r in board.records:
        receipt = r.receipt
        gb = receipt.get("galbench") or {}
        commit = str(gb.get("git_commit") or "")[:12]
        version = f"galbench {gb.get('version', '?')}" + (f" @ {commit}" if commit else "")
        if gb.get("git_dirty"):
            version += " (uncommitted changes)"
        state = (
            r.status if r.status != "ok" else "not ranked" if board.not_ranked_reason(r) else "ranked"
        )
        text = f" ({r.split}, {state}): n = {F.fmt_count(receipt.get('n'))}; "
        text += f"{F.measured_sentence(r)}; {version}"
        if receipt.get("predictions_sha256"):
            text += f"; predictions sha256 {str(receipt['predictions_sha256'])[:12]}…"
        lines.append((Part(r.name), Part(text + "; "), Part(r.path, r.path)))
    return lines
