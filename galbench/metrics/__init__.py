"""Metrics: pure functions of arrays, each registered with its direction.

Nothing here imports torch or GalSim: predictions can be scored anywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from galbench._registry import Registry


@dataclass(frozen=True)
class MetricInfo:
    """A metric's name, what counts as better, and what it measures.

    direction: ``"higher"``, ``"lower"``, or ``"ideal"`` (closest to ``ideal`` is best).
    """

    name: str
    direction: str
    description: str
    ideal: float | None = None
    fn: Callable | None = None

    def better(self, a: float, b: float) -> bool:
        """True when value ``a`` is strictly better than ``b``."""
        if self.direction == "higher":
            return a > b
        if self.direction == "lower":
            return a < b
        return abs(a - self.ideal) < abs(b - self.ideal)


METRICS: Registry[MetricInfo] = Registry("metric")


def metric(name: str, direction: str, description: str, ideal: float | None = None):
    """Register a metric function (or, used on ``None``-returning stubs, just its metadata)."""
    if direction not in ("higher", "lower", "ideal") or (direction == "ideal") != (ideal is not None):
        raise ValueError(f"metric {name!r}: bad direction {direction!r} / ideal {ideal!r}")

    def decorator(fn: Callable) -> Callable:
        METRICS.add(name, MetricInfo(name, direction, description, ideal, fn))
        return fn

    return decorator


def declare(name: str, direction: str, description: str, ideal: float | None = None) -> None:
    """Register a derived metric (computed by a scorer from registered ones) by its metadata."""
    metric(name, direction, description, ideal)(None)


def metric_info(name: str) -> MetricInfo:
    """Metadata of a reported metric; ``"scatter/mag"`` resolves to the ``scatter`` family."""
    return METRICS.get(name.split("/", 1)[0])


from galbench.metrics import regression  # noqa: E402,F401  (registers the regression metrics)
from galbench.metrics import anomaly  # noqa: E402,F401  (registers the anomaly-detection metrics)
from galbench.metrics import classification  # noqa: E402,F401  (registers the classification metrics)
from galbench.metrics import images  # noqa: E402,F401  (registers the deblending and segmentation metrics)
