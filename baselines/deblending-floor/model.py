"""Floor baseline for deblending@1: the blend split by a fixed rule, no fitting and no learning.

Rule: each of the two galaxies gets half of every pixel of the blend (noise included). Total flux
is conserved; each galaxy's flux is wrong by the flux-ratio asymmetry and its light is spread
over both galaxies' footprints.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

N_SOURCES = 2


class HalfSplit:
    def __init__(self, root: Path) -> None:
        pass

    def predict(self, images: np.ndarray) -> np.ndarray:
        """images: float32 [B, C, H, W] blends -> [B, 2, C, H, W] (central, companion)."""
        half = np.asarray(images, dtype=np.float32) / N_SOURCES
        return np.repeat(half[:, None], N_SOURCES, axis=1)
