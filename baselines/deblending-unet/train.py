"""Recipe for the deblending@1 deep baseline: a U-Net mapping a blend to the two isolated
galaxies, trained with the galbench training toolkit (galbench.train.image_to_image).

    python baselines/deblending-unet/train.py [--home DIR] [--epochs 12] [--threads 2]
    python baselines/deblending-unet/train.py --init weights.pt --lr 5e-4 --epochs 6   # continue

Input: asinh(blend / sky sigma of the instrument). Output: two channels (central, companion) in
units of the blend's peak (galbench.models.unet.Deblender multiplies them back into e-/s).
Loss: minus the mean PSNR of the galaxies in the batch, with the task's definition (data range =
the peak of each galaxy's true isolated image), i.e. the mean of 10 log10(MSE / R^2): the metric
itself, so that faint companions weigh as much as bright centrals. Augmentation: the 8
rotations/flips of the stamp (exact; both targets transformed alike; the central galaxy stays
central). AdamW, exponential learning-rate decay per epoch, early stopping on the validation
loss. Writes weights.pt, config.json, history.json/png.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from galbench import get_task, load_split
from galbench.models.unet import blend_scale, build_network, preprocess
from galbench.sim import get_instrument
from galbench.train.image_to_image import (
    add_arguments,
    fit,
    load_tensors,
    settings_from_args,
    warm_start,
)

HERE = Path(__file__).resolve().parent
TASK = "deblending@1"
#: The task's PSNR cap: MSE floored at R^2 * 1e-10 (100 dB).
MSE_FLOOR = 1e-10


def loss_fn(out: torch.Tensor, blends: torch.Tensor, isolated: torch.Tensor) -> torch.Tensor:
    """-mean PSNR (dB) of every galaxy: ``out`` [B, S, H, W] in units of the blend's peak."""
    pred = out * blend_scale(blends)
    peak = isolated.amax(dim=(-2, -1))
    mse = (pred - isolated).pow(2).mean(dim=(-2, -1))
    return 10.0 * torch.log10(mse / peak.pow(2) + MSE_FLOOR).mean()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser, HERE)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    task = get_task(TASK)
    sources = list(task.extra["sources"])
    config = {
        "task": TASK,
        "base": args.base,
        "depth": args.depth,
        "out_channels": len(sources),
        "sources": sources,
        "softening": get_instrument(task.simulation.instrument).sky_sigma,
        "tta": False,
    }

    def isolated(split, n):  # [n, S, 1, H, W] -> [n, S, H, W]: sources as channels
        return np.asarray(split.target_array("isolated")[:n], dtype=np.float32)[:, :, 0]

    train = load_tensors(load_split(TASK, "train", home=args.home), args.n_train, isolated)
    val = load_tensors(load_split(TASK, "val", home=args.home), args.n_val, isolated)
    network = build_network(config)
    warm_start(network, args.init, config, args.lr)
    fit(network, lambda x: preprocess(x, config), loss_fn, train, val, settings_from_args(args), Path(args.out), config)


if __name__ == "__main__":
    main()
