"""Recipe: compute the training-set medians that MedianRegressor predicts.

    python baselines/morphometry-floor/train.py [--home DIR]

Reads (building it if needed) the morphometry@1 train split and writes medians.json here.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from galbench import get_task, load_split


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--home", default=None, help="galbench data home")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    task = get_task("morphometry@1")
    split = load_split(task, "train", home=args.home, build=True, workers=args.workers)
    targets = split.targets()
    medians = {name: float(np.median(targets[:, j])) for j, name in enumerate(task.target_names)}
    out = {
        "task": task.id,
        "split": "train",
        "n": split.n,
        "split_content_sha256": split.manifest.content_sha256,
        "targets": list(task.target_names),
        "medians": medians,
    }
    path = Path(__file__).with_name("medians.json")
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {path}: {medians}")


if __name__ == "__main__":
    main()
