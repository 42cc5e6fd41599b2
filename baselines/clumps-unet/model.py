"""The clumps@1 deep baseline: a U-Net (see train.py and README.md)."""

from galbench.models.unet import ClumpSegmenter  # noqa: F401
