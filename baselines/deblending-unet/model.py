"""The deblending@1 deep baseline: a U-Net (see train.py and README.md)."""

from galbench.models.unet import Deblender  # noqa: F401
