"""Simulation recipes: how one object of a task is drawn from its seed.

A recipe turns ``(task spec, object seed)`` into an image and its truth. The split builder calls
:func:`render_object` for every object; nothing else about a split's randomness exists, so object
``i`` depends only on (task, split seed, i), whatever the worker count, shard size or order.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import galsim
import numpy as np

from galbench._registry import Registry
from galbench.tasks import TaskSpec


@dataclass(frozen=True)
class RenderedObject:
    """One simulated object.

    image: ``[C, H, W]`` float32 in the task's image units.
    truth: catalog row (scalar truth and strata columns).
    arrays: array-valued truth (target images, padded clump lists), by the names and with the
        shapes and dtypes of :meth:`Recipe.target_arrays`; stored as target shards beside the
        image shards.
    """

    image: np.ndarray
    truth: Mapping[str, float | int]
    arrays: Mapping[str, np.ndarray] = field(default_factory=dict)


def object_seed(split_seed: int, index: int) -> np.random.SeedSequence:
    """The seed of object ``index`` of a split: child ``index`` of the split's SeedSequence.

    Same construction as ``SeedSequence(split_seed).spawn(n)[index]``, without spawning n.
    """
    return np.random.SeedSequence(entropy=split_seed, spawn_key=(index,))


@contextlib.contextmanager
def single_threaded_galsim() -> Iterator[None]:
    """Run GalSim's C++ layer on one OpenMP thread, restoring the previous count afterwards.

    Splits parallelise over processes; OpenMP threads inside each process only contend for the
    same cores, and with busy cores OpenMP's spin-waiting made the correlated-noise draw ~40x
    slower (measured: 12 ms instead of 0.3 ms per 64x64 stamp on this 2-core machine).
    """
    previous = galsim.utilities.get_omp_threads()
    galsim.utilities.set_omp_threads(1)
    try:
        yield
    finally:
        galsim.utilities.set_omp_threads(previous)


def galsim_deviate(seed: np.random.SeedSequence) -> galsim.BaseDeviate:
    """A GalSim deviate seeded from a SeedSequence (GalSim takes a positive 32-bit seed)."""
    value = int(seed.generate_state(1, dtype=np.uint32)[0]) & 0x7FFFFFFF
    return galsim.BaseDeviate(value or 1)


class Recipe:
    """Base class: subclasses draw truth with numpy and render it with GalSim.

    ``columns`` lists the catalog columns a recipe fills, in order, with their dtypes.
    """

    columns: ClassVar[Mapping[str, str]] = {}

    def __init__(self, task: TaskSpec, split: str | None = None) -> None:
        # ``split``: the split being built. Most recipes draw every split from the same
        # population; a recipe whose population differs by split (anomaly@1: no anomalies in
        # train) reads it. Challenge splits pass their own name.
        self.task = task
        self.split = split

    def target_arrays(self) -> dict[str, tuple[tuple[int, ...], str]]:
        """Array-valued truth per object: ``{name: (shape, dtype)}`` (none by default). Every
        rendered object carries each of them in :attr:`RenderedObject.arrays`."""
        return {}

    def render(self, seed: np.random.SeedSequence) -> RenderedObject:  # pragma: no cover
        raise NotImplementedError

    def render_index(self, seed: np.random.SeedSequence, index: int) -> RenderedObject:
        """Object ``index`` of the split from its seed. Simulated objects depend on the seed
        alone; a real recipe also reads which source object(s) ``index`` is."""
        return self.render(seed)


class RealRecipe(Recipe):
    """A recipe that cuts objects from public files (a real split, DESIGN.md contract 2).

    ``sources`` maps each key of the split's ``sources`` to a verified local copy (fetched by
    the split builder through :func:`galbench.data.download.fetch`, whose sha256 check is what
    detects a changed source file). ``self.spec`` is the split's :class:`SplitSpec`: its ``ids``
    and ``params``. Objects still take every random choice from their seed.
    """

    def __init__(self, task: TaskSpec, split: str | None = None,
                 sources: Mapping[str, Any] | None = None) -> None:
        super().__init__(task, split)
        from galbench.errors import TaskSpecError

        if split is None or split not in task.splits or not task.split(split).real:
            raise TaskSpecError(
                f"{task.id}: recipe {type(self).__name__} builds real splits only (splits with "
                f"sources), not {split!r}"
            )
        self.spec = task.split(split)
        self.params = self.spec.params
        self.where = f"{task.id} split {split}"
        self.sources = dict(sources or {})
        missing = [k for k in self.spec.sources if k not in self.sources]
        if missing:
            raise TaskSpecError(f"{self.where}: no local copy of source file(s) {missing}")

    def render(self, seed: np.random.SeedSequence) -> RenderedObject:
        raise TypeError(f"{type(self).__name__} renders by index (render_index)")


RECIPES: Registry[type[Recipe]] = Registry("simulation recipe")


def recipe_name(task: TaskSpec, split: str | None = None) -> str:
    """The recipe of a split: its own (real splits), else the task's."""
    spec = task.splits.get(split) if split is not None else None
    return (spec.recipe if spec is not None and spec.recipe else None) or task.simulation.recipe


def get_recipe(task: TaskSpec, split: str | None = None,
               sources: Mapping[str, Any] | None = None) -> Recipe:
    """The recipe that builds ``split`` of ``task``; ``sources`` (key -> local path) for a real
    split's recipe."""
    cls = RECIPES.get(recipe_name(task, split))
    if issubclass(cls, RealRecipe):
        return cls(task, split, sources)
    return cls(task, split)


def render_object(recipe: Recipe, split_seed: int, index: int) -> RenderedObject:
    return recipe.render_index(object_seed(split_seed, index), index)


def uniform_range(params: Mapping[str, Any], key: str, where: str) -> tuple[float, float]:
    """Read a ``[low, high]`` prior range from recipe parameters, with a clear error."""
    from galbench.errors import TaskSpecError

    value = params.get(key)
    if (
        not isinstance(value, (list, tuple))
        or len(value) != 2
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
        or not value[0] <= value[1]
    ):
        raise TaskSpecError(
            f"{where}.simulation.params.{key}: expected [low, high] numbers, got {value!r}"
        )
    return float(value[0]), float(value[1])
