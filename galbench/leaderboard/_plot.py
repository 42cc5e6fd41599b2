"""Main metric vs magnitude plots, as inline SVG that is byte-identical on every rebuild.

Determinism: matplotlib's defaults (``rcdefaults``, so no user matplotlibrc applies) with a fixed
font, size and colour cycle; ``svg.hashsalt`` fixed (marker and clip-path ids are hashes) and
every id prefixed per plot, so ids are unique within the page; text kept as ``<text>``
(``svg.fonttype: none``, no glyph outlines from the local FreeType); no date or creator in the
metadata; a fixed figure layout instead of a tight bounding box. The SVG can still change with the
matplotlib version, which ``galbench leaderboard --check`` says when ``index.html`` is stale.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

_BIN_RE = re.compile(r"^\[\s*([^,\s]+)\s*,\s*([^)\s]+)\s*\)$")
_COLORS = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
_STYLES = ("-", "--", ":", "-.")
_MARKERS = ("o", "s", "^", "D", "v")


@dataclass(frozen=True)
class Series:
    """One entry's line: the main metric per magnitude bin (``None``: no objects in the bin)."""

    label: str
    bins: tuple[str, ...]
    values: tuple[float | None, ...]


def _bin_edges(bins: Sequence[str]) -> list[tuple[float, float]] | None:
    """``[(lo, hi), ...]`` of bins labelled ``"[lo, hi)"``, or None when one is not like that."""
    edges = []
    for label in bins:
        match = _BIN_RE.match(label)
        if not match:
            return None
        try:
            lo, hi = float(match.group(1)), float(match.group(2))
        except ValueError:
            return None
        if not (math.isfinite(lo) and math.isfinite(hi)):
            return None
        edges.append((lo, hi))
    return edges


def matplotlib_version() -> str:
    import matplotlib

    return matplotlib.__version__


def render_svg(
    series: Sequence[Series], *, title: str, xlabel: str, ylabel: str, prefix: str
) -> str:
    """An ``<svg>`` element (no XML prolog), 720x360 px, one line per series in the given order.

    Every element id (and reference to it) starts with ``prefix``, so that several plots can be
    inlined in one page without clashing ids.
    """
    try:
        import matplotlib
        from matplotlib.backends.backend_svg import FigureCanvasSVG
        from matplotlib.figure import Figure
    except ImportError:  # pragma: no cover - matplotlib is a dependency of the leaderboard
        from galbench.errors import LeaderboardError

        raise LeaderboardError(
            "the leaderboard's plots need matplotlib (pip install matplotlib)"
        ) from None

    bins: list[str] = []
    for s in series:
        bins += [b for b in s.bins if b not in bins]
    edges = _bin_edges(bins)
    if edges is not None:
        positions = [(lo + hi) / 2 for lo, hi in edges]
    else:
        positions = [float(i) for i in range(len(bins))]
    where = dict(zip(bins, positions))

    with matplotlib.rc_context():
        matplotlib.rcdefaults()
        matplotlib.rcParams.update(
            {
                "svg.hashsalt": f"galbench-leaderboard-{prefix}",
                "svg.fonttype": "none",
                "font.family": "sans-serif",
                "font.sans-serif": ["DejaVu Sans"],
                "font.size": 9.0,
                "axes.titlesize": 10.0,
                "axes.grid": True,
                "grid.alpha": 0.3,
                "path.simplify": False,
            }
        )
        fig = Figure(figsize=(10.0, 5.0), dpi=72)
        FigureCanvasSVG(fig)
        fig.subplots_adjust(left=0.08, right=0.72, bottom=0.12, top=0.92)
        ax = fig.add_subplot()
        for i, s in enumerate(series):
            xs = [where[b] for b in s.bins]
            ys = [math.nan if v is None else float(v) for v in s.values]
            ax.plot(
                xs,
                ys,
                color=_COLORS[i % len(_COLORS)],
                linestyle=_STYLES[(i // len(_COLORS)) % len(_STYLES)],
                marker=_MARKERS[(i // len(_COLORS)) % len(_MARKERS)],
                markersize=4,
                linewidth=1.5,
                label=s.label.replace("$", r"\$"),  # a label is text, never mathtext
            )
        if edges is not None:
            ticks = sorted({e for pair in edges for e in pair})
            ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
            ax.set_xlim(ticks[0], ticks[-1])
        else:
            ax.set_xticks(positions, bins)
        ax.set_title(title)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        if series:
            ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False, fontsize=8)
        buffer = io.StringIO()
        fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    svg = buffer.getvalue()
    svg = svg[svg.index("<svg") :].rstrip("\n")
    svg = re.sub(r'\bid="', f'id="{prefix}-', svg)
    svg = svg.replace("url(#", f"url(#{prefix}-").replace('href="#', f'href="#{prefix}-')
    return svg
