"""Floor baseline for anomaly@1: scores that carry no information (AUROC ~ 0.5).

Each image's score is a hash of its pixel bytes mapped to [0, 1): the same image always gets the
same score, whatever the batch size or order, so the receipt is reproducible; a random generator
would tie the scores to the batching.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np


class RandomScorer:
    def __init__(self, root: Path) -> None:
        pass

    def predict(self, images: np.ndarray) -> np.ndarray:
        """images: float32 [B, 1, 64, 64] -> [B] scores in [0, 1)."""
        scores = np.empty(len(images))
        for i, image in enumerate(np.ascontiguousarray(images, dtype=np.float32)):
            digest = hashlib.sha256(image.tobytes()).digest()
            scores[i] = int.from_bytes(digest[:8], "little") / 2.0**64
        return scores
