"""Recipe for the morphometry@1 deep baseline: train a timm CNN on the train split.

    python baselines/morphometry-cnn/train.py [--home DIR] [--architecture regnetx_002]

Training: AdamW with learning-rate decay, either a cosine decay to zero over --epochs
(--schedule cosine) or a step by --lr-factor whenever the validation loss has not improved for
--lr-patience epochs (--schedule plateau, the default); training stops early when the validation
loss has not improved for --patience epochs, and the weights of the best validation epoch are
kept.
Augmentation on the fly: the 8 rotations/flips of the square stamp (the stamp centre is the
galaxy centre up to 0.5 px), with the position angle transformed accordingly (a 90-degree
rotation adds 90 deg; a left-right flip maps PA to 180 - PA).
Writes weights.pt (float16 state dict), config.json and history.json next to this file.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

import numpy as np
import torch

from galbench import get_task, load_split

HERE = Path(__file__).resolve().parent
import sys  # noqa: E402

sys.path.insert(0, str(HERE))
from model import build_network, encode_targets, preprocess  # noqa: E402


def dihedral(images: torch.Tensor, targets: torch.Tensor, pa_col: int, generator: torch.Generator):
    """Apply a random element of the square's symmetry group to each sample, PA following."""
    k = torch.randint(0, 4, (len(images),), generator=generator)
    flip = torch.randint(0, 2, (len(images),), generator=generator).bool()
    images, targets = images.clone(), targets.clone()
    for f in (False, True):
        for r in range(4):
            m = (k == r) & (flip == f)
            if not m.any():
                continue
            x = images[m]
            pa = targets[m, pa_col]
            if f:  # mirror the column (x) axis: angle from +x becomes 180 - angle
                x = torch.flip(x, dims=[-1])
                pa = 180.0 - pa
            # rot90 with dims (-2, -1) turns +x (columns) towards +y (rows) for origin-lower
            # images: counter-clockwise by 90 deg, so PA grows by 90.
            x = torch.rot90(x, r, dims=(-1, -2))
            pa = pa + 90.0 * r
            images[m] = x
            targets[m, pa_col] = torch.remainder(pa, 180.0)
    return images, targets


def evaluate_loss(network, images, targets, config, batch_size, device) -> float:
    network.eval()
    total, count = 0.0, 0
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            x = torch.from_numpy(images[start : start + batch_size]).to(device)
            y = encode_targets(torch.from_numpy(targets[start : start + batch_size]), config).to(device)
            out = network(preprocess(x, config["softening"]))
            total += torch.nn.functional.mse_loss(out, y, reduction="sum").item()
            count += y.numel()
    return total / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", default=None)
    parser.add_argument("--architecture", default="regnetx_002")
    parser.add_argument("--epochs", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--weight-decay", type=float, default=1e-4)
    parser.add_argument("--schedule", choices=["cosine", "plateau"], default="plateau")
    parser.add_argument("--lr-factor", type=float, default=0.3)
    parser.add_argument("--lr-patience", type=int, default=1)
    parser.add_argument("--patience", type=int, default=3, help="early-stopping patience (epochs)")
    parser.add_argument("--n-train", type=int, default=None, help="first N training objects")
    parser.add_argument("--n-val", type=int, default=None)
    parser.add_argument("--max-minutes", type=float, default=float("inf"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch CPU threads")
    parser.add_argument("--log-every", type=int, default=50, help="print progress every N batches")
    parser.add_argument("--out", default=str(HERE))
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    task = get_task("morphometry@1")
    train = load_split(task, "train", args.n_train, home=args.home, build=True, workers=os.cpu_count() or 1)
    val = load_split(task, "val", args.n_val, home=args.home, build=True, workers=os.cpu_count() or 1)
    train_x, train_y = np.asarray(train.images), train.targets().astype(np.float32)
    val_x, val_y = np.asarray(val.images), val.targets().astype(np.float32)

    names = list(task.target_names)
    inst_sigma = 0.0039  # hst_wfc3_f160w sky sigma in e-/s (galbench info morphometry)
    config = {
        "task": task.id,
        "architecture": args.architecture,
        "targets": names,
        "mean": {n: float(train_y[:, j].mean()) for j, n in enumerate(names) if n != "pa"},
        "std": {n: float(train_y[:, j].std()) for j, n in enumerate(names) if n != "pa"},
        "softening": round(2.5 * inst_sigma, 4),
        "train": {
            **{k: v for k, v in vars(args).items() if k not in ("home", "out")},
            "split_content_sha256": train.manifest.content_sha256,
            "n_train": train.n,
            "n_val": val.n,
        },
    }
    network = build_network(config).to(device)
    optimizer = torch.optim.AdamW(network.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    if args.schedule == "cosine":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs)
    else:
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, factor=args.lr_factor, patience=args.lr_patience
        )
    generator = torch.Generator().manual_seed(args.seed)
    pa_col = names.index("pa")
    history, best, best_state, stale = [], math.inf, None, 0
    start_time = time.time()
    for epoch in range(1, args.epochs + 1):
        network.train()
        lr_used = optimizer.param_groups[0]["lr"]
        order = torch.randperm(len(train_x), generator=generator).numpy()
        t0, total, count = time.time(), 0.0, 0
        for start in range(0, len(order), args.batch_size):
            idx = np.sort(order[start : start + args.batch_size])
            x, y = dihedral(torch.from_numpy(train_x[idx]), torch.from_numpy(train_y[idx]), pa_col, generator)
            x, y = x.to(device), encode_targets(y, config).to(device)
            loss = torch.nn.functional.mse_loss(network(preprocess(x, config["softening"])), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
            count += len(idx)
            if args.log_every and (start // args.batch_size) % args.log_every == 0:
                print(f"  epoch {epoch} {count}/{len(order)} loss {total / count:.4f} "
                      f"{count / (time.time() - t0):.0f} img/s", flush=True)
        train_seconds = time.time() - t0
        val_loss = evaluate_loss(network, val_x, val_y, config, 1024, device)
        if args.schedule == "cosine":
            scheduler.step()
        else:
            scheduler.step(val_loss)
        history.append(
            {
                "epoch": epoch,
                "train_loss": total / count,
                "val_loss": val_loss,
                "lr": lr_used,
                "train_images_per_second": count / train_seconds,
            }
        )
        print(json.dumps(history[-1]), flush=True)
        if val_loss < best:
            best, stale = val_loss, 0
            best_state = {k: v.detach().to("cpu", torch.float16).clone() for k, v in network.state_dict().items()}
        else:
            stale += 1
            if stale >= args.patience:
                print(f"early stop: no val improvement for {args.patience} epochs")
                break
        if (time.time() - start_time) / 60 > args.max_minutes:
            print(f"stopping: time budget of {args.max_minutes} min reached")
            break

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    config["train"]["best_val_loss"] = best
    config["train"]["epochs_run"] = len(history)
    config["train"]["wall_minutes"] = round((time.time() - start_time) / 60, 1)
    config["train"]["device"] = device
    torch.save(best_state, out / "weights.pt")
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    (out / "history.json").write_text(json.dumps(history, indent=2) + "\n")
    print(f"wrote {out}/weights.pt, config.json, history.json")


if __name__ == "__main__":
    main()
