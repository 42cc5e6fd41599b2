"""A rings@1 baseline (deep, fine-tuned CNN; see ../rings-cnn-finetune-b100/train.py and README.md)."""

from galbench.models.rings import FineTunedRingClassifier  # noqa: F401
