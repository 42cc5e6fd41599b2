"""``galbench validate``: check a submission folder before it is scored, and say exactly what is
wrong and what the expected format is."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from galbench.errors import GalbenchError
from galbench.scoring import get_scorer
from galbench.scoring.base import Predictions
from galbench.scoring.submission import EXAMPLE, load_submission
from galbench.tasks import get_task

#: Objects of the test split a code submission is run on as a smoke test.
SMOKE_TEST_OBJECTS = 8


@dataclass
class Validation:
    folder: Path
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def validate_submission(
    folder: str | os.PathLike[str],
    *,
    home: str | os.PathLike[str] | None = None,
    run_code: bool = True,
) -> Validation:
    """Parse ``submission.toml``; check every prediction file against its task's format and the
    split's object ids; smoke-test code entry points on a few test images (sandboxed like a real
    run). Problems are collected, not raised."""
    from galbench.data.split import load_split
    from galbench.runner import load_prediction_file, run_submission

    result = Validation(Path(folder))
    try:
        submission = load_submission(folder)
    except GalbenchError as exc:
        result.problems.append(str(exc))
        return result
    for task_id, entry in submission.tasks.items():
        try:
            spec = get_task(task_id)
        except GalbenchError as exc:
            result.problems.append(f"{submission.root}: tasks.\"{task_id}\": {exc}")
            continue
        scorer = get_scorer(spec.type)
        for split_name, rel in entry.predictions.items():
            file = submission.root / rel
            try:
                split = load_split(spec, split_name, home=home, build=True, progress=False)
                predictions = load_prediction_file(file, split)
                scorer.validate(spec, predictions, str(file))
                result.notes.append(f"{spec.id} {split_name}: {rel} covers all {split.n} objects")
            except GalbenchError as exc:
                result.problems.append(f"{exc}\nExpected: {scorer.expected_format(spec)}")
        if entry.entry_point and run_code:
            try:
                split = load_split(spec, "test", SMOKE_TEST_OBJECTS, home=home, build=True, progress=False)
                predictions, _ = run_submission(submission, entry, split, progress=False)
                scorer.validate(spec, Predictions(predictions.object_ids, predictions.values),
                                f"{submission.root}/{entry.entry_point}")
                shapes = ", ".join(f"{k} {tuple(v.shape)}" for k, v in predictions.values.items())
                result.notes.append(
                    f"{spec.id}: {entry.entry_point} ran on {split.n} test images -> {shapes}"
                )
            except GalbenchError as exc:
                result.problems.append(f"{exc}\nExpected: {scorer.expected_format(spec)}")
    return result


__all__ = ["Validation", "validate_submission", "EXAMPLE"]
