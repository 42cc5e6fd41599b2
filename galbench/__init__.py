"""galbench: a benchmark and challenge suite for deep learning on galaxy images.

The flow, one direction (docs/architecture.md)::

    tasks/<name>.toml -> TaskSpec -> simulation recipe -> split on disk -> loader
      -> submission -> predictions -> validation -> metrics -> receipt -> leaderboard
"""

__version__ = "0.1.0"

from galbench.tasks import TaskSpec, get_task, list_tasks, register_task  # noqa: E402

__all__ = [
    "__version__",
    "TaskSpec",
    "get_task",
    "list_tasks",
    "register_task",
    "build_split",
    "load_split",
]


def __getattr__(name: str):
    # The data layer imports GalSim and pyarrow; load it only when asked, so that scoring code
    # importing `galbench.metrics` stays light.
    if name == "build_split":
        from galbench.data.build import build_split

        return build_split
    if name == "load_split":
        from galbench.data.split import load_split

        return load_split
    raise AttributeError(f"module 'galbench' has no attribute {name!r}")
