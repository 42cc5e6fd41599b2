"""Build, write and check the leaderboard."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from galbench.leaderboard._csv import render_csv
from galbench.leaderboard._html import render_html
from galbench.leaderboard._markdown import render_markdown
from galbench.leaderboard._model import Leaderboard, build_model
from galbench.leaderboard._receipts import (
    CHALLENGE,
    ReceiptRecord,
    layout_problems,
    orphan_prediction_files,
    read_receipt_record,
    receipt_files,
)
from galbench.errors import LeaderboardError

DEFAULT_ROOT = "leaderboard"
#: The files ``galbench leaderboard`` writes into the leaderboard folder, in this order.
OUTPUT_FILES = ("README.md", "index.html", "leaderboard.csv")


def load_leaderboard(root: str | os.PathLike[str] = DEFAULT_ROOT) -> Leaderboard:
    """Read every receipt under ``root/receipts`` and rank them (the model the pages show).

    Raises :class:`LeaderboardError` for an unreadable receipt or receipts that cannot be ranked
    together.
    """
    root = Path(root)
    return build_model([read_receipt_record(root, rel) for rel in receipt_files(root)])


def render_leaderboard(board: Leaderboard) -> dict[str, bytes]:
    """The output files' bytes, keyed by file name (:data:`OUTPUT_FILES`)."""
    return {
        "README.md": render_markdown(board).encode("utf-8"),
        "index.html": render_html(board).encode("utf-8"),
        "leaderboard.csv": render_csv(board).encode("utf-8"),
    }


def build_leaderboard(root: str | os.PathLike[str] = DEFAULT_ROOT) -> dict[str, bytes]:
    """What ``README.md``, ``index.html`` and ``leaderboard.csv`` must contain: a pure function of
    the receipts under ``root/receipts`` (and the task files they name). Writes nothing."""
    return render_leaderboard(load_leaderboard(root))


@dataclass
class LeaderboardBuild:
    """What :func:`write_leaderboard` did."""

    root: Path
    files: dict[str, bytes]
    written: list[str]  # output files whose content changed (or were created)
    receipts: int
    ranked: int
    ok: bool = True

    def report(self) -> str:
        lines = [
            f"{'wrote    ' if name in self.written else 'unchanged'} {self.root / name}"
            for name in self.files
        ]
        lines.append(f"{self.receipts} receipt(s), {self.ranked} ranked")
        return "\n".join(lines)


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def write_leaderboard(root: str | os.PathLike[str] = DEFAULT_ROOT) -> LeaderboardBuild:
    """Rebuild the output files in ``root`` from its receipts; files whose bytes would not change
    are left untouched. Raises :class:`LeaderboardError` (nothing written) when the receipts
    cannot be ranked."""
    root = Path(root)
    board = load_leaderboard(root)
    files = render_leaderboard(board)
    root.mkdir(parents=True, exist_ok=True)
    written = []
    for name, data in files.items():
        path = root / name
        if not path.is_file() or path.read_bytes() != data:
            _write_atomic(path, data)
            written.append(name)
    ranked = sum(len(s.standings) for t in board.tasks for s in t.splits.values())
    return LeaderboardBuild(root, files, written, len(board.records), ranked)


@dataclass(frozen=True)
class LeaderboardProblem:
    """One thing wrong with a committed leaderboard.

    kind: ``"stale"`` (an output file differs from what the receipts give), ``"unverified"``
    (``galbench verify`` rejects a receipt), ``"misplaced"`` (a receipt's folder or file name does
    not match its content, or a predictions file has no receipt), ``"invalid"`` (a receipt cannot
    be read, or the receipts cannot be ranked together).
    path: the file, relative to the leaderboard folder.
    """

    kind: str
    path: str
    message: str


@dataclass
class LeaderboardCheck:
    """Result of :func:`check_leaderboard`; ``ok`` when there is no problem."""

    root: Path
    problems: list[LeaderboardProblem] = field(default_factory=list)
    verified: list[str] = field(default_factory=list)  # receipts that verify
    not_verified: list[tuple[str, str]] = field(default_factory=list)  # (receipt, why not checked)
    up_to_date: list[str] = field(default_factory=list)  # output files that match the receipts
    verification_skipped: bool = False  # check_leaderboard(verify=False)

    @property
    def ok(self) -> bool:
        return not self.problems

    def by_kind(self, kind: str) -> list[LeaderboardProblem]:
        return [p for p in self.problems if p.kind == kind]

    def report(self) -> str:
        verified = (
            "receipts not verified (skipped)"
            if self.verification_skipped
            else f"{len(self.verified)} receipt(s) verified"
        )
        lines = [
            (
                f"{'OK  ' if self.ok else 'FAIL'}  {self.root}: {len(self.up_to_date)} of "
                f"{len(OUTPUT_FILES)} output files up to date, {verified}, "
                f"{len(self.problems)} problem(s)"
            )
        ]
        for problem in self.problems:
            message = problem.message.replace("\n", "\n      ")
            lines.append(f"      {problem.kind:<10} {message}")
        for path, why in self.not_verified:
            lines.append(f"      not verified here: {path} ({why})")
        if self.by_kind("stale"):
            lines.append("      rebuild with `galbench leaderboard` and commit the result")
        return "\n".join(lines)


def _first_difference(committed: bytes, expected: bytes) -> str:
    old = committed.decode("utf-8", errors="replace").splitlines()
    new = expected.decode("utf-8", errors="replace").splitlines()
    for number, (a, b) in enumerate(zip(old, new), start=1):
        if a != b:
            return f"line {number}: committed {a[:120]!r}, receipts give {b[:120]!r}"
    number = min(len(old), len(new)) + 1
    if len(old) > len(new):
        return f"line {number}: committed has extra line {old[len(new)][:120]!r}"
    if len(new) > len(old):
        return f"line {number}: receipts give an extra line {new[len(old)][:120]!r}"
    return "line endings or trailing bytes differ"


def check_leaderboard(
    root: str | os.PathLike[str] = DEFAULT_ROOT,
    *,
    home: str | os.PathLike[str] | None = None,
    repo_root: str | os.PathLike[str] | None = None,
    verify: bool = True,
) -> LeaderboardCheck:
    """Check a committed leaderboard folder without changing it.

    Reports (a) each output file that differs from what the receipts give (rebuilt in memory),
    (b) each receipt that ``galbench verify`` rejects (splits are built under ``home`` if
    missing; submission paths are relative to ``repo_root``, default: the folder above
    ``root``), (c) each receipt whose folder or file name does not match its content, and
    unreadable or mutually inconsistent receipts. ``verify=False`` skips (b). Receipts of the
    hidden challenge split are verified only where its secret seed is set; elsewhere they are
    listed in ``not_verified``.
    """
    root = Path(root)
    result = LeaderboardCheck(root)
    problems = result.problems
    repo_root = Path(repo_root) if repo_root is not None else root.resolve().parent

    rels = receipt_files(root)
    records: list[ReceiptRecord] = []
    for rel in rels:
        try:
            record = read_receipt_record(root, rel)
        except LeaderboardError as exc:
            problems.append(LeaderboardProblem("invalid", rel, str(exc)))
            continue
        records.append(record)
        problems += [LeaderboardProblem("misplaced", rel, m) for m in layout_problems(record)]
    problems += [
        LeaderboardProblem("misplaced", rel, f"{rel}: predictions file without a receipt beside it")
        for rel in orphan_prediction_files(root, rels, records)
    ]

    if verify:
        _verify_receipts(root, records, result, home, repo_root)
    else:
        result.verification_skipped = True

    if len(records) == len(rels):
        try:
            expected = render_leaderboard(build_model(records))
        except LeaderboardError as exc:
            problems.append(LeaderboardProblem("invalid", "receipts", f"cannot rank: {exc}"))
            expected = None
    else:
        expected = None
        problems.append(
            LeaderboardProblem("invalid", "receipts", "cannot rebuild: unreadable receipt(s)")
        )
    if expected is not None:
        stale = []
        for name, data in expected.items():
            path = root / name
            if not path.is_file():
                stale.append(LeaderboardProblem("stale", name, f"{name}: missing"))
            elif path.read_bytes() != data:
                where = _first_difference(path.read_bytes(), data)
                message = f"{name}: differs from what the receipts give ({where})"
                stale.append(LeaderboardProblem("stale", name, message))
            else:
                result.up_to_date.append(name)
        if [p.path for p in stale] == ["index.html"]:
            from galbench.leaderboard._plot import matplotlib_version

            stale[0] = LeaderboardProblem(
                "stale",
                "index.html",
                stale[0].message + f"; README.md and leaderboard.csv match, so this may be the "
                f"plots: they are rendered with matplotlib {matplotlib_version()} here, and "
                "another matplotlib version can change the SVG",
            )
        problems += stale
    return result


def _verify_receipts(root, records, result, home, repo_root) -> None:
    from galbench import verify as verify_module
    from galbench.challenge import SEED_VARIABLE

    unavailable: dict[tuple[str, str], str] = {}  # real splits whose sources could not be had
    for record in records:
        if (record.task, record.split) in unavailable:  # one failed fetch per split, not per receipt
            result.not_verified.append((record.path, unavailable[(record.task, record.split)]))
            continue
        if record.challenge and not os.environ.get(SEED_VARIABLE):
            result.not_verified.append(
                (record.path, f"a {CHALLENGE} receipt; verifying it needs ${SEED_VARIABLE}")
            )
            continue
        try:
            verification = verify_module.verify_receipt(
                root / record.path, home=home, repo_root=repo_root
            )
        except Exception as exc:  # noqa: BLE001 - a crashing check is reported, not raised
            result.problems.append(
                LeaderboardProblem(
                    "unverified",
                    record.path,
                    f"{record.path}: verify failed with {type(exc).__name__}: {exc}",
                )
            )
            continue
        if verification.sources_unavailable is not None:
            # A real split rebuilt from public files that cannot be had here (offline, no
            # mirror): not a failed check, like a challenge receipt without the seed. A source
            # file that differs from its sha256 is a ChecksumError: a problem, reported below.
            why = ("a real-split receipt whose source files are not available here; set "
                   "$GALBENCH_MIRROR to a mirror (e.g. ../shared/data) or go online ("
                   + verification.sources_unavailable.splitlines()[0] + ")")
            unavailable[(record.task, record.split)] = why
            result.not_verified.append((record.path, why))
        elif verification.ok:
            result.verified.append(record.path)
        else:
            result.problems += [
                LeaderboardProblem("unverified", record.path, p) for p in verification.problems
            ]


def run_leaderboard(
    root: str | os.PathLike[str] = DEFAULT_ROOT,
    *,
    check: bool = False,
    home: str | os.PathLike[str] | None = None,
    repo_root: str | os.PathLike[str] | None = None,
    verify: bool = True,
) -> LeaderboardBuild | LeaderboardCheck:
    """``galbench leaderboard [--check]``: rebuild the outputs (default) or check them. Either
    result has ``ok`` (the exit status: 0 when true, else 1) and ``report()`` (what to print)."""
    if check:
        return check_leaderboard(root, home=home, repo_root=repo_root, verify=verify)
    return write_leaderboard(root)
