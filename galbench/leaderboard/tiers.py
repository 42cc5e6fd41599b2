"""Ranks and tiers from paired bootstrap samples (pure numpy, no I/O).

Every receipt of one task split carries ``bootstrap_main``: the main metric on the task's bootstrap
resamples, whose object indices depend only on the task's bootstrap seed and ``n``
(:func:`galbench.metrics.bootstrap.bootstrap_samples`), so resample ``b`` is the same set of
objects for every entry. For entries A and B the paired differences ``d_b = A_b - B_b`` then give
a 95% percentile interval of A - B that accounts for both entries seeing the same objects; A and B
are *distinguishable* when that interval excludes 0.

The tier rule (:data:`TIER_RULE`): sort by the main metric (best first, ties broken by name);
the first entry opens tier 1; each next entry joins the current tier if it is not distinguishable
from that tier's first entry, else it opens a new tier.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from galbench.errors import LeaderboardError
from galbench.metrics.bootstrap import percentile_interval

LEVEL = 0.95

#: The rule, in one sentence, as the generated pages state it.
TIER_RULE = (
    "Entries are sorted by the main metric (ties by name); the first opens tier 1, and each next "
    "entry joins the current tier unless the 95% percentile interval of its paired bootstrap "
    "differences to that tier's first entry (the same object resamples for every entry) excludes "
    "zero, in which case it opens the next tier."
)




@dataclass(frozen=True)
class Standing:
    """One entry's place on one task split.

    ``versus_leader`` is the 95% interval of (this entry - its tier's first entry) over the paired
    bootstrap resamples, in the metric's units; ``None`` for a tier's first entry.
    """

    name: str
    value: float
    rank: int
    tier: int
    tier_leader: str
    versus_leader: tuple[float, float] | None


def paired_difference_interval(
    a: Sequence[float | None], b: Sequence[float | None], level: float = LEVEL
) -> tuple[float, float]:
    """Percentile interval of ``a[b] - b[b]`` over paired bootstrap resamples.

    Resamples where either value is undefined (``None``/NaN) are dropped; ``(nan, nan)`` when none
    is left. Raises :class:`LeaderboardError` when the two sample lists differ in length (they
    were not drawn from the same resamples and cannot be paired).
    """
    x = _as_samples(a)
    y = _as_samples(b)
    if x.shape != y.shape:
        raise LeaderboardError(
            f"bootstrap samples differ in length ({x.size} vs {y.size}): paired differences need "
            "the same resamples"
        )
    return percentile_interval(x - y, level)


def distinguishable(interval: tuple[float, float]) -> bool:
    """True when a difference interval excludes zero (an undefined interval never does)."""
    lo, hi = interval
    return bool(lo > 0.0 or hi < 0.0)


def rank_with_tiers(
    values: Mapping[str, float],
    samples: Mapping[str, Sequence[float | None]],
    direction: str,
    *,
    level: float = LEVEL,
    where: str = "",
) -> list[Standing]:
    """Rank entries by ``values`` (``direction``: ``"higher"`` or ``"lower"`` is better) and group
    them into tiers by :data:`TIER_RULE`.

    ``values[name]`` is an entry's main metric (finite), ``samples[name]`` its bootstrap samples
    (all of one length). ``where`` names the task split in error messages. Returns standings best
    first; rank is 1-based position, tier 1-based.
    """
    prefix = f"{where}: " if where else ""
    if direction not in ("higher", "lower"):
        raise LeaderboardError(f"{prefix}direction must be 'higher' or 'lower', got {direction!r}")
    if set(values) != set(samples):
        raise LeaderboardError(f"{prefix}values and bootstrap samples name different entries")
    arrays = {}
    for name in sorted(values):
        if not math.isfinite(values[name]):
            raise LeaderboardError(f"{prefix}{name}: main metric {values[name]!r} is not finite")
        arrays[name] = _as_samples(samples[name], f"{prefix}{name}")
    lengths = {name: a.size for name, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        listed = ", ".join(f"{name}: {k}" for name, k in lengths.items())
        raise LeaderboardError(
            f"{prefix}bootstrap_main lengths differ ({listed}); tiers compare entries on the same "
            "bootstrap resamples, so every receipt of a split must be scored with the task's "
            "bootstrap settings (re-score the odd ones out)"
        )
    sign = -1.0 if direction == "higher" else 1.0
    order = sorted(values, key=lambda name: (sign * values[name], name))
    standings: list[Standing] = []
    tier, leader = 0, ""
    for rank, name in enumerate(order, start=1):
        versus = None
        if rank > 1:
            versus = percentile_interval(arrays[name] - arrays[leader], level)
        if rank == 1 or distinguishable(versus):
            tier, leader, versus = tier + 1, name, None
        standings.append(Standing(name, float(values[name]), rank, tier, leader, versus))
    return standings


def _as_samples(values: Sequence[float | None], where: str = "bootstrap samples") -> np.ndarray:
    if values is None or isinstance(values, (str, bytes)):
        raise LeaderboardError(f"{where}: no bootstrap samples (bootstrap_main)")
    try:
        array = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    except (TypeError, ValueError):
        raise LeaderboardError(f"{where}: bootstrap_main must be a list of numbers") from None
    if array.ndim != 1 or array.size == 0:
        raise LeaderboardError(f"{where}: bootstrap_main must be a non-empty list of numbers")
    return array
