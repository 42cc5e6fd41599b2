"""A timm CNN classifier as a submission entry point, shared by the transfer@1 baselines (each
folder holds only its config.json and weights).

Input: images in e-/s, multiplied by ``flux_scale`` (the zero-point ratio that puts another
instrument's counts on the training instrument's scale; 1 for the training instrument), then
``asinh(x / softening)``. Output: class probabilities (softmax of the logits), averaged over the
8 rotations and flips of the stamp when the config sets ``"tta": true`` (a galaxy's class does
not depend on its orientation).

Imports torch: use it from baselines and training scripts, never from metrics or scoring.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import timm
import torch

from galbench.models import load_network


def build_network(config: dict) -> torch.nn.Module:
    return timm.create_model(
        config["architecture"], pretrained=False, in_chans=1, num_classes=len(config["classes"])
    )


def preprocess(images: torch.Tensor, config: dict) -> torch.Tensor:
    return torch.asinh(images * config.get("flux_scale", 1.0) / config["softening"])


class TimmClassifier:
    """``predict(images [B,1,H,W] e-/s) -> probabilities [B, K]``."""

    def __init__(self, root: Path) -> None:
        self.config, self.device, self.network = load_network(root, build_network)

    @torch.inference_mode()
    def predict(self, images: np.ndarray) -> np.ndarray:
        x = preprocess(torch.from_numpy(np.array(images, dtype=np.float32)).to(self.device), self.config)
        if not self.config.get("tta", False):
            return torch.softmax(self.network(x).double(), dim=1).cpu().numpy()
        total = torch.zeros(len(x), len(self.config["classes"]), dtype=torch.float64, device=self.device)
        for flipped in (x, torch.flip(x, dims=[-1])):
            for k in range(4):
                total += torch.softmax(self.network(torch.rot90(flipped, k, dims=(-1, -2))).double(), dim=1)
        return (total / 8).cpu().numpy()
