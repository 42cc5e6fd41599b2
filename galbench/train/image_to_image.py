"""One training loop for the image-to-image baselines (U-Nets for clumps@1 and deblending@1).

A task-specific script supplies the inputs and target tensors of its train and val splits and a
loss ``loss_fn(network_output, inputs, targets) -> scalar``; this loop does the rest with the
toolkit: the 8 exact symmetries of the square as on-the-fly augmentation (inputs and targets
transformed together; :class:`~galbench.train.Augment` with ``rotate="d4"``), an optional
Gaussian-noise layer on the stretched input, AdamW with exponential learning-rate decay per
epoch, early stopping on the validation loss (the best epoch's weights are kept), a
:class:`~galbench.train.History` with its plot, and weights saved as float16.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from galbench.train.augment import Augment
from galbench.train.early_stopping import EarlyStopping
from galbench.train.history import History
from galbench.train.layers import GaussianNoise
from galbench.train.schedules import scheduler


@dataclass
class FitSettings:
    epochs: int = 20
    batch_size: int = 64
    lr: float = 2e-3
    lr_decay: float = 0.9
    weight_decay: float = 1e-4
    input_noise: float = 0.0
    patience: int = 4
    max_minutes: float = float("inf")
    seed: int = 0
    extra_metrics: dict[str, Callable] = field(default_factory=dict)


def add_arguments(parser, out: Path) -> None:
    """The command-line options every image-to-image recipe shares (data, network size,
    optimisation, early stopping, threads, output folder, warm start)."""
    parser.add_argument("--home", default=None)
    parser.add_argument("--n-train", type=int, default=None, help="first n train objects (default all)")
    parser.add_argument("--n-val", type=int, default=1000)
    parser.add_argument("--base", type=int, default=16, help="channels of the first U-Net level")
    parser.add_argument("--depth", type=int, default=4, help="U-Net levels")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--lr-decay", type=float, default=0.85, help="exponential decay per epoch")
    parser.add_argument("--patience", type=int, default=3)
    parser.add_argument("--max-minutes", type=float, default=float("inf"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(out))
    parser.add_argument("--init", default=None, help="start from these weights (continue a run)")


def settings_from_args(args, **extra) -> FitSettings:
    return FitSettings(
        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, lr_decay=args.lr_decay,
        patience=args.patience, max_minutes=args.max_minutes, **extra,
    )  # fmt: skip


def warm_start(network: torch.nn.Module, path: str | Path | None, config: dict, lr: float) -> None:
    """Load ``path`` (float16 weights) into ``network`` and record it in ``config`` (no-op for
    None), to continue a run at another learning rate."""
    if path is None:
        return
    import hashlib

    state = torch.load(path, map_location="cpu", weights_only=True)
    network.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    config["initialised_from"] = {"weights_sha256": hashlib.sha256(Path(path).read_bytes()).hexdigest(), "lr": lr}


def _batches(n: int, batch_size: int, generator: torch.Generator | None):
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    for start in range(0, n, batch_size):
        yield order[start : start + batch_size]


def validation_loss(network, prepare, loss_fn, inputs, targets, batch_size) -> float:
    """Mean loss over a split, batch by batch, in eval mode."""
    network.eval()
    total = 0.0
    with torch.inference_mode():
        for idx in _batches(len(inputs), batch_size, None):
            x, y = inputs[idx], targets[idx]
            total += loss_fn(network(prepare(x)), x, y).item() * len(idx)
    return total / len(inputs)


def fit(
    network: torch.nn.Module,
    prepare: Callable[[torch.Tensor], torch.Tensor],
    loss_fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
    train: tuple[torch.Tensor, torch.Tensor],
    val: tuple[torch.Tensor, torch.Tensor],
    settings: FitSettings,
    out: Path,
    config: dict,
) -> History:
    """Train ``network`` on ``(inputs [N, 1, H, W] e-/s, targets [N, K, H, W])``.

    ``prepare`` maps raw inputs to the network's input (the stretch). Writes ``weights.pt``
    (float16, the best epoch), ``config.json`` (``config`` plus the training record),
    ``history.json`` and ``history.png`` to ``out``; returns the history.
    """
    out = Path(out)
    torch.manual_seed(settings.seed)
    generator = torch.Generator().manual_seed(settings.seed)
    augment = Augment(rotate="d4", flip=True, generator=torch.Generator().manual_seed(settings.seed + 1))
    noise = GaussianNoise(settings.input_noise, generator=torch.Generator().manual_seed(settings.seed + 2))
    network = network.to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(network.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    schedule = scheduler(optimizer, "exponential", rate=settings.lr_decay)
    stopping = EarlyStopping(patience=settings.patience, mode="min")
    history = History()
    started = time.perf_counter()
    (x_train, y_train), (x_val, y_val) = train, val
    for epoch in range(1, settings.epochs + 1):
        network.train()
        noise.train()
        t0, total = time.perf_counter(), 0.0
        for idx in _batches(len(x_train), settings.batch_size, generator):
            params = augment.sample(len(idx))
            x, y = augment.apply(x_train[idx], params), augment.apply(y_train[idx], params)
            z = noise(prepare(x)).contiguous(memory_format=torch.channels_last)
            loss = loss_fn(network(z), x, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
        schedule.step()
        val_loss = validation_loss(network, prepare, loss_fn, x_val, y_val, 4 * settings.batch_size)
        row = {
            "epoch": epoch,
            "train_loss": total / len(x_train),
            "val_loss": val_loss,
            "lr": optimizer.param_groups[0]["lr"],
            "seconds": time.perf_counter() - t0,
        }
        for name, metric in settings.extra_metrics.items():
            row[name] = metric(network)
        history.log(**row)
        print(json.dumps(row), flush=True)
        stop = stopping.step(val_loss, network.state_dict())
        if stop or (time.perf_counter() - started) / 60 > settings.max_minutes:
            break
    network.load_state_dict(stopping.best_state)
    torch.save({k: v.half() if v.is_floating_point() else v for k, v in network.state_dict().items()}, out / "weights.pt")
    record = {
        **config,
        "training": {
            "best_epoch": stopping.best_epoch,
            "best_val_loss": stopping.best,
            "epochs_run": len(history),
            "minutes": (time.perf_counter() - started) / 60,
            "train_objects": len(x_train),
            "val_objects": len(x_val),
            "settings": {k: v for k, v in vars(settings).items() if k != "extra_metrics"},
            "threads": torch.get_num_threads(),
        },
    }
    (out / "config.json").write_text(json.dumps(record, indent=2) + "\n")
    history.save_json(out / "history.json")
    history.plot(out / "history.png")
    return history


def load_tensors(split, n: int | None, targets: Callable) -> tuple[torch.Tensor, torch.Tensor]:
    """``(images, targets(split, n))`` of the first ``n`` objects of a split as float32 tensors."""
    n = split.n if n is None else min(n, split.n)
    images = torch.from_numpy(np.ascontiguousarray(split.images[:n], dtype=np.float32))
    return images, torch.from_numpy(np.ascontiguousarray(targets(split, n), dtype=np.float32))
