"""Classical baseline for anomaly@1: an isolation forest on non-parametric morphology.

No deep learning: ``galbench.features.morphology_features`` measures 12 numbers per stamp (C, A, S, Gini,
M20, shape, size, flux and four defect indicators); an isolation forest (Liu, Ting & Zhou 2008)
fitted on the features of normal training galaxies scores how easily each new object is
isolated. The forest is refitted at load time from the stored training features with a fixed
random_state, which is deterministic and avoids pickled estimators in the submission.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from sklearn.ensemble import IsolationForest

from galbench.features import morphology_features


def fit_forest(train_features: np.ndarray, config: dict) -> IsolationForest:
    forest = IsolationForest(
        n_estimators=config["n_estimators"],
        max_samples=config["max_samples"],
        random_state=config["random_state"],
        n_jobs=1,
    )
    return forest.fit(train_features)


class IsolationForestScorer:
    def __init__(self, root: Path) -> None:
        root = Path(root)
        self.config = json.loads((root / "config.json").read_text())
        train_features = np.load(root / "train_features.npy").astype(np.float64)
        self.forest = fit_forest(train_features, self.config)

    def predict(self, images: np.ndarray) -> np.ndarray:
        """images: float32 [B, 1, 64, 64] e-/s -> [B] scores, higher = more anomalous."""
        features = morphology_features(images, self.config["sky_sigma"])
        return -self.forest.score_samples(features)
