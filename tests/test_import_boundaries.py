"""Metrics and scoring import no torch or GalSim (DESIGN.md: predictions can be scored anywhere).

Each check runs in a fresh interpreter, since this test process may already hold torch/GalSim.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("torch", "galsim")


def heavy_modules_after_import(statement: str) -> list[str]:
    code = (
        "import json, sys\n"
        f"{statement}\n"
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_light_imports_together():
    statement = (
        "import galbench.metrics, galbench.metrics.regression, galbench.metrics.bootstrap, "
        "galbench.scoring, galbench.scoring.regression, galbench.scoring.receipt, "
        "galbench.scoring.submission"
    )
    assert heavy_modules_after_import(statement) == []


@pytest.mark.parametrize(
    "module", ["galbench.metrics", "galbench.scoring", "galbench.scoring.receipt"]
)
def test_light_import_alone(module):
    assert heavy_modules_after_import(f"import {module}") == []


def test_the_check_detects_a_heavy_import():
    """Control: the same probe does see GalSim when the simulation layer is imported."""
    assert heavy_modules_after_import("import galbench.sim.recipes") == ["galsim"]
