"""Deep rings@1 baseline: the simulation-trained morphology@1 CNN with its last block, head
convolution and a new 2-class classifier fine-tuned on the rings@1 train labels. Shared,
identical, by the rings-cnn-finetune-b{10,50,100,200} folders; each holds its config.json and
float16 weights.pt (written by ../rings-cnn-finetune-b100/train.py).

Input mapping as in ../rings-cnn-transfer-b100/model.py: the mean of the three display channels,
binned 2x2 to [1, 64, 64], minus its sky level (median of the 6-pixel border), times
``flux_scale``, then ``asinh(x / softening)`` (galbench.models.classifier.preprocess). Output:
the softmax averaged over the 8 rotations and flips of the stamp.

Imports torch and timm: a baseline, not part of galbench's scoring path.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from galbench.models import load_network
from galbench.models.classifier import build_network, preprocess

BORDER = 6


def to_network_input(images: np.ndarray, flux_scale: float) -> np.ndarray:
    """float32 [B, 3, 128, 128] display images -> [B, 1, 64, 64] sky-subtracted, scaled."""
    x = np.asarray(images, dtype=np.float64).mean(axis=1)
    b, h, w = x.shape
    x = x.reshape(b, h // 2, 2, w // 2, 2).mean(axis=(2, 4))
    mask = np.ones(x.shape[1:], dtype=bool)
    mask[BORDER:-BORDER, BORDER:-BORDER] = False
    sky = np.median(x[:, mask], axis=1)
    return ((x - sky[:, None, None]) * flux_scale)[:, None].astype(np.float32)


def prepare(images: np.ndarray, config: dict) -> torch.Tensor:
    """Display images -> the network's input tensor [B, 1, 64, 64]."""
    return preprocess(torch.from_numpy(to_network_input(images, config["flux_scale"])), config)


@torch.inference_mode()
def d4_probabilities(network: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Softmax [B, K] averaged over the 8 rotations and flips of ``x`` [B, 1, H, W]."""
    total = 0.0
    for flipped in (x, torch.flip(x, dims=[-1])):
        for k in range(4):
            total = total + torch.softmax(network(torch.rot90(flipped, k, dims=(-1, -2))).double(), dim=1)
    return total / 8


class FineTunedRingClassifier:
    """``predict(images [B, 3, 128, 128]) -> probabilities [B, 2]`` (non_ring, ring)."""

    def __init__(self, root: Path) -> None:
        self.config, self.device, self.network = load_network(root, build_network)

    def predict(self, images: np.ndarray) -> np.ndarray:
        x = prepare(np.asarray(images), self.config).to(self.device)
        return d4_probabilities(self.network, x).cpu().numpy()
