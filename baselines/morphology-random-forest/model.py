"""Classical baseline for morphology@1: a random forest on non-parametric morphology.

No deep learning: ``galbench.features.morphology_features`` measures 12 numbers per stamp
(concentration, asymmetry, smoothness, Gini, M20, ellipticity, half-light radius, flux, and
indicators of sharp, off-centre or extended structure) and a random forest (Breiman 2001;
scikit-learn) maps them to class probabilities. The forest is refitted when the model loads
from the stored training features and labels with a fixed random_state (deterministic, and no
pickled estimator in the submission); that takes ~20 s.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from sklearn.ensemble import RandomForestClassifier

from galbench.features import morphology_features


def fit_forest(features: np.ndarray, labels: np.ndarray, config: dict) -> RandomForestClassifier:
    forest = RandomForestClassifier(
        n_estimators=config["n_estimators"],
        min_samples_leaf=config["min_samples_leaf"],
        random_state=config["random_state"],
        n_jobs=1,
    )
    return forest.fit(features, labels)


class RandomForestClassifierModel:
    def __init__(self, root: Path) -> None:
        root = Path(root)
        self.config = json.loads((root / "config.json").read_text())
        data = np.load(root / "train_features.npz")
        self.forest = fit_forest(data["features"].astype(np.float64), data["labels"], self.config)
        self.n_classes = len(self.config["classes"])

    def predict(self, images: np.ndarray) -> np.ndarray:
        """images: float32 [B, 1, 64, 64] e-/s -> [B, 6] class probabilities."""
        features = morphology_features(images, self.config["sky_sigma"])
        proba = np.zeros((len(images), self.n_classes))
        proba[:, self.forest.classes_] = self.forest.predict_proba(features)
        return proba
