"""Recipe for the rings@1 floor: count the classes of the first `labels` train galaxies (the
ranked budget, 100; every budget prefix of train is half rings, so the frequencies are 0.5).

    GALBENCH_MIRROR=/path/to/shared/data python baselines/rings-floor/train.py [--home DIR]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from galbench import get_task, load_split

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--home", default=None)
    parser.add_argument("--labels", type=int, default=100)
    args = parser.parse_args()
    task = get_task("rings@1")
    train = load_split(task, "train", home=args.home, build=True)
    classes = list(task.simulation.params["classes"])
    labels = train.catalog["label"].to_numpy()[: args.labels]
    counts = np.bincount(labels, minlength=len(classes))
    data = {
        "classes": classes,
        "frequencies": {c: float(k / counts.sum()) for c, k in zip(classes, counts)},
        "counts": {c: int(k) for c, k in zip(classes, counts)},
        "n": int(counts.sum()),
        "split_content_sha256": train.manifest.content_sha256,
    }
    (HERE / "frequencies.json").write_text(json.dumps(data, indent=2) + "\n")
    print(json.dumps(data, indent=2))


if __name__ == "__main__":
    main()
