"""The hidden challenge split: secret seed, private build, code submissions only."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest

from galbench.challenge import SEED_VARIABLE, ChallengeSeedMissing, challenge_seed, challenge_task
from galbench.errors import SubmissionError
from galbench.evaluate import evaluate
from galbench.tasks import get_task

TASK = get_task("morphometry@1")
CONSTANT = """
import numpy as np
class Model:
    def __init__(self, root): pass
    def predict(self, images):
        return np.tile([21, .5, 2.5, .75, .85, .5, .5, 90.], (len(images), 1))
"""


def _submission(folder: Path, body: str) -> Path:
    folder.mkdir()
    (folder / "model.py").write_text(CONSTANT)
    (folder / "submission.toml").write_text(
        'name = "const"\nauthors = ["A"]\ncontact = "a"\nlicense = "MIT"\nexternal_data = false\n'
        '[tasks."morphometry@1"]\n' + body
    )
    return folder


def test_no_secret_no_challenge(monkeypatch):
    monkeypatch.delenv(SEED_VARIABLE, raising=False)
    with pytest.raises(ChallengeSeedMissing, match=r"\$GALBENCH_CHALLENGE_SEED.*--split test"):
        challenge_seed(TASK)


def test_seed_depends_on_secret_and_task(monkeypatch):
    monkeypatch.setenv(SEED_VARIABLE, "s3cret")
    a = challenge_seed(TASK)
    assert a == challenge_seed(TASK) and 0 <= a < 2**63
    monkeypatch.setenv(SEED_VARIABLE, "other")
    assert challenge_seed(TASK) != a
    spec = challenge_task(TASK)
    assert spec.split("challenge").n == TASK.split("test").n
    assert spec.sha256 == TASK.sha256 and "challenge" not in TASK.splits  # in memory only


def test_challenge_run_is_private_and_records_no_seed(tmp_path, monkeypatch):
    monkeypatch.setenv(SEED_VARIABLE, "s3cret")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    sub = _submission(tmp_path / "sub", 'entry_point = "model:Model"\n')
    receipt, path = evaluate(sub, split="challenge", n=12, out=tmp_path / "r.json", progress=False)
    assert receipt["status"] == "ok" and receipt["split"] == "challenge" and receipt["challenge"]
    assert receipt["split_seed"] is None
    seed = str(challenge_seed(TASK))
    for file in tmp_path.rglob("*"):
        if file.is_file() and file.suffix == ".json":
            assert seed not in file.read_text() and "s3cret" not in file.read_text()
    assert list(scratch.iterdir()) == []  # the private build is gone
    # The challenge objects are not the test objects.
    from galbench.data.split import load_split

    test = load_split(TASK, "test", 12, build=True, progress=False)
    assert receipt["split_content_sha256"] != test.manifest.content_sha256
    assert receipt["metrics"]["bias/mag"] != pytest.approx(float(np.median(21 - test.catalog["mag"])))


def test_prediction_files_cannot_enter_the_challenge(tmp_path, monkeypatch):
    monkeypatch.setenv(SEED_VARIABLE, "s3cret")
    sub = _submission(tmp_path / "files", 'predictions = { test = "model.py" }\n')
    with pytest.raises(SubmissionError, match="challenge split takes code submissions only"):
        evaluate(sub, split="challenge", n=12, out=tmp_path / "r.json", progress=False)
    from galbench.scoring.submission import load_submission

    _submission(tmp_path / "f2", 'predictions = { challenge = "model.py" }\n')
    with pytest.raises(SubmissionError, match="challenge split takes code only"):
        load_submission(tmp_path / "f2")
