"""The sandbox (galbench.harness) against the adversarial corpus, and well-behaved code in it.

Every folder of ``tests/adversarial/`` is a bad submission (``submission.toml`` + ``model.py``)
with ``expect.toml``: the ``level`` it fails at (``load``: load_submission; ``sandbox``:
run_in_sandbox; ``evaluate``: galbench.evaluate end to end), the expected ``status`` (a
SandboxFailure status, an error class name, or ``ok``), a ``reason`` regex, optional ``[limits]``
and ``needs`` (a protection this system must offer, else the case is skipped). ``@CATALOG@``,
``@REPO@``, ``@MARKER@``, ``@PORT@`` (TCP) and ``@SOCKET@`` (unix) in the files are replaced
when a case is copied to a temporary folder. After every case: no process, cgroup or sandbox folder is left behind, the
submission folder is unchanged, and the scorer's secrets were set the whole time.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

from galbench.errors import GalbenchError
from galbench.harness import (
    FAILURE_STATUSES,
    SandboxFailure,
    SandboxLimits,
    SandboxSetupError,
    available_protections,
    run_in_sandbox,
)
from galbench.harness import sandbox as sandbox_module
from galbench.scoring.submission import load_submission, submission_content_sha256

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]
CORPUS = Path(__file__).resolve().parent / "adversarial"
CASES = sorted(p.name for p in CORPUS.iterdir() if (p / "expect.toml").is_file())
TASK = "morphometry@1"
GIB, MIB = 2**30, 2**20
PROTECTIONS = available_protections()
SECRET = "12345"

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="the sandbox's protections are Linux features"
)


def _available(need: str) -> bool:
    root = PROTECTIONS["root"]
    return {
        "landlock": PROTECTIONS["landlock"] >= 1,
        "landlock_scoped_signals": PROTECTIONS["landlock"] >= 6,
        "network": PROTECTIONS["landlock"] >= 4 or root,
        "cgroup_memory": PROTECTIONS["cgroup_memory"],
        "cgroup_pids": PROTECTIONS["cgroup_pids"],
        "root": root,
        "mount_namespace": root,  # (unprivileged: only where user namespaces are allowed)
        "etc_shadow": Path("/etc/shadow").exists(),
    }[need]


# -- isolation of every test: a private temp folder, no leftovers ------------------------------
def _processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            with contextlib.suppress(OSError):
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
                if state != "Z" and text.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
    return found


@pytest.fixture
def sandboxes(tmp_path, monkeypatch):
    """Sandbox folders go to a private place, cgroups are recorded; afterwards nothing of
    either, and no process of the run, may remain."""
    folder = tmp_path / "sandboxes"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    monkeypatch.setenv("GALBENCH_CHALLENGE_SEED", SECRET)
    monkeypatch.setenv("GALBENCH_SECRET_TOKEN", "hunter2")
    created = []
    original = sandbox_module._Cgroups.create.__func__

    def spy(cls, name, limits):
        groups = original(cls, name, limits)
        created.extend(groups.dirs.values())
        return groups

    monkeypatch.setattr(sandbox_module._Cgroups, "create", classmethod(spy))
    marker = f"galbench-adversarial-{uuid.uuid4().hex[:12]}"
    children_before = _children()
    yield folder, marker
    deadline = time.monotonic() + 5
    while (_processes_mentioning(str(folder)) or _processes_mentioning(marker)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _processes_mentioning(str(folder)), "a sandboxed process outlived the run"
    assert not _processes_mentioning(marker), "a process started by the submission outlived the run"
    # (torch in *this* process may put its own caches there: only sandbox folders count)
    assert list(folder.glob("galbench-sandbox-*")) == [], "the sandbox folder was not removed"
    assert not [d for d in created if d.exists()], "a cgroup was not removed"
    # (other tests may leave pools of their own running: only new children count)
    assert _children() - children_before == set(), "a child process outlived the run"


def _children() -> set[int]:
    try:
        import psutil
    except ImportError:  # pragma: no cover - the /proc scans above still run
        return set()
    return {c.pid for c in psutil.Process().children(recursive=True)}


@pytest.fixture(scope="module")
def images(tiny_split_dir):
    from galbench.data.split import open_split

    return open_split(tiny_split_dir).images


# -- the corpus --------------------------------------------------------------------------------
def _materialise(case: str, target: Path, substitutions: dict[str, str]) -> tuple[Path, dict]:
    expect = tomllib.loads((CORPUS / case / "expect.toml").read_text())
    target.mkdir(parents=True)
    for path in (CORPUS / case).iterdir():
        if path.name != "expect.toml" and path.is_file():
            text = path.read_text()
            for key, value in substitutions.items():
                text = text.replace(key, value)
            (target / path.name).write_text(text)
    for name, link in expect.get("symlinks", {}).items():
        (target / name).symlink_to(substitutions.get(link, link))
    reason = expect.get("reason", "")
    for key, value in substitutions.items():
        reason = reason.replace(key, re.escape(value))
    expect["reason"] = reason
    return target, expect


def _limits(expect: dict) -> SandboxLimits:
    given = expect.get("limits", {})
    return SandboxLimits(
        seconds=given.get("seconds", 60),
        memory_bytes=int(given.get("memory_gib", 4) * GIB),
        processes=given.get("processes", 256),
        file_bytes=int(given.get("file_mib", 1024) * MIB),
        threads=1,
    )


def _evaluate_outcome(sub: Path, out: Path, limits: SandboxLimits) -> tuple[str, str, str]:
    """``(error class, status, reason)`` of a failing evaluate: from the failure receipt, or
    from the exception where evaluate raises."""
    from galbench.evaluate import evaluate

    try:
        receipt, _ = evaluate(sub, n=40, out=out, progress=False, limits=limits)
    except GalbenchError as exc:
        return type(exc).__name__, getattr(exc, "status", "error"), str(exc)
    assert receipt.get("status") == "failed", "expected a failure receipt"
    failure = receipt["failure"]
    return failure["error"], failure["status"], failure["reason"]


@pytest.mark.parametrize("case", CASES)
def test_adversarial_corpus(case, tmp_path, sandboxes, images, tiny_split_dir):
    folder, marker = sandboxes
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    unix_listener = socket.socket(socket.AF_UNIX)
    unix_listener.bind(str(tmp_path / "scorer.sock"))
    for server in (listener, unix_listener):
        server.listen(1)
        server.setblocking(False)
    substitutions = {
        "@CATALOG@": str(tiny_split_dir / "catalog.parquet"),
        "@REPO@": str(REPO),
        "@MARKER@": marker,
        "@PORT@": str(listener.getsockname()[1]),
        "@SOCKET@": str(tmp_path / "scorer.sock"),
    }
    sub_dir, expect = _materialise(case, tmp_path / case, substitutions)
    need = expect.get("needs")
    if need and not _available(need):
        pytest.skip(f"this system does not offer {need}")
    level, status, reason = expect["level"], expect["status"], expect["reason"]
    limits = _limits(expect)

    if level == "load":
        with pytest.raises(GalbenchError, match=reason) as info:
            load_submission(sub_dir)
        assert type(info.value).__name__ == status
        return

    hash_before = submission_content_sha256(sub_dir)
    model_before = (sub_dir / "model.py").read_bytes()
    sub = load_submission(sub_dir)
    try:
        if level == "evaluate":
            error, got_status, got_reason = _evaluate_outcome(sub_dir, tmp_path / "r.json", limits)
            assert error == status
            assert re.search(reason, got_reason), got_reason
            assert str(sub_dir / "model") in got_reason
        elif status == "ok":
            values, report = run_in_sandbox(sub, sub.entry(TASK), images, limits=limits, progress=False)
            assert set(values) == {"mean"} and values["mean"].shape == (40, 8)
            assert report.isolated
            if case == "huge-output":
                assert report.sandbox["output_bytes"] > 50_000_000
        else:
            assert status in FAILURE_STATUSES
            with pytest.raises(SandboxFailure) as info:
                run_in_sandbox(sub, sub.entry(TASK), images, limits=limits, progress=False)
            assert info.value.status == status, info.value.reason
            assert re.search(reason, info.value.reason), info.value.reason
            # The reason names the submission's own files, never the sandbox's copy.
            assert str(sub_dir) in info.value.reason
            assert str(folder) not in info.value.reason
            assert info.value.reason == str(info.value)
        for server in (listener, unix_listener):
            with contextlib.suppress(BlockingIOError):
                connection, _ = server.accept()
                pytest.fail(f"the submission reached the scorer's socket: {connection.recv(100)!r}")
    finally:
        listener.close()
        unix_listener.close()
    assert submission_content_sha256(sub_dir) == hash_before
    assert (sub_dir / "model.py").read_bytes() == model_before
    assert not (REPO / f"{marker}.txt").exists()
    assert not Path(f"/tmp/{marker}.txt").exists()
    assert os.environ["GALBENCH_CHALLENGE_SEED"] == SECRET


def test_leftover_processes_are_stopped_without_cgroups(tmp_path, sandboxes, images, monkeypatch):
    """Where no cgroup can be made (not root, no delegation) the worker, a child subreaper,
    kills what the code left running, including a process that escaped with setsid()."""
    _, marker = sandboxes
    monkeypatch.setattr(sandbox_module._Cgroups, "create", classmethod(lambda cls, name, limits: cls()))
    sub_dir, _ = _materialise("outliving-subprocess", tmp_path / "s", {"@MARKER@": marker})
    sub = load_submission(sub_dir)
    values, report = run_in_sandbox(sub, sub.entry(TASK), images, progress=False)
    assert report.sandbox["cgroup"] is None and report.sandbox["pids_limit"] is None
    assert values["mean"].shape == (40, 8)  # the fixture checks that no process is left


def test_corpus_is_large_and_covers_every_status():
    expects = [tomllib.loads((CORPUS / c / "expect.toml").read_text()) for c in CASES]
    assert len(CASES) >= 20
    statuses = {e["status"] for e in expects}
    assert set(FAILURE_STATUSES) <= statuses
    for e in expects:
        re.compile(e["reason"])


# -- well-behaved code ------------------------------------------------------------------------
HEADER = """\
name = "{name}"
authors = ["A. Person"]
contact = "a"
license = "MIT"
external_data = false

[tasks."morphometry@1"]
entry_point = "model:Model"
batch_size = {batch}
"""


def _submission(folder: Path, source: str, batch: int = 16, name: str = "good", **files: bytes) -> Path:
    folder.mkdir(parents=True)
    (folder / "submission.toml").write_text(HEADER.format(name=name, batch=batch))
    (folder / "model.py").write_text(source)
    for rel, content in files.items():
        (folder / rel).write_bytes(content)
    return folder


STATISTICS = """\
import numpy as np


class Model:
    def __init__(self, root):
        self.offset = float((root / "offset.txt").read_text())
        self.device = "cpu:test"

    def predict(self, images):
        assert isinstance(images, np.ndarray) and images.dtype == np.float32
        assert not images.flags.writeable, "batches are read-only"
        flat = images.reshape(len(images), -1).astype(np.float64)
        stats = np.stack([flat.mean(1), flat.std(1), flat.max(1), flat.min(1)], axis=1)
        return {"mean": np.tile(stats, 2) + self.offset, "std": np.ones((len(images), 8))}
"""


def test_sandboxed_values_equal_in_process_values(tmp_path, sandboxes, tiny_split_dir):
    from galbench.data.split import open_split
    from galbench.runner import run_submission

    split = open_split(tiny_split_dir)
    sub = load_submission(_submission(tmp_path / "stats", STATISTICS, **{"offset.txt": b"0.5"}))
    isolated, report = run_submission(sub, sub.entry(TASK), split, progress=False)
    direct, direct_report = run_submission(sub, sub.entry(TASK), split, progress=False, isolate=False)
    np.testing.assert_array_equal(isolated.object_ids, split.object_ids)
    assert set(isolated.values) == {"mean", "std"}
    np.testing.assert_array_equal(isolated.values["mean"], direct.values["mean"])
    np.testing.assert_array_equal(isolated.values["std"], direct.values["std"])
    assert report.isolated and not direct_report.isolated and direct_report.sandbox is None
    assert report.device == "cpu:test" and report.batch_size == 16
    assert 0 < report.seconds <= report.wall_seconds
    assert report.overhead_seconds < 5


def test_plain_array_input_and_report(tmp_path, sandboxes):
    sub = load_submission(_submission(tmp_path / "stats", STATISTICS, batch=7, **{"offset.txt": b"1"}))
    images = np.random.default_rng(0).normal(size=(10, 1, 8, 8)).astype(np.float32)
    values, report = run_in_sandbox(sub, sub.entry(TASK), images, progress=False)
    np.testing.assert_allclose(values["mean"][:, 0], images.reshape(10, -1).mean(1) + 1, rtol=1e-6)
    protections = report.sandbox
    assert protections["landlock"] == PROTECTIONS["landlock"]
    assert protections["time_limit_s"] == SandboxLimits().seconds
    if PROTECTIONS["landlock"] >= 4:
        assert protections["landlock_network"]
    if PROTECTIONS["root"]:
        assert protections["network_namespace"] and protections["capabilities_dropped"]
    if _available("cgroup_memory"):
        assert protections["memory_limit_bytes"] == SandboxLimits().memory_bytes
        assert protections["peak_memory_bytes"] > 0
    if _available("cgroup_pids"):
        assert protections["pids_limit"] == SandboxLimits().processes


POOL = """\
import multiprocessing
import numpy as np
from threadpoolctl import threadpool_limits


def row(image):
    with threadpool_limits(1):
        return np.linalg.svd(image[0].astype(np.float64), compute_uv=False)[:8]


class Model:
    def __init__(self, root):
        self.pool = multiprocessing.get_context("fork").Pool(2)
        self.lock = multiprocessing.get_context("fork").Lock()  # a semaphore in /dev/shm

    def predict(self, images):
        with self.lock:
            return np.array(self.pool.map(row, list(images)))
"""


def test_multiprocessing_pool_and_threadpoolctl_work_inside(tmp_path, sandboxes):
    pytest.importorskip("threadpoolctl")
    sub = load_submission(_submission(tmp_path / "pool", POOL, batch=4))
    images = np.random.default_rng(1).normal(size=(6, 1, 16, 16)).astype(np.float32)
    values, report = run_in_sandbox(sub, sub.entry(TASK), images, progress=False)
    expected = [np.linalg.svd(im[0].astype(np.float64), compute_uv=False)[:8] for im in images]
    np.testing.assert_allclose(values["mean"], expected, rtol=1e-10)


TORCH = """\
import numpy as np
import timm
import torch


class Model:
    def __init__(self, root):
        torch.manual_seed(0)
        self.net = timm.create_model("resnet18", pretrained=False, in_chans=1, num_classes=8)
        self.net.load_state_dict(torch.load(root / "weights.pt", weights_only=True))
        self.net.eval()
        self.device = "cpu"

    @torch.inference_mode()
    def predict(self, images):
        return self.net(torch.from_numpy(np.array(images))).double().numpy()
"""


def test_torch_and_timm_import_and_run_inside(tmp_path, sandboxes):
    """The deep baselines' stack: torch maps gigabytes of libraries, so the memory limit is
    RLIMIT_DATA, not RLIMIT_AS; Landlock must let it read its installation."""
    torch = pytest.importorskip("torch")
    timm = pytest.importorskip("timm")
    net = timm.create_model("resnet18", pretrained=False, in_chans=1, num_classes=8).eval()
    folder = _submission(tmp_path / "cnn", TORCH, batch=8)
    torch.save(net.state_dict(), folder / "weights.pt")
    images = np.random.default_rng(2).normal(size=(10, 1, 32, 32)).astype(np.float32)
    sub = load_submission(folder)
    values, report = run_in_sandbox(
        sub, sub.entry(TASK), images, progress=False, limits=SandboxLimits(memory_bytes=4 * GIB, threads=2)
    )
    with torch.inference_mode():
        expected = net(torch.from_numpy(images)).double().numpy()
    np.testing.assert_allclose(values["mean"], expected, rtol=1e-4, atol=1e-5)


GALBENCH_INSIDE = """\
import numpy as np
import galbench
from galbench.metrics.regression import sigma_nmad


class Model:
    def __init__(self, root):
        # The package imports from the sandbox (a baseline may share code through it), but the
        # repository around an editable install does not open.
        self.package = galbench.__file__

    def predict(self, images):
        flat = images.reshape(len(images), -1).astype(np.float64)
        return np.repeat(sigma_nmad(flat.T[:, :, None], axis=0), 8, axis=1)
"""


def test_the_galbench_package_is_importable_inside(tmp_path, sandboxes):
    from galbench.metrics.regression import sigma_nmad

    sub = load_submission(_submission(tmp_path / "uses-galbench", GALBENCH_INSIDE, batch=4))
    images = np.random.default_rng(3).normal(size=(6, 1, 8, 8)).astype(np.float32)
    values, _ = run_in_sandbox(sub, sub.entry(TASK), images, progress=False)
    expected = sigma_nmad(images.reshape(6, -1).astype(np.float64).T[:, :, None], axis=0)
    np.testing.assert_allclose(values["mean"], np.repeat(expected, 8, axis=1))


def test_a_fifo_in_the_folder_fails_cleanly_instead_of_blocking_the_copy(tmp_path, sandboxes):
    folder = _submission(tmp_path / "fifo", STATISTICS, **{"offset.txt": b"0"})
    os.mkfifo(folder / "pipe")
    sub = load_submission(folder)
    with pytest.raises(SandboxFailure, match=r"pipe: not a regular file") as info:
        run_in_sandbox(sub, sub.entry(TASK), np.zeros((2, 1, 4, 4), np.float32), progress=False)
    assert info.value.status == "error"


def test_a_data_home_inside_a_readable_system_folder_is_refused(tmp_path, sandboxes, monkeypatch):
    monkeypatch.setenv("GALBENCH_HOME", "/usr/share/galbench-data")
    sub = load_submission(_submission(tmp_path / "s", STATISTICS, **{"offset.txt": b"0"}))
    with pytest.raises(SandboxSetupError, match=r"/usr/share/galbench-data .* lies inside /usr"):
        run_in_sandbox(sub, sub.entry(TASK), np.zeros((2, 1, 4, 4), np.float32), progress=False)


def test_limits_are_validated():
    with pytest.raises(ValueError, match="seconds must be > 0"):
        SandboxLimits(seconds=0)
    with pytest.raises(ValueError, match="memory_bytes"):
        SandboxLimits(memory_bytes=-1)


def test_evaluate_records_a_timeout_with_its_reason(tmp_path, sandboxes, tiny_split_dir):
    """End to end: a hanging submission becomes a failure (receipt or error) with status
    'timeout', and the scorer goes on."""
    sub = _submission(tmp_path / "slow", "import time\n\n\nclass Model:\n    def __init__(self, root):\n"
                      "        time.sleep(60)\n")
    error, status, reason = _evaluate_outcome(sub, tmp_path / "r.json", SandboxLimits(seconds=2))
    assert (error, status) == ("SandboxFailure", "timeout")
    assert re.search(r"model\.py:Model: did not finish within the time limit of 2 s; it was while "
                     r"constructing the model", reason)


def test_evaluate_runs_code_in_the_sandbox_and_the_receipt_says_so(tmp_path, sandboxes, tiny_split_dir):
    from galbench.evaluate import evaluate

    sub = _submission(tmp_path / "stats", STATISTICS, **{"offset.txt": b"0"})
    receipt, _ = evaluate(sub, n=40, out=tmp_path / "r.json", progress=False)
    inference = receipt["inference"]
    assert inference["isolated"] is True and inference["device"] == "cpu:test"
    assert inference["sandbox"]["landlock"] == PROTECTIONS["landlock"]
    assert inference["sandbox"]["time_limit_s"] == SandboxLimits().seconds
    assert 0 < inference["seconds"] <= inference["wall_seconds"]


@pytest.mark.skipif(not _available("cgroup_pids"), reason="needs a writable pids cgroup")
def test_cgroups_of_a_killed_scorer_are_swept_by_the_next_run(tmp_path, sandboxes):
    """A scorer killed outright cannot remove its cgroups; the next run empties and removes
    those whose scorer pid is gone."""
    own = sandbox_module._own_cgroups()["pids"]
    mounts = [m for m in sandbox_module._mountinfo() if m[2] == "cgroup" and "pids" in m[3]]
    parent = sandbox_module._join(mounts[0][1], mounts[0][0], own)
    dead = 2**22 + 12345  # above pid_max's default: no such process
    while Path(f"/proc/{dead}").exists():
        dead += 1
    stale = parent / f"{sandbox_module._CGROUP_PREFIX}{dead}-0000"
    stale.mkdir()
    try:
        sub = load_submission(_submission(tmp_path / "s", STATISTICS, **{"offset.txt": b"0"}))
        run_in_sandbox(sub, sub.entry(TASK), np.zeros((2, 1, 4, 4), np.float32), progress=False)
        assert not stale.exists()
    finally:
        with contextlib.suppress(OSError):
            stale.rmdir()
