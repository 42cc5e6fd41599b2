"""Convolutional autoencoder and VAE for single-band galaxy stamps, and the anomaly scorer built
on them (the deep baselines of anomaly@1, after Margalef-Bentabol et al. 2020).

The network sees ``asinh(x / softening)`` (linear below ~the sky noise, logarithmic above, so a
faint disk and a bulge 10^4 times brighter both matter) and reconstructs it. An object's anomaly
score is computed from the residual between the stretched image and its reconstruction; the
score definitions (``SCORES``) are compared on the validation split and the chosen one is
recorded in the baseline's ``config.json``.

Imports torch: use it from baselines and training scripts, never from metrics or scoring.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from galbench.models import load_network


def stretch(images: torch.Tensor, softening: float) -> torch.Tensor:
    return torch.asinh(images / softening)


def unstretch(stretched: torch.Tensor, softening: float) -> torch.Tensor:
    return torch.sinh(stretched) * softening


class ConvAutoencoder(nn.Module):
    """``[B, 1, S, S]`` -> latent ``[B, latent]`` -> ``[B, 1, S, S]``; S divisible by 2**levels.

    ``variational=True`` makes it a VAE: the encoder gives a mean and a log-variance, training
    samples with the reparameterisation trick, and ``encode`` returns the mean.
    """

    def __init__(
        self,
        size: int = 64,
        channels: tuple[int, ...] = (32, 64, 128, 128),
        latent: int = 32,
        variational: bool = False,
    ) -> None:
        super().__init__()
        self.variational = variational
        self.latent = latent
        layers: list[nn.Module] = []
        c_in = 1
        for c in channels:
            layers += [nn.Conv2d(c_in, c, 4, stride=2, padding=1), nn.BatchNorm2d(c), nn.LeakyReLU(0.2)]
            c_in = c
        self.encoder = nn.Sequential(*layers, nn.Flatten())
        self.bottom = (channels[-1], size // 2 ** len(channels), size // 2 ** len(channels))
        flat = int(np.prod(self.bottom))
        self.to_latent = nn.Linear(flat, latent * (2 if variational else 1))
        self.from_latent = nn.Linear(latent, flat)
        layers = []
        widths = list(channels[::-1]) + [channels[0]]
        for c_in, c_out in zip(widths[:-1], widths[1:]):
            layers += [
                nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1),
                nn.BatchNorm2d(c_out),
                nn.LeakyReLU(0.2),
            ]
        self.decoder = nn.Sequential(*layers, nn.Conv2d(channels[0], 1, 3, padding=1))

    def encode_stats(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        h = self.to_latent(self.encoder(x))
        if not self.variational:
            return h, None
        mean, log_var = h.chunk(2, dim=1)
        return mean, log_var.clamp(-12.0, 8.0)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.from_latent(z).view(-1, *self.bottom))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        mean, log_var = self.encode_stats(x)
        z = mean
        if self.variational and self.training:
            z = mean + torch.randn_like(mean) * torch.exp(0.5 * log_var)
        return self.decode(z), mean, log_var


def kl_divergence(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """KL(q(z|x) || N(0, I)) per object, summed over latent dimensions."""
    return 0.5 * (mean.pow(2) + log_var.exp() - 1.0 - log_var).sum(dim=1)


def _top_mean(values: torch.Tensor, k: int) -> torch.Tensor:
    return values.flatten(1).topk(k, dim=1).values.mean(dim=1)


#: Anomaly scores from the stretched input ``s``, its reconstruction ``r`` and the KL term (VAE,
#: else zeros), each ``[B]``, higher = more anomalous. "mse" is the mean squared residual over
#: the stamp (Margalef-Bentabol+20's residual); "top50" the mean of the 50 largest squared
#: residuals, which does not dilute a compact defect (a cosmic ray, a clump) over 4096 pixels;
#: "smooth_top50" the same after a 3x3 box filter of the residual, so single noise spikes count
#: less than coherent structure; "elbo" the VAE's negative ELBO (residual + KL).
SCORES: dict[str, Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "mse": lambda s, r, kl: (s - r).pow(2).mean(dim=(1, 2, 3)),
    "top50": lambda s, r, kl: _top_mean((s - r).pow(2), 50),
    "smooth_top50": lambda s, r, kl: _top_mean(
        nn.functional.avg_pool2d(s - r, 3, stride=1, padding=1).pow(2), 50
    ),
    "elbo": lambda s, r, kl: (s - r).pow(2).sum(dim=(1, 2, 3)) + kl,
}


def build_network(config: dict) -> ConvAutoencoder:
    return ConvAutoencoder(
        size=config["size"],
        channels=tuple(config["channels"]),
        latent=config["latent"],
        variational=config["variational"],
    )


class AutoencoderAnomalyScorer:
    """Submission entry point: ``predict(images [B,1,64,64] e-/s) -> scores [B]``.

    Also ``encode(images) -> latent means [B, D]`` and ``decode(z) -> images [B,1,64,64] e-/s``,
    which ``galbench latent`` uses to draw the latent space.
    """

    def __init__(self, root: Path) -> None:
        self.config, self.device, self.network = load_network(root, build_network)
        self.score = SCORES[self.config["score"]]

    def _stretched(self, images: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(np.array(images, dtype=np.float32)).to(self.device)
        return stretch(x, self.config["softening"])

    @torch.inference_mode()
    def predict(self, images: np.ndarray) -> np.ndarray:
        s = self._stretched(images)
        r, mean, log_var = self.network(s)
        kl = kl_divergence(mean, log_var) if log_var is not None else torch.zeros(len(s))
        return self.score(s, r, kl.to(s.device)).cpu().numpy().astype(np.float64)

    @torch.inference_mode()
    def encode(self, images: np.ndarray) -> np.ndarray:
        mean, _ = self.network.encode_stats(self._stretched(images))
        return mean.cpu().numpy().astype(np.float32)

    @torch.inference_mode()
    def decode(self, z: np.ndarray) -> np.ndarray:
        out = self.network.decode(torch.from_numpy(np.asarray(z, dtype=np.float32)).to(self.device))
        return unstretch(out, self.config["softening"]).cpu().numpy().astype(np.float32)
