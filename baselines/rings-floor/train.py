"""Recipe for the rings@1 floor: count the classes of the first `labels` train galaxies (the
ranked budget, 100; every budget prefix of train is half rings, so the frequencies are 0.5).

    GALBENCH_MIRROR=/path/to/shared/data python baselines/rings-floor/train.py [--home DIR]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from galbench.models.floor import write_class_frequencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--home", default=None)
    parser.add_argument("--labels", type=int, default=100)
    args = parser.parse_args()
    data = write_class_frequencies("rings@1", Path(__file__).resolve().parent, labels=args.labels,
                                   home=args.home)
    print(json.dumps(data, indent=2))


if __name__ == "__main__":
    main()
