"""Layers used while training only.

:class:`GaussianNoise` adds ``N(0, sigma^2)`` noise to its input in training mode and is the
identity in eval mode (Keras ``GaussianNoise``): a regulariser that also makes a network less
sensitive to the pixel noise of the survey. ``sigma`` is in the units of the tensor the layer
receives, e.g. e-/s per pixel if it comes first, or stretched units after an asinh stretch.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["GaussianNoise"]


class GaussianNoise(nn.Module):
    """``x + sigma * N(0, 1)`` in training mode, ``x`` unchanged in eval mode; any shape.

    ``generator``: the noise comes from this ``torch.Generator`` (drawn on its device, then moved
    to the input's), so runs are reproducible without touching torch's global RNG; without one,
    torch's default generator for the input's device is used, as ``nn.Dropout`` does.
    """

    def __init__(self, sigma: float, generator: torch.Generator | None = None) -> None:
        super().__init__()
        if not (math.isfinite(sigma) and sigma >= 0):
            raise ValueError(f"sigma must be a finite number >= 0, got {sigma!r}")
        self.sigma = float(sigma)
        self.generator = generator

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.sigma == 0:
            return x
        if self.generator is None:
            noise = torch.randn_like(x)
        else:
            noise = torch.randn(
                x.shape, generator=self.generator, device=self.generator.device, dtype=x.dtype
            ).to(x.device)
        return x + self.sigma * noise

    def extra_repr(self) -> str:
        return f"sigma={self.sigma}"
