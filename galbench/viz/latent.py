"""Figures of a trained VAE's latent space: a 2-D projection coloured by physical parameters, and
a strip of images decoded along a straight line between two galaxies' latent means.

The model is duck-typed (the anomaly-detection baselines match it): ``encode(images) -> means``
and ``decode(z) -> images``, with ``images`` float32 ``[B, C, H, W]`` in the task's image units
(e-/s per pixel) and ``means``/``z`` float32 ``[B, D]``. Everything here is numpy in, numpy out:
no torch is imported, whatever the model uses inside.

Determinism: matplotlib's defaults (``rcdefaults``, so no user matplotlibrc applies) with a fixed
font, ``svg.hashsalt`` fixed, a fixed figure size instead of a tight bounding box (so the pixel
size is known), and no ``Software`` entry in the PNG metadata (no date is ever written), so the
same inputs give byte-identical PNGs with one matplotlib version. matplotlib is imported only
when a figure is drawn, and only through its object API (``Figure`` + the Agg canvas): pyplot's
global state and the session's backend are never touched.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from galbench.errors import PredictionError, SubmissionError

__all__ = [
    "draw_latent_figures",
    "encode_images",
    "interpolation_endpoints",
    "latent_projection",
    "noise_scale",
    "plot_interpolation",
    "plot_latent_space",
]

#: Inches per scatter panel of :func:`plot_latent_space` (width, height); at ``dpi=100`` a panel
#: is 400 x 350 pixels.
PANEL_SIZE_IN = (4.0, 3.5)
#: Inches per column of :func:`plot_interpolation` and its height; at ``dpi=100`` a column is
#: 125 pixels wide and the strip 275 pixels high.
STRIP_COLUMN_IN = 1.25
STRIP_HEIGHT_IN = 2.75

_RC = {
    "svg.hashsalt": "galbench-viz",
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans"],
    "font.size": 8.0,
    "axes.titlesize": 8.0,
    "figure.titlesize": 9.0,
    "image.interpolation": "nearest",
    "path.simplify": False,
}
_PNG_METADATA = {"Software": None}  # matplotlib writes its version there; PNGs carry no date


# -- pure array helpers --------------------------------------------------------------------------


def latent_projection(means: np.ndarray) -> tuple[np.ndarray, str]:
    """2-D coordinates of latent means ``[N, D]`` and an axis-title label saying what they are.

    ``D == 2``: the means themselves. ``D > 2``: their projection on the first two principal
    components (the same numbers as ``sklearn.decomposition.PCA(2, svd_solver="full")``: centred
    data, SVD), each component's sign chosen so that its largest-magnitude loading is positive
    (sklearn >= 1.5's convention), so the figure does not flip between runs or libraries.
    Returns ``(coords [N, 2] float64, label)``.
    """
    means = np.asarray(means, dtype=np.float64)
    if means.ndim != 2 or means.shape[1] < 2:
        raise ValueError(f"latent means must be [N, D] with D >= 2, got shape {means.shape}")
    if not np.isfinite(means).all():
        raise ValueError("latent means hold NaN or infinite values")
    n, d = means.shape
    if d == 2:
        return means.copy(), "2-D latent means"
    if n < 2:
        raise ValueError(f"a PCA of {d}-D latent means needs at least 2 objects, got {n}")
    centred = means - means.mean(axis=0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    components = vt[:2]
    biggest = np.argmax(np.abs(components), axis=1)
    signs = np.sign(components[np.arange(2), biggest])
    components = components * signs[:, None]
    coords = centred @ components.T
    total = float(np.sum(s**2))
    if total > 0:
        share = float(np.sum(s[:2] ** 2)) / total
        label = f"PCA of {d}-D latent means (explains {share:.0%} of variance)"
    else:
        label = f"PCA of {d}-D latent means (all means equal: no variance)"
    return coords, label


def interpolation_endpoints(
    values: np.ndarray, *, keep: np.ndarray | None = None
) -> tuple[int, int]:
    """Indices of the objects with the lowest and the highest finite ``values`` ``[N]``, among
    those where ``keep`` ``[N]`` (bool) is true, e.g. ``catalog["is_anomaly"] == 0``. Ties go to
    the first object, so the choice is deterministic."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1:
        raise ValueError(f"values must be 1-D [N], got shape {values.shape}")
    usable = np.isfinite(values)
    if keep is not None:
        keep = np.asarray(keep, dtype=bool)
        if keep.shape != values.shape:
            raise ValueError(f"keep has shape {keep.shape}, values {values.shape}")
        usable &= keep
    where = np.flatnonzero(usable)
    if where.size < 2:
        raise ValueError(
            f"need two objects with finite values to interpolate between, found {where.size}"
        )
    chosen = values[where]
    return int(where[np.argmin(chosen)]), int(where[np.argmax(chosen)])


def noise_scale(images: np.ndarray) -> float:
    """Robust noise sigma (e-/s per pixel) of images ``[..., H, W]``: 1.4826 x the median absolute
    deviation of their border pixels (a frame ``max(1, min(H, W) // 8)`` pixels wide, mostly
    sky). Falls back to 1% of the largest absolute pixel (noiseless images), then to 1."""
    images = np.asarray(images, dtype=np.float64)
    h, w = images.shape[-2:]
    b = max(1, min(h, w) // 8)
    frame = np.ones((h, w), dtype=bool)
    frame[b : h - b, b : w - b] = False
    border = images[..., frame].ravel()
    border = border[np.isfinite(border)]
    if border.size:
        sigma = 1.4826 * float(np.median(np.abs(border - np.median(border))))
        if sigma > 0:
            return sigma
    peak = float(np.nanmax(np.abs(images))) if np.isfinite(images).any() else 0.0
    return 0.01 * peak if peak > 0 else 1.0


# -- calling the model ---------------------------------------------------------------------------


def _model_method(model: Any, name: str, where: str) -> Any:
    method = getattr(model, name, None)
    if not callable(method):
        wanted = {
            "encode": "encode(images [B, C, H, W]) -> latent means [B, D]",
            "decode": "decode(z [B, D]) -> images [B, C, H, W]",
        }
        raise SubmissionError(
            f"{where}: the model ({type(model).__name__}) has no {name}() method; latent figures "
            f"need a VAE-like model with {wanted['encode']} and {wanted['decode']}"
        )
    return method


def _call(method: Any, argument: np.ndarray, what: str, where: str) -> np.ndarray:
    try:
        result = method(argument)
    except Exception as exc:
        raise SubmissionError(f"{where}: {what} raised {type(exc).__name__}: {exc}") from exc
    return np.asarray(result)


def encode_images(
    model: Any, images: Any, *, batch_size: int = 256, where: str = "model"
) -> np.ndarray:
    """Latent means ``[N, D]`` float64 of ``images`` (``[N, C, H, W]``, anything with ``len`` and
    slicing, e.g. a split's memory-mapped images), encoded in batches of ``batch_size``. The model
    gets read-only float32 batches, as in ``galbench.runner``."""
    encode = _model_method(model, "encode", where)
    n = len(images)
    if n == 0:
        raise ValueError("no images to encode")
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    parts = []
    for start in range(0, n, batch_size):
        batch = np.ascontiguousarray(images[start : start + batch_size], dtype=np.float32)
        if batch.ndim != 4:
            raise ValueError(f"images must be [N, C, H, W], got a batch of shape {batch.shape}")
        batch.setflags(write=False)
        means = _call(encode, batch, f"encode() on the batch at object {start}", where)
        if means.ndim != 2 or len(means) != len(batch) or means.shape[1] < 2:
            raise PredictionError(
                f"{where}: encode() returned shape {means.shape} for {len(batch)} images at object "
                f"{start}; expected [{len(batch)}, D] latent means with D >= 2"
            )
        if parts and means.shape[1] != parts[0].shape[1]:
            raise PredictionError(
                f"{where}: encode() returned D={means.shape[1]} at object {start}, "
                f"D={parts[0].shape[1]} before"
            )
        if not np.isfinite(means).all():
            raise PredictionError(f"{where}: encode() returned non-finite values at object {start}")
        parts.append(means.astype(np.float64))
    return np.concatenate(parts)


# -- figures -------------------------------------------------------------------------------------


def _check_values(values: Mapping[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
    if not values:
        raise ValueError("values is empty: give at least one physical parameter to colour by")
    checked = {}
    for name, column in values.items():
        try:
            array = np.asarray(column, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"values[{name!r}] is not numeric") from None
        if array.ndim != 1 or len(array) != n:
            raise ValueError(
                f"values[{name!r}] has shape {array.shape}; expected [{n}], one value per image"
            )
        bad = np.flatnonzero(~np.isfinite(array))
        if bad.size:
            raise ValueError(
                f"values[{name!r}] has {bad.size} non-finite value(s), e.g. at index {int(bad[0])}"
            )
        checked[str(name)] = array
    return checked


def _save(fig: Any, out: str | os.PathLike[str]) -> Path:
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", metadata=_PNG_METADATA)
    return path


def _figure(figsize: tuple[float, float], dpi: int) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


@contextlib.contextmanager
def _rc_context() -> Iterator[None]:
    """matplotlib's defaults plus :data:`_RC`, whatever the user's matplotlibrc says."""
    import matplotlib

    with matplotlib.rc_context():
        matplotlib.rcdefaults()
        matplotlib.rcParams.update(_RC)
        yield


def plot_latent_space(
    model: Any,
    images: Any,
    values: Mapping[str, np.ndarray],
    out: str | os.PathLike[str],
    *,
    batch_size: int = 256,
    labels: Mapping[str, str] | None = None,
    highlight: np.ndarray | None = None,
    highlight_label: str = "anomalies",
    dpi: int = 100,
    where: str = "model",
) -> Path:
    """Draw the model's latent means of ``images`` in 2-D, one panel per physical parameter.

    Parameters
    ----------
    images:
        ``[N, C, H, W]`` float32 in the task's image units (a numpy array or a split's images).
    values:
        parameter name -> ``[N]`` finite values (e.g. ``n_bulge``, ``log10_r_disk``,
        ``bulge_to_total``); each colours one panel (viridis), with a colorbar labelled
        ``labels[name]`` (default: the name).
    highlight:
        optional ``[N]`` bool; those objects are also marked with red crosses on every panel
        (e.g. the anomalies), named ``highlight_label`` in a legend.
    where:
        how error messages name the model (e.g. its submission folder).

    The panels share axes: the latent means themselves when D == 2, else their first two
    principal components (:func:`latent_projection`); the title says which. The PNG is
    ``400 * len(values)`` x 350 pixels at ``dpi=100``. Returns ``out`` as a ``Path``.
    """
    n = len(images)
    checked = _check_values(values, n)
    if highlight is not None:
        highlight = np.asarray(highlight)
        if highlight.shape != (n,):
            raise ValueError(f"highlight has shape {highlight.shape}; expected [{n}]")
        highlight = highlight.astype(bool)
    labels = dict(labels or {})
    means = encode_images(model, images, batch_size=batch_size, where=where)
    coords, projection = latent_projection(means)
    x_label, y_label = ("z1", "z2") if means.shape[1] == 2 else ("PC 1", "PC 2")
    size = float(np.clip(3000.0 / n, 1.0, 16.0))  # small points, larger for small samples

    k = len(checked)
    with _rc_context():
        fig = _figure((PANEL_SIZE_IN[0] * k, PANEL_SIZE_IN[1]), dpi)
        axes = fig.subplots(1, k, sharex=True, sharey=True, squeeze=False)[0]
        for ax, (name, array) in zip(axes, checked.items()):
            points = ax.scatter(
                coords[:, 0], coords[:, 1], c=array, cmap="viridis", s=size, linewidths=0
            )
            if highlight is not None and highlight.any():
                ax.scatter(
                    coords[highlight, 0], coords[highlight, 1], marker="x", color="red",
                    s=max(size * 2, 8.0), linewidths=0.6,
                    label=f"{highlight_label} ({highlight.sum()})",
                )
                ax.legend(loc="upper right", fontsize=7, frameon=False)
            colorbar = fig.colorbar(points, ax=ax)
            colorbar.set_label(labels.get(name, name))
            ax.set_xlabel(x_label)
            ax.set_title(f"coloured by {name}")
        axes[0].set_ylabel(y_label)
        fig.suptitle(f"{projection}, {n} objects")
        return _save(fig, out)


def plot_interpolation(
    model: Any,
    image_a: np.ndarray,
    image_b: np.ndarray,
    out: str | os.PathLike[str],
    *,
    steps: int = 8,
    labels: tuple[str, str] | None = None,
    stretch: float | None = None,
    dpi: int = 100,
    where: str = "model",
) -> Path:
    """Decode ``steps`` points on the straight line between the latent means of two images.

    ``image_a``/``image_b``: ``[1, H, W]`` (one channel) in the task's image units. The top row
    shows the two inputs, A and B, at its ends, the bottom row the decoded images at
    ``t = 0, 1/(steps-1), ..., 1`` (``t = 0`` decodes A's mean, ``t = 1`` B's); ``labels``
    describe A and B in the title (e.g. object ids and parameter values). Every panel
    shows ``arcsinh(x / stretch)`` (e-/s per pixel; default: the inputs' robust noise sigma,
    :func:`noise_scale`) on one grey scale, origin at the lower left. The PNG is
    ``125 * steps`` x 275 pixels at ``dpi=100``. ``where`` names the model in error messages.
    Returns ``out`` as a ``Path``.
    """
    if steps < 2:
        raise ValueError(f"steps must be at least 2 (the two endpoints), got {steps}")
    pair = np.stack([np.asarray(image_a, dtype=np.float32), np.asarray(image_b, dtype=np.float32)])
    if pair.ndim != 4 or pair.shape[1] != 1:
        raise ValueError(
            f"image_a and image_b must be one-channel [1, H, W] images of one shape, got "
            f"{np.shape(image_a)} and {np.shape(image_b)}"
        )
    if stretch is not None and not (np.isfinite(stretch) and stretch > 0):
        raise ValueError(f"stretch must be a positive number (e-/s per pixel), got {stretch}")
    decode = _model_method(model, "decode", where)
    za, zb = encode_images(model, pair, batch_size=2, where=where)
    t = np.linspace(0.0, 1.0, steps)
    z = ((1.0 - t)[:, None] * za + t[:, None] * zb).astype(np.float32)
    z.setflags(write=False)
    decoded = _call(decode, z, f"decode() of {steps} interpolated latent vectors", where)
    if decoded.shape != (steps, *pair.shape[1:]):
        raise PredictionError(
            f"{where}: decode() returned shape {decoded.shape} for {steps} latent vectors; "
            f"expected {(steps, *pair.shape[1:])}, the shape of the input images"
        )
    if not np.isfinite(decoded).all():
        raise PredictionError(f"{where}: decode() returned non-finite pixels")

    scale = float(stretch) if stretch is not None else noise_scale(pair)
    inputs = np.arcsinh(pair[:, 0].astype(np.float64) / scale)
    outputs = np.arcsinh(decoded[:, 0].astype(np.float64) / scale)
    lo, hi = np.percentile(np.concatenate([inputs.ravel(), outputs.ravel()]), [0.5, 99.9])
    if not hi > lo:
        hi = lo + 1.0
    shown = {"cmap": "gray", "origin": "lower", "vmin": lo, "vmax": hi}

    with _rc_context():
        fig = _figure((STRIP_COLUMN_IN * steps, STRIP_HEIGHT_IN), dpi)
        axes = fig.subplots(2, steps, squeeze=False)
        for ax in axes.ravel():
            ax.set_xticks([])
            ax.set_yticks([])
        for j in range(1, steps - 1):
            axes[0, j].set_axis_off()
        axes[0, 0].imshow(inputs[0], **shown)
        axes[0, 0].set_title("input A")
        axes[0, -1].imshow(inputs[1], **shown)
        axes[0, -1].set_title("input B")
        axes[0, 0].set_ylabel("input")
        for j in range(steps):
            axes[1, j].imshow(outputs[j], **shown)
            axes[1, j].set_title(f"t = {t[j]:.2f}")
        axes[1, 0].set_ylabel("decoded")
        about = f"A = {labels[0]}, B = {labels[1]}; " if labels else ""
        fig.suptitle(
            f"latent interpolation A → B\n{about}arcsinh(x / {scale:.3g} e-/s) on one grey scale"
        )
        return _save(fig, out)


# -- a submission on a split (``galbench latent``) -----------------------------------------------


def draw_latent_figures(
    submission: str | os.PathLike[str],
    *,
    task: str,
    split: str = "val",
    n: int | None = 2000,
    color: Sequence[str] = ("n_bulge", "log10_r_disk", "bulge_to_total"),
    out: str | os.PathLike[str],
    home: str | os.PathLike[str] | None = None,
) -> list[Path]:
    """Draw ``out/latent_space.png`` and ``out/latent_interpolation.png`` for a submission's model.

    Loads the first ``n`` objects of a built split (all of it if ``n`` is None or larger), builds
    the submission's entry point for ``task`` **in this process** (use it on trusted code only,
    such as the baselines: nothing is sandboxed), encodes the images and colours the latent
    space by the catalog columns ``color`` (anomalies, where the catalog has ``is_anomaly``, are
    also marked). The interpolation runs between the objects with the lowest and the highest
    ``color[0]``, among the normal galaxies. Returns the two paths.
    """
    from galbench.data.split import load_split
    from galbench.runner import _on_path, load_model
    from galbench.scoring.submission import load_submission
    from galbench.tasks import get_task

    color = [c.strip() for c in color if c.strip()]
    if not color:
        raise ValueError("give at least one catalog column to colour by, e.g. n_bulge")
    spec = get_task(task)
    sub = load_submission(submission)
    entry = sub.entry(spec.id)
    if entry.entry_point is None:
        raise SubmissionError(
            f"{sub.root}: enters {spec.id} with prediction files only; latent figures need the "
            "model's code (entry_point = \"module:Class\" with encode and decode)"
        )
    official = spec.split(split).n
    data = load_split(spec, split, official if n is None else min(int(n), official), home=home)
    missing = [c for c in color if c not in data.catalog.columns]
    if missing:
        raise ValueError(
            f"{spec.id} {split} catalog has no column {', '.join(map(repr, missing))}; "
            f"columns: {', '.join(data.catalog.columns)}"
        )
    values = {c: data.catalog[c].to_numpy(dtype=np.float64) for c in color}
    units = {t.name: t.unit for t in spec.targets}
    labels = {c: f"{c} [{units[c]}]" if units.get(c) else c for c in color}
    anomalous = None
    if "is_anomaly" in data.catalog.columns:
        anomalous = data.catalog["is_anomaly"].to_numpy().astype(bool)

    with _on_path(sub.root):  # as in galbench.runner: the model may import its own modules
        model = load_model(sub, entry)
        where = f"{sub.root} ({entry.entry_point})"
        for method in ("encode", "decode"):
            _model_method(model, method, where)
        out = Path(out)
        keep = None if anomalous is None else ~anomalous
        lo, hi = interpolation_endpoints(values[color[0]], keep=keep)
        ids = data.object_ids
        space = plot_latent_space(
            model, data.images, values, out / "latent_space.png",
            batch_size=entry.batch_size, labels=labels, highlight=anomalous, where=where,
        )
        strip = plot_interpolation(
            model, data.images[lo], data.images[hi], out / "latent_interpolation.png",
            labels=(
                f"object {ids[lo]} ({color[0]} {values[color[0]][lo]:.3g})",
                f"object {ids[hi]} ({color[0]} {values[color[0]][hi]:.3g})",
            ),
            where=where,
        )
    return [space, strip]
