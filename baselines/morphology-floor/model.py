"""Floor baseline for morphology@1: every galaxy gets the training-set class frequencies.

Its accuracy is the majority class's share and its log loss the entropy of the class mix: a
method must beat both to have learned anything from the images.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


class ClassFrequencies:
    def __init__(self, root: Path) -> None:
        data = json.loads((Path(root) / "frequencies.json").read_text())
        self.classes = data["classes"]
        self.frequencies = np.array([data["frequencies"][c] for c in self.classes], dtype=np.float64)

    def predict(self, images: np.ndarray) -> np.ndarray:
        """images: float32 [B, 1, 64, 64] -> [B, 6] probabilities, the same row for all."""
        return np.broadcast_to(self.frequencies, (len(images), len(self.frequencies))).copy()
