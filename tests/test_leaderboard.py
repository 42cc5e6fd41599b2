"""The leaderboard: tiers from paired bootstrap samples, the three outputs, and ``--check``.

Most tests build from hand-made receipts (:func:`make_receipt`, the schema's keys with chosen
values); the verification tests score the floor baseline on the tiny split and verify for real.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

import galbench.verify
from galbench.leaderboard import (
    OUTPUT_FILES,
    TIER_RULE,
    LeaderboardError,
    build_leaderboard,
    check_leaderboard,
    distinguishable,
    paired_difference_interval,
    rank_with_tiers,
    run_leaderboard,
    write_leaderboard,
)
from galbench.scoring.receipt import RECEIPT_SCHEMA
from galbench.tasks import get_task
from galbench.verify import Verification

REPO = Path(__file__).resolve().parents[1]
TASK = get_task("morphometry@1")
MAIN = TASK.main_metric  # mean_normalized_scatter, lower is better
N_BOOT = 1000


# ------------------------------------------------------------------------------------------------
# Hand-made receipts


def samples_around(value: float, spread: float, seed: int, n: int = N_BOOT) -> list[float]:
    """Bootstrap-like samples centred on ``value``."""
    rng = np.random.default_rng(seed)
    return list(value + spread * rng.standard_normal(n))


def make_receipt(
    name: str,
    main: float | None,
    samples: list[float] | None = None,
    *,
    split: str = "test",
    status: str = "ok",
    partial: bool = False,
    parameters: int | None = None,
    labels: int | None = 100_000,
    device: str | None = "cpu",
    paper: str = "",
    code: str = "",
    secondary: dict[str, float] | None = None,
    reason: str = "",
) -> dict:
    """A receipt with the keys of ``galbench.receipt/1`` (as ``galbench evaluate`` writes them).

    ``device=None`` makes a prediction-file entry (no inference record)."""
    n_official = TASK.splits["test"].n
    n = 300 if partial else n_official
    submission = {
        "name": name, "authors": ["T. Ester"], "contact": "t@example.org", "license": "MIT",
        "external_data": False, "paper": paper, "code": code, "path": f"submissions/{name}",
        "content_sha256": "c" * 64, "entry_point": "model:Model" if device else None,
        "prediction_file": None if device else "predictions.npz",
        "training_data": ["morphometry@1/train"], "labels": labels,
    }  # fmt: skip
    if parameters is not None:
        submission["parameters"] = parameters
    common = {
        "schema": RECEIPT_SCHEMA, "task": TASK.id, "split": split, "n": n,
        "n_official": n_official, "partial": partial, "leaderboard_eligible": not partial,
        "challenge": split == "challenge", "main_metric": MAIN, "direction": TASK.direction,
        "task_sha256": TASK.sha256, "split_content_sha256": "s" * 64,
        "galbench": {"version": "0.1.0", "git_commit": "0123456789abcdef" * 2 + "01234567",
                     "git_dirty": False},
        "submission": submission,
        "environment": {"python": "3.11.7", "platform": "Linux", "cpu": "Test CPU 9000",
                        "cpu_count": 8, "packages": {}},
        "created": "2026-01-01T00:00:00+00:00",
    }  # fmt: skip
    if status != "ok":
        return {
            **common, "status": status, "leaderboard_eligible": False,
            "failure": {"status": "timeout", "error": "SubmissionTimeout", "reason": reason},
        }  # fmt: skip
    metrics = {MAIN: main, "mean_normalized_abs_bias": 0.01, "mean_outlier_fraction": 0.2,
               "scatter/mag": 0.5}  # fmt: skip
    metrics.update(secondary or {})
    samples = samples if samples is not None else samples_around(main, 0.002, seed=len(name))
    lo, hi = np.quantile(samples, [0.025, 0.975])
    bins = TASK.strata[0].bin_labels()
    return {
        **common,
        "status": "ok",
        "metrics": metrics,
        "intervals": {k: [v - 0.01, v + 0.01] for k, v in metrics.items() if v is not None}
        | {MAIN: [float(lo), float(hi)]},
        "interval_method": "percentile bootstrap, 95%, 1000 resamples of objects, seed 20180101",
        "bootstrap_main": samples,
        "directions": {k: {"direction": "lower", "ideal": None} for k in metrics},
        "strata": {
            "mag": [
                {"bin": b, "n": 10, "metrics": {MAIN: main + 0.01 * i}} for i, b in enumerate(bins)
            ]
        },
        "split_manifest_sha256": "m" * 64,
        "split_matches_published": True,
        "split_seed": 1,
        "predictions_sha256": "p" * 64,
        "predictions_file": f"{name}.predictions.npz",
        "inference": None
        if device is None
        else {"seconds": 2.0, "objects_per_second": 5000.0, "batch_size": 256, "device": device},
    }


def place(
    root: Path, receipt: dict, *, file_name: str | None = None, folder: str | None = None
) -> Path:
    """Write a receipt (and a stand-in predictions file) where the layout says it belongs."""
    folder = folder or f"receipts/{receipt['task']}/{receipt['split']}"
    name = file_name or (
        receipt["submission"]["name"] + (".json" if receipt["status"] == "ok" else ".failed.json")
    )
    path = root / folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(receipt, indent=2) + "\n")
    if receipt["status"] == "ok":
        np.savez(
            path.with_name(name.removesuffix(".json") + ".predictions.npz"), object_id=np.arange(3)
        )
    return path


def example_board(root: Path) -> Path:
    """Four ranked entries (two tiers), a real-split column, a challenge entry, a partial run and
    a failed run."""
    shared = np.random.default_rng(1).standard_normal(N_BOOT) * 0.004
    place(
        root,
        make_receipt(
            "cnn-big",
            0.100,
            list(0.100 + shared),
            parameters=1_234_567,
            device="cuda",
            paper="https://arxiv.org/abs/1234.5678",
            code="https://github.com/x/cnn",
            secondary={"mean_coverage68": 0.66},
        ),
    )
    # Same samples as cnn-big: not distinguishable, same tier.
    place(
        root,
        make_receipt("cnn-small", 0.100, list(0.100 + shared), parameters=45_000, device="cuda"),
    )
    place(
        root,
        make_receipt(
            "sersic-fit",
            0.200,
            samples_around(0.2, 0.003, 5),
            labels=0,
            code="https://github.com/x/sersic",
        ),
    )
    place(root, make_receipt("floor", 0.390, samples_around(0.39, 0.004, 6), device=None))
    place(
        root,
        make_receipt(
            "cnn-big",
            0.150,
            samples_around(0.15, 0.004, 7),
            split="real_test",
            parameters=1_234_567,
            device="cuda",
        ),
    )
    place(
        root,
        make_receipt(
            "cnn-big", 0.120, samples_around(0.12, 0.004, 8), split="challenge", device="cuda"
        ),
    )
    place(root, make_receipt("quick-try", 0.05, partial=True))
    place(
        root,
        make_receipt("hangs", None, status="failed", reason="no predictions after 600 s | killed"),
    )
    return root


def table_rows(markdown: str, first_header: str) -> list[list[str]]:
    """The cells of the Markdown table whose first header starts with ``first_header``."""
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_header}"))
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]])
    return rows


# ------------------------------------------------------------------------------------------------
# Tiers


def test_paired_difference_interval_is_the_percentile_interval_of_differences():
    a = np.arange(1001, dtype=float)
    b = np.zeros(1001)
    assert paired_difference_interval(a, b) == pytest.approx((25.0, 975.0))
    assert paired_difference_interval(a, a) == (0.0, 0.0)
    assert not distinguishable((0.0, 0.0)) and not distinguishable((-1.0, 2.0))
    assert distinguishable((0.1, 2.0)) and distinguishable((-2.0, -0.1))
    assert not distinguishable((float("nan"), float("nan")))
    with pytest.raises(LeaderboardError, match="differ in length"):
        paired_difference_interval(a, a[:-1])


def test_identical_samples_share_a_tier_and_ties_break_by_name():
    s = samples_around(0.3, 0.01, seed=0)
    standings = rank_with_tiers({"b": 0.3, "a": 0.3}, {"b": s, "a": s}, "lower")
    assert [(x.name, x.rank, x.tier) for x in standings] == [("a", 1, 1), ("b", 2, 1)]
    assert standings[1].versus_leader == (0.0, 0.0) and standings[1].tier_leader == "a"


def test_clearly_separated_entries_get_different_tiers():
    values = {"good": 0.10, "bad": 0.30}
    samples = {"good": samples_around(0.10, 0.01, 1), "bad": samples_around(0.30, 0.01, 2)}
    lower = rank_with_tiers(values, samples, "lower")
    assert [(x.name, x.tier) for x in lower] == [("good", 1), ("bad", 2)]
    assert lower[1].versus_leader is None and lower[1].tier_leader == "bad"
    higher = rank_with_tiers(values, samples, "higher")
    assert [(x.name, x.tier) for x in higher] == [("bad", 1), ("good", 2)]


def test_pairing_separates_entries_whose_own_intervals_overlap():
    """Both entries see the same resamples: the shared object-sampling noise cancels."""
    shared = np.random.default_rng(3).standard_normal(N_BOOT) * 0.01
    a = 0.300 + shared
    b = 0.303 + shared + np.random.default_rng(4).standard_normal(N_BOOT) * 0.0005
    assert np.quantile(b, 0.025) < np.quantile(a, 0.975)  # marginal intervals overlap
    lo, hi = paired_difference_interval(b, a)
    assert 0.0015 < lo < hi < 0.0045  # 0.003 +- 1.96 x 0.0005
    standings = rank_with_tiers({"a": 0.300, "b": 0.303}, {"a": a, "b": b}, "lower")
    assert [x.tier for x in standings] == [1, 2]


def test_each_entry_is_compared_with_its_tier_leader_not_its_neighbour():
    base = np.random.default_rng(5).standard_normal(N_BOOT) * 0.01
    noise = [np.random.default_rng(6 + i).standard_normal(N_BOOT) * 0.001 for i in range(3)]
    # a ~ b and b ~ c, but c is distinguishable from a.
    samples = {
        "a": 0.100 + base + noise[0],
        "b": 0.101 + base + noise[1],
        "c": 0.1035 + base + noise[2],
    }
    standings = rank_with_tiers({"a": 0.100, "b": 0.101, "c": 0.1035}, samples, "lower")
    assert not distinguishable(paired_difference_interval(samples["b"], samples["a"]))
    assert not distinguishable(paired_difference_interval(samples["c"], samples["b"]))
    assert [(x.name, x.tier, x.tier_leader) for x in standings] == [
        ("a", 1, "a"),
        ("b", 1, "a"),
        ("c", 2, "c"),
    ]


def test_bootstrap_samples_of_different_lengths_are_refused(tmp_path):
    with pytest.raises(
        LeaderboardError, match=r"bootstrap_main lengths differ \(a: 1000, b: 500\)"
    ):
        rank_with_tiers(
            {"a": 0.1, "b": 0.2}, {"a": [0.1] * 1000, "b": [0.2] * 500}, "lower", where="t test"
        )
    place(tmp_path, make_receipt("a", 0.1))
    place(tmp_path, make_receipt("b", 0.2, samples_around(0.2, 0.01, 1, n=500)))
    with pytest.raises(LeaderboardError, match="morphometry@1 test: bootstrap_main lengths differ"):
        build_leaderboard(tmp_path)
    with pytest.raises(LeaderboardError):
        write_leaderboard(tmp_path)
    assert not (tmp_path / "README.md").exists()  # nothing written


def test_receipts_on_different_split_contents_are_refused(tmp_path):
    place(tmp_path, make_receipt("a", 0.1))
    other = make_receipt("b", 0.2)
    other["split_content_sha256"] = "t" * 64
    place(tmp_path, other)
    with pytest.raises(
        LeaderboardError, match=r"different split contents \(ssssssssssss: a; tttttttttttt: b\)"
    ):
        build_leaderboard(tmp_path)


# ------------------------------------------------------------------------------------------------
# The outputs


def test_markdown_ranks_tiers_and_columns(tmp_path):
    readme = build_leaderboard(example_board(tmp_path))["README.md"].decode()
    assert "(`morphometry@1`)" in readme and TASK.title in readme
    assert "[tasks/morphometry.toml](../tasks/morphometry.toml)" in readme
    assert "`mean_normalized_scatter` (lower is better)" in readme
    assert TIER_RULE in readme

    rows = table_rows(readme, "Rank (tier) on test")
    header, body = rows[0], rows[2:]
    assert header == [
        "Rank (tier) on test", "Entry",
        "mean_normalized_scatter ↓ · test (95% interval)",
        "mean_normalized_scatter ↓ · real_test",
        "mean_normalized_abs_bias", "mean_outlier_fraction", "mean_coverage68",
        "Parameters", "Throughput (objects/s)", "Labels", "Measured on",
    ]  # fmt: skip
    assert [r[0] for r in body] == ["1 (tier 1)", "2 (tier 1)", "3 (tier 2)", "4 (tier 3)"]
    big = body[0]
    assert big[1] == (
        "[cnn-big](https://arxiv.org/abs/1234.5678) ([code](https://github.com/x/cnn))"
    )
    assert big[2].startswith("0.1000 [0.09")
    assert big[3].startswith("0.1500 [0.14") and big[3].endswith(", tier 1")
    assert big[4:7] == ["0.01000", "0.2000", "0.6600"]
    assert big[7:] == ["1.23M", "5k", "100,000", "cuda (Test CPU 9000, 8 cores)"]
    assert body[1][1] == "cnn-small" and body[1][3] == "–" and body[1][6] == "–"
    assert body[2][1] == "[sersic-fit](https://github.com/x/sersic)" and body[2][9] == "0"
    floor = body[3]
    assert floor[1] == "floor" and floor[2].startswith("0.3900 [0.3")
    scored = "prediction file, scored on Test CPU 9000, 8 cores"
    assert floor[7:] == ["–", "–", "100,000", scored]

    # The hidden split: its own table, marked as such.
    assert "### `challenge` split (hidden)" in readme and "**[challenge]**" in readme
    challenge = table_rows(readme, "Rank (tier) on challenge")[2:]
    assert [r[:2] for r in challenge] == [["1 (tier 1)", "cnn-big"]]
    assert challenge[0][2].startswith("0.1200 [0.1")

    # Partial and failed runs: never ranked, listed with their reason (the | is escaped).
    not_ranked = readme.split("**Not ranked:**")[1].split("<details>")[0]
    assert "quick-try on test: partial run (n = 300 of 10,000): a smoke test" in not_ranked
    assert "hangs on test: failed (timeout: no predictions after 600 s \\| killed)" in not_ranked
    assert "quick-try" not in readme.split("**Not ranked:**")[0]
    # Every receipt is listed with where it was measured.
    receipts = readme.split("<details><summary>Receipts</summary>")[1]
    assert receipts.count("\n- ") == 8
    assert (
        "- cnn-big (challenge, ranked): n = 10,000; measured on cuda (Test CPU 9000, 8 cores); "
        "galbench 0.1.0 @ 0123456789ab; predictions sha256 pppppppppppp…; "
        "[receipts/morphometry@1/challenge/cnn-big.json]"
        "(receipts/morphometry@1/challenge/cnn-big.json)"
    ) in receipts


def test_csv_has_one_row_per_receipt_with_tiers_and_hashes(tmp_path):
    files = build_leaderboard(example_board(tmp_path))
    rows = list(csv.DictReader(io.StringIO(files["leaderboard.csv"].decode())))
    assert [(r["split"], r["entry"], r["rank"], r["tier"], r["ranked"]) for r in rows] == [
        ("test", "cnn-big", "1", "1", "true"),
        ("test", "cnn-small", "2", "1", "true"),
        ("test", "sersic-fit", "3", "2", "true"),
        ("test", "floor", "4", "3", "true"),
        ("test", "hangs", "", "", "false"),
        ("test", "quick-try", "", "", "false"),
        ("real_test", "cnn-big", "1", "1", "true"),
        ("challenge", "cnn-big", "1", "1", "true"),
    ]
    big, small, sersic = rows[0], rows[1], rows[2]
    for column in ("task", "status", "main_lo", "main_hi", "tier_leader", "predictions_sha256",
                   "split_content_sha256", "task_sha256", "receipt", "mean_outlier_fraction",
                   "scatter/mag", "objects_per_second", "device", "cpu"):  # fmt: skip
        assert column in big
    assert big["task"] == "morphometry@1" and big["status"] == "ok"
    assert float(big["main_value"]) == 0.1 and float(big["parameters"]) == 1_234_567
    assert big["predictions_sha256"] == "p" * 64 and big["task_sha256"] == TASK.sha256
    assert big["receipt"] == "receipts/morphometry@1/test/cnn-big.json"
    assert small["tier_leader"] == "cnn-big"
    assert (small["diff_to_tier_leader_lo"], small["diff_to_tier_leader_hi"]) == ("0.0", "0.0")
    assert sersic["tier_leader"] == "sersic-fit" and sersic["diff_to_tier_leader_lo"] == ""
    failed = rows[4]
    assert (
        failed["status"] == "failed"
        and failed["main_value"] == ""
        and "timeout" in failed["not_ranked_reason"]
    )
    assert rows[5]["partial"] == "true" and rows[7]["challenge"] == "true"


def test_html_has_the_same_tables_plots_and_no_external_resources(tmp_path):
    html = build_leaderboard(example_board(tmp_path))["index.html"].decode()
    assert html.startswith("<!DOCTYPE html>")
    assert 'id="morphometry-1-main"' in html and 'id="morphometry-1-challenge"' in html
    body = html.split('id="morphometry-1-main"')[1].split("</table>")[0]
    assert body.count("<tr>") == 5  # header + 4 ranked entries
    assert '<a href="https://arxiv.org/abs/1234.5678">cnn-big</a>' in body
    assert '<td data-sort="1">1 (tier 1)</td>' in body
    assert '<span class="badge">challenge</span>' in html
    # No fetched resources: no src= at all, links only to receipts, tasks, entries' pages.
    assert "src=" not in html and "@import" not in html and "<link" not in html
    assert "<script>" in html and "<style>" in html
    # Plots: test, real_test and challenge; one line per ranked entry, in rank order.
    assert html.count("<svg") == 3
    test_plot = html.split("<figure>")[1]
    legend = re.findall(r">([^<>]+ \(tier \d+\))</text>", test_plot)
    assert legend == [
        "cnn-big (tier 1)",
        "cnn-small (tier 1)",
        "sersic-fit (tier 2)",
        "floor (tier 3)",
    ]
    ids = re.findall(r'\bid="([^"]+)"', html)
    assert len(ids) == len(set(ids))  # plots' element ids do not clash


def test_receipt_text_is_inert_in_both_pages(tmp_path):
    evil = make_receipt("evil", 0.2, paper="javascript:alert(1)", code="https://ok.example/x")
    place(tmp_path, evil)
    place(
        tmp_path,
        make_receipt(
            "bad",
            None,
            status="failed",
            reason="<script>alert(1)</script> *x* _y_ [a](b) snake_case",
        ),
    )
    files = build_leaderboard(tmp_path)
    html, readme = files["index.html"].decode(), files["README.md"].decode()
    assert "javascript:" not in html and "javascript:" not in readme
    assert '<a href="https://ok.example/x">evil</a>' in html
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; \\*x\\* \\_y\\_ \\[a\\](b) snake_case" in readme


def test_rebuilding_gives_byte_identical_files_anywhere(tmp_path):
    first = example_board(tmp_path / "one")
    built = write_leaderboard(first)
    assert built.ok and built.written == list(OUTPUT_FILES) and built.ranked == 6
    before = {name: (first / name).read_bytes() for name in OUTPUT_FILES}
    again = write_leaderboard(first)
    assert again.written == []  # nothing changed, nothing rewritten
    assert {name: (first / name).read_bytes() for name in OUTPUT_FILES} == before
    # The same receipts elsewhere, written in another order, give the same bytes.
    second = tmp_path / "elsewhere" / "two"
    for path in sorted((first / "receipts").rglob("*"), reverse=True):
        target = second / path.relative_to(first)
        target.parent.mkdir(parents=True, exist_ok=True)
        if path.is_file():
            shutil.copyfile(path, target)
    assert build_leaderboard(second) == before
    for data in before.values():
        assert str(tmp_path).encode() not in data  # no absolute paths leak into the outputs


def test_outputs_do_not_depend_on_hash_seeds(tmp_path):
    """Set and dict order never leaks into the files: two interpreters with different
    PYTHONHASHSEED build the same bytes as this one."""
    import hashlib
    import os
    import subprocess
    import sys

    root = example_board(tmp_path)
    expected = {k: hashlib.sha256(v).hexdigest() for k, v in build_leaderboard(root).items()}
    code = (
        "import hashlib, json, sys; from galbench.leaderboard import build_leaderboard; "
        "print(json.dumps({k: hashlib.sha256(v).hexdigest() "
        "for k, v in build_leaderboard(sys.argv[1]).items()}))"
    )
    for seed in ("1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "LC_ALL": "C.UTF-8"}
        out = subprocess.run(
            [sys.executable, "-c", code, str(root)],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=True,
        ).stdout
        assert json.loads(out) == expected


def test_empty_leaderboard(tmp_path):
    files = build_leaderboard(tmp_path)
    assert "No receipts yet." in files["README.md"].decode()
    assert files["leaderboard.csv"].decode().count("\n") == 1  # the header


# ------------------------------------------------------------------------------------------------
# --check


@pytest.fixture
def verify_ok(monkeypatch):
    """verify_receipt stand-in: every receipt verifies; records which ones were asked."""
    seen = []

    def fake(path, *, home=None, build=True, repo_root=None):
        seen.append(Path(path))
        return Verification(Path(path), checked=["task", "split", "predictions", "metrics"])

    monkeypatch.setattr(galbench.verify, "verify_receipt", fake)
    return seen


def test_check_passes_on_a_fresh_build(tmp_path, verify_ok, monkeypatch):
    monkeypatch.delenv("GALBENCH_CHALLENGE_SEED", raising=False)
    root = example_board(tmp_path / "leaderboard")
    write_leaderboard(root)
    result = check_leaderboard(root)
    assert result.ok, result.report()
    assert sorted(result.up_to_date) == sorted(OUTPUT_FILES)
    assert len(result.verified) == 7 and len(verify_ok) == 7
    assert result.not_verified == [
        ("receipts/morphometry@1/challenge/cnn-big.json",
         "a challenge receipt; verifying it needs $GALBENCH_CHALLENGE_SEED"),
    ]  # fmt: skip
    assert result.report().startswith("OK  ")
    assert run_leaderboard(root, check=True).ok


def test_check_reports_a_stale_readme_after_a_receipt_is_added(tmp_path, verify_ok):
    root = example_board(tmp_path)
    write_leaderboard(root)
    place(root, make_receipt("newcomer", 0.05, samples_around(0.05, 0.002, 11)))
    result = check_leaderboard(root)
    assert not result.ok
    assert {p.path for p in result.by_kind("stale")} == set(OUTPUT_FILES)
    readme = next(p for p in result.problems if p.path == "README.md")
    assert "differs from what the receipts give" in readme.message and "newcomer" in readme.message
    assert "rebuild with `galbench leaderboard`" in result.report()
    write_leaderboard(root)
    assert check_leaderboard(root).ok


def test_check_reports_a_missing_output_and_an_edited_table(tmp_path, verify_ok):
    root = example_board(tmp_path)
    write_leaderboard(root)
    (root / "leaderboard.csv").unlink()
    readme = root / "README.md"
    readme.write_text(readme.read_text().replace("| 4 (tier 3) |", "| 4 (tier 2) |"))
    problems = {p.path: p.message for p in check_leaderboard(root).problems}
    assert problems["leaderboard.csv"] == "leaderboard.csv: missing"
    assert "README.md: differs" in problems["README.md"] and "4 (tier 2)" in problems["README.md"]


def test_check_reports_misplaced_receipts_and_orphan_predictions(tmp_path, verify_ok):
    root = tmp_path
    place(root, make_receipt("ok-entry", 0.2))
    place(root, make_receipt("wrong-split", 0.3), folder="receipts/morphometry@1/val")
    place(root, make_receipt("wrong-name", 0.3), file_name="other-name.json")
    place(root, make_receipt("loose", 0.3), folder="receipts")
    np.savez(root / "receipts/morphometry@1/test/gone.predictions.npz", object_id=np.arange(2))
    # Predictions under another name are fine when the receipt names them.
    renamed = make_receipt("renamed", 0.25)
    renamed["predictions_file"] = "first-run.predictions.npz"
    place(root, renamed)
    (root / "receipts/morphometry@1/test/renamed.predictions.npz").rename(
        root / "receipts/morphometry@1/test/first-run.predictions.npz"
    )
    write_leaderboard(root)
    result = check_leaderboard(root)
    misplaced = {p.path: p.message for p in result.by_kind("misplaced")}
    assert set(misplaced) == {
        "receipts/morphometry@1/val/wrong-split.json",
        "receipts/morphometry@1/test/other-name.json",
        "receipts/loose.json",
        "receipts/morphometry@1/test/gone.predictions.npz",
    }
    assert (
        "in folder 'val' but is a receipt of split 'test'"
        in misplaced["receipts/morphometry@1/val/wrong-split.json"]
    )
    assert (
        "(move it to receipts/morphometry@1/test/wrong-name.json)"
        in misplaced["receipts/morphometry@1/test/other-name.json"]
    )
    assert "belongs at receipts/morphometry@1/test/loose.json" in misplaced["receipts/loose.json"]
    assert "without a receipt" in misplaced["receipts/morphometry@1/test/gone.predictions.npz"]
    assert not result.by_kind("stale") and not result.by_kind("unverified")


def test_check_reports_unreadable_and_unrankable_receipts(tmp_path, verify_ok):
    place(tmp_path, make_receipt("a", 0.2))
    write_leaderboard(tmp_path)
    bad = tmp_path / "receipts/morphometry@1/test/b.json"
    bad.write_text("{not json")
    result = check_leaderboard(tmp_path)
    assert [p.kind for p in result.problems] == ["invalid", "invalid"]
    assert "unreadable receipt" in result.problems[0].message
    bad.write_text(json.dumps(make_receipt("b", 0.3, samples_around(0.3, 0.01, 1, n=10))))
    result = check_leaderboard(tmp_path)
    assert [p.kind for p in result.problems] == ["invalid"]
    assert (
        "cannot rank" in result.problems[0].message
        and "lengths differ" in result.problems[0].message
    )


def test_check_reports_what_verify_rejects(tmp_path, monkeypatch):
    place(tmp_path, make_receipt("a", 0.2))
    place(tmp_path, make_receipt("b", 0.3))
    write_leaderboard(tmp_path)

    def fake(path, *, home=None, build=True, repo_root=None):
        result = Verification(Path(path), checked=["task"])
        if Path(path).name == "b.json":
            result.problems.append(f"{path}: recorded metrics differ from the recomputed ones")
        return result

    monkeypatch.setattr(galbench.verify, "verify_receipt", fake)
    result = check_leaderboard(tmp_path)
    assert [(p.kind, p.path) for p in result.problems] == [
        ("unverified", "receipts/morphometry@1/test/b.json")
    ]
    assert result.verified == ["receipts/morphometry@1/test/a.json"]
    skipped = check_leaderboard(tmp_path, verify=False)
    assert skipped.ok and skipped.verified == []
    assert "3 of 3 output files up to date, receipts not verified (skipped)" in skipped.report()


# ------------------------------------------------------------------------------------------------
# --check with the real `galbench verify`, on receipts of the floor baseline on the tiny split


@pytest.fixture
def real_board(tmp_path, tiny_split_dir, session_home):
    """A leaderboard folder holding one real receipt (40 objects: partial, so listed unranked)."""
    from galbench.evaluate import evaluate

    root = tmp_path / "leaderboard"
    out = root / "receipts/morphometry@1/test/morphometry-floor.json"
    receipt, path = evaluate(
        REPO / "baselines" / "morphometry-floor", n=40, out=out, home=session_home, progress=False
    )
    assert path == out and receipt["status"] == "ok" and receipt["n"] == 40
    write_leaderboard(root)
    return root


def _check(root: Path, home: Path):
    return check_leaderboard(root, home=home, repo_root=REPO)


def test_real_check_passes_on_a_fresh_build(real_board, session_home):
    result = _check(real_board, session_home)
    assert result.ok, result.report()
    assert result.verified == ["receipts/morphometry@1/test/morphometry-floor.json"]
    readme = (real_board / "README.md").read_text()
    assert "morphometry-floor on test: partial run (n = 40 of 10,000)" in readme


def test_real_check_fails_after_a_score_is_edited(real_board, session_home):
    path = real_board / "receipts/morphometry@1/test/morphometry-floor.json"
    receipt = json.loads(path.read_text())
    receipt["metrics"][MAIN] *= 0.5
    path.write_text(json.dumps(receipt, indent=2))
    result = _check(real_board, session_home)
    unverified = [p.message for p in result.by_kind("unverified")]
    assert any("recorded metrics differ" in m and MAIN in m for m in unverified), unverified
    assert {p.path for p in result.by_kind("stale")} >= {"leaderboard.csv"}


def test_real_check_fails_after_the_predictions_are_edited(real_board, session_home):
    stored = real_board / "receipts/morphometry@1/test/morphometry-floor.predictions.npz"
    with np.load(stored) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["mean"] = arrays["mean"] + 0.01
    np.savez_compressed(stored, **arrays)
    result = _check(real_board, session_home)
    unverified = [p.message for p in result.by_kind("unverified")]
    assert any("does not match the recorded predictions hash" in m for m in unverified), unverified
    assert not result.by_kind("stale")  # the tables come from the receipt, which is unchanged


def test_real_check_fails_for_a_receipt_of_another_split_content(real_board, session_home):
    path = real_board / "receipts/morphometry@1/test/morphometry-floor.json"
    receipt = json.loads(path.read_text())
    receipt["split_content_sha256"] = "0" * 64
    path.write_text(json.dumps(receipt, indent=2))
    write_leaderboard(real_board)  # the tables are current; only verification fails
    result = _check(real_board, session_home)
    assert [p.kind for p in result.problems] == ["unverified"]
    assert "split content hash 000000000000 does not match" in result.problems[0].message


def test_breakdown_of_the_main_metric_is_shown_when_receipts_report_one(tmp_path):
    """Per-part values of the main metric (anomaly@1's ``auroc/<kind>``) get their own table on
    both pages; boards without them get none."""
    plain = build_leaderboard(example_board(tmp_path / "plain"))
    assert "by part on" not in plain["README.md"].decode()
    assert b"-breakdown" not in plain["index.html"]

    root = tmp_path / "parts"
    parts = {f"{MAIN}/ring": 0.31, f"{MAIN}/merger": 0.12}
    place(root, make_receipt("a", 0.10, samples_around(0.10, 0.002, 1), secondary=parts))
    place(root, make_receipt("b", 0.20, samples_around(0.20, 0.002, 2)))
    out = build_leaderboard(root)
    readme = out["README.md"].decode()
    assert f"`{MAIN}` by part on `test` (95% interval):" in readme
    rows = table_rows(readme, "Entry")
    assert rows[0] == ["Entry", "ring", "merger"]
    assert rows[2][:2] == ["a", "0.3100 [0.3000, 0.3200]"]
    assert rows[3][1] == "–"  # b reports no parts
    assert b'id="morphometry-1-breakdown"' in out["index.html"]


def test_label_budgets_rank_one_budget_and_draw_the_learning_curve(tmp_path):
    """transfer@1 ranks entries at its ranked budget (200 target labels) and shows every budget
    of every method (name without ``-b<budget>``) in a learning-curve table."""
    from galbench.tasks import get_task

    transfer = get_task("transfer@1")
    assert transfer.extra["ranked_label_budget"] == 200

    def receipt(name: str, labels: int, value: float, seed: int) -> dict:
        r = make_receipt(name, value, samples_around(value, 0.003, seed), labels=labels)
        r.update(task=transfer.id, main_metric="accuracy", direction="higher", task_sha256=transfer.sha256)
        r["n"] = r["n_official"] = transfer.splits["test"].n
        r["metrics"] = {"accuracy": value}
        r["intervals"] = {"accuracy": [value - 0.01, value + 0.01]}
        return r

    root = tmp_path / "board"
    for name, labels, value, seed in [
        ("ft-b10", 10, 0.80, 1), ("ft-b200", 200, 0.93, 2), ("scratch-b200", 200, 0.60, 3),
        ("source-only", 0, 0.90, 4),
    ]:  # fmt: skip
        place(root, receipt(name, labels, value, seed))
    out = build_leaderboard(root)
    readme = out["README.md"].decode()
    main = table_rows(readme, "Rank (tier) on test")
    assert [r[1] for r in main[2:]] == ["ft-b200", "scratch-b200"]
    assert "ft-b10 on test: label budget 10 (transfer@1 ranks entries at 200 labels" in readme
    curve = table_rows(readme, "Method")
    assert curve[0] == ["Method", "0 labels", "10 labels", "50 labels", "200 labels (ranked)", "1,000 labels"]
    rows = {r[0]: r[1:] for r in curve[2:]}
    assert rows["ft"][1].startswith("0.8000") and rows["ft"][3].startswith("0.9300")
    assert rows["source-only"][0].startswith("0.9000") and rows["scratch"][3].startswith("0.6000")
    assert b'id="transfer-1-learning-curve"' in out["index.html"]
    csv = out["leaderboard.csv"].decode()
    assert "label budget 10" in csv


def test_real_split_beside_the_simulated_one_with_the_gap(tmp_path):
    """A real split (morphometry@1 real_cosmos) gets its own column in the main table, marked
    with the targets it averages when they differ from the simulated split's, and a sim-to-real
    table of the metrics that mean the same on both (here the per-target scatter and bias of
    mag), real minus simulated."""
    root = tmp_path / "real"
    sim = {"bias/mag": 0.01}
    real = {"bias/mag": -0.2, "scatter/mag": 0.7, "scatter/log10_r_half": 0.3}
    place(root, make_receipt("a", 0.10, samples_around(0.10, 0.002, 1), secondary=sim))
    place(root, make_receipt("b", 0.20, samples_around(0.20, 0.002, 2), secondary=sim))
    place(root, make_receipt("a", 0.15, samples_around(0.15, 0.002, 3), split="real_cosmos", secondary=real))
    readme = build_leaderboard(root)["README.md"].decode()
    header = table_rows(readme, "Rank (tier) on test")[0]
    assert f"{MAIN} ↓ · real_cosmos (over log10_r_half, mag)" in header
    assert "Sim to real: `test` (simulated) against `real_cosmos` (real data)" in readme
    rows = table_rows(readme, "Entry")
    gap = next(r for r in rows if r[0] == "a" and "→" in r[1])
    assert gap[1] == "0.5000 → 0.7000 (+0.2)"  # scatter/mag
    assert gap[2] == "0.01000 → -0.2000 (-0.21)"  # bias/mag
    assert not any(r[0] == "b" and "→" in "".join(r) for r in rows)  # b has no real receipt


def test_no_sim_to_real_table_without_real_receipts(tmp_path):
    readme = build_leaderboard(example_board(tmp_path / "plain"))["README.md"].decode()
    assert "Sim to real" not in readme
