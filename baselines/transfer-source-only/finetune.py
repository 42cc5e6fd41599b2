"""Recipe for every transfer@1 baseline: the morphology@1 CNN (trained on the SDSS-like source,
morphology@1's train split = transfer@1's) applied to the DES-like target as is, fine-tuned on the
first k labeled target galaxies, or trained from scratch on them.

    python baselines/transfer-source-only/finetune.py [--home DIR]

writes, next to this folder, transfer-source-only (budget 0) and transfer-{head,all,scratch}-b{k}
for k in 10, 50, 200, 1000:
- source-only: the source weights unchanged; DES counts are put on the SDSS scale by the
  zero-point ratio (a calibration, not a learned adaptation).
- head: only the classifier layer trains (galbench.train.set_trainable "head", frozen BatchNorm).
- all: every layer trains, from the source weights, at a 3x smaller learning rate.
- scratch: a fresh network of the same architecture, trained on the k target labels alone.
Each run: AdamW, a fixed number of steps (--steps; x2 for scratch) of batches of min(k, 64)
galaxies with D4 + shift augmentation; no early stopping (a budget of k labels leaves nothing
to validate on). Deterministic seeds per run.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from galbench import get_task, load_split
from galbench.models.classifier import build_network, preprocess
from galbench.sim import get_instrument
from galbench.train import Augment, freeze_batchnorm, set_trainable

HERE = Path(__file__).resolve().parent
BASELINES = HERE.parent
SOURCE = BASELINES / "morphology-cnn"
BUDGETS = (10, 50, 200, 1000)
STRATEGIES = ("head", "all", "scratch")

TOML = """name = "{name}"
authors = ["galbench developers"]
contact = "https://github.com/galbench/galbench/issues"
license = "MIT"
external_data = false
description = "{description}"

[tasks."transfer@1"]
entry_point = "model:TimmClassifier"
# labels = target labels used (the first {budget} objects of transfer@1/target_train); source
# labels are listed in training_data.
training_data = ["morphology@1/train", "morphology@1/val"{target}]
labels = {budget}
parameters = {parameters}
batch_size = 500
"""

DESCRIPTIONS = {
    "source-only": "The morphology@1 CNN (SDSS-like source) applied to DES-like images with no adaptation (counts put on the SDSS scale by the zero-point ratio).",
    "head": "The morphology@1 CNN with its classifier layer fine-tuned on {budget} DES-like labels.",
    "all": "The morphology@1 CNN with all layers fine-tuned on {budget} DES-like labels.",
    "scratch": "The morphology@1 CNN architecture trained from scratch on {budget} DES-like labels only.",
}


def write_entry(name: str, budget: int, strategy: str, state: dict, config: dict, train: dict) -> None:
    folder = BASELINES / name
    folder.mkdir(exist_ok=True)
    (folder / "model.py").write_text(
        '"""A transfer@1 baseline (see ../transfer-source-only/finetune.py and README.md)."""\n\n'
        "from galbench.models.classifier import TimmClassifier  # noqa: F401\n"
    )
    (folder / "config.json").write_text(json.dumps({**config, "train": train}, indent=2) + "\n")
    torch.save({k: v.to(torch.float16) if v.is_floating_point() else v for k, v in state.items()}, folder / "weights.pt")
    parameters = sum(v.numel() for k, v in state.items() if v.is_floating_point() and "running" not in k)
    (folder / "submission.toml").write_text(
        TOML.format(
            name=name, budget=budget, parameters=parameters,
            description=DESCRIPTIONS[strategy].format(budget=budget),
            target="" if budget == 0 else ', "transfer@1/target_train"',
        )
    )  # fmt: skip


def finetune(strategy: str, budget: int, images, labels, config, source_state, args) -> tuple[dict, dict]:
    seed = args.seed + 1000 * STRATEGIES.index(strategy) + budget
    torch.manual_seed(seed)
    network = build_network(config)
    if strategy != "scratch":
        network.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in source_state.items()})
    trainable = set_trainable(network, "head" if strategy == "head" else "all")
    lr = {"head": args.lr, "all": args.lr / 3, "scratch": args.lr}[strategy]
    steps = args.steps * (2 if strategy == "scratch" else 1)
    optimizer = torch.optim.AdamW([p for p in network.parameters() if p.requires_grad], lr=lr, weight_decay=1e-4)
    generator = torch.Generator().manual_seed(seed)
    augment = Augment(rotate="d4", flip=True, max_shift_px=1.0, generator=generator)
    x_all = torch.from_numpy(images[:budget])
    y_all = torch.from_numpy(labels[:budget])
    batch = min(budget, 64)
    t0 = time.time()
    for _ in range(steps):
        network.train()
        if strategy == "head":
            freeze_batchnorm(network)
        idx = torch.randint(0, budget, (batch,), generator=generator)
        x = preprocess(augment(x_all[idx]), config)
        loss = torch.nn.functional.cross_entropy(network(x), y_all[idx])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    train = {
        "strategy": strategy, "budget": budget, "steps": steps, "batch_size": batch, "lr": lr,
        "trainable_parameters": trainable, "seed": seed, "final_train_loss": float(loss.item()),
        "seconds": round(time.time() - t0, 1),
    }  # fmt: skip
    return network.state_dict(), train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", default=None)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    task = get_task("transfer@1")
    source_config = json.loads((SOURCE / "config.json").read_text())
    source_state = torch.load(SOURCE / "weights.pt", map_location="cpu", weights_only=True)
    by_split = task.simulation.params["instrument_by_split"]
    src, tgt = get_instrument(by_split["train"]), get_instrument(by_split["target_train"])
    config = {
        "task": task.id,
        "architecture": source_config["architecture"],
        "classes": source_config["classes"],
        "softening": source_config["softening"],
        # DES counts -> SDSS counts for the same AB flux.
        "flux_scale": 10 ** (-0.4 * (tgt.zero_point_ab - src.zero_point_ab)),
        "source": {"entry": "morphology-cnn", "train": source_config["train"]},
    }
    pool = load_split(task, "target_train", home=args.home, build=True)
    images = np.asarray(pool.images)
    labels = pool.catalog["label"].to_numpy().astype(np.int64)
    write_entry("transfer-source-only", 0, "source-only", source_state, config, {"strategy": "source-only", "budget": 0})
    for strategy in STRATEGIES:
        for budget in BUDGETS:
            state, train = finetune(strategy, budget, images, labels, config, source_state, args)
            write_entry(f"transfer-{strategy}-b{budget}", budget, strategy, state, config, train)
            print(json.dumps(train), flush=True)


if __name__ == "__main__":
    main()
