"""The classification floor shared by morphology@1 and rings@1: every galaxy gets the class
frequencies of the labelled training galaxies, whatever its image (numpy only).

Its accuracy is the majority class's share and its log loss the entropy of the class mix: a
method must beat both to have learned anything from the images. A floor folder holds
``frequencies.json`` (written by :func:`write_class_frequencies`) and a ``model.py`` that
re-exports :class:`ClassFrequencies`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np


class ClassFrequencies:
    def __init__(self, root: str | Path) -> None:
        data = json.loads((Path(root) / "frequencies.json").read_text())
        self.classes = data["classes"]
        self.frequencies = np.array([data["frequencies"][c] for c in self.classes], dtype=np.float64)

    def predict(self, images: np.ndarray) -> np.ndarray:
        """images [B, C, H, W] -> [B, K] probabilities, the same row for all."""
        return np.broadcast_to(self.frequencies, (len(images), len(self.frequencies))).copy()


def write_class_frequencies(
    task_id: str, folder: str | Path, *, labels: int | None = None,
    home: str | os.PathLike[str] | None = None,
) -> dict:
    """Count the classes of the task's train split (its first ``labels`` objects, for a task
    with label budgets) and write them to ``<folder>/frequencies.json``; returns the table."""
    from galbench import get_task, load_split

    task = get_task(task_id)
    train = load_split(task, "train", home=home, build=True)
    classes = list(task.simulation.params["classes"])
    counts = np.bincount(train.catalog["label"].to_numpy()[:labels], minlength=len(classes))
    data = {
        "classes": classes,
        "frequencies": {c: float(k / counts.sum()) for c, k in zip(classes, counts)},
        "counts": {c: int(k) for c, k in zip(classes, counts)},
        "n": int(counts.sum()),
        "split_content_sha256": train.manifest.content_sha256,
    }
    (Path(folder) / "frequencies.json").write_text(json.dumps(data, indent=2) + "\n")
    return data
