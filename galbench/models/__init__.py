"""Neural networks shared by the deep baselines (import torch; never imported by galbench itself)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path


def load_network(root: str | Path, build_network: Callable) -> tuple[dict, str, object]:
    """``(config, device, network)`` of a submission folder: ``config.json``, the network
    ``build_network(config)`` with the weights of ``weights.pt`` (stored float16, loaded as
    float32), in eval mode on the GPU when there is one."""
    import torch

    root = Path(root)
    config = json.loads((root / "config.json").read_text())
    device = "cuda" if torch.cuda.is_available() else "cpu"
    network = build_network(config)
    state = torch.load(root / "weights.pt", map_location="cpu", weights_only=True)
    network.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    return config, device, network.to(device).eval()
