"""Learning-rate decay: pure functions of the epoch, and the torch schedulers that apply them.

``epoch`` counts from 0: epoch 0 trains at ``lr0``. With ``lr0`` the initial learning rate:

- ``step_decay(lr0, epoch, drop=0.5, every=10) = lr0 * drop ** floor(epoch / every)``
  (epochs 0-9 at lr0, 10-19 at lr0/2, ...);
- ``exponential_decay(lr0, epoch, rate) = lr0 * rate ** epoch`` (``0 < rate <= 1``; Keras
  ``ExponentialDecay`` with ``decay_steps=1``);
- ``inverse_decay(lr0, epoch, rate) = lr0 / (1 + rate * epoch)`` (``rate >= 0``; Keras
  ``InverseTimeDecay`` with ``decay_steps=1``, ``staircase=False``).

:func:`scheduler` wraps them in a ``torch.optim.lr_scheduler.LambdaLR`` stepped once per epoch,
*after* the epoch's optimizer steps: then epoch ``e`` (0-based) trains at exactly the function's
value at ``e``, for every parameter group (each with its own initial rate as ``lr0``). For
completeness it also builds ``"plateau"`` (``ReduceLROnPlateau``: multiply by ``factor`` after
``patience`` epochs without improvement of the value passed to ``step(value)``) and ``"cosine"``
(``CosineAnnealingLR``: ``eta_min + (lr0 - eta_min) * (1 + cos(pi * epoch / T_max)) / 2``).
"""

from __future__ import annotations

import functools
import math
from typing import Any

import torch

__all__ = [
    "SCHEDULE_KINDS",
    "exponential_decay",
    "inverse_decay",
    "scheduler",
    "step_decay",
]

#: What :func:`scheduler` builds.
SCHEDULE_KINDS = ("step", "exponential", "inverse", "plateau", "cosine")


def _check_epoch(epoch: int) -> None:
    if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
        raise ValueError(f"epoch must be an integer >= 0 (counted from 0), got {epoch!r}")


def step_decay(lr0: float, epoch: int, drop: float = 0.5, every: int = 10) -> float:
    """``lr0 * drop ** floor(epoch / every)``: multiply by ``drop`` every ``every`` epochs."""
    _check_epoch(epoch)
    if not 0 < drop <= 1:
        raise ValueError(f"drop must be in (0, 1], got {drop!r}")
    if isinstance(every, bool) or not isinstance(every, int) or every < 1:
        raise ValueError(f"every must be an integer >= 1 (epochs), got {every!r}")
    return lr0 * drop ** (epoch // every)


def exponential_decay(lr0: float, epoch: int, rate: float) -> float:
    """``lr0 * rate ** epoch``: multiply by ``rate`` every epoch."""
    _check_epoch(epoch)
    if not 0 < rate <= 1:
        raise ValueError(f"rate must be in (0, 1], got {rate!r}")
    return lr0 * rate**epoch


def inverse_decay(lr0: float, epoch: int, rate: float) -> float:
    """``lr0 / (1 + rate * epoch)``: inverse-time decay (halved at ``epoch = 1 / rate``)."""
    _check_epoch(epoch)
    if not (math.isfinite(rate) and rate >= 0):
        raise ValueError(f"rate must be a finite number >= 0, got {rate!r}")
    return lr0 / (1 + rate * epoch)


_FACTORS = {"step": step_decay, "exponential": exponential_decay, "inverse": inverse_decay}


def _factor(function: Any, kwargs: dict[str, Any], epoch: int) -> float:
    # LambdaLR multiplies each group's initial rate by this, so lr0 = 1 gives the factor.
    return function(1.0, epoch, **kwargs)


def scheduler(optimizer: torch.optim.Optimizer, kind: str, **kwargs: Any) -> Any:
    """A torch scheduler for ``optimizer``; call its ``step()`` once at the end of every epoch
    (``step(val_loss)`` for ``"plateau"``).

    ``kind`` and its keyword arguments:

    - ``"step"``: ``drop=0.5``, ``every=10`` (:func:`step_decay`);
    - ``"exponential"``: ``rate`` (:func:`exponential_decay`);
    - ``"inverse"``: ``rate`` (:func:`inverse_decay`);
    - ``"plateau"``: passed to ``ReduceLROnPlateau`` (``factor``, ``patience``, ``mode``, ...);
    - ``"cosine"``: ``epochs`` (or torch's ``T_max``), ``eta_min=0``, for ``CosineAnnealingLR``.

    The first three return a ``LambdaLR`` whose rate at epoch ``e`` equals the function's value.
    """
    if kind in _FACTORS:
        function = _FACTORS[kind]
        function(1.0, 0, **kwargs)  # check the arguments now, not at the first step
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, functools.partial(_factor, function, dict(kwargs))
        )
    if kind == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, **kwargs)
    if kind == "cosine":
        if "epochs" in kwargs:
            if "T_max" in kwargs:
                raise TypeError("pass either epochs or T_max to the cosine schedule, not both")
            kwargs["T_max"] = kwargs.pop("epochs")
        if "T_max" not in kwargs:
            raise TypeError("the cosine schedule needs epochs= (the epoch count to decay over)")
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, **kwargs)
    raise ValueError(f"unknown schedule kind {kind!r}; expected one of {', '.join(SCHEDULE_KINDS)}")
