"""The leaderboard (DESIGN.md contract 7): a pure function of the receipts.

Receipts live in ``leaderboard/receipts/<task id>/<split>/<submission name>.json``, each beside
its ``<submission name>.predictions.npz``. From them alone (plus the task files they name),
:func:`write_leaderboard` rebuilds three files in ``leaderboard/``:

- ``README.md``: per task, a table ranked on the test split with tiers (:data:`TIER_RULE`), the
  main metric with its 95% interval on every split side by side, secondary metrics, parameters,
  throughput, label budget and where each receipt was measured; a separate table for the hidden
  challenge split; unranked (partial or failed) receipts with their reason; the receipts list.
- ``index.html``: the same tables, sortable, plus main metric vs magnitude plots (inline SVG),
  self-contained.
- ``leaderboard.csv``: one row per receipt with every scalar metric, tier, status and hashes.

Every byte is deterministic: no timestamps, sorted keys and rows (ties by name), fixed number
formats, reproducible SVG. :func:`check_leaderboard` rebuilds in memory and reports stale
outputs, receipts that do not verify, and misplaced receipts.
"""

from galbench.leaderboard._build import (
    DEFAULT_ROOT,
    OUTPUT_FILES,
    LeaderboardBuild,
    LeaderboardCheck,
    LeaderboardProblem,
    build_leaderboard,
    check_leaderboard,
    load_leaderboard,
    render_leaderboard,
    run_leaderboard,
    write_leaderboard,
)
from galbench.errors import LeaderboardError
from galbench.leaderboard.tiers import (
    TIER_RULE,
    Standing,
    distinguishable,
    paired_difference_interval,
    rank_with_tiers,
)

__all__ = [
    "DEFAULT_ROOT",
    "OUTPUT_FILES",
    "TIER_RULE",
    "LeaderboardBuild",
    "LeaderboardCheck",
    "LeaderboardError",
    "LeaderboardProblem",
    "Standing",
    "build_leaderboard",
    "check_leaderboard",
    "distinguishable",
    "load_leaderboard",
    "paired_difference_interval",
    "rank_with_tiers",
    "render_leaderboard",
    "run_leaderboard",
    "write_leaderboard",
]
