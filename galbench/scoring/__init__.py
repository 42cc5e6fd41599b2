"""Validate predictions, score them, write receipts. Imports no torch or GalSim.

One :class:`TaskScorer` per task type, in the ``SCORERS`` registry; a task of a new type plugs in
by registering its scorer.
"""

from __future__ import annotations

from galbench._registry import Registry
from galbench.scoring import anomaly, classification, deblending, regression, segmentation
from galbench.scoring.base import Predictions, Scores, TaskScorer

SCORERS: Registry[TaskScorer] = Registry("task type scorer")
SCORERS.add("regression", regression.SCORER)
SCORERS.add("anomaly", anomaly.SCORER)
SCORERS.add("classification", classification.SCORER)
SCORERS.add("segmentation", segmentation.SCORER)
SCORERS.add("deblending", deblending.SCORER)


def get_scorer(task_type: str) -> TaskScorer:
    return SCORERS.get(task_type)


__all__ = ["SCORERS", "Predictions", "Scores", "TaskScorer", "get_scorer"]
