"""Recipe for the morphology@1 classical baseline: measure the morphology features of the
training galaxies, choose the forest's leaf size on the validation split, store the features.

    python baselines/morphology-random-forest/train.py [--home DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from galbench import get_task, load_split
from galbench.features import NAMES, morphology_features
from galbench.sim import get_instrument

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from model import fit_forest  # noqa: E402


def features_of(split, sigma: float, batch: int = 1000) -> np.ndarray:
    return np.concatenate(
        [morphology_features(np.asarray(split.images[s : s + batch]), sigma) for s in range(0, split.n, batch)]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--home", default=None)
    parser.add_argument("--n-estimators", type=int, default=200)
    args = parser.parse_args()
    task = get_task("morphology@1")
    sigma = get_instrument(task.simulation.params["instrument_by_split"]["train"]).sky_sigma
    train = load_split(task, "train", home=args.home, build=True)
    val = load_split(task, "val", home=args.home, build=True)
    t0 = time.time()
    x_train = features_of(train, sigma).astype(np.float32)
    seconds = time.time() - t0
    x_val = features_of(val, sigma).astype(np.float32)
    y_train, y_val = train.catalog["label"].to_numpy(), val.catalog["label"].to_numpy()
    config = {
        "task": task.id,
        "classes": list(task.simulation.params["classes"]),
        "features": list(NAMES),
        "sky_sigma": sigma,
        "n_estimators": args.n_estimators,
        "random_state": 0,
        "n_train": train.n,
        "split_content_sha256": train.manifest.content_sha256,
        "feature_ms_per_galaxy": round(1000 * seconds / train.n, 2),
    }
    # The one hyperparameter searched, on validation accuracy: the minimum leaf size.
    config["val_accuracy_by_min_samples_leaf"] = {}
    for leaf in (1, 3, 10):
        forest = fit_forest(x_train.astype(np.float64), y_train, {**config, "min_samples_leaf": leaf})
        accuracy = float((forest.predict(x_val.astype(np.float64)) == y_val).mean())
        config["val_accuracy_by_min_samples_leaf"][str(leaf)] = accuracy
        print(f"min_samples_leaf={leaf}: val accuracy {accuracy:.4f}", flush=True)
    scores = config["val_accuracy_by_min_samples_leaf"]
    config["min_samples_leaf"] = int(max(scores, key=scores.get))
    np.savez_compressed(HERE / "train_features.npz", features=x_train, labels=y_train.astype(np.int8))
    (HERE / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    print(json.dumps(config, indent=2))


if __name__ == "__main__":
    main()
