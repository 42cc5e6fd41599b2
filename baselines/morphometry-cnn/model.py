"""Deep baseline for morphometry@1: a timm CNN regressing the 8 bulge+disk parameters.

Shared by the recipe (train.py) and the submission entry point (CNNRegressor), so that training
and inference use the same preprocessing and target encoding.

Encoding: each linear target is z-scored with the training-set mean and standard deviation; the
position angle, a direction modulo 180 deg, is encoded as (cos 2 PA, sin 2 PA) so that 0 and 180
are the same point. The network therefore has 7 + 2 = 9 outputs.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import timm
import torch

PA = "pa"


def preprocess(images: torch.Tensor, softening: float) -> torch.Tensor:
    """asinh stretch: linear below ~softening (the sky noise level), logarithmic above, so the
    network sees both the faint disk outskirts and a bulge 10^4 times brighter."""
    return torch.asinh(images / softening)


def build_network(config: dict) -> torch.nn.Module:
    return timm.create_model(
        config["architecture"],
        pretrained=False,
        in_chans=1,
        num_classes=len(config["targets"]) + 1,  # PA takes two outputs
    )


def encode_targets(targets: torch.Tensor, config: dict) -> torch.Tensor:
    """``[B, P]`` physical targets -> ``[B, P + 1]`` network targets."""
    cols = []
    for j, name in enumerate(config["targets"]):
        v = targets[:, j]
        if name == PA:
            angle = torch.deg2rad(2.0 * v)
            cols += [torch.cos(angle), torch.sin(angle)]
        else:
            cols.append((v - config["mean"][name]) / config["std"][name])
    return torch.stack(cols, dim=1)


def decode_outputs(outputs: torch.Tensor, config: dict) -> torch.Tensor:
    """``[B, P + 1]`` network outputs -> ``[B, P]`` physical targets (PA in [0, 180))."""
    cols, k = [], 0
    for name in config["targets"]:
        if name == PA:
            pa = 0.5 * torch.rad2deg(torch.atan2(outputs[:, k + 1], outputs[:, k]))
            cols.append(torch.remainder(pa, 180.0))
            k += 2
        else:
            cols.append(outputs[:, k] * config["std"][name] + config["mean"][name])
            k += 1
    return torch.stack(cols, dim=1)


class CNNRegressor:
    """Submission entry point: ``CNNRegressor(root).predict(images [B,1,64,64]) -> [B, 8]``."""

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
        x = torch.from_numpy(np.array(images, dtype=np.float32)).to(self.device)
        outputs = self.network(preprocess(x, self.config["softening"]))
        return decode_outputs(outputs.float(), self.config).cpu().numpy().astype(np.float64)
