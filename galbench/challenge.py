"""The hidden challenge split (DESIGN.md contract 2).

It has the size of the task's test split and a seed derived from a secret,
``$GALBENCH_CHALLENGE_SEED``, which only the scorer (CI) holds: the seed is never written to the
repository, a receipt, or anywhere a submission can read. The split is built at scoring time in a
private temporary folder that is deleted afterwards; only code submissions enter it, and the
sandbox passes them the images alone.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from galbench.errors import GalbenchError
from galbench.tasks import FrozenDict, SplitSpec, TaskSpec

CHALLENGE = "challenge"
SEED_VARIABLE = "GALBENCH_CHALLENGE_SEED"


class ChallengeSeedMissing(GalbenchError, RuntimeError):
    """The challenge split was asked for without its secret."""


def challenge_seed(task: TaskSpec) -> int:
    """The task's challenge seed, derived from the secret and the task id (one secret serves
    every task; a leaked seed of one task reveals nothing of another)."""
    secret = os.environ.get(SEED_VARIABLE, "")
    if not secret:
        raise ChallengeSeedMissing(
            f"the challenge split is built from a secret seed in ${SEED_VARIABLE}, held by the "
            "scorer (CI); it is not published. Score the public splits instead (--split test)"
        )
    digest = hashlib.sha256(f"galbench-challenge\0{secret}\0{task.id}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


def challenge_task(task: TaskSpec) -> TaskSpec:
    """``task`` with a ``challenge`` split (test-split size, secret seed), in memory only.

    Only simulated tasks have one: a task whose test split is real data (fixed public objects)
    has nothing a secret seed could draw afresh."""
    if task.split("test").real:
        from galbench.errors import GalbenchError

        raise GalbenchError(
            f"{task.id} has no hidden challenge split: its test split is real data (fixed public "
            "objects, not drawn from a seed); score --split test"
        )
    split = SplitSpec(CHALLENGE, task.split("test").n, challenge_seed(task))
    return dataclasses.replace(task, splits=FrozenDict({**task.splits, CHALLENGE: split}))


@contextlib.contextmanager
def private_home() -> Iterator[Path]:
    """A data home only this user can read (mode 0700), removed on exit."""
    folder = Path(tempfile.mkdtemp(prefix="galbench-challenge-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
