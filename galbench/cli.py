"""The ``galbench`` command. Each subcommand parses its arguments and calls one library function;
``main(argv)`` is testable without a subprocess."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from galbench.errors import GalbenchError


def _console() -> Console:
    # Created per call so that tests capturing stdout see the output.
    return Console(file=sys.stdout, width=120, soft_wrap=True)


def _cmd_tasks(args: argparse.Namespace) -> int:
    from galbench.tasks import list_tasks

    table = Table(title="galbench tasks")
    for col in ("task", "type", "instrument", "image", "splits (n)", "main metric"):
        table.add_column(col)
    for spec in list_tasks(args.pattern):
        splits = "\n".join(f"{s.name} {s.n:,}" for s in spec.splits.values())
        arrow = "↑" if spec.direction == "higher" else "↓"
        table.add_row(
            spec.id,
            spec.type,
            ", ".join(spec.instruments),
            "x".join(map(str, spec.image_shape)),
            splits,
            f"{spec.main_metric} {arrow}",
        )
    _console().print(table)
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    from galbench.errors import UnknownNameError
    from galbench.sim.instruments import get_instrument
    from galbench.tasks import get_task

    spec = get_task(args.task)
    console = _console()
    console.print(f"[bold]{spec.id}[/bold] — {spec.title}  ({spec.type})")
    console.print(spec.description)
    console.print(f"task file: {spec.source} (sha256 {spec.sha256[:16]}…)")
    for name in spec.instruments:
        try:
            inst = get_instrument(name)
        except UnknownNameError:
            # Real-data tasks (rings@1, galaxy10@1) name their survey but simulate nothing.
            console.print(f"instrument {name}: real survey images (no simulated PSF or noise)")
            continue
        console.print(
            f"instrument {inst.name}: {inst.description}; {inst.pixel_scale_arcsec}\"/px, "
            f"PSF FWHM {inst.psf_fwhm_arcsec:.3f}\", zero point {inst.zero_point_ab} AB "
            f"(1 e-/s), 5σ depth {inst.noise.depth_mag} AB, sky σ {inst.sky_sigma:.4g} e-/s/px, "
            f"noise correlation {inst.noise.correlation}"
        )
    for split in spec.splits.values():
        if split.real:
            console.print(
                f"real split [bold]{split.name}[/bold] ({split.n:,} objects, recipe "
                f"{split.recipe or spec.simulation.recipe}, {len(split.sources)} source files, "
                f"definition sha256 {split.definition_sha256()[:16]}…): {split.description}"
            )
    if spec.targets:
        targets = Table(title="targets")
        for col in ("name", "unit", "scale", "outlier", "description"):
            targets.add_column(col)
        for t in spec.targets:
            targets.add_row(t.name, t.unit, f"{t.scale:g}", f"{t.outlier:g}", t.description)
        console.print(targets)
    params = spec.simulation.params
    if "kinds" in params:
        fractions = ", ".join(f"{k} {v:g}" for k, v in params.get("anomaly_fraction", {}).items())
        codes = ", ".join(f"{i} {name}" for i, name in enumerate(params["kinds"], start=1))
        console.print(f"anomaly kinds (catalog anomaly_kind; 0 = normal): {codes}")
        console.print(f"anomaly fraction per split: {fractions}")
    for c in spec.citations:
        console.print(c.bibtex, markup=False, highlight=False)
    return 0


def _cmd_cite(args: argparse.Namespace) -> int:
    from galbench.citation import citation_text

    print(citation_text(args.task), end="")
    return 0


def _cmd_generate(args: argparse.Namespace) -> int:
    from galbench.data.build import build_split

    path = build_split(
        args.task,
        args.split,
        args.n,
        home=args.home,
        workers=args.workers,
        scheduler=args.scheduler,
        shard_size=args.shard_size,
        progress=not args.quiet,
        overwrite=args.overwrite,
    )
    print(path)
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from galbench.data.export import export_fits
    from galbench.data.split import load_split

    split = load_split(args.task, args.split, args.n, home=args.home)
    for path in export_fits(split, args.out):
        print(path)
    return 0


def _cmd_latent(args: argparse.Namespace) -> int:
    from galbench.viz.latent import draw_latent_figures

    paths = draw_latent_figures(
        args.submission,
        task=args.task,
        split=args.split,
        n=args.n,
        color=args.color.split(","),
        out=args.out,
        home=args.home,
    )
    for path in paths:
        print(path)
    return 0


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def print_receipt_summary(receipt: dict[str, Any], console: Console | None = None) -> None:
    """The summary table ``galbench evaluate`` prints."""
    console = console or _console()
    sub = receipt["submission"]["name"]
    flag = "  [yellow](partial: not leaderboard-eligible)[/yellow]" if receipt["partial"] else ""
    console.print(
        f"[bold]{sub}[/bold] on {receipt['task']} {receipt['split']} "
        f"(n={receipt['n']}/{receipt['n_official']}){flag}"
    )
    table = Table(show_header=True)
    for col in ("metric", "value", "95% interval", "better"):
        table.add_column(col)
    main = receipt["main_metric"]
    names = [main] + [k for k in receipt["metrics"] if k != main and "/" not in k]
    names += [k for k in receipt["metrics"] if "/" in k and k.startswith(("scatter/", "bias/"))]
    for name in names:
        lo_hi = receipt["intervals"].get(name)
        d = receipt["directions"][name]
        better = d["direction"] if d["ideal"] is None else f"≈{d['ideal']:.4g}"
        label = f"[bold]{name}[/bold] (main)" if name == main else name
        interval = f"[{_fmt(lo_hi[0])}, {_fmt(lo_hi[1])}]" if lo_hi else "-"
        table.add_row(label, _fmt(receipt["metrics"][name]), interval, better)
    console.print(table)
    for column, rows in receipt["strata"].items():
        strat = Table(title=f"{main} by {column}")
        strat.add_column(column)
        strat.add_column("n")
        strat.add_column(main)
        for row in rows:
            strat.add_row(row["bin"], str(row["n"]), _fmt(row["metrics"].get(main)))
        console.print(strat)
    inf = receipt.get("inference")
    if inf:
        console.print(
            f"inference: {inf['seconds']:.2f} s, {inf['objects_per_second']:.0f} objects/s on "
            f"{inf['device']} ({receipt['environment']['cpu']})"
        )


def _limits(args: argparse.Namespace):
    """Sandbox limits from --time-limit/--memory-limit/--threads (None: the defaults)."""
    from galbench.harness import SandboxLimits

    given = {
        "seconds": args.time_limit,
        "memory_bytes": None if args.memory_limit is None else int(args.memory_limit * 2**30),
        "threads": args.threads,
    }
    given = {k: v for k, v in given.items() if v is not None}
    return SandboxLimits(**given) if given else None


def _add_limit_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--time-limit", type=float, default=None, help="sandbox wall time, seconds (default 4 h)")
    p.add_argument("--memory-limit", type=float, default=None, help="sandbox memory, GiB (default 16)")
    p.add_argument("--threads", type=int, default=None, help="threads the code may use (default: all cores)")


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from galbench.evaluate import evaluate

    receipt, path = evaluate(
        args.submission,
        task=args.task,
        split=args.split,
        n=args.n,
        out=args.out,
        home=args.home,
        workers=args.workers,
        progress=not args.quiet,
        limits=_limits(args),
    )
    if receipt["status"] != "ok":
        failure = receipt["failure"]
        print(f"FAILED ({failure['status']}: {failure['error']}) {receipt['submission']['name']} "
              f"on {receipt['task']} {receipt['split']}\n{failure['reason']}")
        print(f"failure receipt: {path}")
        return 1
    print_receipt_summary(receipt)
    print(f"receipt: {path}")
    return 0


def _cmd_leaderboard(args: argparse.Namespace) -> int:
    from galbench.leaderboard import run_leaderboard

    result = run_leaderboard(
        args.root, check=args.check, home=args.home, repo_root=args.repo_root,
        verify=not args.no_verify,
    )
    print(result.report())
    return 0 if result.ok else 1


def _cmd_score(args: argparse.Namespace) -> int:
    from galbench.evaluate import score_submission

    failed = 0
    for folder in args.folders:
        for receipt, path in score_submission(
            folder, receipts=args.receipts, splits=tuple(args.split) if args.split else None, home=args.home,
            workers=args.workers, progress=not args.quiet, limits=_limits(args),
        ):
            ok = receipt["status"] == "ok"
            failed += not ok
            if ok:
                value = receipt["metrics"][receipt["main_metric"]]
                print(f"OK    {path}: {receipt['main_metric']} = {value:.4g}")
            else:
                print(f"FAIL  {path}: {receipt['failure']['reason']}")
    return 1 if failed else 0


def _cmd_validate(args: argparse.Namespace) -> int:
    from galbench.validate import validate_submission

    bad = 0
    for folder in args.folders:
        result = validate_submission(folder, home=args.home, run_code=not args.no_run)
        print(f"{'OK  ' if result.ok else 'FAIL'}  {folder}")
        for note in result.notes:
            print(f"      {note}")
        for problem in result.problems:
            print("      " + problem.replace("\n", "\n      "))
        bad += not result.ok
    return 1 if bad else 0


def _cmd_download(args: argparse.Namespace) -> int:
    from galbench.data.download import fetch, known_files

    files = {}
    for pattern in args.patterns:
        matched = known_files(pattern)
        if not matched:
            raise ValueError(f"no known file matches {pattern!r}; `galbench download --list` lists them")
        files.update(matched)
    if args.list:
        for key, entry in files.items():
            size = f"{entry.size:,}" if entry.size is not None else f"~{entry.approx_size:,}"
            print(f"{key}  {size} bytes  {entry.url}")
        return 0
    for key in files:
        print(fetch(key, home=args.home, mirror=args.mirror, progress=not args.quiet))
    return 0


def _objects(text: str) -> int | None:
    if text == "all":
        return None
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("expected a number >= 0 or 'all'")
    return value


def _cmd_verify(args: argparse.Namespace) -> int:
    from galbench.verify import verify_receipt

    failed = 0
    for path in args.receipts:
        result = verify_receipt(
            path, home=args.home, repo_root=args.repo_root, rerun_objects=args.rerun_objects
        )
        if result.ok:
            print(f"OK    {path} ({', '.join(result.checked)})")
        else:
            failed += 1
            print(f"FAIL  {path}")
            for problem in result.problems:
                print(f"      {problem}")
    return 1 if failed else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="galbench", description="Benchmark suite for deep learning on galaxy images."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("tasks", help="list tasks as name@version with type, splits, main metric")
    p.add_argument("pattern", nargs="?", default="*", help="shell wildcard, e.g. 'morph*'")
    p.set_defaults(func=_cmd_tasks)

    p = sub.add_parser("info", help="describe one task: physics, instrument, targets, citations")
    p.add_argument("task")
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser("cite", help="BibTeX for a task, with its version and split hashes")
    p.add_argument("task")
    p.set_defaults(func=_cmd_cite)

    def add_split_args(p: argparse.ArgumentParser, *, task_positional: bool = True) -> None:
        if task_positional:
            p.add_argument("task", help="task id, e.g. morphometry@1 (bare name: latest version)")
        p.add_argument("--split", default="test", help="train, val or test (default: test)")
        p.add_argument("--n", type=int, default=None, help="only the first N objects")
        p.add_argument("--home", default=None, help="data home (default: $GALBENCH_HOME or cache)")

    p = sub.add_parser("generate", help="build a split under the data home")
    add_split_args(p)
    p.add_argument("--workers", type=int, default=1, help="local worker processes")
    p.add_argument("--scheduler", default=None, help="Dask scheduler address, e.g. tcp://h:8786")
    p.add_argument("--shard-size", type=int, default=1000, help="objects per image shard")
    p.add_argument("--overwrite", action="store_true", help="rebuild even if already built")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_generate)

    p = sub.add_parser("export", help="write a built split as a FITS cube + FITS table")
    add_split_args(p)
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser(
        "latent",
        help="draw a VAE submission's latent space coloured by physical parameters, and a "
             "latent interpolation (PNG); runs the model in this process: trusted code only",
    )
    p.add_argument("submission", help="submission folder whose model has encode() and decode()")
    p.add_argument("--task", default="anomaly@1", help="task id (default: anomaly@1)")
    p.add_argument("--split", default="val", help="train, val or test (default: val)")
    p.add_argument("--n", type=int, default=2000,
                   help="encode the first N objects (default: 2000, or the whole split if smaller)")
    p.add_argument("--color", default="n_bulge,log10_r_disk,bulge_to_total",
                   help="catalog columns to colour by, comma-separated; the interpolation goes "
                        "from the lowest to the highest value of the first (default: "
                        "n_bulge,log10_r_disk,bulge_to_total)")
    p.add_argument("--out", required=True,
                   help="output folder for latent_space.png and latent_interpolation.png")
    p.add_argument("--home", default=None, help="data home (default: $GALBENCH_HOME or cache)")
    p.set_defaults(func=_cmd_latent)

    p = sub.add_parser("evaluate", help="score a submission folder and write a receipt")
    p.add_argument("submission", help="submission folder (with submission.toml)")
    p.add_argument("--task", default=None, help="task id (needed if the submission enters several)")
    add_split_args(p, task_positional=False)
    p.add_argument("--out", default=None, help="receipt path (default: receipts/<name>.<task>.<split>.json)")
    p.add_argument("--workers", type=int, default=2, help="worker processes if the split must be built")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    _add_limit_args(p)
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser(
        "score", help="score every task a submission enters; receipts go where the leaderboard reads them"
    )
    p.add_argument("folders", nargs="+", help="submission folders")
    p.add_argument("--receipts", default="leaderboard/receipts", help="receipts root")
    p.add_argument("--split", action="append", default=None,
                   help="public split(s) to score (default: test and the task's real splits, e.g. "
                        "real_cosmos); the challenge split is added when "
                        "$GALBENCH_CHALLENGE_SEED is set")
    p.add_argument("--home", default=None, help="data home")
    p.add_argument("--workers", type=int, default=2, help="worker processes if a split must be built")
    p.add_argument("--quiet", action="store_true")
    _add_limit_args(p)
    p.set_defaults(func=_cmd_score)

    p = sub.add_parser(
        "leaderboard", help="rebuild leaderboard/README.md, index.html and leaderboard.csv from the receipts"
    )
    p.add_argument("--root", default="leaderboard", help="the leaderboard folder (default: ./leaderboard)")
    p.add_argument("--check", action="store_true",
                   help="change nothing; exit 1 if an output is stale, a receipt does not verify or is misplaced")
    p.add_argument("--home", default=None, help="data home for --check (splits are built there if missing)")
    p.add_argument("--repo-root", default=None,
                   help="where receipts' submission paths are relative to (default: the folder above --root)")
    p.add_argument("--no-verify", action="store_true",
                   help="with --check: skip `galbench verify` (stale and misplaced files only)")
    p.set_defaults(func=_cmd_leaderboard)

    p = sub.add_parser("validate", help="check submission folders: format, files, a smoke run")
    p.add_argument("folders", nargs="+", help="submission folders")
    p.add_argument("--home", default=None, help="data home")
    p.add_argument("--no-run", action="store_true", help="do not smoke-test code entry points")
    p.set_defaults(func=_cmd_validate)

    p = sub.add_parser(
        "download",
        help="fetch known public data files (checksummed; from $GALBENCH_MIRROR or their URL)",
    )
    p.add_argument("patterns", nargs="*", default=["*"], help="keys or shell patterns, e.g. 'cosmos_hst/*'")
    p.add_argument("--list", action="store_true", help="list the matching files, fetch nothing")
    p.add_argument("--home", default=None, help="data home (files go to <home>/downloads/)")
    p.add_argument("--mirror", default=None, help="a local mirror folder or URL prefix (default: $GALBENCH_MIRROR)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_download)

    p = sub.add_parser("verify", help="recompute a receipt's metrics and check its hashes")
    p.add_argument("receipts", nargs="+", help="receipt JSON files")
    p.add_argument("--home", default=None, help="data home (splits are rebuilt there if missing)")
    p.add_argument("--repo-root", default=None, help="where submission paths are relative to (default: cwd)")
    p.add_argument(
        "--rerun-objects", type=_objects, default=64, metavar="N|all",
        help="image tasks: re-run the submission's code on the first N objects and compare with "
        "the stored per-object results (default 64; 0: no re-run; all: every object)",
    )
    p.set_defaults(func=_cmd_verify)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (GalbenchError, ValueError, RuntimeError) as exc:
        print(f"galbench {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
