"""Coarse-then-fine grid search over a few hyperparameters, scored on the validation split.

    result = grid_search(
        lambda p: train_and_score(**p),            # e.g. validation accuracy
        {"lr": [1e-4, 1e-3, 1e-2], "width": [16, 32, 64], "optimizer": ["adamw", "sgd"]},
    )
    result.best_params, result.best_score, result.trials

Stage 1 (**coarse**) evaluates every combination of ``grid``: ``itertools.product`` over the
parameters in the dict's order, each parameter's values in the given order (the last parameter
varies fastest). Stage 2 (**fine**) evaluates the product of a fine list per parameter around the
coarse best point, in the same order, skipping any point already evaluated (equal parameter dicts).

A parameter's fine list is ``refine[name](best_value)`` when given, otherwise:

- a float or int parameter with at least two distinct coarse values: the midpoints between the
  best value and its neighbours in the sorted coarse values, ``[mid(lower, best), best,
  mid(best, upper)]``; ``mid`` is geometric (``sqrt(a * b)``) when both are positive (learning
  rates, widths) and arithmetic otherwise. At an end of the coarse range the missing neighbour is
  the mirror image of the present one (``best**2 / other`` or ``2 * best - other``), so the search
  looks half a coarse step beyond the range. Int midpoints are rounded to the nearest int and
  dropped when they equal ``best`` or the neighbour (no new value between them).
- anything else (strings, bools, a single coarse value): ``[best]``, not refined.

So with default refinement and ``m`` refined numeric parameters, the fine stage evaluates
``3**m - 1`` points (the centre is the coarse best, already evaluated), fewer where int midpoints
were dropped; with ``refine`` functions, ``prod(len(fine lists)) - (points already evaluated)``.

The best point is the highest (``direction="max"``) or lowest (``"min"``) score over both stages;
ties go to the earlier evaluation; NaN scores are recorded and never best.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

__all__ = ["SearchResult", "Trial", "default_refinement", "grid_search"]


class Trial(NamedTuple):
    """One evaluation: its parameters, score, and stage (``"coarse"`` or ``"fine"``)."""

    params: dict[str, Any]
    score: float
    stage: Literal["coarse", "fine"]


@dataclass(frozen=True)
class SearchResult:
    """The best parameters and score, and every trial in evaluation order."""

    best_params: dict[str, Any]
    best_score: float
    trials: list[Trial] = field(default_factory=list)

    @property
    def n_coarse(self) -> int:
        return sum(t.stage == "coarse" for t in self.trials)

    @property
    def n_fine(self) -> int:
        return sum(t.stage == "fine" for t in self.trials)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _mid(a: float, b: float) -> float:
    return math.sqrt(a * b) if a > 0 and b > 0 else (a + b) / 2


def _mirror(best: float, other: float) -> float:
    return best * best / other if best > 0 and other > 0 else 2 * best - other


def default_refinement(best: Any, coarse_values: Sequence[Any]) -> list[Any]:
    """The default fine list of one parameter (see the module docstring)."""
    if not _is_number(best) or not all(_is_number(v) for v in coarse_values):
        return [best]
    distinct = sorted(set(coarse_values))
    if len(distinct) < 2:
        return [best]
    i = distinct.index(best)
    lower = distinct[i - 1] if i > 0 else _mirror(best, distinct[i + 1])
    upper = distinct[i + 1] if i + 1 < len(distinct) else _mirror(best, distinct[i - 1])
    fine = [_mid(lower, best), best, _mid(best, upper)]
    if isinstance(best, int) and all(isinstance(v, int) for v in coarse_values):
        rounded = [round(fine[0]), best, round(fine[2])]
        below = [] if rounded[0] in (best, round(lower)) else [rounded[0]]
        above = [] if rounded[2] in (best, round(upper)) else [rounded[2]]
        return below + [best] + above
    return [float(v) for v in fine]


def _dedup(values: Sequence[Any]) -> list[Any]:
    out: list[Any] = []
    for v in values:
        if v not in out:
            out.append(v)
    return out


def grid_search(
    evaluate: Callable[[dict[str, Any]], float],
    grid: Mapping[str, Sequence[Any]],
    *,
    direction: Literal["max", "min"] = "max",
    refine: Mapping[str, Callable[[Any], Sequence[Any]]] | None = None,
) -> SearchResult:
    """Evaluate ``evaluate(params)`` (a validation score) on the coarse ``grid``, then on a fine
    grid around its best point; returns a :class:`SearchResult`. Each call gets a fresh dict."""
    if direction not in ("max", "min"):
        raise ValueError(f"direction must be 'max' or 'min', got {direction!r}")
    if not grid:
        raise ValueError("grid is empty: give at least one parameter and its values")
    names = list(grid)
    for name in names:
        if isinstance(grid[name], (str, bytes)) or not len(grid[name]):
            raise ValueError(f"grid[{name!r}] must be a non-empty list of values")
    refine = dict(refine or {})
    unknown = sorted(set(refine) - set(names))
    if unknown:
        raise ValueError(f"refine names {unknown} that are not in the grid {names}")

    trials: list[Trial] = []
    best: Trial | None = None

    def better(score: float, than: float) -> bool:
        return score > than if direction == "max" else score < than

    def run(points: Sequence[tuple[Any, ...]], stage: Literal["coarse", "fine"]) -> None:
        nonlocal best
        for values in points:
            params = dict(zip(names, values))
            if any(t.params == params for t in trials):
                continue
            score = float(evaluate(dict(params)))
            trial = Trial(params, score, stage)
            trials.append(trial)
            if not math.isnan(score) and (best is None or better(score, best.score)):
                best = trial

    run(list(itertools.product(*(grid[n] for n in names))), "coarse")
    if best is None:
        raise ValueError("every coarse evaluation returned NaN: nothing to refine around")
    fine_lists = []
    for name in names:
        value = best.params[name]
        if name in refine:
            fine = list(refine[name](value))
        else:
            fine = default_refinement(value, list(grid[name]))
        if not fine:
            raise ValueError(f"refine[{name!r}]({value!r}) gave no values")
        fine_lists.append(_dedup(fine))
    run(list(itertools.product(*fine_lists)), "fine")
    return SearchResult(best_params=dict(best.params), best_score=best.score, trials=trials)
