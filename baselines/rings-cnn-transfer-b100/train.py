"""Recipe for the deep rings@1 baselines rings-cnn-transfer-b{10,50,100,200}: transfer from
the simulation-trained morphology@1 CNN (../morphology-cnn) to real GZ DECaLS rings.

The network stays frozen (a linear probe: with 10-200 labels, the honest small-label version of
zoobot's ring fine-tuning example). Its features (galbench.models.rings: channel mean, 2x2 binning, sky
subtraction, x flux_scale, asinh, 8-fold D4 average) are computed for every train, val and test
galaxy; for each label budget k an L2 logistic regression on the first k train galaxies'
standardised features is fitted for every (flux_scale, layer, C) of a small grid, and the one
with the lowest val log loss is kept (nothing is tuned on test). Writes config.json
and weights.pt into each ../rings-cnn-transfer-b<k>; the test accuracies printed are for the
README only (the receipts of `galbench evaluate` are the official numbers).

    GALBENCH_MIRROR=/path/to/shared/data python baselines/rings-cnn-transfer-b100/train.py --home DIR
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import log_loss

from galbench import get_task, load_split
from galbench.models import load_network
from galbench.models.classifier import build_network
from galbench.models.rings import LogisticHead, extract_features

HERE = Path(__file__).resolve().parent
SOURCE = HERE.parent / "morphology-cnn"

BUDGETS = (10, 50, 100, 200)
FLUX_SCALES = (10.0, 30.0, 100.0, 300.0)
LAYERS = ("pooled", "pre_logits")
C_GRID = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)


def ring_probability(head: dict, features: np.ndarray) -> np.ndarray:
    return LogisticHead(head).probabilities(features)[:, 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--home", default=None)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    task = get_task("rings@1")
    source_config, _, network = load_network(SOURCE, build_network)
    network = network.cpu()
    splits = {}
    for split in ("train", "val", "test"):
        s = load_split(task, split, home=args.home, build=True)
        splits[split] = (np.asarray(s.images[:]), s.catalog["label"].to_numpy(),
                         s.manifest.content_sha256)
    start = time.perf_counter()
    features = {}
    for flux_scale in FLUX_SCALES:
        for layer in LAYERS:
            config = {"network": source_config, "flux_scale": flux_scale, "layer": layer}
            features[flux_scale, layer] = {
                split: extract_features(network, config, images) for split, (images, _, _) in splits.items()
            }
    feature_seconds = time.perf_counter() - start
    y_train, y_val, y_test = (splits[s][1] for s in ("train", "val", "test"))
    for k in BUDGETS:
        start = time.perf_counter()
        trials = []
        for (flux_scale, layer), f in features.items():
            for c in C_GRID:
                head = LogisticHead.fit(f["train"][:k], y_train[:k], c)
                p_val = ring_probability(head, f["val"])
                trials.append((log_loss(y_val, p_val, labels=[0, 1]), flux_scale, layer, c, head, p_val))
        loss, flux_scale, layer, c, head, p_val = min(trials, key=lambda t: t[:4])
        p_test = ring_probability(head, features[flux_scale, layer]["test"])
        result = {
            "budget": k, "flux_scale": flux_scale, "layer": layer, "C": c, "val_log_loss": loss,
            "val_accuracy": float(np.mean((p_val > 0.5) == y_val)),
            "test_accuracy": float(np.mean((p_test > 0.5) == y_test)),
            "head_fit_seconds_all_trials": round(time.perf_counter() - start, 2),
        }
        folder = HERE.parent / f"rings-cnn-transfer-b{k}"
        folder.mkdir(exist_ok=True)
        shutil.copyfile(SOURCE / "weights.pt", folder / "weights.pt")
        config = {
            "task": "rings@1", "classes": list(task.simulation.params["classes"]),
            "network": {key: source_config[key] for key in ("architecture", "classes", "softening")},
            "source": {"entry": "morphology-cnn", "train": source_config["train"]},
            "flux_scale": flux_scale, "layer": layer, "budget": k, "head": head,
            "train": {**{key: v for key, v in result.items() if key != "test_accuracy"},
                      "grid": {"flux_scale": FLUX_SCALES, "layer": LAYERS, "C": C_GRID},
                      "train_split_content_sha256": splits["train"][2],
                      "val_split_content_sha256": splits["val"][2],
                      "feature_seconds_all_grid_470_galaxies": round(feature_seconds, 1),
                      "device": "cpu (2 cores)", "threads": args.threads},
        }
        (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        print(json.dumps(result))


if __name__ == "__main__":
    main()
