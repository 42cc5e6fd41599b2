"""Submission folders (load_submission, content hash) and prediction files
(galbench.runner.load_prediction_file)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from galbench.errors import GalbenchError, PredictionError, SubmissionError
from galbench.runner import load_prediction_file
from galbench.scoring.submission import (
    SUBMISSION_FILE,
    load_submission,
    submission_content_sha256,
    submission_files,
)

HEADER = """\
name = "my-model_2"
authors = ["A. Person", "B. Person"]
contact = "a.person@example.org"
license = "MIT"
external_data = false
"""

CODE_TASK = """
[tasks."morphometry@1"]
entry_point = "model:MyModel"
training_data = ["morphometry@1/train"]
labels = 100000
batch_size = 64
"""

FILE_TASK = """
[tasks."morphometry@1"]
predictions = { test = "predictions/test.npz", val = "predictions/val.npz" }
training_data = ["morphometry@1/train"]
labels = 5000
"""

MODEL = """\
import numpy as np


class MyModel:
    def __init__(self, root):
        self.root = root

    def predict(self, images):
        return np.zeros((len(images), 8))
"""


def make_folder(root: Path, toml: str, files: dict[str, str] | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / SUBMISSION_FILE).write_text(toml, encoding="utf-8")
    for rel, text in (files or {}).items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")
    return root


def code_folder(tmp_path: Path) -> Path:
    return make_folder(tmp_path / "code-sub", HEADER + CODE_TASK, {"model.py": MODEL})


def file_folder(tmp_path: Path) -> Path:
    return make_folder(
        tmp_path / "file-sub",
        HEADER + FILE_TASK,
        {"predictions/test.npz": "x", "predictions/val.npz": "y"},
    )


# ------------------------------------------------------------------------------------------
# Valid folders


def test_code_entry(tmp_path):
    root = code_folder(tmp_path)
    sub = load_submission(root)
    assert sub.root == root
    assert sub.name == "my-model_2"
    assert sub.authors == ("A. Person", "B. Person")
    assert (sub.contact, sub.license, sub.external_data) == ("a.person@example.org", "MIT", False)
    assert (sub.paper, sub.code, sub.description) == ("", "", "")
    entry = sub.entry("morphometry@1")
    assert entry.task == "morphometry@1"
    assert entry.entry_point == "model:MyModel"
    assert dict(entry.predictions) == {}
    assert entry.training_data == ("morphometry@1/train",)
    assert (entry.labels, entry.batch_size) == (100000, 64)
    assert sub.summary() == {
        "name": "my-model_2",
        "authors": ["A. Person", "B. Person"],
        "contact": "a.person@example.org",
        "license": "MIT",
        "external_data": False,
        "paper": "",
        "code": "",
    }


def test_prediction_file_entry(tmp_path):
    sub = load_submission(str(file_folder(tmp_path)))  # a str path works too
    entry = sub.entry("morphometry@1")
    assert entry.entry_point is None
    assert dict(entry.predictions) == {"test": "predictions/test.npz", "val": "predictions/val.npz"}
    assert (entry.labels, entry.batch_size) == (5000, 256)  # batch_size default


def test_package_entry_point_and_optional_fields(tmp_path):
    toml = HEADER + 'paper = "https://arxiv.org/abs/1"\ncode = "https://x"\ndescription = "d"\n' + (
        '\n[tasks."morphometry@1"]\nentry_point = "pkg.net:Net"\n'
    )
    root = make_folder(tmp_path / "s", toml, {"pkg/net/__init__.py": "class Net: ..."})
    sub = load_submission(root)
    assert (sub.paper, sub.code, sub.description) == ("https://arxiv.org/abs/1", "https://x", "d")
    entry = sub.entry("morphometry@1")
    assert entry.entry_point == "pkg.net:Net"
    assert (entry.labels, entry.training_data) == (None, ())


def test_entry_for_a_task_not_entered(tmp_path):
    sub = load_submission(code_folder(tmp_path))
    with pytest.raises(SubmissionError) as info:
        sub.entry("morphology@1")
    msg = str(info.value)
    assert str(sub.root / SUBMISSION_FILE) in msg
    assert "'morphology@1'" in msg and "morphometry@1" in msg


# ------------------------------------------------------------------------------------------
# A corpus of bad folders


def _without(line_start: str) -> str:
    return "".join(
        line + "\n" for line in HEADER.splitlines() if not line.startswith(line_start)
    ) + CODE_TASK


def _code_task(**fields: str) -> str:
    body = "".join(f"{k} = {v}\n" for k, v in fields.items())
    return HEADER + f'\n[tasks."morphometry@1"]\n{body}'


BAD_TOMLS = {
    # id: (submission.toml text, field named in the message, other substrings)
    "missing name": (_without("name ="), "name", ["missing"]),
    "missing authors": (_without("authors"), "authors", ["missing"]),
    "missing contact": (_without("contact"), "contact", ["missing"]),
    "missing license": (_without("license"), "license", ["missing"]),
    "missing external_data": (_without("external_data"), "external_data", ["missing"]),
    "missing tasks": (HEADER, "tasks", ["missing"]),
    "empty tasks": (HEADER + "tasks = {}\n", "tasks", ["enters no task"]),
    "name with capitals and space": (
        HEADER.replace('"my-model_2"', '"My Model"') + CODE_TASK,
        "name",
        ["'My Model'", "lowercase"],
    ),
    "name with slash": (HEADER.replace('"my-model_2"', '"a/b"') + CODE_TASK, "name", ["'a/b'"]),
    "name is a number": (HEADER.replace('"my-model_2"', "7") + CODE_TASK, "name", ["expected str"]),
    "empty authors": (
        HEADER.replace('["A. Person", "B. Person"]', "[]") + CODE_TASK, "authors", ["non-empty"]
    ),
    "authors not strings": (
        HEADER.replace('["A. Person", "B. Person"]', "[1, 2]") + CODE_TASK, "authors", ["names"]
    ),
    "external_data is a string": (
        HEADER.replace("external_data = false", 'external_data = "no"') + CODE_TASK,
        "external_data",
        ["expected bool"],
    ),
    "unknown top-level field": (
        HEADER + 'colour = "red"\n' + CODE_TASK, "colour", ["unknown field"]
    ),
    "task id without @": (
        HEADER + '\n[tasks.morphometry]\nentry_point = "model:MyModel"\n',
        'tasks."morphometry"',
        ["name@version"],
    ),
    "task is not a table": (HEADER + '\n[tasks]\n"morphometry@1" = 3\n', 'tasks."morphometry@1"',
                            ["expected a table"]),
    "neither entry_point nor predictions": (
        _code_task(labels="10"), 'tasks."morphometry@1"', ["entry_point", "predictions"]
    ),
    "empty predictions table": (
        _code_task(predictions="{}"), 'tasks."morphometry@1"', ["entry_point", "predictions"]
    ),
    "entry_point with a dot": (
        _code_task(entry_point='"model.MyModel"'),
        'tasks."morphometry@1".entry_point',
        ["'model.MyModel'", "module:Class"],
    ),
    "entry_point with a path": (
        _code_task(entry_point='"sub/model.py:MyModel"'),
        'tasks."morphometry@1".entry_point',
        ["module:Class"],
    ),
    "entry_point module missing": (
        _code_task(entry_point='"network:MyModel"'),
        'tasks."morphometry@1".entry_point',
        ["network.py", "not found"],
    ),
    "prediction file missing": (
        _code_task(predictions='{ test = "nope.npz" }'),
        'tasks."morphometry@1".predictions.test',
        ["nope.npz", "not found"],
    ),
    "prediction value not a string": (
        _code_task(predictions="{ test = 3 }"),
        'tasks."morphometry@1".predictions',
        ['split = "file.npz"'],
    ),
    "predictions for the challenge split": (
        _code_task(predictions='{ challenge = "model.py" }'),
        'tasks."morphometry@1".predictions',
        ["challenge split takes code only"],
    ),
    "negative labels": (
        _code_task(entry_point='"model:MyModel"', labels="-1"),
        'tasks."morphometry@1".labels',
        ["non-negative"],
    ),
    "labels is a boolean": (
        _code_task(entry_point='"model:MyModel"', labels="true"),
        'tasks."morphometry@1".labels',
        ["boolean"],
    ),
    "batch_size 0": (
        _code_task(entry_point='"model:MyModel"', batch_size="0"),
        'tasks."morphometry@1".batch_size',
        ["positive"],
    ),
    "batch_size is a float": (
        _code_task(entry_point='"model:MyModel"', batch_size="32.0"),
        'tasks."morphometry@1".batch_size',
        ["expected int"],
    ),
    "training_data not strings": (
        _code_task(entry_point='"model:MyModel"', training_data="[1]"),
        'tasks."morphometry@1".training_data',
        ["list of strings"],
    ),
    "unknown field in a task table": (
        _code_task(entry_point='"model:MyModel"', learning_rate="0.1"),
        'tasks."morphometry@1".learning_rate',
        ["unknown field"],
    ),
}


@pytest.mark.parametrize("case", list(BAD_TOMLS))
def test_bad_submission_toml(tmp_path, case):
    text, field, pieces = BAD_TOMLS[case]
    root = make_folder(tmp_path / "bad", text, {"model.py": MODEL})
    with pytest.raises(SubmissionError) as info:
        load_submission(root)
    msg = str(info.value)
    assert msg.startswith(str(root / SUBMISSION_FILE) + ":"), msg
    assert f"field {field!r}" in msg, msg
    for piece in pieces:
        assert piece in msg, (piece, msg)
    # every message shows what a valid file looks like
    assert "A valid submission.toml looks like" in msg
    assert isinstance(info.value, ValueError) and isinstance(info.value, GalbenchError)


def test_no_folder(tmp_path):
    missing = tmp_path / "does-not-exist"
    with pytest.raises(SubmissionError, match="not a folder") as info:
        load_submission(missing)
    assert str(missing) in str(info.value)


def test_a_file_is_not_a_folder(tmp_path):
    file = tmp_path / "submission.toml"
    file.write_text(HEADER + CODE_TASK)
    with pytest.raises(SubmissionError, match="not a folder"):
        load_submission(file)


def test_no_submission_toml(tmp_path):
    root = tmp_path / "empty"
    root.mkdir()
    with pytest.raises(SubmissionError) as info:
        load_submission(root)
    msg = str(info.value)
    assert msg.startswith(f"{root}: no submission.toml")
    assert 'name = "my-model"' in msg  # the example


def test_malformed_toml(tmp_path):
    root = make_folder(tmp_path / "s", HEADER + "[tasks\nbroken = \n")
    with pytest.raises(SubmissionError) as info:
        load_submission(root)
    msg = str(info.value)
    assert msg.startswith(f"{root / SUBMISSION_FILE}: not valid TOML")


def test_not_utf8(tmp_path):
    root = tmp_path / "s"
    root.mkdir()
    (root / SUBMISSION_FILE).write_bytes(b'name = "\xff\xfe"\n')
    with pytest.raises(SubmissionError, match="not valid TOML"):
        load_submission(root)


def test_predictions_for_unknown_split(tmp_path):
    root = make_folder(tmp_path / "s", _code_task(predictions='{ tset = "p.npz" }'), {"p.npz": "x"})
    with pytest.raises(SubmissionError, match="predictions.tset"):
        load_submission(root)


def test_prediction_file_outside_the_folder(tmp_path):
    (tmp_path / "outside.npz").write_text("x")
    root = make_folder(tmp_path / "s", _code_task(predictions='{ test = "../outside.npz" }'))
    with pytest.raises(SubmissionError, match="predictions.test"):
        load_submission(root)


# ------------------------------------------------------------------------------------------
# Content hash


def test_content_hash(tmp_path):
    root = code_folder(tmp_path)
    h = submission_content_sha256(root)
    assert h == load_submission(root).content_sha256
    assert h == submission_content_sha256(root)  # stable
    assert len(h) == 64

    # caches are ignored
    (root / "__pycache__").mkdir()
    (root / "__pycache__" / "model.cpython-311.pyc").write_bytes(b"\x00\x01")
    (root / "stray.pyc").write_bytes(b"\x02")
    (root / ".ipynb_checkpoints").mkdir()
    (root / ".ipynb_checkpoints" / "nb.ipynb").write_text("{}")
    assert submission_content_sha256(root) == h
    assert [p.name for p in submission_files(root)] == ["model.py", "submission.toml"]

    # one byte changes the hash
    model = root / "model.py"
    model.write_text(MODEL + "\n")
    h2 = submission_content_sha256(root)
    assert h2 != h
    model.write_text(MODEL)
    assert submission_content_sha256(root) == h

    # so does a new file, and a rename with the same bytes
    (root / "weights.bin").write_bytes(b"\x00" * 16)
    h3 = submission_content_sha256(root)
    assert h3 != h
    (root / "weights.bin").rename(root / "weights2.bin")
    assert submission_content_sha256(root) not in (h, h3)


def test_content_hash_independent_of_location(tmp_path):
    a = code_folder(tmp_path / "a")
    b = code_folder(tmp_path / "b")
    assert a != b
    assert submission_content_sha256(a) == submission_content_sha256(b)


# ------------------------------------------------------------------------------------------
# load_prediction_file


def fake_split(ids) -> SimpleNamespace:
    ids = np.asarray(ids, dtype=np.int64)
    return SimpleNamespace(
        object_ids=ids, task=SimpleNamespace(id="morphometry@1"), name="test", n=len(ids)
    )


SPLIT_IDS = [40, 10, 30, 20, 50]  # the split's own order, deliberately not sorted


def write_npz(path: Path, **arrays) -> Path:
    np.savez(path, **arrays)
    return path


def rows_for(ids) -> np.ndarray:
    """A row per id that encodes the id, to check alignment: [id, id/10, -id]."""
    ids = np.asarray(ids, dtype=np.float64)
    return np.stack([ids, ids / 10, -ids], axis=1)


def test_reorders_by_object_id(tmp_path):
    file_ids = np.array([20, 50, 10, 40, 30])
    path = write_npz(tmp_path / "p.npz", object_id=file_ids, mean=rows_for(file_ids),
                     std=rows_for(file_ids) + 1000)
    split = fake_split(SPLIT_IDS)
    preds = load_prediction_file(path, split)
    np.testing.assert_array_equal(preds.object_ids, SPLIT_IDS)
    np.testing.assert_array_equal(preds.values["mean"], rows_for(SPLIT_IDS))
    np.testing.assert_array_equal(preds.values["std"], rows_for(SPLIT_IDS) + 1000)
    assert set(preds.values) == {"mean", "std"}
    assert preds.object_ids is not split.object_ids  # a copy


def test_same_order_is_identity(tmp_path):
    path = write_npz(tmp_path / "p.npz", object_id=np.array(SPLIT_IDS, dtype=np.uint32),
                     mean=rows_for(SPLIT_IDS))
    preds = load_prediction_file(path, fake_split(SPLIT_IDS))
    np.testing.assert_array_equal(preds.values["mean"], rows_for(SPLIT_IDS))


def _error(path: Path, split=None, **kwargs) -> str:
    with pytest.raises(PredictionError) as info:
        load_prediction_file(path, split or fake_split(SPLIT_IDS), **kwargs)
    msg = str(info.value)
    assert msg.startswith(f"{path}: ")
    return msg


def test_missing_ids(tmp_path):
    ids = np.array([10, 20, 30])
    path = write_npz(tmp_path / "p.npz", object_id=ids, mean=rows_for(ids))
    msg = _error(path)
    assert "2 object_id(s) of morphometry@1 test missing" in msg and "[40, 50]" in msg


def test_duplicated_ids(tmp_path):
    ids = np.array([10, 20, 30, 40, 50, 30])
    path = write_npz(tmp_path / "p.npz", object_id=ids, mean=rows_for(ids))
    assert "duplicated object_id(s), e.g. [30]" in _error(path)


def test_unknown_ids(tmp_path):
    ids = np.array([10, 20, 30, 40, 50, 60, 70])
    path = write_npz(tmp_path / "p.npz", object_id=ids, mean=rows_for(ids))
    msg = _error(path)
    assert "2 object_id(s) not in morphometry@1 test (n=5)" in msg and "[60, 70]" in msg


def test_unknown_ids_allowed_with_allow_extra(tmp_path):
    ids = np.array([70, 10, 20, 60, 30, 40, 50])
    path = write_npz(tmp_path / "p.npz", object_id=ids, mean=rows_for(ids))
    preds = load_prediction_file(path, fake_split(SPLIT_IDS), allow_extra=True)
    np.testing.assert_array_equal(preds.object_ids, SPLIT_IDS)
    np.testing.assert_array_equal(preds.values["mean"], rows_for(SPLIT_IDS))
    # missing ids are still an error with allow_extra
    short = write_npz(tmp_path / "short.npz", object_id=np.array([10, 60]),
                      mean=rows_for([10, 60]))
    assert "missing" in _error(short, allow_extra=True)


def test_no_object_id(tmp_path):
    path = write_npz(tmp_path / "p.npz", ids=np.array(SPLIT_IDS), mean=rows_for(SPLIT_IDS))
    assert "no 'object_id' array" in _error(path)


@pytest.mark.parametrize(
    "ids",
    [
        np.array(SPLIT_IDS, dtype=np.float64),
        np.array([str(i) for i in SPLIT_IDS]),
        np.array(SPLIT_IDS).reshape(5, 1),
        np.ones(5, dtype=bool),
    ],
    ids=["float", "str", "2d", "bool"],
)
def test_non_integer_ids(tmp_path, ids):
    path = write_npz(tmp_path / "p.npz", object_id=ids, mean=rows_for(SPLIT_IDS))
    assert "'object_id' must be a 1-D integer array" in _error(path)


@pytest.mark.parametrize("rows", [4, 6])
def test_row_count_mismatch(tmp_path, rows):
    path = write_npz(tmp_path / "p.npz", object_id=np.array(SPLIT_IDS),
                     mean=np.zeros((rows, 3)))
    assert f"'mean' has ({rows}, 3), expected 5 rows" in _error(path)


def test_scalar_field(tmp_path):
    path = write_npz(tmp_path / "p.npz", object_id=np.array(SPLIT_IDS), mean=np.float64(1.0))
    assert "'mean' has ()" in _error(path)


def test_unreadable_file(tmp_path):
    path = tmp_path / "p.npz"
    path.write_text("this is not an npz file")
    assert "not a readable .npz file" in _error(path)
    assert "not a readable .npz file" in _error(tmp_path / "absent.npz")


def test_object_arrays_are_refused(tmp_path):
    path = tmp_path / "p.npz"
    np.savez(path, object_id=np.array(SPLIT_IDS), mean=np.array([None] * 5, dtype=object))
    assert "not a readable .npz file" in _error(path)


def test_npy_instead_of_npz(tmp_path):
    path = tmp_path / "p.npy"
    np.save(path, rows_for(SPLIT_IDS))
    assert "npz" in _error(path)


def test_example_toml_in_docs_is_valid(tmp_path):
    """The example that every error message shows is itself a valid submission.toml."""
    from galbench.scoring.submission import EXAMPLE

    root = make_folder(tmp_path / "ex", EXAMPLE, {"model.py": MODEL})
    sub = load_submission(root)
    assert sub.name == "my-model"
    assert sub.entry("morphometry@1").entry_point == "model:MyModel"
