"""A rings@1 baseline (deep, frozen CNN + logistic head; see ../rings-cnn-transfer-b100/train.py and README.md)."""

from galbench.models.rings import TransferRingClassifier  # noqa: F401
