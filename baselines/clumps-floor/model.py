"""Floor baseline for clumps@1: predicts no clump anywhere.

Every clump is missed and nothing is wrong-footed: completeness, clump F1, Dice and IoU are 0 and
purity is undefined (no predicted clump). Any method that finds a clump must beat it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


class EmptyMask:
    def __init__(self, root: Path) -> None:
        pass

    def predict(self, images: np.ndarray) -> np.ndarray:
        """images: float32 [B, 1, H, W] -> clump probabilities [B, 1, H, W], all 0."""
        return np.zeros(images.shape, dtype=np.float32)
