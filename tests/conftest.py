"""Shared fixtures: every test runs against a private data home, never the user's cache."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def session_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("galbench_home")


@pytest.fixture(autouse=True)
def _private_home(session_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GALBENCH_HOME", str(session_home))


@pytest.fixture(scope="session")
def tiny_split_dir(session_home: Path) -> Path:
    """The first 40 objects of morphometry@1 test, in shards of 10 (built once per session)."""
    from galbench.data.build import build_split

    return build_split("morphometry@1", "test", 40, home=session_home, shard_size=10, progress=False)
