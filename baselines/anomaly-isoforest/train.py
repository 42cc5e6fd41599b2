"""Recipe for the anomaly@1 classical baseline: measure the morphology features of normal
training galaxies and store them (the forest is refitted from them at load time).

    python baselines/anomaly-isoforest/train.py [--home DIR] [--n-train 20000]

Label-free: only the train split (normal galaxies) is used. Prints the val AUROC for reference.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from galbench import get_task, load_split
from galbench.sim import get_instrument

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from model import fit_forest  # noqa: E402

from galbench.features import NAMES, morphology_features


def features_of(split, sigma: float, batch: int = 1000) -> np.ndarray:
    images = split.images
    return np.concatenate(
        [morphology_features(np.asarray(images[s : s + batch]), sigma) for s in range(0, split.n, batch)]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", default=None)
    parser.add_argument("--n-train", type=int, default=20000)
    parser.add_argument("--n-estimators", type=int, default=300)
    parser.add_argument("--max-samples", type=int, default=512)
    parser.add_argument("--out", default=str(HERE))
    args = parser.parse_args()

    task = get_task("anomaly@1")
    sigma = get_instrument(task.simulation.instrument).sky_sigma
    train = load_split(task, "train", args.n_train, home=args.home, build=True)
    t0 = time.time()
    train_features = features_of(train, sigma)
    seconds = time.time() - t0
    config = {
        "task": task.id,
        "features": list(NAMES),
        "sky_sigma": sigma,
        "n_estimators": args.n_estimators,
        "max_samples": args.max_samples,
        "random_state": 0,
        "n_train": train.n,
        "split_content_sha256": train.manifest.content_sha256,
        "feature_ms_per_galaxy": round(1000 * seconds / train.n, 2),
    }
    out = Path(args.out)
    np.save(out / "train_features.npy", train_features.astype(np.float32))
    forest = fit_forest(train_features.astype(np.float32).astype(np.float64), config)
    val = load_split(task, "val", home=args.home, build=True)
    labels = val.catalog["is_anomaly"].to_numpy()
    scores = -forest.score_samples(features_of(val, sigma))
    from sklearn.metrics import roc_auc_score

    config["val_auroc"] = float(roc_auc_score(labels, scores))
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    print(json.dumps(config, indent=2))


if __name__ == "__main__":
    main()
