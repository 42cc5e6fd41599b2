"""galbench validate, galbench cite, and the published split hashes."""

from __future__ import annotations

import dataclasses
import re
import warnings
from pathlib import Path

import numpy as np
import pytest

from galbench.citation import GALBENCH_BIBTEX, citation_text
from galbench.cli import main
from galbench.data import build as build_module
from galbench.data.build import SplitMismatchWarning, build_split
from galbench.data.split import open_split
from galbench.tasks import FrozenDict, SplitSpec, get_task, published_split_hashes
from galbench.validate import validate_submission

REPO = Path(__file__).resolve().parents[1]
TASK = get_task("morphometry@1")


def test_validate_runs_code_on_a_few_test_images(capsys):
    result = validate_submission(REPO / "baselines" / "morphometry-floor")
    assert result.ok, result.problems
    assert result.notes == ["morphometry@1: model:MedianRegressor ran on 8 test images -> mean (8, 8)"]
    assert main(["validate", str(REPO / "baselines" / "morphometry-floor")]) == 0
    assert capsys.readouterr().out.startswith("OK")


def _files_submission(folder: Path, **arrays) -> Path:
    folder.mkdir()
    np.savez(folder / "test.npz", **arrays)
    (folder / "submission.toml").write_text(
        'name = "files"\nauthors = ["A"]\ncontact = "a"\nlicense = "MIT"\nexternal_data = false\n'
        '[tasks."morphometry@1"]\npredictions = { test = "test.npz" }\n'
    )
    return folder


def test_validate_reports_prediction_file_problems_with_the_expected_format(tmp_path, monkeypatch):
    # A task whose test split is tiny, so that the check can build the whole split quickly.
    tiny = dataclasses.replace(
        TASK, splits=FrozenDict({**TASK.splits, "test": SplitSpec("test", 6, TASK.split("test").seed)})
    )
    monkeypatch.setattr("galbench.validate.get_task", lambda _: tiny)
    monkeypatch.setattr(build_module, "published_split_hashes", lambda _: {})  # not the real test
    good = _files_submission(tmp_path / "good", object_id=np.arange(6), mean=np.zeros((6, 8)))
    result = validate_submission(good, home=tmp_path / "home")
    assert result.ok and result.notes == ["morphometry@1 test: test.npz covers all 6 objects"]

    wrong = _files_submission(tmp_path / "wrong", object_id=np.arange(6), mean=np.zeros((6, 7)))
    result = validate_submission(wrong, home=tmp_path / "home")
    assert not result.ok
    assert re.search(r"shape \(6, 7\); expected \(6, 8\)", result.problems[0])
    assert "Expected: morphometry@1 expects predictions keyed by object_id" in result.problems[0]

    missing = _files_submission(tmp_path / "missing", object_id=np.arange(5), mean=np.zeros((5, 8)))
    assert "1 object_id(s) of morphometry@1 test missing, e.g. [5]" in validate_submission(
        missing, home=tmp_path / "home"
    ).problems[0]


def test_validate_reports_bad_toml_and_cli_exit_code(tmp_path, capsys):
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "submission.toml").write_text("name = [")
    result = validate_submission(tmp_path / "bad")
    assert not result.ok and "not valid TOML" in result.problems[0]
    assert main(["validate", str(tmp_path / "bad")]) == 1
    assert "FAIL" in capsys.readouterr().out


def test_cite_prints_task_version_hashes_and_bibtex(capsys):
    text = citation_text("morphometry")
    assert f"sha256 {TASK.sha256}" in text
    hashes = published_split_hashes(TASK)
    assert set(hashes) == {"train", "val", "test", "real_cosmos"}
    assert f"test: n=10000, seed={TASK.split('test').seed}, content sha256 {hashes['test']}" in text
    assert f"real_cosmos: n=100, seed={TASK.split('real_cosmos').seed}, content sha256 {hashes['real_cosmos']}" in text
    assert "@article{Tuccillo2018" in text and "@software{galbench" in text
    assert main(["cite", "morphometry@1"]) == 0
    assert capsys.readouterr().out == text


def test_citation_cff_matches_the_bibtex():
    cff = (REPO / "CITATION.cff").read_text()
    import galbench

    assert f"version: {galbench.__version__}" in cff
    title = re.search(r'^title: "(.*)"$', cff, re.M).group(1)
    assert title in GALBENCH_BIBTEX


def test_a_build_differing_from_the_published_split_is_flagged(tmp_path, monkeypatch):
    tiny = dataclasses.replace(
        TASK, splits=FrozenDict({**TASK.splits, "val": SplitSpec("val", 4, TASK.split("val").seed)})
    )
    monkeypatch.setattr(build_module, "published_split_hashes", lambda _: {"val": "0" * 64})
    with pytest.warns(SplitMismatchWarning, match="differs from the published split"):
        folder = build_split(tiny, "val", home=tmp_path, progress=False)
    assert open_split(folder, spec=tiny).manifest.matches_published is False

    content = open_split(folder, spec=tiny).manifest.content_sha256
    monkeypatch.setattr(build_module, "published_split_hashes", lambda _: {"val": content})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = build_split(tiny, "val", home=tmp_path / "b", progress=False)
    assert open_split(again, spec=tiny).manifest.matches_published is True
