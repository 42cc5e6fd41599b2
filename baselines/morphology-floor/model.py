"""Floor baseline for morphology@1: every galaxy gets the training-set class frequencies
(galbench.models.floor; ./train.py writes frequencies.json)."""

from galbench.models.floor import ClassFrequencies  # noqa: F401
