"""``galbench evaluate``: submission -> predictions -> validation -> scores -> receipt.

Builds the split on first use, runs the submission's code (or reads its prediction file),
validates the predictions against the task type's expected format, scores them and writes the
receipt.
"""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

from galbench.data.split import load_split
from galbench.errors import SubmissionError
from galbench.runner import environment, load_prediction_file, run_submission
from galbench.scoring import get_scorer
from galbench.scoring.receipt import (
    galbench_git_commit,
    make_receipt,
    predictions_path,
    write_predictions,
    write_receipt,
)
from galbench.scoring.submission import load_submission
from galbench.tasks import get_task


def default_receipt_path(submission_name: str, task_id: str, split: str, n: int, n_official: int) -> Path:
    suffix = "" if n == n_official else f"-first{n}"
    return Path("receipts") / f"{submission_name}.{task_id}.{split}{suffix}.json"


def evaluate(
    submission_dir: str | os.PathLike[str],
    *,
    task: str | None = None,
    split: str = "test",
    n: int | None = None,
    out: str | os.PathLike[str] | None = None,
    home: str | os.PathLike[str] | None = None,
    workers: int = 1,
    progress: bool = True,
) -> tuple[dict[str, Any], Path]:
    """Score a submission on a split and write its receipt; returns ``(receipt, path)``.

    ``task`` may be omitted when the submission enters exactly one task. ``n`` scores only the
    first ``n`` objects: the receipt is then marked partial and never enters the leaderboard.
    """
    code_version = galbench_git_commit()  # the code that runs, even if the tree changes meanwhile
    submission = load_submission(submission_dir)
    if task is None:
        if len(submission.tasks) != 1:
            raise SubmissionError(
                f"{submission.root}: enters {len(submission.tasks)} tasks "
                f"({', '.join(submission.tasks)}); choose one with --task"
            )
        task = next(iter(submission.tasks))
    spec = get_task(task)
    entry = submission.entry(spec.id)
    if split == "challenge" or split not in spec.splits:
        raise SubmissionError(
            f"split {split!r}: evaluate scores the public splits of {spec.id} "
            f"({', '.join(s for s in spec.splits if s != 'challenge')})"
        )
    data = load_split(spec, split, n, home=home, build=True, workers=workers, progress=progress)
    scorer = get_scorer(spec.type)

    if split in entry.predictions:
        source = submission.root / entry.predictions[split]
        # A file covers the whole split; with --n only its first n objects are scored.
        predictions = load_prediction_file(source, data, allow_extra=data.partial)
        inference = None
    elif entry.entry_point is not None:
        predictions, report = run_submission(submission, entry, data, progress=progress)
        source = submission.root / entry.entry_point.split(":")[0]
        inference = asdict(report)
    else:
        raise SubmissionError(
            f"{submission.root}: no code and no prediction file for split {split!r} of {spec.id}"
        )

    predictions = scorer.validate(spec, predictions, str(source))
    scores = scorer.score(spec, predictions, data.catalog)
    receipt = make_receipt(
        task=spec,
        split=data,
        submission=submission,
        entry=entry,
        predictions=predictions,
        scores=scores,
        inference=inference,
        environment=environment(),
        code_version=code_version,
    )
    path = Path(out) if out else default_receipt_path(
        submission.name, spec.id, split, data.n, data.manifest.n_official
    )
    stored = write_predictions(predictions, predictions_path(path))
    receipt["predictions_file"] = stored.name
    write_receipt(receipt, path)
    return receipt, path
