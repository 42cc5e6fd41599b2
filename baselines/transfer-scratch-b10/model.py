"""A transfer@1 baseline (see ../transfer-source-only/finetune.py and README.md)."""

from galbench.models.classifier import TimmClassifier  # noqa: F401
