"""The learning history of a training run: one row of numbers per epoch, saved as JSON and plotted.

    history = History()
    history.log(epoch=1, train_loss=0.43, val_loss=0.37, lr=2e-3)
    history.save_json("history.json")
    history.plot("history.png")

The JSON file is a list of row objects (the format of the baselines' ``history.json``), indented
by 2, with a trailing newline; every row lists its keys in one order, that of their first
appearance in the history (so ``epoch`` first if it was logged first), and rows that lack a key
simply omit it. Non-finite floats (a diverged loss) are written as ``null``, keeping the file
strict JSON; :meth:`History.load` reads them back as ``None``. Values must be JSON types or
scalars (``numpy``/``torch`` 0-d values are converted with ``.item()``); nested dicts are allowed
(e.g. several AUROCs per epoch) and are not plotted.

:meth:`History.plot` draws two panels, loss and accuracy against epoch, each with the training
(``train_loss``/``train_accuracy``) and validation (``val_loss``/``val_accuracy``) curves
present; a panel with neither says so in its middle. The x axis is the ``epoch`` column (1, 2, ...
if it was not logged); the epoch of the lowest ``val_loss`` is marked. The figure uses the
helpers of :mod:`galbench.viz.latent` (matplotlib's object API and Agg canvas, no pyplot; fixed
rcParams inside a context; no ``Software`` entry in the PNG), so the same history gives the same
bytes with one matplotlib version.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

__all__ = ["History"]

#: Size of :meth:`History.plot`'s figure in inches; at ``dpi=100``, 900 x 350 pixels.
FIGURE_SIZE_IN = (9.0, 3.5)

_PANELS = (
    ("loss", "train_loss", "val_loss"),
    ("accuracy", "train_accuracy", "val_accuracy"),
)


def _plain(value: Any, where: str) -> Any:
    """``value`` as a JSON-ready Python object; non-finite floats become None."""
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        value = value.item()
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _plain(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    raise TypeError(
        f"history value {where} is a {type(value).__name__}; expected a number, string, bool,"
        " None, a 0-d array/tensor, or a list/dict of those"
    )


class History:
    """Per-epoch rows of named values (``epoch``, ``train_loss``, ``val_loss``,
    ``train_accuracy``, ``val_accuracy``, ``lr``, ... - any names)."""

    def __init__(self, rows: Iterable[Mapping[str, Any]] = ()) -> None:
        self._rows: list[dict[str, Any]] = []
        for row in rows:
            self.log(**row)

    def log(self, **values: Any) -> None:
        """Append one epoch's row."""
        if not values:
            raise ValueError("log() needs at least one value, e.g. log(epoch=1, train_loss=0.4)")
        n = len(self._rows) + 1
        self._rows.append({k: _plain(v, f"{k!r} of row {n}") for k, v in values.items()})

    @property
    def rows(self) -> list[dict[str, Any]]:
        """A copy of the rows, in the order they were logged."""
        return [dict(row) for row in self._rows]

    @property
    def keys(self) -> list[str]:
        """Every key, in the order of its first appearance."""
        keys: dict[str, None] = {}
        for row in self._rows:
            keys.update(dict.fromkeys(row))
        return list(keys)

    def column(self, key: str) -> list[Any]:
        """``key``'s value in every row (``None`` where a row lacks it)."""
        return [row.get(key) for row in self._rows]

    def __len__(self) -> int:
        return len(self._rows)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, History) and self._rows == other._rows

    def __repr__(self) -> str:
        return f"History({len(self)} rows, keys {self.keys})"

    def to_json(self) -> str:
        """The JSON text :meth:`save_json` writes."""
        order = self.keys
        rows = [{k: row[k] for k in order if k in row} for row in self._rows]
        return json.dumps(rows, indent=2, allow_nan=False) + "\n"

    def save_json(self, path: str | os.PathLike[str]) -> Path:
        """Write the rows to ``path`` (parent folders are created); returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_json(), encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> History:
        """Read a history written by :meth:`save_json` (or any JSON list of row objects)."""
        rows = json.loads(Path(path).read_text(encoding="utf-8"))
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise ValueError(f"{path}: expected a JSON list of objects, one per epoch")
        return cls(rows)

    def _series(self, key: str) -> tuple[list[float], list[float]] | None:
        """(epochs, values) of a numeric column, NaN where a row lacks it; None if it has none."""
        values = self.column(key)
        if not any(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            return None
        epochs = self.column("epoch") if "epoch" in self.keys else list(range(1, len(self) + 1))
        xs, ys = [], []
        for i, (x, y) in enumerate(zip(epochs, values), start=1):
            x = x if isinstance(x, (int, float)) and not isinstance(x, bool) else i
            y = y if isinstance(y, (int, float)) and not isinstance(y, bool) else math.nan
            xs.append(float(x))
            ys.append(float(y))
        return xs, ys

    def plot(
        self, path: str | os.PathLike[str], *, title: str | None = None, dpi: int = 100
    ) -> Path:
        """Draw loss and accuracy against epoch (training and validation) into a PNG at ``path``.
        Returns the path. The image is ``FIGURE_SIZE_IN * dpi`` pixels."""
        if not self._rows:
            raise ValueError("the history is empty: log at least one epoch before plotting")
        # Private helpers of the VAE figures: the same rcParams, canvas and PNG metadata.
        from matplotlib.ticker import MaxNLocator

        from galbench.viz.latent import _figure, _rc_context, _save

        with _rc_context():
            fig = _figure(FIGURE_SIZE_IN, dpi)
            axes = fig.subplots(1, len(_PANELS))
            for ax, (name, train_key, val_key) in zip(axes, _PANELS):
                drawn = False
                curves = ((train_key, "training", "-"), (val_key, "validation", "--"))
                for key, label, style in curves:
                    series = self._series(key)
                    if series is not None:
                        ax.plot(*series, style, marker="o", markersize=3, label=label)
                        drawn = True
                ax.set_xlabel("epoch")
                ax.set_ylabel(name)
                if not drawn:
                    ax.text(0.5, 0.5, f"no {name} logged", ha="center", va="center",
                            transform=ax.transAxes)
                    ax.set_xticks([])
                    ax.set_yticks([])
                    continue
                if name == "loss":
                    self._mark_best(ax, val_key)
                ax.xaxis.set_major_locator(MaxNLocator(integer=True))
                ax.grid(alpha=0.3)
                ax.legend(loc="best")
            if title:
                fig.suptitle(title)
            return _save(fig, path)

    def _mark_best(self, ax: Any, key: str) -> None:
        series = self._series(key)
        if series is None:
            return
        xs, ys = series
        finite = [(y, i) for i, y in enumerate(ys) if math.isfinite(y)]
        if finite:
            best = xs[min(finite)[1]]
            ax.axvline(best, color="0.5", linestyle=":", linewidth=1,
                       label=f"best validation (epoch {best:g})")
