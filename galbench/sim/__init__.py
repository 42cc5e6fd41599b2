"""How an image of the sky is made: instruments, recipes (GalSim), per-object seeds.

Importing this package registers the built-in instruments and recipes.
"""

from galbench.sim import anomalies, blends, bulge_disk, clumps, morphology  # noqa: F401  (register the built-in recipes)
from galbench.sim.instruments import INSTRUMENTS, Instrument, get_instrument
from galbench.sim.recipes import RECIPES, Recipe, RenderedObject, get_recipe, object_seed

__all__ = [
    "INSTRUMENTS",
    "Instrument",
    "get_instrument",
    "RECIPES",
    "Recipe",
    "RenderedObject",
    "get_recipe",
    "object_seed",
]
