"""Recipe for the morphology@1 deep baseline: train a timm CNN classifier with the galbench
training toolkit (galbench.train).

    python baselines/morphology-cnn/train.py [--home DIR] [--architecture mobilenetv3_small_050]

Cross-entropy, AdamW, exponential learning-rate decay per epoch (--lr-decay), a Gaussian-noise
input layer (training only, --input-noise in stretched units), on-the-fly augmentation (the 8
rotations/flips of the stamp, sub-pixel shifts and a small zoom, all flux-preserving), early
stopping on the validation loss with --patience (the best epoch's weights are kept). Writes
weights.pt (float16), config.json, history.json and history.png (loss and accuracy vs epoch).
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
from galbench.sim import get_instrument
from galbench.models.classifier import build_network, preprocess
from galbench.train import Augment, EarlyStopping, GaussianNoise, History, scheduler

HERE = Path(__file__).resolve().parent


def evaluate(network, images, labels, config, batch_size, device) -> tuple[float, float]:
    """Mean cross-entropy and accuracy."""
    network.eval()
    loss, correct = 0.0, 0
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            x = preprocess(torch.from_numpy(np.asarray(images[start : start + batch_size])).to(device), config)
            y = torch.from_numpy(labels[start : start + batch_size]).to(device)
            logits = network(x)
            loss += torch.nn.functional.cross_entropy(logits, y, reduction="sum").item()
            correct += (logits.argmax(1) == y).sum().item()
    return loss / len(images), correct / len(images)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", default=None)
    parser.add_argument("--architecture", default="mobilenetv3_small_050")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--lr-decay", type=float, default=0.9, help="exponential decay per epoch")
    parser.add_argument("--weight-decay", type=float, default=1e-4)
    parser.add_argument("--input-noise", type=float, default=0.05)
    parser.add_argument("--patience", type=int, default=6)
    parser.add_argument("--max-minutes", type=float, default=float("inf"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--out", default=str(HERE))
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    task = get_task("morphology@1")
    train = load_split(task, "train", home=args.home, build=True)
    val = load_split(task, "val", home=args.home, build=True)
    train_x, val_x = np.asarray(train.images), np.asarray(val.images)
    train_y = train.catalog["label"].to_numpy().astype(np.int64)
    val_y = val.catalog["label"].to_numpy().astype(np.int64)
    sky_sigma = get_instrument(task.simulation.params["instrument_by_split"]["train"]).sky_sigma
    config = {
        "task": task.id,
        "architecture": args.architecture,
        "classes": list(task.simulation.params["classes"]),
        "softening": round(2.5 * sky_sigma, 4),
        # Test-time augmentation over the 8 rotations/flips, chosen on val (README.md).
        "tta": True,
        "train": {
            **{k: v for k, v in vars(args).items() if k not in ("home", "out")},
            "split_content_sha256": train.manifest.content_sha256,
            "n_train": train.n,
            "n_val": val.n,
        },
    }
    backbone = build_network(config).to(device)
    noise = GaussianNoise(args.input_noise).to(device)
    optimizer = torch.optim.AdamW(backbone.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    schedule = scheduler(optimizer, "exponential", rate=args.lr_decay)
    generator = torch.Generator().manual_seed(args.seed)
    augment = Augment(rotate="d4", flip=True, max_shift_px=1.0, zoom=(0.9, 1.1), generator=generator)
    stopper = EarlyStopping(patience=args.patience)
    history = History()
    start_time = time.time()
    for epoch in range(1, args.epochs + 1):
        backbone.train()
        noise.train()
        lr_used = optimizer.param_groups[0]["lr"]
        order = torch.randperm(len(train_x), generator=generator).numpy()
        t0, total, correct, count = time.time(), 0.0, 0, 0
        for start in range(0, len(order), args.batch_size):
            idx = np.sort(order[start : start + args.batch_size])
            x = augment(torch.from_numpy(train_x[idx]))
            x = noise(preprocess(x.to(device), config))
            y = torch.from_numpy(train_y[idx]).to(device)
            logits = backbone(x)
            loss = torch.nn.functional.cross_entropy(logits, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
            correct += (logits.argmax(1) == y).sum().item()
            count += len(idx)
        schedule.step()
        seconds = time.time() - t0
        val_loss, val_accuracy = evaluate(backbone, val_x, val_y, config, 512, device)
        history.log(
            epoch=epoch, train_loss=total / count, val_loss=val_loss,
            train_accuracy=correct / count, val_accuracy=val_accuracy, lr=lr_used,
            train_images_per_second=count / seconds,
        )  # fmt: skip
        print(json.dumps(history.rows[-1]), flush=True)
        if stopper.step(val_loss, backbone.state_dict()):
            print(f"early stop: no val improvement for {args.patience} epochs")
            break
        if (time.time() - start_time) / 60 > args.max_minutes:
            print(f"stopping: time budget of {args.max_minutes} min reached")
            break

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    config["train"].update(
        best_val_loss=stopper.best,
        best_epoch=stopper.best_epoch,
        epochs_run=len(history.rows),
        wall_minutes=round((time.time() - start_time) / 60, 1),
        device=device,
        parameters=sum(p.numel() for p in backbone.parameters()),
    )
    torch.save({k: v.to(torch.float16) if v.is_floating_point() else v for k, v in stopper.best_state.items()}, out / "weights.pt")
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    history.save_json(out / "history.json")
    history.plot(out / "history.png")
    print(f"wrote {out}/weights.pt, config.json, history.json, history.png")


if __name__ == "__main__":
    main()
