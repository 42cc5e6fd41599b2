"""Recipe for the morphology@1 floor: count the classes of the training split.

    python baselines/morphology-floor/train.py [--home DIR]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from galbench.models.floor import write_class_frequencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--home", default=None)
    args = parser.parse_args()
    data = write_class_frequencies("morphology@1", Path(__file__).resolve().parent, home=args.home)
    print(json.dumps(data, indent=2))


if __name__ == "__main__":
    main()
