"""Shared fixtures: every test runs against a private data home, never the user's cache."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

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


def import_baseline(folder: str, module: str) -> ModuleType:
    """``baselines/<folder>/<module>.py`` as a fresh module, its folder importable while it
    loads (baselines import their sibling modules, as the sandbox allows)."""
    path = REPO / "baselines" / folder / f"{module}.py"
    sys.path.insert(0, str(path.parent))
    try:
        name = f"_baseline_{folder}_{module}".replace("-", "_")
        spec = importlib.util.spec_from_file_location(name, path)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = mod
        spec.loader.exec_module(mod)
        return mod
    finally:
        sys.path.remove(str(path.parent))

