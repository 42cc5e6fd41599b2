"""A rings@1 baseline (classical; see ../rings-features-b100/train.py and README.md)."""

from galbench.models.rings import RingFeatureClassifier  # noqa: F401
