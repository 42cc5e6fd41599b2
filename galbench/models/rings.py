"""Entry points of the rings@1 baselines, shared by every label budget of a method (each
``baselines/rings-<method>-b<budget>`` folder holds only its ``config.json``, weights and the
``submission.toml`` naming one of these classes; ``rings-<method>-b100/train.py`` writes them).

- :class:`RingFeatureClassifier` (classical): :func:`galbench.features.ring_features` and a
  logistic regression (numpy only).
- :class:`TransferRingClassifier` (deep): the simulation-trained morphology@1 CNN frozen as a
  feature extractor, with a logistic-regression head.
- :class:`FineTunedRingClassifier` (deep): the same CNN with its last block, head convolution
  and a new 2-class classifier fine-tuned.

Input mapping of the CNNs (trained on [1, 64, 64] SDSS-like r-band stamps in e-/s, fed as
``asinh(x / softening)``): the mean of the three display channels, binned 2x2 to 64x64, minus
its sky level (median of the 6-pixel border), times ``flux_scale`` (chosen on val), then the
network's own preprocessing. Both average over the 8 rotations and flips of the stamp (a
galaxy's class does not depend on its orientation). Heads are stored as numbers in
``config.json`` (standardisation and logistic coefficients; no pickled estimator).

torch is imported only by the deep entry points.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from galbench.features import RING_BORDER, ring_features


class LogisticHead:
    """``config["head"]``: standardisation (``mean``, ``scale``) and an L2 logistic regression
    (``coef``, ``intercept``) of the ring class."""

    def __init__(self, head: dict[str, Any]) -> None:
        self.mean = np.array(head["mean"])
        self.scale = np.array(head["scale"])
        self.coef = np.array(head["coef"])
        self.intercept = float(head["intercept"])

    @staticmethod
    def fit(features: np.ndarray, labels: np.ndarray, c: float) -> dict[str, Any]:
        """Standardise ``features`` by their own mean and scatter and fit an L2 logistic
        regression (scikit-learn, inverse regularisation ``c``): the ``config["head"]`` table."""
        from sklearn.linear_model import LogisticRegression

        mean = features.mean(axis=0)
        scale = features.std(axis=0)
        scale = np.where(scale > 1e-9, scale, 1.0)
        model = LogisticRegression(C=c, max_iter=5000).fit((features - mean) / scale, labels)
        return {"mean": mean.tolist(), "scale": scale.tolist(), "coef": model.coef_[0].tolist(),
                "intercept": float(model.intercept_[0]), "C": c}

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """features [B, F] -> [B, 2] (non_ring, ring)."""
        logit = ((features - self.mean) / self.scale) @ self.coef + self.intercept
        ring = 1.0 / (1.0 + np.exp(-np.clip(logit, -50, 50)))
        return np.column_stack([1.0 - ring, ring])


class RingFeatureClassifier:
    """Classical: ``predict(images [B, 3, 128, 128]) -> [B, 2]`` (non_ring, ring)."""

    def __init__(self, root: str | Path) -> None:
        self.config = json.loads((Path(root) / "config.json").read_text())
        self.head = LogisticHead(self.config["head"])

    def predict(self, images: np.ndarray) -> np.ndarray:
        return self.head.probabilities(ring_features(images))


def to_network_input(images: np.ndarray, flux_scale: float) -> np.ndarray:
    """float32 [B, 3, 128, 128] display images -> [B, 1, 64, 64] sky-subtracted, scaled."""
    x = np.asarray(images, dtype=np.float64).mean(axis=1)
    b, h, w = x.shape
    x = x.reshape(b, h // 2, 2, w // 2, 2).mean(axis=(2, 4))
    mask = np.ones(x.shape[1:], dtype=bool)
    mask[RING_BORDER:-RING_BORDER, RING_BORDER:-RING_BORDER] = False
    sky = np.median(x[:, mask], axis=1)
    return ((x - sky[:, None, None]) * flux_scale)[:, None].astype(np.float32)


def prepare(images: np.ndarray, config: dict) -> Any:
    """Display images -> the network's input tensor [B, 1, 64, 64]."""
    import torch

    from galbench.models.classifier import preprocess

    return preprocess(torch.from_numpy(to_network_input(images, config["flux_scale"])), config)


def d4_views(x: Any):
    """The 8 rotations and flips of ``x`` [B, C, H, W]."""
    import torch

    for flipped in (x, torch.flip(x, dims=[-1])):
        for k in range(4):
            yield torch.rot90(flipped, k, dims=(-1, -2))


def network_features(network: Any, x: Any, layer: str) -> Any:
    """[B, 1, 64, 64] preprocessed -> [B, F] features averaged over the 8 D4 views: the globally
    pooled last-block activations (``"pooled"``) or the pre-logits (``"pre_logits"``)."""
    import torch

    if layer not in ("pooled", "pre_logits"):
        raise ValueError(f"layer must be 'pooled' or 'pre_logits', got {layer!r}")
    total = None
    with torch.inference_mode():
        for view in d4_views(x):
            maps = network.forward_features(view)
            f = maps.mean(dim=(-2, -1)) if layer == "pooled" else network.forward_head(maps, pre_logits=True)
            total = f if total is None else total + f
    return total / 8


def extract_features(network: Any, config: dict, images: np.ndarray, device: str = "cpu",
                     batch: int = 100) -> np.ndarray:
    """float32 [B, 3, 128, 128] -> CNN features [B, F] float64 (``config["layer"]``)."""
    import torch

    from galbench.models.classifier import preprocess

    out = []
    for start in range(0, len(images), batch):
        x = torch.from_numpy(to_network_input(images[start : start + batch], config["flux_scale"]))
        x = preprocess(x.to(device), config["network"])
        out.append(network_features(network, x, config["layer"]).double().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 0))


def d4_probabilities(network: Any, x: Any) -> Any:
    """Softmax [B, K] averaged over the 8 D4 views of ``x`` [B, 1, H, W]."""
    import torch

    total = 0.0
    with torch.inference_mode():
        for view in d4_views(x):
            total = total + torch.softmax(network(view).double(), dim=1)
    return total / 8


class TransferRingClassifier:
    """Deep, frozen CNN + logistic head: ``predict(images [B, 3, 128, 128]) -> [B, 2]``."""

    def __init__(self, root: str | Path) -> None:
        from galbench.models import load_network
        from galbench.models.classifier import build_network

        self.config, self.device, self.network = load_network(
            root, lambda config: build_network(config["network"])
        )
        self.head = LogisticHead(self.config["head"])

    def predict(self, images: np.ndarray) -> np.ndarray:
        return self.head.probabilities(extract_features(self.network, self.config, images, self.device))


class FineTunedRingClassifier:
    """Deep, fine-tuned CNN: ``predict(images [B, 3, 128, 128]) -> [B, 2]``."""

    def __init__(self, root: str | Path) -> None:
        from galbench.models import load_network
        from galbench.models.classifier import build_network

        self.config, self.device, self.network = load_network(root, build_network)

    def predict(self, images: np.ndarray) -> np.ndarray:
        x = prepare(np.asarray(images), self.config).to(self.device)
        return d4_probabilities(self.network, x).cpu().numpy()
