"""A U-Net (Ronneberger et al. 2015) and the submission entry points of the image-to-image
baselines: clump segmentation (clumps@1) and deblending (deblending@1).

The network: ``depth`` levels of two 3x3 convolutions (batch norm, ReLU), 2x2 max-pool down, 2x2
transposed-convolution up, skip connections by concatenation; ``base`` channels at the top level,
doubled per level. Input: ``asinh(x / softening)`` of images in e-/s (the same stretch as the
other deep baselines; ``softening`` ~ the sky noise, so that noise is linear and bright cores
logarithmic).

- :class:`ClumpSegmenter` (``predict -> [B, 1, H, W]`` probabilities): a sigmoid of one output
  channel, optionally averaged over the 8 rotations and flips of the stamp (``"tta": true``).
- :class:`Deblender` (``predict -> [B, S, 1, H, W]`` e-/s): S output channels in units of the
  blend's peak (the maximum of its 3x3 running mean, robust to a noise spike), multiplied back,
  so the network sees every blend at the same scale and returns fluxes.

Imports torch: use it from baselines and training scripts, never from metrics or scoring.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from galbench.models import load_network


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
        nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class UNet(nn.Module):
    """``[B, in_channels, H, W] -> [B, out_channels, H, W]``; H and W divisible by 2**(depth-1)."""

    def __init__(self, in_channels: int = 1, out_channels: int = 1, base: int = 16, depth: int = 4) -> None:
        super().__init__()
        widths = [base * 2**k for k in range(depth)]
        self.down = nn.ModuleList()
        c = in_channels
        for w in widths:
            self.down.append(_block(c, w))
            c = w
        self.up = nn.ModuleList()
        self.merge = nn.ModuleList()
        for w in reversed(widths[:-1]):
            self.up.append(nn.ConvTranspose2d(c, w, 2, stride=2))
            self.merge.append(_block(2 * w, w))
            c = w
        self.head = nn.Conv2d(c, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for k, block in enumerate(self.down):
            x = block(x if k == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        for up, merge, skip in zip(self.up, self.merge, reversed(skips[:-1])):
            x = merge(torch.cat([up(x), skip], dim=1))
        return self.head(x)


def build_network(config: dict) -> UNet:
    return UNet(1, config["out_channels"], config["base"], config["depth"])


def preprocess(images: torch.Tensor, config: dict) -> torch.Tensor:
    return torch.asinh(images / config["softening"])


def blend_scale(images: torch.Tensor) -> torch.Tensor:
    """Per-image flux scale ``[B, 1, 1, 1]``: the peak of the 3x3 running mean (floored at a
    tiny positive value, so an empty stamp does not divide by zero)."""
    smooth = F.avg_pool2d(images, 3, stride=1, padding=1, count_include_pad=False)
    return smooth.amax(dim=(1, 2, 3), keepdim=True).clamp_min(1e-6)


def d4_views(x: torch.Tensor):
    """The 8 symmetries of the square: ``(view, inverse)`` pairs of functions on [..., H, W]."""
    for flip in (False, True):
        for k in range(4):
            def view(t, k=k, flip=flip):
                return torch.rot90(torch.flip(t, dims=[-1]) if flip else t, k, dims=(-2, -1))

            def inverse(t, k=k, flip=flip):
                t = torch.rot90(t, -k, dims=(-2, -1))
                return torch.flip(t, dims=[-1]) if flip else t

            yield view, inverse


class _UNetEntry:
    """Loads ``config.json`` and ``weights.pt`` (float16 on disk) from a submission folder
    (:func:`galbench.models.load_network`)."""

    def __init__(self, root: Path) -> None:
        self.config, self.device, self.network = load_network(root, build_network)

    def _input(self, images: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.array(images, dtype=np.float32)).to(self.device)


class ClumpSegmenter(_UNetEntry):
    """``predict(images [B, 1, H, W] e-/s) -> clump probabilities [B, 1, H, W]``."""

    @torch.inference_mode()
    def predict(self, images: np.ndarray) -> np.ndarray:
        x = preprocess(self._input(images), self.config)
        if not self.config.get("tta", False):
            return torch.sigmoid(self.network(x)).cpu().numpy()
        total = torch.zeros_like(x)
        for view, inverse in d4_views(x):
            total += inverse(torch.sigmoid(self.network(view(x))))
        return (total / 8).clamp(0, 1).cpu().numpy()


class Deblender(_UNetEntry):
    """``predict(blends [B, 1, H, W] e-/s) -> isolated images [B, S, 1, H, W] e-/s``."""

    @torch.inference_mode()
    def predict(self, images: np.ndarray) -> np.ndarray:
        x = self._input(images)
        scale = blend_scale(x)
        z = preprocess(x, self.config)
        if not self.config.get("tta", False):
            out = self.network(z)
        else:
            out = sum(inverse(self.network(view(z))) for view, inverse in d4_views(z)) / 8
        return (out * scale).unsqueeze(2).cpu().numpy()
