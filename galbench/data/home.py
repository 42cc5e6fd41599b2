"""Where splits live on disk: ``$GALBENCH_HOME`` or a per-user cache directory."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

from galbench.tasks import TaskSpec


def data_home(home: str | os.PathLike[str] | None = None) -> Path:
    """The data home: ``home`` if given, else ``$GALBENCH_HOME``, else the user cache dir."""
    if home is not None:
        return Path(home).expanduser()
    env = os.environ.get("GALBENCH_HOME")
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_cache_dir("galbench"))


def split_dir(task: TaskSpec, split: str, n: int, home: str | os.PathLike[str] | None = None) -> Path:
    """Folder of a built split; a prefix build (``n`` < the official size) gets its own folder."""
    official = task.split(split).n
    name = split if n == official else f"{split}-first{n}"
    return data_home(home) / task.id / name
