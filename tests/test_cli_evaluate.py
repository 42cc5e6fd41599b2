"""The command line and the evaluate flow, end to end on a tiny split."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from galbench.cli import main
from galbench.errors import PredictionError, SubmissionError
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
    ("source", "error", "match"),
    [
        ("class Model:\n def __init__(self, root): pass\n def predict(self, x): raise RuntimeError('boom')\n",
         SubmissionError, r"predict\(\) raised on the batch at object 0: RuntimeError: boom"),
        ("import numpy as np\nclass Model:\n def __init__(self, root): pass\n def predict(self, x): return np.zeros((len(x), 7))\n",
         PredictionError, r"shape \(40, 7\); expected \(40, 8\)"),
        ("import numpy as np\nclass Model:\n def __init__(self, root): pass\n def predict(self, x): return np.full((len(x), 8), np.nan)\n",
         PredictionError, r"non-finite"),
        ("import numpy as np\nclass Model:\n def __init__(self, root): pass\n def predict(self, x): return np.zeros((len(x) - 1, 8))\n",
         PredictionError, r"expected 16 rows"),
        ("raise ImportError('missing dependency')\n", SubmissionError, r"importing the entry point failed"),
        ("class Other: pass\n", SubmissionError, r"no class 'Model'"),
        ("class Model:\n def __init__(self, root): raise ValueError('no weights')\n",
         SubmissionError, r"constructing Model\(root\) failed: ValueError: no weights"),
    ],
)
def test_misbehaving_code_gets_a_clear_error(tmp_path, tiny_split_dir, source, error, match):
    sub = _write_submission(tmp_path / "bad", source)
    out = tmp_path / "r.json"
    with pytest.raises(error, match=match):
        evaluate(sub, n=40, out=out, progress=False)
    assert not out.exists()  # nothing half-written


def test_cli_reports_errors_with_exit_code_2(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path / "missing")]) == 2
    assert "not a folder" in capsys.readouterr().err
    assert main(["generate", "morphometri"]) == 2
    assert "did you mean 'morphometry@1'" in capsys.readouterr().err
    sub = _write_submission(tmp_path / "s", ORACLE)
    assert main(["evaluate", str(sub), "--split", "challenge"]) == 2
    assert "public splits" in capsys.readouterr().err


def test_receipt_default_path_and_multiple_tasks(tmp_path, tiny_split_dir, monkeypatch):
    from galbench.data.split import open_split

    sub = _write_submission(tmp_path / "oracle", ORACLE)
    np.save(sub / "truth.npy", open_split(tiny_split_dir).targets())
    monkeypatch.chdir(tmp_path)
    _, path = evaluate(sub, n=40, progress=False)
    assert path == Path("receipts/test-model.morphometry@1.test-first40.json")
    assert (tmp_path / path).is_file()
    shutil.rmtree(tmp_path / "receipts")
