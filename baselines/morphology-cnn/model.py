"""Deep baseline for morphology@1: a timm CNN classifier (shared by train.py and the entry
point, so training and inference preprocess the same way).

Input: ``asinh(x / softening)`` with softening = 2.5 x the SDSS r sky sigma (linear in the
noise, logarithmic in bright cores). Output: class probabilities (softmax of the logits).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import timm
import torch


def preprocess(images: torch.Tensor, softening: float) -> torch.Tensor:
    return torch.asinh(images / softening)


def build_network(config: dict) -> torch.nn.Module:
    return timm.create_model(
        config["architecture"], pretrained=False, in_chans=1, num_classes=len(config["classes"])
    )


class CNNClassifier:
    """Submission entry point: ``predict(images [B,1,64,64]) -> probabilities [B, 6]``."""

    def __init__(self, root: Path) -> None:
        root = Path(root)
        self.config = json.loads((root / "config.json").read_text())
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.network = build_network(self.config)
        state = torch.load(root / "weights.pt", map_location="cpu", weights_only=True)
        self.network.load_state_dict({k: v.float() for k, v in state.items()})
        self.network.to(self.device).eval()

    @torch.inference_mode()
    def predict(self, images: np.ndarray) -> np.ndarray:
        """Test-time augmentation: the mean of the softmax over the 8 rotations and flips of the
        stamp (a galaxy's class does not depend on its orientation). Chosen on the validation
        split: accuracy 0.9146 -> 0.9318, log loss 0.209 -> 0.175."""
        x = preprocess(torch.from_numpy(np.array(images, dtype=np.float32)).to(self.device), self.config["softening"])
        total = torch.zeros(len(x), len(self.config["classes"]), dtype=torch.float64, device=self.device)
        for flipped in (x, torch.flip(x, dims=[-1])):
            for k in range(4):
                total += torch.softmax(self.network(torch.rot90(flipped, k, dims=(-1, -2))).double(), dim=1)
        return (total / 8).cpu().numpy()
