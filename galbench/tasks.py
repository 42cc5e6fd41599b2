"""Frozen task specifications and the task registry.

A task is data: one TOML file in ``tasks/`` parsed into a :class:`TaskSpec`. Its id is
``name@version``; a published version never changes (a fix is a new file with a new version).
Third-party packages add tasks through the ``galbench.tasks`` entry-point group.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from importlib import metadata
from pathlib import Path
from types import MappingProxyType
from typing import Any

from galbench._registry import Registry
from galbench.errors import TaskSpecError, UnknownNameError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

#: Task types and the prediction each expects (DESIGN.md contract 4).
TASK_TYPES: Mapping[str, str] = MappingProxyType(
    {
        "classification": "[N, K] class probabilities",
        "regression": "[N, P] values, optionally [N, P] standard deviations",
        "segmentation": "[N, 1, H, W] probabilities",
        "deblending": "[N, S, C, H, W] isolated source images in input flux units",
        "anomaly": "[N] scores, higher = more anomalous",
    }
)
PUBLIC_SPLITS = ("train", "val", "test")
DIRECTIONS = ("higher", "lower")
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_SPLIT_RE = re.compile(r"^[a-z][a-z0-9_]*$")


class FrozenDict(dict):
    """A read-only dict that still pickles (MappingProxyType does not), so that specs travel to
    worker processes and Dask workers."""

    def _readonly(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("task specs are frozen; a change is a new task version")

    __setitem__ = __delitem__ = __ior__ = _readonly  # type: ignore[assignment]
    clear = pop = popitem = setdefault = update = _readonly  # type: ignore[assignment]

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenDict, (dict(self),))

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(sorted(self.items())))


@dataclass(frozen=True)
class TargetSpec:
    """One regression target (a catalog column predicted from the image).

    ``scale`` normalises the scatter in the main score (here: the width of the prior range, so a
    constant prediction scores about 0.37 per parameter on a uniform prior). ``outlier`` is the
    absolute residual above which an object counts as an outlier. ``period`` wraps residuals
    (180 for a position angle in degrees).
    """

    name: str
    unit: str
    description: str
    scale: float
    outlier: float
    period: float | None = None


@dataclass(frozen=True)
class SplitSpec:
    """A named split: how many objects and the seed every object's randomness derives from.

    A *real* split (DESIGN.md contract 2) also names its ``sources``: keys of
    ``galbench/data/remote_files.toml``, whose sha256 there pins the public files the objects are
    cut from, and ``ids``: the committed list of source objects, in split order (object ``i``
    comes from ``ids[i]``, or for a recipe that combines objects, such as real blends, from the
    ids its seed picks). ``recipe`` overrides the task's recipe for this split and ``params``
    are that recipe's parameters. ``seed`` still seeds every random choice (placements,
    rotations, noise), so a real split is as reproducible as a simulated one.
    """

    name: str
    n: int
    seed: int
    recipe: str | None = None
    sources: tuple[str, ...] = ()
    ids: tuple[Any, ...] | None = None
    params: Mapping[str, Any] = field(default_factory=lambda: FrozenDict())
    description: str = ""

    @property
    def real(self) -> bool:
        """Whether the split is cut from real (public) data rather than simulated."""
        return bool(self.sources)

    def definition_sha256(self) -> str:
        """sha256 of everything that defines the split's objects (the id list included)."""
        data = {
            "name": self.name, "n": self.n, "seed": self.seed, "recipe": self.recipe,
            "sources": list(self.sources), "ids": None if self.ids is None else list(self.ids),
            "params": _thaw(self.params),
        }
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class StratumSpec:
    """A catalog column that results are also broken down by, with bin edges."""

    column: str
    edges: tuple[float, ...]
    unit: str = ""
    label: str = ""

    def bin_labels(self) -> list[str]:
        return [f"[{_fmt(lo)}, {_fmt(hi)})" for lo, hi in zip(self.edges[:-1], self.edges[1:])]


@dataclass(frozen=True)
class SimulationSpec:
    """Which recipe renders the objects, with which instrument, and the recipe's parameters."""

    recipe: str
    instrument: str
    params: Mapping[str, Any]


@dataclass(frozen=True)
class Citation:
    key: str
    bibtex: str


@dataclass(frozen=True)
class TaskSpec:
    """A frozen, validated task definition (DESIGN.md contract 1)."""

    name: str
    version: int
    type: str
    title: str
    description: str
    image_shape: tuple[int, int, int]
    image_units: str
    instruments: tuple[str, ...]
    targets: tuple[TargetSpec, ...]
    splits: Mapping[str, SplitSpec]
    main_metric: str
    direction: str
    secondary_metrics: tuple[str, ...]
    strata: tuple[StratumSpec, ...]
    simulation: SimulationSpec
    bootstrap_resamples: int
    bootstrap_seed: int
    citations: tuple[Citation, ...]
    source: str = ""
    sha256: str = ""
    extra: Mapping[str, Any] = field(default_factory=lambda: FrozenDict())

    @property
    def id(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def target_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.targets)

    def split(self, name: str) -> SplitSpec:
        if name not in self.splits:
            raise UnknownNameError(
                f"task {self.id} has no split {name!r} (splits: {', '.join(self.splits)})"
            )
        return self.splits[name]

    def __str__(self) -> str:
        return self.id


def _fmt(x: float) -> str:
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:g}"


# --------------------------------------------------------------------------------------------
# Parsing


class _Fields:
    """Pops fields from a TOML table, naming file and field in every error."""

    def __init__(self, table: Mapping[str, Any], where: str) -> None:
        if not isinstance(table, Mapping):
            raise TaskSpecError(f"{where}: expected a table, got {type(table).__name__}")
        self._table = dict(table)
        self.where = where

    def take(self, key: str, kind: type | tuple[type, ...], default: Any = ...) -> Any:
        if key not in self._table:
            if default is ...:
                raise TaskSpecError(f"{self.where}: missing required field {key!r}")
            return default
        value = self._table.pop(key)
        # bool is an int subclass; a `true` where a number belongs is a mistake.
        if isinstance(value, bool) and bool not in _as_tuple(kind):
            raise TaskSpecError(f"{self.where}.{key}: expected {_kind_name(kind)}, got a boolean")
        if not isinstance(value, kind):
            raise TaskSpecError(
                f"{self.where}.{key}: expected {_kind_name(kind)}, got {type(value).__name__} "
                f"{value!r}"
            )
        return value

    def done(self) -> None:
        if self._table:
            raise TaskSpecError(
                f"{self.where}: unknown field(s) {', '.join(map(repr, sorted(self._table)))}"
            )


def _number(value: Any, where: str) -> float:
    """A finite real number (not a boolean, not a string)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise TaskSpecError(f"{where}: expected a finite number, got {value!r}")
    return float(value)


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _kind_name(kind: type | tuple[type, ...]) -> str:
    return " or ".join(k.__name__ for k in _as_tuple(kind))


def _freeze(value: Any) -> Any:
    if isinstance(value, Mapping):
        return FrozenDict({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


def _thaw(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_thaw(v) for v in value]
    return value


def parse_task(data: Mapping[str, Any], source: str = "<task>", sha256: str = "") -> TaskSpec:
    """Validate a parsed task table and freeze it into a :class:`TaskSpec`."""
    f = _Fields(data, source)
    name = f.take("name", str)
    if not _NAME_RE.match(name):
        raise TaskSpecError(f"{source}.name: {name!r} must match {_NAME_RE.pattern}")
    version = f.take("version", int)
    if version < 1:
        raise TaskSpecError(f"{source}.version: must be >= 1, got {version}")
    task_type = f.take("type", str)
    if task_type not in TASK_TYPES:
        raise TaskSpecError(
            f"{source}.type: {task_type!r} is not one of {', '.join(TASK_TYPES)}"
        )
    title = f.take("title", str)
    description = f.take("description", str, "")

    img = _Fields(f.take("image", dict), f"{source}.image")
    shape = img.take("shape", list)
    if len(shape) != 3 or not all(
        isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in shape
    ):
        raise TaskSpecError(f"{source}.image.shape: expected [C, H, W] positive ints, got {shape}")
    units = img.take("units", str)
    img.done()

    sim = _Fields(f.take("simulation", dict), f"{source}.simulation")
    simulation = SimulationSpec(
        recipe=sim.take("recipe", str),
        instrument=sim.take("instrument", str),
        params=_freeze(sim.take("params", dict, {})),
    )
    sim.done()
    instruments = tuple(f.take("instruments", list, [simulation.instrument]))
    if not all(isinstance(x, str) for x in instruments):
        raise TaskSpecError(f"{source}.instruments: expected a list of instrument names")

    targets = []
    for i, t in enumerate(f.take("targets", list, [])):
        tf = _Fields(t, f"{source}.targets[{i}]")
        period = tf.take("period", (int, float), None)
        target = TargetSpec(
            name=tf.take("name", str),
            unit=tf.take("unit", str),
            description=tf.take("description", str, ""),
            scale=_number(tf.take("scale", (int, float)), f"{tf.where}.scale"),
            outlier=_number(tf.take("outlier", (int, float)), f"{tf.where}.outlier"),
            period=None if period is None else _number(period, f"{tf.where}.period"),
        )
        tf.done()
        for key in ("scale", "outlier", "period"):
            value = getattr(target, key)
            if value is not None and value <= 0:
                raise TaskSpecError(f"{tf.where}.{key}: must be > 0, got {value}")
        targets.append(target)
    names = [t.name for t in targets]
    if len(set(names)) != len(names):
        raise TaskSpecError(f"{source}.targets: duplicate target names in {names}")
    if task_type == "regression" and not targets:
        raise TaskSpecError(f"{source}.targets: a regression task needs at least one target")

    splits = {}
    for split_name, s in f.take("splits", dict).items():
        splits[split_name] = parse_split(split_name, s, f"{source}.splits.{split_name}")
    missing = [s for s in PUBLIC_SPLITS if s not in splits]
    if missing:
        raise TaskSpecError(f"{source}.splits: missing public split(s) {missing}")
    seeds = [s.seed for s in splits.values()]
    if len(set(seeds)) != len(seeds):
        raise TaskSpecError(f"{source}.splits: every split needs its own seed, got {seeds}")

    mf = _Fields(f.take("metrics", dict), f"{source}.metrics")
    main_metric = mf.take("main", str)
    direction = mf.take("direction", str)
    if direction not in DIRECTIONS:
        raise TaskSpecError(f"{source}.metrics.direction: expected 'higher' or 'lower'")
    secondary = tuple(mf.take("secondary", list, []))
    bootstrap_resamples = mf.take("bootstrap_resamples", int, 1000)
    bootstrap_seed = mf.take("bootstrap_seed", int, 0)
    mf.done()
    if bootstrap_resamples < 1 or bootstrap_seed < 0:
        raise TaskSpecError(f"{source}.metrics: bootstrap_resamples >= 1 and bootstrap_seed >= 0")
    from galbench.metrics import METRICS  # pure; no torch or GalSim

    for key, metric_name in [("main", main_metric)] + [("secondary", m) for m in secondary]:
        if not isinstance(metric_name, str) or metric_name.split("/", 1)[0] not in METRICS:
            raise TaskSpecError(
                f"{source}.metrics.{key}: unknown metric {metric_name!r} (known: "
                f"{', '.join(METRICS.names())})"
            )
    if METRICS.get(main_metric).direction != direction:
        raise TaskSpecError(
            f"{source}.metrics.direction: {main_metric} is "
            f"{METRICS.get(main_metric).direction}-is-better, not {direction!r}"
        )

    strata = []
    for i, s in enumerate(f.take("strata", list, [])):
        sf = _Fields(s, f"{source}.strata[{i}]")
        edges = tuple(
            _number(e, f"{sf.where}.edges[{k}]") for k, e in enumerate(sf.take("edges", list))
        )
        if len(edges) < 2 or any(b <= a for a, b in zip(edges, edges[1:])):
            raise TaskSpecError(f"{sf.where}.edges: need >= 2 strictly increasing edges")
        strata.append(
            StratumSpec(
                column=sf.take("column", str),
                edges=edges,
                unit=sf.take("unit", str, ""),
                label=sf.take("label", str, ""),
            )
        )
        sf.done()

    citations = []
    for i, c in enumerate(f.take("citations", list, [])):
        cf = _Fields(c, f"{source}.citations[{i}]")
        citations.append(Citation(cf.take("key", str), cf.take("bibtex", str).strip()))
        cf.done()

    extra = _freeze(f.take("extra", dict, {}))
    f.done()
    return TaskSpec(
        name=name,
        version=version,
        type=task_type,
        title=title,
        description=description.strip(),
        image_shape=(shape[0], shape[1], shape[2]),
        image_units=units,
        instruments=instruments,
        targets=tuple(targets),
        splits=FrozenDict(splits),
        main_metric=main_metric,
        direction=direction,
        secondary_metrics=secondary,
        strata=tuple(strata),
        simulation=simulation,
        bootstrap_resamples=bootstrap_resamples,
        bootstrap_seed=bootstrap_seed,
        citations=tuple(citations),
        source=source,
        sha256=sha256,
        extra=extra,
    )


def parse_split(name: str, table: Any, where: str) -> SplitSpec:
    """Validate one split table (``{n, seed}``, plus ``sources``/``ids``/``recipe``/``params``/
    ``description`` for a real split)."""
    if not isinstance(table, Mapping):
        raise TaskSpecError(f"{where}: expected a table, got {type(table).__name__}")
    if not _SPLIT_RE.match(name):
        raise TaskSpecError(f"{where}: split name {name!r} must match {_SPLIT_RE.pattern}")
    sf = _Fields(table, where)
    n = sf.take("n", int)
    seed = sf.take("seed", int)
    recipe = sf.take("recipe", str, None)
    sources = sf.take("sources", list, [])
    ids = sf.take("ids", list, None)
    params = sf.take("params", dict, {})
    description = sf.take("description", str, "")
    sf.done()
    if n < 1:
        raise TaskSpecError(f"{where}.n: must be >= 1, got {n}")
    if seed < 0:
        raise TaskSpecError(f"{where}.seed: must be >= 0, got {seed}")
    if not all(isinstance(k, str) and k for k in sources):
        raise TaskSpecError(f"{where}.sources: expected keys of galbench/data/remote_files.toml")
    if ids is not None:
        if not sources:
            raise TaskSpecError(f"{where}.ids: only a real split (one with sources) lists ids")
        if not all(isinstance(i, (str, int)) and not isinstance(i, bool) for i in ids):
            raise TaskSpecError(f"{where}.ids: expected a list of source object ids (str or int)")
        if len(set(ids)) != len(ids):
            dup = sorted({str(i) for i in ids if ids.count(i) > 1})[:5]
            raise TaskSpecError(f"{where}.ids: duplicate ids {dup}")
    return SplitSpec(
        name, n, seed, recipe=recipe, sources=tuple(sources),
        ids=None if ids is None else tuple(ids), params=_freeze(params),
        description=description.strip(),
    )


def load_task_file(path: str | Path) -> TaskSpec:
    """Parse one task TOML file."""
    path = Path(path)
    raw = path.read_bytes()
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise TaskSpecError(f"{path}: not valid TOML: {exc}") from None
    return parse_task(data, source=str(path), sha256=hashlib.sha256(raw).hexdigest())


# --------------------------------------------------------------------------------------------
# Registry

TASKS: Registry[TaskSpec] = Registry("task")
_discovered = False


def builtin_task_dir() -> Path:
    """The shipped task files: inside the wheel, or ``tasks/`` of a source checkout."""
    here = Path(__file__).resolve().parent
    packaged = here / "_tasks"
    return packaged if packaged.is_dir() else here.parent / "tasks"


def register_task(spec: TaskSpec, *, replace: bool = False) -> TaskSpec:
    """Add a task to the registry (its id is the key)."""
    return TASKS.add(spec.id, spec, replace=replace)


def _task_files(folder: Path) -> list[Path]:
    """Task files of a folder: ``*.toml`` except ``_``-prefixed ones (tables such as
    ``_published_splits.toml`` that accompany tasks)."""
    return sorted(p for p in folder.glob("*.toml") if not p.name.startswith("_"))


def _register_from(obj: Any, origin: str) -> None:
    if callable(obj) and not isinstance(obj, (str, Path)):
        obj = obj()
    items = obj if isinstance(obj, (list, tuple)) else [obj]
    for item in items:
        if isinstance(item, TaskSpec):
            register_task(item)
        elif isinstance(item, (str, Path)):
            p = Path(item)
            files = _task_files(p) if p.is_dir() else [p]
            for file in files:
                register_task(load_task_file(file))
        else:
            raise TaskSpecError(
                f"entry point {origin} gave {type(item).__name__}; expected a TaskSpec, a task "
                "TOML path or a folder of them"
            )


PUBLISHED_SPLITS_FILE = "_published_splits.toml"


def published_split_hashes(task: TaskSpec | str) -> dict[str, str]:
    """``{split: content sha256}`` of a task's official splits (``tasks/_published_splits.toml``);
    empty for a task whose splits are not published yet."""
    task_id = task.id if isinstance(task, TaskSpec) else task
    path = builtin_task_dir() / PUBLISHED_SPLITS_FILE
    if not path.is_file():
        return {}
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise TaskSpecError(f"{path}: not valid TOML: {exc}") from None
    return dict(table.get(task_id, {}))


REAL_SPLITS_FILE = "_real_splits.toml"


def attach_real_splits(path: str | Path) -> None:
    """Add the real splits of ``path`` (``tasks/_real_splits.toml``) to registered tasks.

    A published task file never changes, so real splits of a task that was published with
    simulated splits only are defined here: ``["<task id>".<split>]`` tables in the format of a
    task file's split (``n``, ``seed``, ``sources``, ``ids``, ``recipe``, ``params``). The task's
    own sha256 is unchanged; the split is pinned by its id list, the sha256 of its sources and
    its published content hash.
    """
    path = Path(path)
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise TaskSpecError(f"{path}: not valid TOML: {exc}") from None
    for task_id, splits in table.items():
        where = f"{path.name}[{task_id!r}]"
        if not isinstance(splits, Mapping):
            raise TaskSpecError(f"{where}: expected a table of splits")
        try:
            spec = TASKS.get(task_id)
        except UnknownNameError as exc:
            raise TaskSpecError(f"{where}: {exc}") from None
        merged = dict(spec.splits)
        for name, s in splits.items():
            split = parse_split(name, s, f"{where}.{name}")
            if name in spec.splits:
                raise TaskSpecError(f"{where}.{name}: the task file already defines split {name!r}")
            if not split.real:
                raise TaskSpecError(f"{where}.{name}.sources: a real split names its source files")
            if split.seed in {s.seed for s in merged.values()}:
                raise TaskSpecError(f"{where}.{name}.seed: {split.seed} is another split's seed")
            merged[name] = split
        register_task(replace(spec, splits=FrozenDict(merged)), replace=True)


def _discover() -> None:
    """Register the shipped task files (with their real splits) and those of installed
    plugins, once."""
    global _discovered
    if _discovered:
        return
    for file in _task_files(builtin_task_dir()):
        register_task(load_task_file(file), replace=True)
    real = builtin_task_dir() / REAL_SPLITS_FILE
    if real.is_file():
        attach_real_splits(real)
    for ep in metadata.entry_points(group="galbench.tasks"):
        origin = f"entry point {ep.name} = {ep.value}"
        try:
            _register_from(ep.load(), origin)
        except TaskSpecError:
            raise
        except Exception as exc:
            raise TaskSpecError(f"{origin}: failed to load ({type(exc).__name__}: {exc})") from exc
    _discovered = True


def get_task(task_id: str | TaskSpec) -> TaskSpec:
    """Look a task up by ``name@version``; a bare ``name`` gives its latest version."""
    if isinstance(task_id, TaskSpec):
        return task_id
    _discover()
    if "@" not in task_id:
        versions = [TASKS.get(n) for n in TASKS.names(f"{task_id}@*")]
        if versions:
            return max(versions, key=lambda s: s.version)
    return TASKS.get(task_id)


def list_tasks(pattern: str = "*") -> list[TaskSpec]:
    """Registered tasks whose id matches a shell wildcard (``"morph*"``)."""
    _discover()
    return [TASKS.get(n) for n in TASKS.names(pattern)]
