"""Deep rings@1 baseline: the simulation-trained morphology@1 CNN as a frozen feature extractor,
with a logistic-regression head fitted on the rings@1 train labels. Shared, identical, by the
rings-cnn-transfer-b{10,50,100,200} folders; each holds its config.json (the head) and a copy of
../morphology-cnn/weights.pt (MobileNetV3-Small-0.5 trained on morphology@1's SDSS-like
simulations; its 6-class classifier layer is unused).

Input mapping (the network was trained on [1, 64, 64] SDSS-like r-band stamps in e-/s, fed as
``asinh(x / softening)``): the mean of the three display channels, binned 2x2 to 64x64, minus
its sky level (median of the 6-pixel border), times ``flux_scale`` (chosen on val), then the
network's own ``asinh(x / softening)``. Features: the network's globally pooled last-block
activations (``"layer": "pooled"``, 288 numbers) or its 1024 pre-logits (``"pre_logits"``),
averaged over the 8 rotations and flips of the stamp. Head: standardisation and an L2 logistic
regression, stored as numbers in config.json (no pickled estimator).

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


@torch.inference_mode()
def network_features(network: torch.nn.Module, x: torch.Tensor, layer: str) -> torch.Tensor:
    """[B, 1, 64, 64] preprocessed -> [B, F] features averaged over the 8 D4 transforms."""
    total = None
    for flipped in (x, torch.flip(x, dims=[-1])):
        for k in range(4):
            maps = network.forward_features(torch.rot90(flipped, k, dims=(-1, -2)))
            if layer == "pooled":
                f = maps.mean(dim=(-2, -1))
            elif layer == "pre_logits":
                f = network.forward_head(maps, pre_logits=True)
            else:
                raise ValueError(f"layer must be 'pooled' or 'pre_logits', got {layer!r}")
            total = f if total is None else total + f
    return total / 8


def extract_features(network: torch.nn.Module, config: dict, images: np.ndarray, device: str = "cpu",
                     batch: int = 100) -> np.ndarray:
    """float32 [B, 3, 128, 128] -> features [B, F] float64 (see the module docstring)."""
    out = []
    for start in range(0, len(images), batch):
        x = torch.from_numpy(to_network_input(images[start : start + batch], config["flux_scale"]))
        x = preprocess(x.to(device), config["network"])
        out.append(network_features(network, x, config["layer"]).double().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 0))


class TransferRingClassifier:
    """``predict(images [B, 3, 128, 128]) -> probabilities [B, 2]`` (non_ring, ring)."""

    def __init__(self, root: Path) -> None:
        self.config, self.device, self.network = load_network(
            root, lambda config: build_network(config["network"])
        )
        head = self.config["head"]
        self.mean = np.array(head["mean"])
        self.scale = np.array(head["scale"])
        self.coef = np.array(head["coef"])
        self.intercept = float(head["intercept"])

    def predict(self, images: np.ndarray) -> np.ndarray:
        z = (extract_features(self.network, self.config, images, self.device) - self.mean) / self.scale
        ring = 1.0 / (1.0 + np.exp(-np.clip(z @ self.coef + self.intercept, -50, 50)))
        return np.column_stack([1.0 - ring, ring])
