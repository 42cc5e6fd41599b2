"""Real galaxy data sets: loaders for public files fetched by :mod:`galbench.data.download`.

- :func:`load_galaxy10`: Galaxy10 SDSS and Galaxy10 DECaLS (astroNN HDF5 files), images as
  float32 ``[N, 3, H, W]`` read on demand, labels, class names and a catalog.
"""

from galbench.real.galaxy10 import GALAXY10, Galaxy10, Galaxy10FormatError, load_galaxy10

__all__ = ["GALAXY10", "Galaxy10", "Galaxy10FormatError", "load_galaxy10"]
