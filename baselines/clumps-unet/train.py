"""Recipe for the clumps@1 deep baseline: a U-Net trained to segment clumps, with the galbench
training toolkit (galbench.train.image_to_image).

    python baselines/clumps-unet/train.py [--home DIR] [--epochs 12] [--threads 2]

Input: asinh(image / sky sigma of the instrument). Target: the clump mask of clumps@1 (each
clump's PSF core). Loss: binary cross-entropy plus (1 - soft Dice) over the batch: clump pixels
are 0.7% of all pixels, and the Dice term keeps the network from settling on "no clump".
Augmentation: the 8 rotations/flips of the stamp (exact, mask transformed alike). AdamW,
exponential learning-rate decay per epoch, early stopping on the validation loss. Each epoch
also records the clump F1 on the validation objects (the task's scoring rule: components of
p >= 0.5, one-to-one matching within 2 px). Writes weights.pt, config.json, history.json/png.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from galbench import get_task, load_split
from galbench.metrics.images import clump_counts, clump_f1_from_counts, predicted_clumps
from galbench.models.unet import build_network, preprocess
from galbench.sim import get_instrument
from galbench.train.image_to_image import (
    add_arguments,
    fit,
    load_tensors,
    settings_from_args,
    warm_start,
)

HERE = Path(__file__).resolve().parent
TASK = "clumps@1"


def loss_fn(logits: torch.Tensor, inputs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    bce = F.binary_cross_entropy_with_logits(logits, mask)
    p = torch.sigmoid(logits)
    dice = (2 * (p * mask).sum() + 1.0) / (p.sum() + mask.sum() + 1.0)
    return bce + (1.0 - dice)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser, HERE)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    task = get_task(TASK)
    config = {
        "task": TASK,
        "base": args.base,
        "depth": args.depth,
        "out_channels": 1,
        # The stretch: linear within the sky noise, logarithmic in bright cores.
        "softening": get_instrument(task.simulation.instrument).sky_sigma,
        "tta": False,
    }
    mask = lambda split, n: np.asarray(split.target_array("clump_mask")[:n], dtype=np.float32)  # noqa: E731
    train = load_tensors(load_split(TASK, "train", home=args.home), args.n_train, mask)
    val_split = load_split(TASK, "val", home=args.home)
    val = load_tensors(val_split, args.n_val, mask)
    true_clumps = [c[~np.isnan(c[:, 0]), :2] for c in np.asarray(val_split.target_array("clumps")[: len(val[0])])]
    threshold, radius = task.extra["probability_threshold"], task.extra["match_radius"]

    def prepare(x: torch.Tensor) -> torch.Tensor:
        return preprocess(x, config)

    def val_f1(network) -> float:
        network.eval()
        with torch.inference_mode():
            prob = torch.cat([torch.sigmoid(network(prepare(x))) for x in val[0].split(256)]).numpy()
        counts = clump_counts(true_clumps, predicted_clumps(prob, threshold), radius)
        return float(clump_f1_from_counts(counts))

    network = build_network(config)
    warm_start(network, args.init, config, args.lr)
    settings = settings_from_args(args, extra_metrics={"val_clump_f1": val_f1})
    fit(network, prepare, loss_fn, train, val, settings, Path(args.out), config)


if __name__ == "__main__":
    main()
