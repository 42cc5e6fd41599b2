"""Recipe for the classical rings@1 baselines rings-features-b{10,50,100,200}.

For each label budget k: galbench.features.ring_features of the first k train galaxies, standardised
with their mean and scatter, and an L2 logistic regression (scikit-learn, lbfgs) whose inverse
regularisation C is chosen from a grid by the log loss on the val split (70 galaxies; nothing
is tuned on test). Writes config.json into each ../rings-features-b<k> folder; the
test numbers printed here are for the README only (the receipts of `galbench evaluate` are the
official ones and agree with them).

    GALBENCH_MIRROR=/path/to/shared/data python baselines/rings-features-b100/train.py --home DIR
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import log_loss

from galbench import get_task, load_split
from galbench.features import ring_features
from galbench.models.rings import LogisticHead

HERE = Path(__file__).resolve().parent

BUDGETS = (10, 50, 100, 200)
C_GRID = (0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)


def ring_probability(head: dict, features: np.ndarray) -> np.ndarray:
    return LogisticHead(head).probabilities(features)[:, 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--home", default=None)
    args = parser.parse_args()
    task = get_task("rings@1")
    data = {}
    start = time.perf_counter()
    for split in ("train", "val", "test"):
        s = load_split(task, split, home=args.home, build=True)
        data[split] = (ring_features(np.asarray(s.images[:])), s.catalog["label"].to_numpy(),
                       s.manifest.content_sha256)
    feature_seconds = time.perf_counter() - start
    x_val, y_val, _ = data["val"]
    x_test, y_test, _ = data["test"]
    summary = {}
    for k in BUDGETS:
        x, y = data["train"][0][:k], data["train"][1][:k]
        scores = []
        for c in C_GRID:
            head = LogisticHead.fit(x, y, c)
            p = ring_probability(head, x_val)
            scores.append((log_loss(y_val, p, labels=[0, 1]), c, head, p))
        loss, c, head, p_val = min(scores, key=lambda s: (s[0], s[1]))
        p_test = ring_probability(head, x_test)
        result = {
            "budget": k, "C": c, "val_log_loss": loss,
            "val_accuracy": float(np.mean((p_val > 0.5) == y_val)),
            "test_accuracy": float(np.mean((p_test > 0.5) == y_test)),
            "val_log_loss_by_C": {str(cc): float(s[0]) for s, cc in zip(scores, C_GRID)},
        }
        summary[k] = result
        folder = HERE.parent / f"rings-features-b{k}"
        folder.mkdir(exist_ok=True)
        config = {
            "task": "rings@1", "classes": list(task.simulation.params["classes"]),
            "features": "galbench.features.ring_features (30 numbers)", "budget": k, "head": head,
            "train": {**{key: v for key, v in result.items() if key != "test_accuracy"},
                      "train_split_content_sha256": data["train"][2],
                      "val_split_content_sha256": data["val"][2],
                      "feature_seconds_470_galaxies": round(feature_seconds, 2),
                      "device": "cpu (2 cores)"},
        }
        (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        print(json.dumps({key: v for key, v in result.items() if key != "val_log_loss_by_C"}))


if __name__ == "__main__":
    main()
