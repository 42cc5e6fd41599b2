"""Floor baseline for rings@1: every galaxy gets the class frequencies of the first 100 (the
ranked budget) train galaxies, 0.5 / 0.5 (galbench.models.floor; ./train.py writes
frequencies.json). Accuracy 0.5 on the balanced test split, log loss ln 2."""

from galbench.models.floor import ClassFrequencies  # noqa: F401
