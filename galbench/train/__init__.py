"""The training toolkit of the deep baselines (imports torch; nothing else in galbench imports it).

- :mod:`~galbench.train.early_stopping`: :class:`EarlyStopping` on a validation value, keeping the
  best weights;
- :mod:`~galbench.train.history`: :class:`History`, per-epoch rows saved as JSON and plotted;
- :mod:`~galbench.train.schedules`: learning-rate decay (step, exponential, inverse) as pure
  functions and torch schedulers;
- :mod:`~galbench.train.augment`: :class:`Augment`, flips, rotations, shifts and zoom of
  origin-lower stamps with flux conserved, returning :class:`AugmentParams` for the targets;
- :mod:`~galbench.train.layers`: :class:`GaussianNoise`, an input-noise layer active in training;
- :mod:`~galbench.train.finetune`: :func:`set_trainable` (head, last k blocks, all) and
  :func:`freeze_batchnorm` for timm models;
- :mod:`~galbench.train.search`: :func:`grid_search`, coarse then fine, scored on validation.
"""

from galbench.train.augment import Augment, AugmentParams
from galbench.train.early_stopping import EarlyStopping
from galbench.train.finetune import block_groups, count_trainable, freeze_batchnorm, set_trainable
from galbench.train.history import History
from galbench.train.layers import GaussianNoise
from galbench.train.schedules import (
    SCHEDULE_KINDS,
    exponential_decay,
    inverse_decay,
    scheduler,
    step_decay,
)
from galbench.train.search import SearchResult, Trial, default_refinement, grid_search

__all__ = [
    "SCHEDULE_KINDS",
    "Augment",
    "AugmentParams",
    "EarlyStopping",
    "GaussianNoise",
    "History",
    "SearchResult",
    "Trial",
    "block_groups",
    "count_trainable",
    "default_refinement",
    "exponential_decay",
    "freeze_batchnorm",
    "grid_search",
    "inverse_decay",
    "scheduler",
    "set_trainable",
    "step_decay",
]
