"""Benchmarks (pytest-benchmark). Run on a quiet machine:

    python -m pytest benchmarks --benchmark-columns=min,mean,rounds --benchmark-sort=name

They are not collected by the default test run (testpaths = tests).
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def bench_home(tmp_path_factory: pytest.TempPathFactory):
    return tmp_path_factory.mktemp("bench_home")
