"""Early stopping on a monitored value (usually the validation loss), keeping the best weights.

    stopper = EarlyStopping(patience=3)
    for epoch in range(1, epochs + 1):
        ...
        if stopper.step(val_loss, model.state_dict()):
            break
    model.load_state_dict(stopper.best_state)

An epoch improves when its value is better than the best so far by more than ``min_delta``
(``value < best - min_delta`` in mode ``"min"``, ``value > best + min_delta`` in ``"max"``); the
first finite value always improves. NaN never improves (a diverged epoch counts as a stale one).
Training stops when ``patience`` epochs in a row have not improved: with ``patience=3`` and the
best value at epoch 2, :meth:`EarlyStopping.step` returns True at epoch 5. This is the rule the
morphometry and anomaly baselines use (``stale >= patience``).
"""

from __future__ import annotations

import copy
import math
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, Literal

import torch

__all__ = ["EarlyStopping"]


def _cpu_copy(obj: Any) -> Any:
    """A deep copy of a (nested) state dict with every tensor detached and copied to the CPU.
    An ``OrderedDict`` stays one and keeps its ``_metadata`` (what ``load_state_dict`` reads)."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, Mapping):
        out = (OrderedDict if isinstance(obj, OrderedDict) else dict)(
            (k, _cpu_copy(v)) for k, v in obj.items()
        )
        if hasattr(obj, "_metadata"):
            out._metadata = copy.deepcopy(obj._metadata)  # type: ignore[attr-defined]
        return out
    if isinstance(obj, (list, tuple)):
        return type(obj)(_cpu_copy(v) for v in obj)
    return copy.deepcopy(obj)


class EarlyStopping:
    """Stop after ``patience`` epochs without improvement of a monitored value.

    Attributes (read them, do not set them):

    - ``best``: the best value so far (``inf`` in mode ``"min"``, ``-inf`` in ``"max"`` before any
      improvement);
    - ``best_epoch``: the 1-based number of the :meth:`step` call that gave ``best`` (0 before);
    - ``best_state``: a CPU deep copy of the ``state`` passed with the best value (``None`` if no
      state was passed then); tensors are detached and copied, so later training does not change it;
    - ``epoch``: how many times :meth:`step` has been called;
    - ``wait``: epochs since the last improvement;
    - ``stopped_epoch``: the epoch at which :meth:`step` first returned True (0 while running).
    """

    def __init__(
        self, patience: int, min_delta: float = 0.0, mode: Literal["min", "max"] = "min"
    ) -> None:
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
            raise ValueError(f"patience must be an integer >= 1 (epochs), got {patience!r}")
        if not (math.isfinite(min_delta) and min_delta >= 0):
            raise ValueError(f"min_delta must be a finite number >= 0, got {min_delta!r}")
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' (a loss) or 'max' (an accuracy), got {mode!r}")
        self.patience = patience
        self.min_delta = float(min_delta)
        self.mode = mode
        self.best = math.inf if mode == "min" else -math.inf
        self.best_epoch = 0
        self.best_state: Any = None
        self.epoch = 0
        self.wait = 0
        self.stopped_epoch = 0

    def improves(self, value: float) -> bool:
        """Whether ``value`` would be an improvement on :attr:`best` (NaN never is)."""
        value = float(value)
        if math.isnan(value):
            return False
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def step(self, value: float | torch.Tensor, state: Mapping[str, Any] | None = None) -> bool:
        """Record one epoch's monitored ``value`` (a float or a 0-d tensor) and, if it improves,
        a CPU copy of ``state`` (e.g. ``model.state_dict()``). Returns True when training should
        stop now: the last ``patience`` epochs have not improved."""
        if isinstance(value, torch.Tensor):
            if value.numel() != 1:
                shape = tuple(value.shape)
                raise ValueError(f"the monitored value must be a scalar, got shape {shape}")
            value = value.item()
        value = float(value)
        self.epoch += 1
        if self.improves(value):
            self.best = value
            self.best_epoch = self.epoch
            self.best_state = None if state is None else _cpu_copy(state)
            self.wait = 0
        else:
            self.wait += 1
        stop = self.wait >= self.patience
        if stop and not self.stopped_epoch:
            self.stopped_epoch = self.epoch
        return stop

    def __repr__(self) -> str:
        return (
            f"EarlyStopping(patience={self.patience}, min_delta={self.min_delta},"
            f" mode={self.mode!r};"
            f" epoch={self.epoch}, best={self.best} at epoch {self.best_epoch}, wait={self.wait})"
        )
