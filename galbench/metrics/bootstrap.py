"""Bootstrap confidence intervals with a fixed seed.

Objects are resampled with replacement; every metric of one resample is computed from the same
indices, so intervals of related metrics are consistent. Percentile intervals.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np


def bootstrap_samples(
    statistics: Callable[[np.ndarray], Mapping[str, np.ndarray]],
    n: int,
    *,
    n_resamples: int = 1000,
    seed: int = 0,
    batch_size: int = 50,
) -> dict[str, np.ndarray]:
    """Values of ``statistics`` on ``n_resamples`` bootstrap resamples of ``n`` objects.

    ``statistics(indices)`` receives an int array ``[B, n]`` (B resamples at once) and returns
    ``{name: values[B]}``. Resample ``b`` depends only on ``seed``, ``b`` and ``n``, never on the
    batch size: two submissions scored on the same split see the same resamples, so their
    samples can be compared pairwise (the leaderboard's tiers do).
    """
    if n < 1:
        raise ValueError("bootstrap needs at least one object")
    children = np.random.SeedSequence(seed).spawn(n_resamples)
    values: dict[str, list[np.ndarray]] = {}
    for start in range(0, n_resamples, batch_size):
        block = children[start : start + batch_size]
        indices = np.stack([np.random.default_rng(c).integers(0, n, size=n) for c in block])
        for name, v in statistics(indices).items():
            values.setdefault(name, []).append(np.asarray(v, dtype=np.float64))
    return {name: np.concatenate(chunks) for name, chunks in values.items()}


def percentile_interval(samples: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Central percentile interval of the finite samples (NaN, NaN if there are none)."""
    v = np.asarray(samples, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return float("nan"), float("nan")
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(v, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def bootstrap_intervals(
    statistics: Callable[[np.ndarray], Mapping[str, np.ndarray]],
    n: int,
    *,
    n_resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    batch_size: int = 50,
) -> dict[str, tuple[float, float]]:
    """Percentile intervals of ``statistics`` over bootstrap resamples (see
    :func:`bootstrap_samples`)."""
    samples = bootstrap_samples(
        statistics, n, n_resamples=n_resamples, seed=seed, batch_size=batch_size
    )
    return {name: percentile_interval(v, level) for name, v in samples.items()}
