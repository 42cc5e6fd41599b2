"""The command line and the evaluate flow, end to end on a tiny split."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from galbench.cli import main
from galbench.evaluate import evaluate
from galbench.tasks import get_task

REPO = Path(__file__).resolve().parents[1]
TASK = get_task("morphometry@1")


def _write_submission(folder: Path, model_source: str, extra: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.py").write_text(model_source)
    (folder / "submission.toml").write_text(
        'name = "test-model"\nauthors = ["T. Ester"]\ncontact = "t@example.org"\n'
        'license = "MIT"\nexternal_data = false\n\n[tasks."morphometry@1"]\n'
        'entry_point = "model:Model"\nlabels = 0\nbatch_size = 16\n' + extra
    )
    return folder


ORACLE = """
import numpy as np, pandas as pd
from pathlib import Path

class Model:
    '''Cheats for the test: reads the truth it is given a path to, to give exact predictions.'''
    def __init__(self, root):
        self.truth = np.load(Path(root) / "truth.npy")
        self.seen = 0
    def predict(self, images):
        out = self.truth[self.seen:self.seen + len(images)]
        self.seen += len(images)
        return out
"""


def test_tasks_lists_every_task(capsys):
    assert main(["tasks"]) == 0
    out = capsys.readouterr().out
    assert "morphometry@1" in out and "regression" in out
    assert "train 100,000" in out and "test 10,000" in out
    assert "mean_normalized_scatter" in out
    assert main(["tasks", "nothing*"]) == 0
    assert "morphometry@1" not in capsys.readouterr().out


def test_info_shows_the_physics(capsys):
    assert main(["info", "morphometry"]) == 0
    out = capsys.readouterr().out
    assert '0.06"/px' in out and "PSF FWHM 0.18" in out and "25.946" in out
    assert "Tuccillo2018" in out


def test_generate_then_evaluate_the_floor(tmp_path, capsys):
    home = tmp_path / "home"
    assert main(["generate", "morphometry@1", "--split", "test", "--n", "20", "--home", str(home), "--quiet"]) == 0
    assert (home / "morphometry@1" / "test-first20" / "manifest.json").is_file()
    out_file = tmp_path / "floor.json"
    floor = REPO / "baselines" / "morphometry-floor"
    code = main(["evaluate", str(floor), "--n", "20", "--home", str(home), "--out", str(out_file), "--quiet"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "mean_normalized_scatter (main)" in printed and "partial" in printed
    receipt = json.loads(out_file.read_text())
    for key in ("task", "split", "metrics", "main_metric", "n"):
        assert key in receipt
    assert receipt["task"] == "morphometry@1" and receipt["split"] == "test" and receipt["n"] == 20
    assert receipt["partial"] is True and receipt["leaderboard_eligible"] is False
    assert receipt["main_metric"] == "mean_normalized_scatter"
    assert receipt["metrics"]["mean_normalized_scatter"] > 0.2  # a constant is far from the truth
    lo, hi = receipt["intervals"]["mean_normalized_scatter"]
    assert lo <= hi
    medians = json.loads((floor / "medians.json").read_text())["medians"]
    # The floor predicts constants, so its bias on each parameter is median(constant - truth).
    from galbench.data.split import load_split

    truth = load_split(TASK, "test", 20, home=home).catalog
    assert receipt["metrics"]["bias/mag"] == pytest.approx(np.median(medians["mag"] - truth["mag"]))
    assert receipt["submission"]["content_sha256"] and receipt["split_content_sha256"]
    assert receipt["inference"]["objects_per_second"] > 0


def test_exact_predictions_score_zero(tmp_path, tiny_split_dir):
    from galbench.data.split import open_split

    truth = open_split(tiny_split_dir).targets()
    sub = _write_submission(tmp_path / "oracle", ORACLE)
    np.save(sub / "truth.npy", truth)
    receipt, path = evaluate(sub, n=40, out=tmp_path / "r.json", progress=False)
    assert receipt["metrics"]["mean_normalized_scatter"] == 0.0
    assert receipt["metrics"]["mean_outlier_fraction"] == 0.0
    assert json.loads(path.read_text())["predictions_sha256"] == receipt["predictions_sha256"]


def test_prediction_file_submission(tmp_path, tiny_split_dir):
    from galbench.data.split import open_split

    split = open_split(tiny_split_dir)
    sub = tmp_path / "files"
    sub.mkdir()
    order = np.random.default_rng(0).permutation(split.n)  # any order: keyed by object id
    np.savez(sub / "test.npz", object_id=split.object_ids[order], mean=split.targets()[order] + 0.01)
    (sub / "submission.toml").write_text(
        'name = "from-files"\nauthors = ["A"]\ncontact = "a"\nlicense = "MIT"\n'
        'external_data = false\n[tasks."morphometry@1"]\npredictions = { test = "test.npz" }\n'
    )
    receipt, _ = evaluate(sub, n=40, out=tmp_path / "r.json", progress=False)
    assert receipt["metrics"]["bias/mag"] == pytest.approx(0.01)
    assert receipt["inference"] is None
    assert receipt["submission"]["prediction_file"] == "test.npz"


@pytest.mark.parametrize(
    ("source", "error", "status", "match"),
    [
        ("class Model:\n def __init__(self, root): pass\n def predict(self, x): raise RuntimeError('boom')\n",
         "SandboxFailure", "error", r"predict\(\) raised on the batch at object 0: RuntimeError: boom"),
        ("import numpy as np\nclass Model:\n def __init__(self, root): pass\n def predict(self, x): return np.zeros((len(x), 7))\n",
         "PredictionError", "error", r"shape \(40, 7\); expected \(40, 8\)"),
        ("import numpy as np\nclass Model:\n def __init__(self, root): pass\n def predict(self, x): return np.full((len(x), 8), np.nan)\n",
         "PredictionError", "error", r"non-finite"),
        ("import numpy as np\nclass Model:\n def __init__(self, root): pass\n def predict(self, x): return np.zeros((len(x) - 1, 8))\n",
         "SandboxFailure", "invalid-output", r"expected 16 rows"),
        ("raise ImportError('missing dependency')\n", "SandboxFailure", "error", r"importing the entry point failed"),
        ("class Other: pass\n", "SandboxFailure", "error", r"no class 'Model'"),
        ("class Model:\n def __init__(self, root): raise ValueError('no weights')\n",
         "SandboxFailure", "error", r"constructing Model\(root\) failed: ValueError: no weights"),
    ],
)
def test_misbehaving_code_gets_a_failure_receipt(tmp_path, tiny_split_dir, source, error, status, match):
    sub = _write_submission(tmp_path / "bad", source)
    out = tmp_path / "r.json"
    out.write_text('{"recorded": "earlier"}')  # an earlier receipt at the same place
    receipt, path = evaluate(sub, n=40, out=out, progress=False)
    assert path == tmp_path / "r.failed.json" and path.is_file()
    assert receipt["status"] == "failed" and receipt["leaderboard_eligible"] is False
    assert (receipt["failure"]["error"], receipt["failure"]["status"]) == (error, status)
    assert re.search(match, receipt["failure"]["reason"])
    assert "metrics" not in receipt
    assert json.loads(path.read_text()) == receipt
    assert out.read_text() == '{"recorded": "earlier"}'  # nothing already recorded is lost


def test_cli_exit_code_1_on_a_failed_submission(tmp_path, tiny_split_dir, capsys):
    sub = _write_submission(tmp_path / "bad", "class Model:\n def __init__(self, root): raise ValueError('no weights')\n")
    assert main(["evaluate", str(sub), "--n", "40", "--out", str(tmp_path / "r.json"), "--quiet"]) == 1
    out = capsys.readouterr().out
    assert "FAILED" in out and "no weights" in out and "r.failed.json" in out


def test_cli_reports_errors_with_exit_code_2(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path / "missing")]) == 2
    assert "not a folder" in capsys.readouterr().err
    assert main(["generate", "morphometri"]) == 2
    assert "did you mean 'morphometry@1'" in capsys.readouterr().err
    sub = _write_submission(tmp_path / "s", ORACLE)
    assert main(["evaluate", str(sub), "--split", "nosuch"]) == 2
    assert "hidden 'challenge' split" in capsys.readouterr().err


def test_receipt_default_path_and_multiple_tasks(tmp_path, tiny_split_dir, monkeypatch):
    from galbench.data.split import open_split

    sub = _write_submission(tmp_path / "oracle", ORACLE)
    np.save(sub / "truth.npy", open_split(tiny_split_dir).targets())
    monkeypatch.chdir(tmp_path)
    _, path = evaluate(sub, n=40, progress=False)
    assert path == Path("receipts/test-model.morphometry@1.test-first40.json")
    assert (tmp_path / path).is_file()
    shutil.rmtree(tmp_path / "receipts")


@pytest.fixture
def tiny_task(monkeypatch):
    """A registered copy of morphometry@1 with 6-object splits, so whole splits build in a second."""
    from galbench.tasks import TASKS, FrozenDict, SplitSpec

    splits = FrozenDict({k: SplitSpec(k, 6, v.seed) for k, v in TASK.splits.items()})
    spec = dataclasses.replace(TASK, name="tinymorph", splits=splits)
    TASKS.add(spec.id, spec, replace=True)
    yield spec
    TASKS._items.pop(spec.id, None)


def test_score_writes_receipts_where_the_leaderboard_reads_them(tmp_path, tiny_task, monkeypatch, capsys):
    from galbench.challenge import SEED_VARIABLE
    from galbench.evaluate import score_submission

    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "model.py").write_text(
        "import numpy as np\nclass Model:\n def __init__(self, root): pass\n"
        " def predict(self, x): return np.zeros((len(x), 8)) + 0.5\n"
    )
    (sub / "bad.py").write_text("class Model:\n def __init__(self, root): raise OSError('gone')\n")
    (sub / "submission.toml").write_text(
        'name = "multi"\nauthors = ["A"]\ncontact = "a"\nlicense = "MIT"\nexternal_data = false\n'
        '[tasks."tinymorph@1"]\nentry_point = "model:Model"\n'
        '[tasks."morphometry@1"]\nentry_point = "bad:Model"\n'
    )
    monkeypatch.setenv(SEED_VARIABLE, "s3cret")
    # morphometry@1's official test split is too big for a unit test: shrink it to 6 objects too.
    small = dataclasses.replace(TASK, splits=tiny_task.splits)
    monkeypatch.setattr(
        "galbench.evaluate.get_task", lambda t: tiny_task if t == "tinymorph@1" else small
    )
    monkeypatch.setattr("galbench.data.build.published_split_hashes", lambda _: {})
    results = score_submission(sub, receipts=tmp_path / "receipts", progress=False)
    paths = sorted(str(p.relative_to(tmp_path)) for _, p in results)
    assert paths == [
        "receipts/morphometry@1/challenge/multi.failed.json",
        "receipts/morphometry@1/test/multi.failed.json",
        "receipts/tinymorph@1/challenge/multi.json",
        "receipts/tinymorph@1/test/multi.json",
    ]
    statuses = {str(p.relative_to(tmp_path)): r["status"] for r, p in results}
    assert statuses["receipts/tinymorph@1/test/multi.json"] == "ok"
    assert statuses["receipts/morphometry@1/test/multi.failed.json"] == "failed"
    assert main(["score", str(sub), "--receipts", str(tmp_path / "r2"), "--quiet"]) == 1  # a failure
    out = capsys.readouterr().out
    assert "OK    " in out and "FAIL  " in out and "gone" in out
