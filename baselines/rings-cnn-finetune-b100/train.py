"""Recipe for the deep rings@1 baselines rings-cnn-finetune-b{10,50,100,200}: partial
fine-tuning of the simulation-trained morphology@1 CNN (../morphology-cnn) on real GZ DECaLS
rings.

For each label budget k: the morphology@1 network with a new 2-class classifier; trainable: its
last block, head convolution and classifier (galbench.train.set_trainable "last_k", k=1), the
frozen BatchNorm layers kept in eval mode; AdamW (lr 3e-4, weight decay 1e-2) on batches of
min(k, 32) of the first k train galaxies with D4 and +-2 px shift augmentation; every 10 steps
the val log loss (8-fold D4 average, as galbench.models.rings.FineTunedRingClassifier predicts) is measured and the best state kept;
stop after 8 evaluations without improvement or 400 steps (early stopping on val; nothing tuned
on test). flux_scale = 100: the value the val split chose for the linear probes at 100 and 200
labels (../rings-cnn-transfer-b100). Writes config.json and float16 weights.pt into
each ../rings-cnn-finetune-b<k>; the test accuracies printed are for the README only (the
receipts of `galbench evaluate` are the official numbers).

    GALBENCH_MIRROR=/path/to/shared/data python baselines/rings-cnn-finetune-b100/train.py --home DIR
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from galbench import get_task, load_split
from galbench.models import load_network
from galbench.models.classifier import build_network
from galbench.models.rings import d4_probabilities, prepare
from galbench.train import Augment, EarlyStopping, freeze_batchnorm, set_trainable

HERE = Path(__file__).resolve().parent
SOURCE = HERE.parent / "morphology-cnn"

BUDGETS = (10, 50, 100, 200)
FLUX_SCALE = 100.0
LR = 3e-4
WEIGHT_DECAY = 1e-2
MAX_STEPS = 400
EVAL_EVERY = 10
PATIENCE = 8


def val_loss(network: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    network.eval()
    p = d4_probabilities(network, x).clamp(1e-7, 1 - 1e-7)
    return float(F.nll_loss(p.log(), y))


def finetune(source_config: dict, x: torch.Tensor, y: torch.Tensor, x_val: torch.Tensor,
             y_val: torch.Tensor, seed: int) -> tuple[torch.nn.Module, dict]:
    torch.manual_seed(seed)  # the new classifier's initialisation
    _, _, network = load_network(SOURCE, build_network)
    network = network.cpu()
    network.reset_classifier(2)
    trainable = set_trainable(network, "last_k", k=1)
    optimizer = torch.optim.AdamW([p for p in network.parameters() if p.requires_grad],
                                  lr=LR, weight_decay=WEIGHT_DECAY)
    generator = torch.Generator().manual_seed(seed)
    augment = Augment(rotate="d4", flip=True, max_shift_px=2.0, integer_shift=True, generator=generator)
    stopper = EarlyStopping(patience=PATIENCE)
    batch = min(len(x), 32)
    history = [{"step": 0, "val_loss": val_loss(network, x_val, y_val)}]
    stopper.step(history[0]["val_loss"], network.state_dict())
    for step in range(1, MAX_STEPS + 1):
        network.train()
        freeze_batchnorm(network)
        index = torch.randperm(len(x), generator=generator)[:batch]
        loss = F.cross_entropy(network(augment(x[index])), y[index])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % EVAL_EVERY == 0:
            history.append({"step": step, "train_loss": loss.item(), "val_loss": val_loss(network, x_val, y_val)})
            if stopper.step(history[-1]["val_loss"], network.state_dict()):
                break
    network.load_state_dict(stopper.best_state)
    best = min(history, key=lambda h: h["val_loss"])
    return network.eval(), {"trainable_parameters": trainable, "steps_run": history[-1]["step"],
                            "best_step": best["step"], "best_val_loss": best["val_loss"],
                            "batch_size": batch, "history": history}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--home", default=None)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    task = get_task("rings@1")
    source_config = json.loads((SOURCE / "config.json").read_text())
    config = {"task": "rings@1", "architecture": source_config["architecture"],
              "classes": list(task.simulation.params["classes"]),
              "softening": source_config["softening"], "flux_scale": FLUX_SCALE}
    data = {}
    for split in ("train", "val", "test"):
        s = load_split(task, split, home=args.home, build=True)
        data[split] = (prepare(np.asarray(s.images[:]), config),
                       torch.from_numpy(s.catalog["label"].to_numpy().copy()), s.manifest.content_sha256)
    x_val, y_val, _ = data["val"]
    x_test, y_test, _ = data["test"]
    for k in BUDGETS:
        start = time.perf_counter()
        network, run = finetune(source_config, data["train"][0][:k], data["train"][1][:k], x_val, y_val, seed=k)
        seconds = time.perf_counter() - start
        p_val = d4_probabilities(network, x_val)
        p_test = d4_probabilities(network, x_test)
        result = {"budget": k, "val_accuracy": float((p_val.argmax(1) == y_val).double().mean()),
                  "test_accuracy": float((p_test.argmax(1) == y_test).double().mean()),
                  "best_step": run["best_step"], "steps_run": run["steps_run"],
                  "best_val_loss": run["best_val_loss"], "seconds": round(seconds, 1)}
        folder = HERE.parent / f"rings-cnn-finetune-b{k}"
        folder.mkdir(exist_ok=True)
        torch.save({name: v.half() if v.is_floating_point() else v for name, v in network.state_dict().items()},
                   folder / "weights.pt")
        out = {**config, "tta": True, "source": {"entry": "morphology-cnn", "train": source_config["train"]},
               "train": {"strategy": "last_k=1", "budget": k, "seed": k, "lr": LR, "weight_decay": WEIGHT_DECAY,
                         "max_steps": MAX_STEPS, "eval_every": EVAL_EVERY, "patience": PATIENCE,
                         **{key: v for key, v in run.items()}, "val_accuracy": result["val_accuracy"],
                         "seconds": result["seconds"], "train_split_content_sha256": data["train"][2],
                         "val_split_content_sha256": data["val"][2], "device": "cpu (2 cores)",
                         "threads": args.threads}}
        (folder / "config.json").write_text(json.dumps(out, indent=2) + "\n")
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
