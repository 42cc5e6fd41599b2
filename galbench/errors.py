"""Error classes.

Each error subclasses both :class:`GalbenchError` (so callers can catch everything galbench raises)
and the builtin that matches the failure (so generic handlers still work), as GalSim does.
Messages say what was wrong, where (file, field, object id), and what is expected.
"""

from __future__ import annotations


class GalbenchError(Exception):
    """Base class of every error galbench raises on purpose."""


class UnknownNameError(GalbenchError, KeyError):
    """A registry lookup failed (unknown task, instrument, recipe, metric ...)."""

    def __str__(self) -> str:  # KeyError quotes its message; show it plainly instead.
        return str(self.args[0]) if self.args else ""


class TaskSpecError(GalbenchError, ValueError):
    """A task file is malformed or inconsistent."""


class SplitNotFoundError(GalbenchError, FileNotFoundError):
    """A split has not been built under the data home."""


class SplitCorruptedError(GalbenchError, OSError):
    """A split on disk does not match its manifest (missing, truncated or altered file)."""


class SubmissionError(GalbenchError, ValueError):
    """A submission folder or its `submission.toml` is malformed."""


class PredictionError(GalbenchError, ValueError):
    """Predictions have the wrong shape, dtype, ids or values."""


class LeaderboardError(GalbenchError, ValueError):
    """Receipts that cannot be put on the leaderboard (unreadable, inconsistent, not comparable)."""
