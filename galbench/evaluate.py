"""``galbench evaluate``: submission -> predictions -> validation -> scores -> receipt.

Builds the split on first use, runs the submission's code (or reads its prediction file),
validates the predictions against the task type's expected format, scores them and writes the
receipt beside the stored predictions (for image-valued predictions, their per-object results).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

from galbench.data.split import load_split
from galbench.challenge import CHALLENGE, challenge_task, private_home
from galbench.errors import (
    GalbenchError,
    SplitCorruptedError,
    SplitNotFoundError,
    SubmissionError,
    TaskSpecError,
    UnknownNameError,
)
from galbench.harness import SandboxLimits, SandboxSetupError
from galbench.runner import environment, load_prediction_file, run_submission
from galbench.scoring import get_scorer
from galbench.scoring.receipt import (
    galbench_git_commit,
    make_failure_receipt,
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


def failure_receipt_path(path: Path) -> Path:
    """Failures are written beside, never over, a receipt: nothing already recorded is lost."""
    return path.with_name(path.name.removesuffix(".json") + ".failed.json")


# Errors of galbench's own data or configuration: they abort the run instead of being charged to
# the submission.
_INFRASTRUCTURE_ERRORS = (
    SplitCorruptedError,
    SplitNotFoundError,
    TaskSpecError,
    UnknownNameError,
    SandboxSetupError,
)


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
    limits: SandboxLimits | None = None,
) -> tuple[dict[str, Any], Path]:
    """Score a submission on a split and write its receipt; returns ``(receipt, path)``.

    ``task`` may be omitted when the submission enters exactly one task. ``n`` scores only the
    first ``n`` objects: the receipt is then marked partial and never enters the leaderboard.
    ``split="challenge"`` scores code submissions on the hidden split (see
    :mod:`galbench.challenge`), built in a private temporary folder and deleted afterwards.

    A submission that fails (its code raises, hangs or misbehaves, or its predictions are
    invalid) gets a receipt with ``status: "failed"`` and the reason, written to
    ``<receipt>.failed.json``; an existing receipt is never overwritten by a failure.
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

    with contextlib.ExitStack() as stack:
        if split == CHALLENGE:
            if entry.entry_point is None:
                raise SubmissionError(
                    f"{submission.root}: the challenge split takes code submissions only "
                    f"(an entry_point for {spec.id}); prediction files cannot exist for it"
                )
            spec = challenge_task(spec)
            home = stack.enter_context(private_home())
        elif split not in spec.splits:
            raise SubmissionError(
                f"split {split!r}: {spec.id} has public splits "
                f"{', '.join(spec.splits)} and the hidden {CHALLENGE!r} split"
            )
        data = load_split(spec, split, n, home=home, build=True, workers=workers, progress=progress)
        path = Path(out) if out else default_receipt_path(
            submission.name, spec.id, split, data.n, data.manifest.n_official
        )
        scorer = get_scorer(spec.type)
        try:
            predictions, inference, source = _predict(submission, entry, data, progress, limits)
            predictions = scorer.validate(spec, predictions, str(source))
        except GalbenchError as exc:
            if isinstance(exc, _INFRASTRUCTURE_ERRORS):
                raise
            receipt = make_failure_receipt(
                task=spec, split=data, submission=submission, entry=entry, error=exc,
                environment=environment(), code_version=code_version,
            )
            failed = failure_receipt_path(path)
            write_receipt(receipt, failed)
            return receipt, failed
        per_object = scorer.reduce(spec, predictions, data)
        scores = scorer.score(spec, per_object, data.catalog)
        receipt = make_receipt(
            task=spec,
            split=data,
            submission=submission,
            entry=entry,
            predictions=predictions,
            per_object=per_object if per_object is not predictions else None,
            scores=scores,
            inference=inference,
            environment=environment(),
            code_version=code_version,
        )
    stored = write_predictions(per_object, predictions_path(path))
    receipt["predictions_file"] = stored.name
    write_receipt(receipt, path)
    return receipt, path


def _predict(submission, entry, data, progress, limits):
    """Predictions for ``data``: from the submission's file for this split, else its code."""
    if data.name in entry.predictions:
        source = submission.root / entry.predictions[data.name]
        # A file covers the whole split; with --n only its first n objects are scored.
        return load_prediction_file(source, data, allow_extra=data.partial), None, source
    if entry.entry_point is None:
        raise SubmissionError(
            f"{submission.root}: no code and no prediction file for split {data.name!r} of "
            f"{data.task.id}"
        )
    predictions, report = run_submission(submission, entry, data, progress=progress, limits=limits)
    module = entry.entry_point.split(":")[0].replace(".", "/")
    return predictions, asdict(report), submission.root / f"{module}.py"


def leaderboard_receipt_path(root: str | os.PathLike[str], name: str, task_id: str, split: str) -> Path:
    """Where the leaderboard keeps a receipt: ``<root>/<task id>/<split>/<submission>.json``."""
    return Path(root) / task_id / split / f"{name}.json"


def companion_real_splits(spec) -> tuple[str, ...]:
    """The real splits scored beside a simulated test split (deblending@1 ``real_cosmos``):
    none for a task whose test split is itself real (rings@1, galaxy10@1, where the other real
    splits are training data)."""
    if spec.split("test").real:
        return ()
    return tuple(name for name, s in spec.splits.items() if s.real)


def score_submission(
    submission_dir: str | os.PathLike[str],
    *,
    receipts: str | os.PathLike[str] = "leaderboard/receipts",
    splits: tuple[str, ...] | None = None,
    challenge: bool | None = None,
    home: str | os.PathLike[str] | None = None,
    workers: int = 1,
    progress: bool = True,
    limits: SandboxLimits | None = None,
) -> list[tuple[dict[str, Any], Path]]:
    """Score every task a submission enters, on each of ``splits`` (default: ``test`` and, on a
    simulated task, its real splits, so the leaderboard shows sim and real side by side; a task without one
    of the named splits skips it) and (for code entries on simulated tasks, when
    ``$GALBENCH_CHALLENGE_SEED`` is set or ``challenge=True``) on the hidden challenge split,
    writing receipts where the leaderboard reads them. A failure of one run is recorded in its
    failure receipt and the others still run. This is what CI runs on a submission pull request."""
    from galbench.challenge import SEED_VARIABLE

    submission = load_submission(submission_dir)
    if challenge is None:
        challenge = bool(os.environ.get(SEED_VARIABLE))
    results = []
    for task_id, entry in submission.tasks.items():
        spec = get_task(task_id)
        wanted = splits if splits is not None else ("test", *companion_real_splits(spec))
        runs = [s for s in wanted if s in spec.splits and (s in entry.predictions or entry.entry_point)]
        if challenge and entry.entry_point and not spec.split("test").real:
            runs.append(CHALLENGE)
        for split in runs:
            out = leaderboard_receipt_path(receipts, submission.name, task_id, split)
            results.append(
                evaluate(
                    submission_dir, task=task_id, split=split, out=out, home=home,
                    workers=workers, progress=progress, limits=limits,
                )
            )
    return results
