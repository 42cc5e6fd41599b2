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

from galbench.real import cosmos  # noqa: E402,F401  (register the real-data recipes)
from galbench.real import gz_rings  # noqa: E402,F401  (registers the rings@1 recipe)
from galbench.real import galaxy10  # noqa: E402,F401  (registers the galaxy10@1 recipe)
