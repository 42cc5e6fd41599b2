"""Bootstrap confidence intervals with a fixed seed.

Objects are resampled with replacement; every metric of one resample is computed from the same
indices, so intervals of related metrics are consistent. Percentile intervals.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np


def bootstrap_intervals(
    statistics: Callable[[np.ndarray], Mapping[str, np.ndarray]],
    n: int,
    *,
    n_resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    batch_size: int = 50,
) -> dict[str, tuple[float, float]]:
    """Percentile intervals of ``statistics`` over bootstrap resamples of ``n`` objects.

    ``statistics(indices)`` receives an int array ``[B, n]`` (B resamples at once) and returns
    ``{name: values[B]}``. Resample ``b`` depends only on ``seed`` and ``b``, never on the batch
    size: the intervals are the same on every machine.
    """
    if n < 1:
        raise ValueError("bootstrap needs at least one object")
    root = np.random.SeedSequence(seed)
    children = root.spawn(n_resamples)
    values: dict[str, list[np.ndarray]] = {}
    for start in range(0, n_resamples, batch_size):
        block = children[start : start + batch_size]
        indices = np.stack([np.random.default_rng(c).integers(0, n, size=n) for c in block])
        for name, v in statistics(indices).items():
            values.setdefault(name, []).append(np.asarray(v, dtype=np.float64))
    alpha = (1.0 - level) / 2.0
    out = {}
    for name, chunks in values.items():
        v = np.concatenate(chunks)
        v = v[np.isfinite(v)]
        if v.size == 0:
            out[name] = (float("nan"), float("nan"))
        else:
            lo, hi = np.quantile(v, [alpha, 1.0 - alpha])
            out[name] = (float(lo), float(hi))
    return out
