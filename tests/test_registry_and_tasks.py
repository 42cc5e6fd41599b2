"""The registry mechanism and task specs: parsing, validation, freezing, discovery."""

from __future__ import annotations

import copy
import dataclasses
import pickle
import tomllib
from pathlib import Path

import pytest

import galbench.tasks as tasks_mod
from galbench._registry import Registry
from galbench.errors import GalbenchError, TaskSpecError, UnknownNameError
from galbench.tasks import (
    TaskSpec,
    builtin_task_dir,
    get_task,
    list_tasks,
    load_task_file,
    parse_task,
    register_task,
)

MORPHOMETRY_FILE = builtin_task_dir() / "morphometry.toml"
MORPHOMETRY_TEXT = MORPHOMETRY_FILE.read_text(encoding="utf-8")
MORPHOMETRY_TARGETS = (
    "mag",
    "bulge_to_total",
    "n_bulge",
    "log10_r_bulge",
    "log10_r_disk",
    "q_bulge",
    "q_disk",
    "pa",
)


@pytest.fixture
def base_data() -> dict:
    """The parsed morphometry table, a fresh deep copy per test (safe to mutate)."""
    return tomllib.loads(MORPHOMETRY_TEXT)


@pytest.fixture
def fresh_registry(monkeypatch):
    """An empty, undiscovered task registry; the real one is restored afterwards."""
    saved = dict(tasks_mod.TASKS._items)
    monkeypatch.setattr(tasks_mod, "_discovered", False)
    # no third-party task from the environment; tests that want one patch this again
    monkeypatch.setattr(tasks_mod.metadata, "entry_points", _fake_entry_points())
    tasks_mod.TASKS._items.clear()
    yield tasks_mod.TASKS
    tasks_mod.TASKS._items.clear()
    tasks_mod.TASKS._items.update(saved)


def _fake_entry_points(*eps):
    def entry_points(*, group: str):
        assert group == "galbench.tasks"
        return list(eps)

    return entry_points


@dataclasses.dataclass
class FakeEntryPoint:
    name: str
    value: str
    target: object

    def load(self):
        return self.target


def _renamed_task_text(name: str, version: int = 1) -> str:
    text = MORPHOMETRY_TEXT.replace('name = "morphometry"', f'name = "{name}"', 1)
    return text.replace("version = 1\n", f"version = {version}\n", 1)


# ------------------------------------------------------------------------------------------
# Registry


class TestRegistry:
    def make(self) -> Registry:
        reg: Registry = Registry("widget")
        reg.add("alpha", 1)
        reg.add("alpine", 2)

        @reg.register("beta")
        def beta():
            return "b"

        return reg

    def test_get_returns_the_registered_object(self):
        reg = self.make()
        assert reg.get("alpha") == 1
        assert reg.get("beta")() == "b"
        assert "alpine" in reg and "gamma" not in reg
        assert len(reg) == 3
        assert list(reg) == ["alpha", "alpine", "beta"]

    def test_names_wildcards_sorted(self):
        reg = self.make()
        assert reg.names() == ["alpha", "alpine", "beta"]
        assert reg.names("alp*") == ["alpha", "alpine"]
        assert reg.names("?eta") == ["beta"]
        assert reg.names("*a") == ["alpha", "beta"]
        assert reg.names("nothing*") == []
        # case-sensitive, like timm's list_models
        assert reg.names("ALP*") == []

    def test_miss_suggests_the_close_match(self):
        reg = self.make()
        with pytest.raises(UnknownNameError) as info:
            reg.get("alpah")
        msg = str(info.value)
        assert "unknown widget 'alpah'" in msg
        assert "did you mean" in msg and "'alpha'" in msg
        assert "known: alpha, alpine, beta" in msg
        # it is a KeyError and a GalbenchError, and its str is not KeyError-quoted
        assert isinstance(info.value, KeyError) and isinstance(info.value, GalbenchError)
        assert not msg.startswith('"')

    def test_miss_without_close_match_has_no_suggestion(self):
        reg = self.make()
        with pytest.raises(UnknownNameError) as info:
            reg.get("zzzzzz")
        assert "did you mean" not in str(info.value)
        assert "known: alpha, alpine, beta" in str(info.value)

    def test_empty_registry_miss(self):
        with pytest.raises(UnknownNameError, match=r"unknown thing 'x' \(known: none\)"):
            Registry("thing").get("x")

    def test_duplicate_registration(self):
        reg = self.make()
        with pytest.raises(ValueError, match="widget 'alpha' is already registered"):
            reg.add("alpha", 99)
        assert reg.get("alpha") == 1
        # the same object again is harmless; replace=True overrides
        sentinel = object()
        reg.add("s", sentinel)
        assert reg.add("s", sentinel) is sentinel
        reg.add("alpha", 99, replace=True)
        assert reg.get("alpha") == 99

    def test_duplicate_via_decorator(self):
        reg = self.make()
        with pytest.raises(ValueError, match="already registered"):
            reg.register("beta")(lambda: None)


# ------------------------------------------------------------------------------------------
# parse_task on the real file


class TestMorphometryFile:
    @pytest.fixture(scope="class")
    def spec(self) -> TaskSpec:
        return load_task_file(MORPHOMETRY_FILE)

    def test_identity(self, spec):
        assert spec.id == "morphometry@1"
        assert str(spec) == "morphometry@1"
        assert (spec.name, spec.version, spec.type) == ("morphometry", 1, "regression")
        assert spec.title.startswith("Bulge+disk morphometry")
        assert spec.description.startswith("Each 64x64 stamp")
        assert spec.description == spec.description.strip()
        assert spec.source == str(MORPHOMETRY_FILE)
        assert len(spec.sha256) == 64

    def test_image_and_simulation(self, spec):
        assert spec.image_shape == (1, 64, 64)
        assert spec.image_units == "e-/s per pixel"
        assert spec.simulation.recipe == "bulge_disk"
        assert spec.simulation.instrument == "hst_wfc3_f160w"
        assert spec.instruments == ("hst_wfc3_f160w",)
        assert spec.simulation.params["mag"] == (18.0, 24.0)  # lists frozen into tuples
        assert spec.simulation.params["centroid_jitter"] == 0.5

    def test_splits(self, spec):
        assert list(spec.splits) == ["train", "val", "test"]
        assert {k: s.n for k, s in spec.splits.items()} == {
            "train": 100_000,
            "val": 10_000,
            "test": 10_000,
        }
        assert spec.split("val").seed == 1_2018_02
        assert len({s.seed for s in spec.splits.values()}) == 3
        with pytest.raises(UnknownNameError, match="no split 'challenge'.*train, val, test"):
            spec.split("challenge")

    def test_targets(self, spec):
        assert spec.target_names == MORPHOMETRY_TARGETS
        pa = spec.targets[-1]
        assert (pa.unit, pa.scale, pa.outlier, pa.period) == ("deg", 180.0, 27.0, 180.0)
        assert all(t.period is None for t in spec.targets[:-1])
        mag = spec.targets[0]
        assert (mag.scale, mag.outlier, mag.unit) == (6.0, 0.9, "AB mag")
        # outlier thresholds are 15% of the prior width
        for t in spec.targets:
            assert t.outlier == pytest.approx(0.15 * t.scale)

    def test_metrics(self, spec):
        assert spec.main_metric == "mean_normalized_scatter"
        assert spec.direction == "lower"
        assert spec.secondary_metrics == (
            "mean_normalized_abs_bias",
            "mean_outlier_fraction",
            "mean_coverage68",
            "mean_normalized_crps",
        )
        assert (spec.bootstrap_resamples, spec.bootstrap_seed) == (1000, 20180101)

    def test_strata(self, spec):
        assert [s.column for s in spec.strata] == ["mag", "snr"]
        mag, snr = spec.strata
        assert mag.edges == (18.0, 19.0, 20.0, 21.0, 22.0, 23.0, 24.0)
        assert (mag.label, mag.unit) == ("magnitude", "AB mag")
        assert snr.edges == (0.0, 30.0, 100.0, 300.0, 1000.0, 1e9)
        assert mag.bin_labels() == [
            "[18, 19)", "[19, 20)", "[20, 21)", "[21, 22)", "[22, 23)", "[23, 24)"
        ]
        assert snr.bin_labels()[-1] == "[1000, 1e+09)"

    def test_citations(self, spec):
        assert [c.key for c in spec.citations] == ["Tuccillo2018", "Rowe2015"]
        for c in spec.citations:
            assert c.bibtex.startswith(f"@article{{{c.key},")
            assert c.bibtex.endswith("}")
        assert "10.1093/mnras/stx3186" in spec.citations[0].bibtex

    def test_sha256_is_of_the_file_bytes(self, spec):
        import hashlib

        assert spec.sha256 == hashlib.sha256(MORPHOMETRY_FILE.read_bytes()).hexdigest()


# ------------------------------------------------------------------------------------------
# Malformed variants


def _set(path: tuple, value):
    def mutate(d):
        target = d
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return mutate


def _delete(path: tuple):
    def mutate(d):
        target = d
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]

    return mutate


BAD_VARIANTS = {
    # id: (mutation, substrings the message must contain besides the file name)
    "missing name": (_delete(("name",)), ["missing required field 'name'"]),
    "missing metrics": (_delete(("metrics",)), ["missing required field 'metrics'"]),
    "missing image.units": (_delete(("image", "units")), [".image:", "'units'"]),
    "missing target scale": (_delete(("targets", 2, "scale")), [".targets[2]:", "'scale'"]),
    "missing split seed": (_delete(("splits", "val", "seed")), [".splits.val:", "'seed'"]),
    "unknown top-level field": (_set(("colour",), "red"), ["unknown field", "'colour'"]),
    "unknown target field": (_set(("targets", 0, "units"), "mag"), [".targets[0]:", "'units'"]),
    "unknown metrics field": (
        _set(("metrics", "mian", ), "x"), [".metrics:", "unknown field", "'mian'"]
    ),
    "version is a string": (_set(("version",), "1"), [".version:", "expected int", "str"]),
    "version is a float": (_set(("version",), 1.0), [".version:", "expected int"]),
    "version is a boolean": (_set(("version",), True), [".version:", "boolean"]),
    "scale is a boolean": (_set(("targets", 1, "scale"), True), [".targets[1].scale:", "boolean"]),
    "split n is a boolean": (_set(("splits", "test", "n"), False), [".splits.test.n:", "boolean"]),
    "bootstrap seed is a boolean": (
        _set(("metrics", "bootstrap_seed"), True), [".metrics.bootstrap_seed:", "boolean"]
    ),
    "title is a number": (_set(("title",), 3), [".title:", "expected str"]),
    "targets is a table": (_set(("targets",), {"a": 1}), [".targets:", "expected list"]),
    "split is not a table": (_set(("splits", "train"), 5), [".splits.train:", "expected a table"]),
    "duplicate target names": (
        _set(("targets", 1, "name"), "mag"), [".targets:", "duplicate target names"]
    ),
    "missing public split": (
        _delete(("splits", "val")), [".splits:", "missing public split", "val"]
    ),
    "duplicate seeds": (
        _set(("splits", "test", "seed"), 1_2018_01), [".splits:", "own seed"]
    ),
    "bad direction": (_set(("metrics", "direction"), "up"), [".metrics.direction:", "'higher'"]),
    "non-increasing strata edges": (
        _set(("strata", 0, "edges"), [18, 20, 19, 24]), [".strata[0].edges:", "increasing"]
    ),
    "repeated strata edge": (
        _set(("strata", 1, "edges"), [0, 30, 30, 100]), [".strata[1].edges:", "increasing"]
    ),
    "single strata edge": (_set(("strata", 0, "edges"), [18]), [".strata[0].edges:"]),
    "unknown task type": (_set(("type",), "regresion"), [".type:", "'regresion'", "regression"]),
    "bad name": (_set(("name",), "Morpho-metry"), [".name:", "'Morpho-metry'"]),
    "version zero": (_set(("version",), 0), [".version:", ">= 1"]),
    "split n zero": (_set(("splits", "train", "n"), 0), [".splits.train.n:", ">= 1"]),
    "negative target scale": (_set(("targets", 3, "scale"), -1.0), [".targets[3].scale:", "> 0"]),
    "image shape of 2": (_set(("image", "shape"), [64, 64]), [".image.shape:", "[C, H, W]"]),
    "regression without targets": (_set(("targets",), []), [".targets:", "at least one target"]),
}


@pytest.mark.parametrize("case", list(BAD_VARIANTS))
def test_malformed_variant_names_file_and_field(case, base_data):
    mutate, expected = BAD_VARIANTS[case]
    mutate(base_data)
    with pytest.raises(TaskSpecError) as info:
        parse_task(base_data, source="tasks/broken.toml")
    msg = str(info.value)
    assert msg.startswith("tasks/broken.toml")
    for piece in expected:
        assert piece in msg, (piece, msg)
    assert isinstance(info.value, ValueError)


def test_valid_base_data_parses(base_data):
    """The control for the corpus above: the unmutated table is valid."""
    spec = parse_task(base_data, source="tasks/broken.toml")
    assert spec.id == "morphometry@1"


# Validation gaps: each of these is accepted (or raises a bare builtin) today.
GAPS = {
    "boolean in image.shape": (_set(("image", "shape"), [True, 64, 64]), ".image.shape"),
    "boolean strata edge": (_set(("strata", 0, "edges"), [True, 19, 24]), ".strata[0].edges"),
    "numeric string strata edge": (
        _set(("strata", 0, "edges"), [18, "19", 24]), ".strata[0].edges"
    ),
    "non-numeric strata edge": (_set(("strata", 0, "edges"), [18, "x", 24]), ".strata[0].edges"),
    "NaN strata edge": (_set(("strata", 0, "edges"), [18, float("nan"), 24]), ".strata[0].edges"),
    "NaN target scale": (_set(("targets", 0, "scale"), float("nan")), ".targets[0]"),
    "infinite target outlier": (_set(("targets", 0, "outlier"), float("inf")), ".targets[0]"),
    "negative split seed": (_set(("splits", "train", "seed"), -5), ".splits.train.seed"),
}


@pytest.mark.parametrize("case", list(GAPS))
def test_validation_gaps(case, base_data):
    mutate, field = GAPS[case]
    mutate(base_data)
    with pytest.raises(TaskSpecError) as info:
        parse_task(base_data, source="tasks/broken.toml")
    assert str(info.value).startswith(f"tasks/broken.toml{field}")


@pytest.mark.parametrize(
    "old, new, expected",
    [
        ("version = 1\n", "version = true\n", ".version: expected int, got a boolean"),
        ('direction = "lower"', 'direction = "smaller"', ".metrics.direction"),
        ("edges = [18, 19, 20, 21, 22, 23, 24]", "edges = [18, 19, 19]", ".strata[0].edges"),
        ("val = { n = 10000, seed = 1_2018_02 }\n", "", ".splits: missing public split(s) ['val']"),
        ('[image]\n', '[image]\ncolour = "red"\n', ".image: unknown field(s) 'colour'"),
    ],
)
def test_malformed_toml_file_errors_name_the_file(tmp_path, old, new, expected):
    assert old in MORPHOMETRY_TEXT
    path = tmp_path / "broken.toml"
    path.write_text(MORPHOMETRY_TEXT.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(TaskSpecError) as info:
        load_task_file(path)
    assert str(info.value).startswith(str(path))
    assert expected in str(info.value)


def test_invalid_toml_syntax_names_the_file(tmp_path):
    path = tmp_path / "syntax.toml"
    path.write_text('name = "x"\nversion = = 1\n', encoding="utf-8")
    with pytest.raises(TaskSpecError, match="not valid TOML") as info:
        load_task_file(path)
    assert str(path) in str(info.value)


def test_non_table_top_level():
    with pytest.raises(TaskSpecError, match="^src.toml: expected a table, got list"):
        parse_task([1, 2], source="src.toml")


def test_optional_fields_default(base_data):
    del base_data["description"]
    del base_data["metrics"]["bootstrap_resamples"]
    del base_data["metrics"]["bootstrap_seed"]
    del base_data["metrics"]["secondary"]
    del base_data["strata"]
    del base_data["citations"]
    spec = parse_task(base_data, source="x.toml")
    assert spec.description == ""
    assert (spec.bootstrap_resamples, spec.bootstrap_seed) == (1000, 0)
    assert spec.secondary_metrics == ()
    assert spec.strata == () and spec.citations == ()


# ------------------------------------------------------------------------------------------
# Frozen and picklable


class TestFrozen:
    @pytest.fixture
    def spec(self) -> TaskSpec:
        # a private copy: never mutate the registered spec
        return load_task_file(MORPHOMETRY_FILE)

    def test_attribute_assignment_raises(self, spec):
        with pytest.raises(dataclasses.FrozenInstanceError):
            spec.version = 2
        with pytest.raises(dataclasses.FrozenInstanceError):
            spec.targets[0].scale = 1.0
        with pytest.raises(dataclasses.FrozenInstanceError):
            spec.simulation.params = {}
        with pytest.raises(TypeError):
            spec.strata[0].edges[0] = 17.0  # tuples

    @pytest.mark.parametrize(
        "mutate",
        [
            lambda p: p.__setitem__("mag", (0.0, 1.0)),
            lambda p: p.__delitem__("mag"),
            lambda p: p.update(mag=(0.0, 1.0)),
            lambda p: p.pop("mag"),
            lambda p: p.popitem(),
            lambda p: p.setdefault("new", 1),
            lambda p: p.clear(),
        ],
        ids=["setitem", "delitem", "update", "pop", "popitem", "setdefault", "clear"],
    )
    def test_params_mutation_raises(self, spec, mutate):
        before = dict(spec.simulation.params)
        with pytest.raises(TypeError, match="frozen"):
            mutate(spec.simulation.params)
        assert dict(spec.simulation.params) == before

    def test_splits_mutation_raises(self, spec):
        with pytest.raises(TypeError, match="frozen"):
            spec.splits["challenge"] = spec.splits["test"]
        assert "challenge" not in spec.splits

    def test_params_inplace_or_raises(self, spec):
        params = spec.simulation.params
        with pytest.raises(TypeError):
            params |= {"mag": (0.0, 1.0)}
        assert params["mag"] == (18.0, 24.0)

    def test_pickle_round_trip_equal(self, spec):
        clone = pickle.loads(pickle.dumps(spec))
        assert clone == spec
        assert clone is not spec
        assert hash(clone) == hash(spec)
        assert clone.id == "morphometry@1"
        assert type(clone.simulation.params).__name__ == "FrozenDict"
        with pytest.raises(TypeError, match="frozen"):
            clone.simulation.params["mag"] = 1

    def test_equality_depends_on_content(self, spec, base_data):
        base_data["targets"][0]["outlier"] = 1.0
        other = parse_task(base_data, source=spec.source, sha256=spec.sha256)
        assert other != spec

    def test_deepcopy_equal(self, spec):
        assert copy.deepcopy(spec) == spec


# ------------------------------------------------------------------------------------------
# Registry of tasks and discovery


def test_get_task_builtin_matches_file():
    spec = get_task("morphometry@1")
    from_file = load_task_file(MORPHOMETRY_FILE)
    # The registered task is the file plus its real splits (tasks/_real_splits.toml).
    assert dataclasses.replace(spec, splits=from_file.splits) == from_file
    assert {k: v for k, v in spec.splits.items() if not v.real} == dict(from_file.splits)
    assert [k for k, v in spec.splits.items() if v.real] == ["real_cosmos"]
    assert get_task(spec) is spec


def test_get_task_unknown_suggests():
    with pytest.raises(UnknownNameError) as info:
        get_task("morphometri@1")
    assert "'morphometry@1'" in str(info.value)
    with pytest.raises(UnknownNameError, match="unknown task 'nosuchtask'"):
        get_task("nosuchtask")


def test_list_tasks_wildcard():
    ids = [t.id for t in list_tasks("morph*")]
    assert "morphometry@1" in ids
    assert all(i.startswith("morph") for i in ids)
    assert list_tasks("zzz*") == []
    assert "morphometry@1" in [t.id for t in list_tasks()]


def test_get_task_latest_version(fresh_registry):
    assert get_task("morphometry").version == 1  # discovers the builtin file
    for version in (2, 10):
        data = tomllib.loads(MORPHOMETRY_TEXT)
        data["version"] = version
        register_task(parse_task(data, source=f"v{version}"))
    # numeric, not lexical: 10 > 2 although "morphometry@10" < "morphometry@2"
    assert get_task("morphometry").version == 10
    assert get_task("morphometry@2").version == 2
    assert [t.id for t in list_tasks("morphometry@*")] == [
        "morphometry@1",
        "morphometry@10",
        "morphometry@2",
    ]
    # the builtin file was discovered too; re-registering the same id with another object fails
    with pytest.raises(ValueError, match="already registered"):
        register_task(parse_task(tomllib.loads(MORPHOMETRY_TEXT), source="again"))


def test_fresh_registry_discovers_builtin(fresh_registry):
    assert len(fresh_registry) == 0
    assert get_task("morphometry").id == "morphometry@1"
    assert tasks_mod._discovered is True


def test_entry_point_path_to_toml(fresh_registry, monkeypatch, tmp_path):
    path = tmp_path / "plugin_task.toml"
    path.write_text(_renamed_task_text("plugin_morph", 3), encoding="utf-8")
    ep = FakeEntryPoint("plugin", "plugin_pkg:task_file", str(path))
    monkeypatch.setattr(tasks_mod.metadata, "entry_points", _fake_entry_points(ep))
    spec = get_task("plugin_morph")
    assert spec.id == "plugin_morph@3"
    assert spec.source == str(path)
    assert spec.target_names == MORPHOMETRY_TARGETS
    # the builtin task is still there
    assert [t.id for t in list_tasks()] == [
        "anomaly@1", "clumps@1", "deblending@1", "galaxy10@1", "morphology@1", "morphometry@1",
        "plugin_morph@3", "rings@1", "transfer@1",
    ]


def test_entry_point_folder_and_callable(fresh_registry, monkeypatch, tmp_path):
    folder = tmp_path / "plugin_tasks"
    folder.mkdir()
    (folder / "a.toml").write_text(_renamed_task_text("plugin_a"), encoding="utf-8")
    (folder / "b.toml").write_text(_renamed_task_text("plugin_b"), encoding="utf-8")
    (folder / "notes.txt").write_text("not a task")
    data = tomllib.loads(_renamed_task_text("plugin_c", 2))
    eps = [
        FakeEntryPoint("folder", "pkg:folder", Path(folder)),
        FakeEntryPoint("factory", "pkg:make", lambda: [parse_task(data, source="factory")]),
    ]
    monkeypatch.setattr(tasks_mod.metadata, "entry_points", _fake_entry_points(*eps))
    assert [t.id for t in list_tasks("plugin_*")] == ["plugin_a@1", "plugin_b@1", "plugin_c@2"]


def test_entry_point_bad_object(fresh_registry, monkeypatch):
    ep = FakeEntryPoint("broken", "pkg:thing", 42)
    monkeypatch.setattr(tasks_mod.metadata, "entry_points", _fake_entry_points(ep))
    with pytest.raises(TaskSpecError, match=r"entry point broken = pkg:thing gave int"):
        list_tasks()


def test_registry_restored_after_plugin_tests():
    """Runs after the fixture-using tests above: no plugin task leaked into the real registry."""
    assert list_tasks("plugin_*") == []
    assert get_task("morphometry").id == "morphometry@1"
