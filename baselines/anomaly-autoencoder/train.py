"""Recipe for the anomaly@1 deep baselines: train a convolutional autoencoder (this folder) or a
VAE (../anomaly-vae, with --variational) on the normal galaxies of the train split.

    python baselines/anomaly-autoencoder/train.py [--home DIR]
    python baselines/anomaly-autoencoder/train.py --variational --out baselines/anomaly-vae

Training is label-free: mean squared error between the asinh-stretched image and its
reconstruction (plus, for the VAE, --kl-weight x the KL divergence to N(0, I)), AdamW, the
learning rate decayed by --lr-factor when the validation loss stalls for --lr-patience epochs,
early stopping after --patience epochs without improvement (the best epoch's weights are kept).
The validation loss is label-free too (it averages over every val object, anomalies included).
Augmentation on the fly: the 8 rotations and flips of the stamp (normal galaxies have no
preferred orientation).

Then the validation labels choose one thing, the score definition (galbench.models.autoencoder
SCORES: mean residual, top-50 residual pixels, smoothed top-50, ELBO), by val AUROC; anomaly@1
allows val labels for model selection, and submission.toml declares them.
Writes weights.pt (float16), config.json (with every score's val AUROC) and history.json.
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
from galbench.models.autoencoder import SCORES, build_network, kl_divergence, stretch
from galbench.sim import get_instrument

HERE = Path(__file__).resolve().parent


def random_dihedral(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    k = int(torch.randint(0, 4, (1,), generator=generator))
    if int(torch.randint(0, 2, (1,), generator=generator)):
        x = torch.flip(x, dims=[-1])
    return torch.rot90(x, k, dims=(-2, -1))


def reconstruct(network, images: np.ndarray, softening: float, batch_size: int, device: str):
    """Stretched inputs' residual scores (every SCORES entry) and the mean loss terms."""
    network.eval()
    scores = {name: [] for name in SCORES}
    mse_sum, kl_sum = 0.0, 0.0
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            s = stretch(torch.from_numpy(np.asarray(images[start : start + batch_size])).to(device), softening)
            r, mean, log_var = network(s)
            kl = kl_divergence(mean, log_var) if log_var is not None else torch.zeros(len(s), device=device)
            mse_sum += (s - r).pow(2).mean(dim=(1, 2, 3)).sum().item()
            kl_sum += kl.sum().item()
            for name, fn in SCORES.items():
                scores[name].append(fn(s, r, kl).cpu().numpy())
    n = len(images)
    return {k: np.concatenate(v) for k, v in scores.items()}, mse_sum / n, kl_sum / n


def auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Mann-Whitney AUROC (ties count half); only to pick the score definition."""
    from scipy.stats import rankdata

    ranks = rankdata(scores)
    pos = labels.astype(bool)
    n_pos, n_neg = pos.sum(), (~pos).sum()
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", default=None)
    parser.add_argument("--variational", action="store_true", help="train a VAE")
    parser.add_argument("--channels", type=int, nargs="+", default=[16, 32, 64, 64],
                        help="encoder widths, one stride-2 level each (the decoder mirrors them)")
    parser.add_argument("--latent", type=int, default=32)
    parser.add_argument("--kl-weight", type=float, default=1e-2,
                        help="weight of the KL term relative to the per-pixel MSE (VAE only)")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--samples-per-epoch", type=int, default=20000,
                        help="objects drawn (without replacement) from the train split per epoch")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--weight-decay", type=float, default=1e-5)
    parser.add_argument("--lr-factor", type=float, default=0.3)
    parser.add_argument("--lr-patience", type=int, default=1)
    parser.add_argument("--patience", type=int, default=3, help="early-stopping patience (epochs)")
    parser.add_argument("--n-train", type=int, default=None, help="first N training objects")
    parser.add_argument("--n-val", type=int, default=None)
    parser.add_argument("--max-minutes", type=float, default=float("inf"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch CPU threads")
    parser.add_argument("--out", default=str(HERE))
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    task = get_task("anomaly@1")
    workers = os.cpu_count() or 1
    train = load_split(task, "train", args.n_train, home=args.home, build=True, workers=workers)
    val = load_split(task, "val", args.n_val, home=args.home, build=True, workers=workers)
    train_x, val_x = np.asarray(train.images), np.asarray(val.images)
    val_labels = val.catalog["is_anomaly"].to_numpy()
    sky_sigma = get_instrument(task.simulation.instrument).sky_sigma
    config = {
        "task": task.id,
        "size": task.image_shape[-1],
        "channels": args.channels,
        "latent": args.latent,
        "variational": args.variational,
        "kl_weight": args.kl_weight if args.variational else 0.0,
        "softening": round(2.5 * sky_sigma, 5),
        "train": {
            **{k: v for k, v in vars(args).items() if k not in ("home", "out")},
            "split_content_sha256": train.manifest.content_sha256,
            "n_train": train.n,
            "n_val": val.n,
        },
    }
    network = build_network(config).to(device)
    optimizer = torch.optim.AdamW(network.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=args.lr_factor, patience=args.lr_patience)
    generator = torch.Generator().manual_seed(args.seed)
    history, best, best_state, stale = [], math.inf, None, 0
    start_time = time.time()
    for epoch in range(1, args.epochs + 1):
        network.train()
        lr_used = optimizer.param_groups[0]["lr"]
        order = torch.randperm(len(train_x), generator=generator).numpy()[: args.samples_per_epoch]
        t0, total, count = time.time(), 0.0, 0
        for start in range(0, len(order), args.batch_size):
            idx = np.sort(order[start : start + args.batch_size])
            s = stretch(random_dihedral(torch.from_numpy(train_x[idx]), generator).to(device), config["softening"])
            r, mean, log_var = network(s)
            loss = (s - r).pow(2).mean()
            if args.variational:
                # Per-pixel MSE plus a KL per latent dimension scaled to the same footing.
                loss = loss + args.kl_weight * kl_divergence(mean, log_var).mean() / config["latent"]
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
            count += len(idx)
        train_seconds = time.time() - t0
        val_scores, val_mse, val_kl = reconstruct(network, val_x, config["softening"], 512, device)
        val_loss = val_mse + (args.kl_weight * val_kl / config["latent"] if args.variational else 0.0)
        scheduler.step(val_loss)
        history.append(
            {
                "epoch": epoch,
                "train_loss": total / count,
                "val_loss": val_loss,
                "val_mse": val_mse,
                "val_kl": val_kl,
                "val_auroc": {k: auroc(v, val_labels) for k, v in val_scores.items()},
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

    # The score definition: the best val AUROC of the kept (best-loss) weights, as the
    # submission will run them (float16-rounded).
    network.load_state_dict({k: v.float() for k, v in best_state.items()})
    val_scores, _, _ = reconstruct(network, val_x, config["softening"], 512, device)
    candidates = {k: auroc(v, val_labels) for k, v in val_scores.items() if args.variational or k != "elbo"}
    config["score"] = max(candidates, key=candidates.get)
    config["val_auroc_by_score"] = candidates
    config["train"].update(
        best_val_loss=best,
        epochs_run=len(history),
        wall_minutes=round((time.time() - start_time) / 60, 1),
        device=device,
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.save(best_state, out / "weights.pt")
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    (out / "history.json").write_text(json.dumps(history, indent=2) + "\n")
    print(f"score {config['score']} (val AUROC {candidates})")
    print(f"wrote {out}/weights.pt, config.json, history.json")


if __name__ == "__main__":
    main()
