"""Run a submission's code in a separate, restricted process (DESIGN.md, "Trust").

The parent (this module) prepares a private folder, mode 0700::

    galbench-sandbox-XXXX/
      config.json            what the worker runs (no labels, no secrets)
      input/images.npy       the images only, float32 [N, C, H, W], read-only
      submission/<name>/     a read-only copy of the submission folder (the original, and so its
                             content hash, cannot be changed by the code)
      scratch/               $HOME, $TMPDIR and the working directory: the only writable place
      output/                <field>.npy per output field, result.json or error.json, progress

and starts ``python -I -B galbench/harness/_worker.py config.json`` with a minimal environment
(PATH, LANG, HOME, TMPDIR, thread caps and numerical-library tuning such as OPENBLAS_CORETYPE;
no ``GALBENCH_*`` variable, token or path of the scorer), in a new session, in its own cgroups.
The worker applies every protection the system allows before it imports the submission:

==========================  =====================================================================
wall time                   the parent kills the whole cgroup / process group after
                            ``limits.seconds`` (status ``timeout``)
memory                      RLIMIT_DATA, plus a cgroup memory limit where cgroups are writable
                            (``memory``: MemoryError or an OOM kill, which ends the run at once)
processes and threads       a cgroup pids limit (root), else RLIMIT_NPROC (``processes``);
                            thread pools capped by OMP/MKL/OPENBLAS_NUM_THREADS
disk                        RLIMIT_FSIZE per file; as root the scratch folder is a tmpfs of that
                            size (charged to the memory cgroup), so the disk cannot be filled
network                     a new, empty network namespace and Landlock TCP rules (ABI >= 4);
                            unix sockets (docker, systemd, ssh agents), which Landlock does not
                            govern, are hidden: /run, /var, /tmp, /home, /root, /opt ... are empty
                            tmpfs in its mount namespace, with only what it may read bound back
filesystem                  Landlock: read the Python installation, the galbench package, system
                            libraries, world-readable /etc files, the submission copy and the
                            input; write only scratch, output, a private /dev/shm and a few
                            devices (/dev/null, GPUs); everything else is EACCES
privileges                  as root: every capability dropped (no CAP_DAC_OVERRIDE, CAP_KILL,
                            CAP_SYS_ADMIN ...), no_new_privs; Landlock (ABI >= 6) also blocks
                            signals to processes outside the sandbox; ptrace of the scorer is
                            refused by Landlock (ABI >= 1)
leftovers                   every process the code started is killed when the run ends (cgroup,
                            process group, and the worker as child subreaper); the worker dies
                            with the scorer (PR_SET_PDEATHSIG), and the cgroups of a scorer that
                            was killed outright are emptied by the next run
==========================  =====================================================================

Where a mechanism is missing (macOS, old kernel, no cgroups, not root) the run degrades
gracefully and :attr:`InferenceReport.sandbox` records what was active, so a receipt can state it.
Everything the worker writes back is treated as untrusted: files are opened without following
links, sizes and shapes are checked, and nothing is unpickled.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import re
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from galbench.errors import GalbenchError

#: What :attr:`SandboxFailure.status` can be.
FAILURE_STATUSES = ("error", "invalid-output", "timeout", "memory", "processes", "crashed")

_WORKER = Path(__file__).with_name("_worker.py")
_PACKAGE_DIR = Path(__file__).resolve().parents[1]  # galbench/
_FIELD_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_GIB = 2**30
#: Read-only system folders every interpreter needs (shared libraries, ld.so, /proc, /sys).
#: /etc is granted file by file (only world-readable files: no /etc/shadow), by the worker.
_SYSTEM_READ = ("/usr", "/lib", "/lib32", "/lib64", "/libx32", "/bin", "/sbin", "/proc", "/sys")
_OUTPUT_TAIL_BYTES = 64 * 1024


def _default_threads() -> int:
    return max(1, min(os.cpu_count() or 1, 16))


@dataclass(frozen=True)
class SandboxLimits:
    """Limits of one sandboxed run.

    ``seconds``: wall time of the whole run (start, import, construction, every predict call).
    ``memory_bytes``: address space the code may allocate (RLIMIT_DATA) and, with cgroups,
    resident memory of all its processes together. ``threads``: the OMP/MKL/OpenBLAS thread
    caps. ``processes``: processes *and threads* alive at once (cgroup pids, or RLIMIT_NPROC).
    ``file_bytes``: the largest file it may write (RLIMIT_FSIZE).
    """

    seconds: float = 4 * 3600.0
    memory_bytes: int = 16 * _GIB
    threads: int = field(default_factory=_default_threads)
    processes: int = 512
    file_bytes: int = 8 * _GIB

    def __post_init__(self) -> None:
        for name in ("seconds", "memory_bytes", "threads", "processes", "file_bytes"):
            if not getattr(self, name) > 0:
                raise ValueError(f"SandboxLimits.{name} must be > 0, got {getattr(self, name)!r}")


@dataclass(frozen=True)
class InferenceReport:
    """How a submission's code ran.

    ``seconds``: time spent inside ``predict`` (measured in the sandbox; the submission could
    tamper with it, so it is capped by ``wall_seconds``). ``wall_seconds``: the whole run, from
    the moment the sandbox was ready to the end, measured outside (trustworthy).
    ``overhead_seconds``: copying the inputs and starting the sandbox. ``sandbox``: the
    protections that were active (None when the code ran in-process, ``isolate=False``).
    """

    seconds: float
    objects_per_second: float
    batch_size: int
    device: str
    isolated: bool = False
    wall_seconds: float | None = None
    overhead_seconds: float | None = None
    sandbox: dict[str, Any] | None = None


class SandboxFailure(GalbenchError, RuntimeError):
    """A submission's code failed in the sandbox. ``status``: one of :data:`FAILURE_STATUSES`;
    ``reason``: what happened, where (file, phase, object) and what to fix; ``sandbox``: the
    protections that were active (as :attr:`InferenceReport.sandbox`), None if it never ran."""

    def __init__(self, status: str, reason: str, sandbox: dict[str, Any] | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.sandbox = sandbox


class SandboxSetupError(GalbenchError, OSError):
    """The sandbox itself could not be prepared (not the submission's fault)."""


# -- capabilities of this system --------------------------------------------------------------
def _landlock_abi() -> int:
    if not sys.platform.startswith("linux"):
        return 0
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall.restype = ctypes.c_long
        version = libc.syscall(ctypes.c_long(444), None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    except (OSError, AttributeError):
        return 0
    return int(version) if version > 0 else 0


def _mountinfo() -> list[tuple[str, str, str, set[str]]]:
    """``(root, mount point, fstype, super options)`` of every cgroup mount."""
    out = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            left, _, right = line.partition(" - ")
            parts, rparts = left.split(), right.split()
            if len(parts) >= 5 and len(rparts) >= 3 and rparts[0] in ("cgroup", "cgroup2"):
                out.append((parts[3], parts[4].replace("\\040", " "), rparts[0], set(rparts[2].split(","))))
    return out


def _own_cgroups() -> dict[str, str]:
    """This process's cgroup path per v1 controller, and under ``""`` its v2 path."""
    out = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            for name in controllers.split(",") if controllers else [""]:
                out[name.removeprefix("name=")] = path
    return out


def _join(mount: str, root: str, path: str) -> Path:
    rel = os.path.relpath(path, root) if root != "/" else path.lstrip("/")
    return Path(mount) / ("" if rel == "." else rel)


_CGROUP_PREFIX = "galbench-sandbox-"


class _Cgroups:
    """Memory and pids cgroups for one run, created under this process's own cgroup (so any
    limit already imposed on the caller still applies) and removed afterwards. Their names
    carry the scorer's pid: cgroups of a scorer that was killed outright (and so could not
    clean up) are emptied and removed by the next run."""

    def __init__(self) -> None:
        self.dirs: dict[str, Path] = {}  # controller -> folder
        self.version = ""
        self.limits: dict[str, int] = {}

    @classmethod
    def create(cls, name: str, limits: SandboxLimits) -> _Cgroups:
        self = cls()
        if not sys.platform.startswith("linux"):
            return self
        mounts, own = _mountinfo(), _own_cgroups()
        for root, point, fstype, _ in mounts:  # cgroup v2, where controllers are delegated
            if fstype == "cgroup2" and "" in own and self._create_v2(_join(point, root, own[""]), name, limits):
                return self
        for controller in ("memory", "pids"):  # cgroup v1
            for root, point, fstype, options in mounts:
                if fstype == "cgroup" and controller in options and controller in own:
                    folder = _join(point, root, own[controller]) / name
                    _sweep_stale(folder.parent)
                    try:
                        folder.mkdir(mode=0o755)
                    except OSError:
                        break
                    self.dirs[controller] = folder
                    self.version = "v1"
                    try:
                        if controller == "memory":
                            (folder / "memory.limit_in_bytes").write_text(str(limits.memory_bytes))
                            self.limits["memory_limit_bytes"] = limits.memory_bytes
                            with contextlib.suppress(OSError):  # only with swap accounting
                                (folder / "memory.memsw.limit_in_bytes").write_text(str(limits.memory_bytes))
                        else:
                            (folder / "pids.max").write_text(str(limits.processes))
                            self.limits["pids_limit"] = limits.processes
                    except OSError:
                        self.remove()
                        return cls()
                    break
        return self

    def _create_v2(self, base: Path, name: str, limits: SandboxLimits) -> bool:
        """A child of our own v2 cgroup. Enabling controllers for children fails (EBUSY) when
        our cgroup holds processes, as a login session's does: then no cgroup (the run
        degrades to rlimits); a delegated cgroup (systemd ``Delegate=yes``, a container's
        root) works."""
        wanted = {"memory", "pids"}
        try:
            enabled = set((base / "cgroup.subtree_control").read_text().split())
            available = set((base / "cgroup.controllers").read_text().split())
            missing = (wanted & available) - enabled
            if missing:
                (base / "cgroup.subtree_control").write_text(" ".join(f"+{c}" for c in sorted(missing)))
                enabled = set((base / "cgroup.subtree_control").read_text().split())
        except OSError:
            return False
        if not wanted & enabled:
            return False
        _sweep_stale(base)
        folder = base / name
        try:
            folder.mkdir(mode=0o755)
            self.version = "v2"
            self.dirs = {c: folder for c in sorted(wanted & enabled)}
            self._limit_v2(folder, limits)
        except OSError:
            self.remove()
            self.version, self.limits = "", {}
            return False
        return True

    def _limit_v2(self, folder: Path, limits: SandboxLimits) -> None:
        if "memory" in self.dirs:
            (folder / "memory.max").write_text(str(limits.memory_bytes))
            with contextlib.suppress(OSError):
                (folder / "memory.swap.max").write_text("0")
            self.limits["memory_limit_bytes"] = limits.memory_bytes
        if "pids" in self.dirs:
            (folder / "pids.max").write_text(str(limits.processes))
            self.limits["pids_limit"] = limits.processes

    @property
    def procs_files(self) -> list[str]:
        return sorted({str(d / "cgroup.procs") for d in self.dirs.values()})

    def pids(self) -> set[int]:
        found: set[int] = set()
        for folder in set(self.dirs.values()):
            with contextlib.suppress(OSError, ValueError):
                found.update(int(p) for p in (folder / "cgroup.procs").read_text().split())
        return found

    def kill_all(self) -> int:
        """SIGKILL every process in the cgroups until none is left; returns how many were seen.
        The pids limit bounds a fork bomb, so this converges."""
        seen: set[int] = set()
        for folder in set(self.dirs.values()):
            with contextlib.suppress(OSError):
                if (folder / "cgroup.kill").exists():
                    (folder / "cgroup.kill").write_text("1")
        for _ in range(500):
            pids = self.pids()
            if not pids:
                break
            seen |= pids
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.01)
        return len(seen)

    def _read(self, controller: str, name: str) -> str:
        folder = self.dirs.get(controller)
        if folder is None:
            return ""
        with contextlib.suppress(OSError):
            return (folder / name).read_text()
        return ""

    @staticmethod
    def _counter(text: str, key: str) -> int:
        for line in text.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] == key:
                with contextlib.suppress(ValueError):
                    return int(parts[1])
        return 0

    def stats(self) -> dict[str, int]:
        out: dict[str, int] = {}
        if "memory" in self.dirs:
            if self.version == "v1":
                oom = self._counter(self._read("memory", "memory.oom_control"), "oom_kill")
                peak = self._read("memory", "memory.max_usage_in_bytes").strip()
                failcnt = self._read("memory", "memory.failcnt").strip()
                out["memory_limit_hits"] = int(failcnt) if failcnt.isdigit() else 0
            else:
                oom = self._counter(self._read("memory", "memory.events"), "oom_kill")
                peak = self._read("memory", "memory.peak").strip()
            out["oom_kills"] = oom
            if peak.isdigit():
                out["peak_memory_bytes"] = int(peak)
        if "pids" in self.dirs:
            out["pids_limit_hits"] = self._counter(self._read("pids", "pids.events"), "max")
        return out

    def remove(self) -> None:
        for folder in set(self.dirs.values()):
            for _ in range(100):
                try:
                    folder.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    self.kill_all()
                    time.sleep(0.02)
        self.dirs.clear()


def _sweep_stale(parent: Path) -> None:
    """Kill and remove sandbox cgroups under ``parent`` whose scorer no longer runs."""
    with contextlib.suppress(OSError):
        for folder in parent.glob(f"{_CGROUP_PREFIX}*"):
            pid = folder.name[len(_CGROUP_PREFIX):].split("-")[0]
            if not pid.isdigit() or Path(f"/proc/{pid}").exists():
                continue
            stale = _Cgroups()
            stale.dirs = {"stale": folder}
            stale.remove()


def available_protections() -> dict[str, Any]:
    """What the sandbox can use on this machine: ``root``, the ``landlock`` ABI (0: none), and
    whether memory and pids cgroups can be made (tried: one is created and removed)."""
    probe = _Cgroups.create(f"{_CGROUP_PREFIX}{os.getpid()}-probe{secrets.token_hex(2)}", SandboxLimits())
    try:
        return {
            "platform": sys.platform,
            "root": hasattr(os, "geteuid") and os.geteuid() == 0,
            "landlock": _landlock_abi(),
            "cgroup": probe.version or None,
            "cgroup_memory": "memory" in probe.dirs,
            "cgroup_pids": "pids" in probe.dirs,
        }
    finally:
        probe.remove()


# -- the private folder -----------------------------------------------------------------------
def _copy_submission(source: Path, target: Path) -> None:
    """Copy the folder without following links (a link to /etc/shadow stays a link, which the
    sandbox then refuses to read) and refuse anything that is not a file, folder or link: a FIFO
    would block the copy forever."""

    def copy(src: str, dst: str) -> str:
        mode = os.lstat(src).st_mode
        if not stat.S_ISREG(mode):
            raise SandboxFailure(
                "error",
                f"{src}: not a regular file (mode {stat.filemode(mode)}); a submission folder "
                "holds regular files, folders and links only: remove it",
            )
        return shutil.copy2(src, dst)

    shutil.copytree(
        source, target, symlinks=True, copy_function=copy,
        ignore=shutil.ignore_patterns("__pycache__", ".git", ".ipynb_checkpoints", "*.pyc"),
    )
    _read_only_tree(target)


def _read_only_tree(root: Path) -> None:
    """chmod a-w, so that even without Landlock the copy is not writable (root without
    CAP_DAC_OVERRIDE obeys mode bits too)."""
    for folder, dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            if not os.path.islink(path):
                os.chmod(path, stat.S_IMODE(os.lstat(path).st_mode) & ~0o222)
        os.chmod(folder, 0o555)


def _write_images(images: Any, path: Path) -> tuple[int, ...]:
    """The images as one float32 ``[N, C, H, W]`` .npy file (memory-mapped by the worker),
    written in chunks so a large split never sits in memory twice."""
    shape = tuple(int(s) for s in images.shape)
    if len(shape) < 2:
        raise ValueError(f"images must be [N, C, H, W], got shape {shape}")
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=shape)
    chunk = max(1, (64 * 2**20) // max(1, int(np.prod(shape[1:])) * 4))
    for start in range(0, shape[0], chunk):
        out[start : start + chunk] = np.asarray(images[start : start + chunk], dtype=np.float32)
    out.flush()
    del out
    os.chmod(path, 0o444)
    return shape


def _remove_tree(root: Path) -> None:
    def retry(func, path, _exc):
        with contextlib.suppress(OSError):
            os.chmod(os.path.dirname(path), 0o700)
            if os.path.isdir(path) and not os.path.islink(path):
                os.chmod(path, 0o700)
            func(path)

    shutil.rmtree(root, onerror=retry)
    if root.exists():
        shutil.rmtree(root, ignore_errors=True)


def _secret_dirs(images: Any) -> list[str]:
    """Folders the code must never be able to read, even if a granted path contained them: the
    split the images come from (its catalog holds the labels), the data home, and the
    repository around an editable install of galbench."""
    out = set()
    for p in getattr(images, "_paths", []) or []:
        shard = Path(p).resolve()
        out.update({str(shard.parent), str(shard.parent.parent)})  # images/ and the split
    with contextlib.suppress(Exception):
        from galbench.data.home import data_home

        out.add(str(data_home().resolve()))
    repo = _PACKAGE_DIR.parent
    prefixes = {Path(p).resolve() for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    if not any(repo == p or p in repo.parents for p in prefixes):
        out.add(str(repo))
    return sorted(out)


def _count_user_tasks(uid: int) -> int:
    """Processes and threads of ``uid`` now (RLIMIT_NPROC counts them all, system-wide)."""
    count = 0
    with contextlib.suppress(OSError):
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                with contextlib.suppress(OSError):
                    if entry.stat().st_uid == uid:
                        count += len(os.listdir(f"/proc/{entry.name}/task"))
    return count


_PASSED_VARIABLES = frozenset({"CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES", "LD_LIBRARY_PATH"})
_PASSED_PREFIXES = ("OPENBLAS_", "MKL_", "KMP_", "OMP_", "GOTO_", "NVPL_")


def _environment(scratch: Path, limits: SandboxLimits) -> dict[str, str]:
    """The worker's whole environment: nothing of the scorer's (no GALBENCH_* secret, token or
    path) except the configuration named in ``_PASSED_VARIABLES`` and ``_PASSED_PREFIXES``."""
    threads = str(limits.threads)
    env = {
        "PATH": os.environ.get("PATH", os.defpath),
        "LANG": os.environ.get("LANG", "C.UTF-8"),
        "HOME": str(scratch),
        "TMPDIR": str(scratch),
        "PYTHONDONTWRITEBYTECODE": "1",
        "OMP_NUM_THREADS": threads,
        "MKL_NUM_THREADS": threads,
        "OPENBLAS_NUM_THREADS": threads,
        "VECLIB_MAXIMUM_THREADS": threads,
        "NUMEXPR_NUM_THREADS": threads,
    }
    # Configuration, not secrets: which GPUs to use, where the interpreter's libraries are, and
    # how the numerical libraries use this CPU (e.g. OPENBLAS_CORETYPE: without it OpenBLAS may
    # pick kernels that are 1.5x slower on a virtual machine). Thread counts stay ours.
    for name, value in os.environ.items():
        if name in _PASSED_VARIABLES or (name.startswith(_PASSED_PREFIXES) and name not in env):
            env[name] = value
    return env


# -- reading what the worker wrote (untrusted) ------------------------------------------------
def _open_untrusted(path: Path) -> int | None:
    """An fd of a regular, single-link file at ``path``, never following a link (the code could
    have replaced an output with a link to the labels) and never blocking on a FIFO."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
        os.close(fd)
        return None
    return fd


def _read_small(path: Path, limit: int = 1 << 20) -> str | None:
    fd = _open_untrusted(path)
    if fd is None:
        return None
    with os.fdopen(fd, "rb") as f:
        return f.read(limit).decode("utf-8", "replace")


def _read_json(path: Path) -> dict[str, Any] | None:
    text = _read_small(path)
    if text is None:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _load_output(path: Path, n: int, name: str, where: str) -> np.ndarray:
    fd = _open_untrusted(path)
    if fd is None:
        raise SandboxFailure(
            "invalid-output", f"{where}: output '{name}' is missing or not a regular file"
        )
    with os.fdopen(fd, "rb") as f:
        try:
            version = np.lib.format.read_magic(f)
            shape, _, dtype = (
                np.lib.format.read_array_header_1_0(f) if version == (1, 0)
                else np.lib.format.read_array_header_2_0(f)
            )
        except (ValueError, OSError) as exc:
            raise SandboxFailure(
                "invalid-output", f"{where}: output '{name}' is not a readable array ({exc})"
            ) from None
        if dtype.hasobject or not shape or shape[0] != n:
            raise SandboxFailure(
                "invalid-output",
                f"{where}: predict() returned '{name}' with {shape[0] if shape else 0} rows "
                f"({dtype}); expected {n} rows, one per image",
            )
        f.seek(0)
        try:
            return np.load(f, allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise SandboxFailure(
                "invalid-output", f"{where}: output '{name}' is not a readable array ({exc})"
            ) from None


class _Drain(threading.Thread):
    """Reads a pipe to its end, keeping only the last ``keep`` bytes (a submission printing
    gigabytes neither blocks nor fills the scorer's memory)."""

    def __init__(self, stream, keep: int) -> None:
        super().__init__(daemon=True)
        self.stream, self.keep = stream, keep
        self.chunks: deque[bytes] = deque()
        self.size = 0
        self.total = 0

    def run(self) -> None:
        try:
            while True:
                data = self.stream.read1(65536)
                if not data:
                    break
                self.total += len(data)
                self.chunks.append(data)
                self.size += len(data)
                while self.size - len(self.chunks[0]) >= self.keep:
                    self.size -= len(self.chunks.popleft())
        except (OSError, ValueError):
            pass
        finally:
            with contextlib.suppress(OSError):
                self.stream.close()

    def text(self) -> str:
        return b"".join(self.chunks)[-self.keep :].decode("utf-8", "replace")


def _signal_name(number: int) -> str:
    with contextlib.suppress(ValueError):
        return signal.Signals(number).name
    return f"signal {number}"


# -- the run ----------------------------------------------------------------------------------
def run_in_sandbox(
    submission: Any,
    entry: Any,
    images: Any,
    *,
    limits: SandboxLimits | None = None,
    progress: bool = True,
    desc: str | None = None,
) -> tuple[dict[str, np.ndarray], InferenceReport]:
    """Run ``entry``'s code (``module:Class``) of ``submission`` over ``images`` in a sandbox.

    ``images``: a :class:`~galbench.data.split.ShardedImages` or a float32 array
    ``[N, C, H, W]``. Returns ``(values, report)``: each output field (``"mean"`` when
    ``predict`` returns a plain array) as an array with N rows, in image order, and how it ran.
    Raises :class:`SandboxFailure` (``status``, ``reason``) when the code fails in any way, and
    :class:`SandboxSetupError` when the sandbox itself cannot be prepared.
    """
    from tqdm.auto import tqdm

    limits = limits or SandboxLimits()
    if entry.entry_point is None:
        raise SandboxSetupError(f"{submission.root}: no entry_point to run for {entry.task}")
    module_name, class_name = entry.entry_point.split(":")
    rel = Path(*module_name.split("."))
    module_file = submission.root / f"{rel}.py"
    if not module_file.is_file() and (submission.root / rel / "__init__.py").is_file():
        module_file = submission.root / rel / "__init__.py"
    where = f"{module_file}:{class_name}"
    n = len(images)

    t_start = time.perf_counter()
    workspace = Path(tempfile.mkdtemp(prefix="galbench-sandbox-"))
    cgroups = _Cgroups()
    proc: subprocess.Popen | None = None
    try:
        input_dir, output_dir, scratch = workspace / "input", workspace / "output", workspace / "scratch"
        library = workspace / "library"
        for folder in (input_dir, output_dir, scratch, workspace / "submission", library):
            folder.mkdir(mode=0o700)
        # The galbench package alone, importable by the submission (a shared network, say) as it
        # is from a wheel install; an editable install's repository root stays unreadable.
        (library / "galbench").symlink_to(_PACKAGE_DIR, target_is_directory=True)
        copy_root = workspace / "submission" / (submission.root.resolve().name or "submission")
        try:
            _write_images(images, input_dir / "images.npy")
            os.chmod(input_dir, 0o555)
            _copy_submission(submission.root, copy_root)
        except SandboxFailure:
            raise
        except OSError as exc:
            raise SandboxSetupError(f"preparing the sandbox folder {workspace} failed: {exc}") from exc

        deny = _secret_dirs(images)
        read = [str(_PACKAGE_DIR), str(library), str(input_dir), str(copy_root), *_SYSTEM_READ]
        exposed = [(d, r) for d in deny for r in _SYSTEM_READ if d == r or d.startswith(r + "/")]
        if exposed:
            d, r = exposed[0]
            raise SandboxSetupError(
                f"{d} (the data home or a split) lies inside {r}, which every submission may "
                "read; move it elsewhere (set GALBENCH_HOME)"
            )
        cgroups = _Cgroups.create(f"{_CGROUP_PREFIX}{os.getpid()}-{secrets.token_hex(4)}", limits)
        config: dict[str, Any] = {
            "n": n,
            "parent_pid": os.getpid(),
            "images": str(input_dir / "images.npy"),
            "submission": str(copy_root),
            "library": str(library),
            "entry_point": entry.entry_point,
            "batch_size": int(entry.batch_size),
            "output": str(output_dir),
            "progress": str(output_dir / "progress"),
            "scratch": str(scratch),
            "workspace": str(workspace),
            "memory_bytes": int(limits.memory_bytes),
            "file_bytes": int(limits.file_bytes),
            "cgroup_procs": cgroups.procs_files,
            "isolate_network": True,
            "private_shm_bytes": int(limits.memory_bytes),
            "use_landlock": True,
            "deny": deny,
            "scratch_tmpfs_bytes": int(limits.file_bytes),
            "landlock_rules": {
                "read": read,
                "read_files": ["/dev/random", "/dev/urandom"],
                "list": ["/dev"],
                "write": [str(scratch), str(output_dir), "/dev/shm", "/dev/dri"],
                # Devices one by one: uid 0 owns the raw disks (/dev/vda ...), which would
                # otherwise be readable, bypassing every rule on files.
                "write_files": ["/dev/null", "/dev/zero", "/dev/full", "/dev/kfd"]
                + sorted(str(p) for p in Path("/dev").glob("nvidia*")),
            },
        }
        if hasattr(os, "geteuid") and os.geteuid() != 0 and "pids" not in cgroups.dirs:
            running = _count_user_tasks(os.getuid())
            if running:  # unknown without /proc: then no limit rather than a wrong one
                config["rlimit_nproc"] = running + limits.processes
        setup_r, setup_w = os.pipe()
        config["setup_fd"] = setup_w
        (workspace / "config.json").write_text(json.dumps(config))

        t_spawn = time.perf_counter()
        try:
            proc = subprocess.Popen(
                [sys.executable, "-I", "-B", str(_WORKER), str(workspace / "config.json")],
                env=_environment(scratch, limits),
                cwd=scratch,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                pass_fds=(setup_w,),
                close_fds=True,
            )
        except OSError as exc:
            os.close(setup_r)
            raise SandboxSetupError(f"starting the sandbox ({sys.executable}) failed: {exc}") from exc
        finally:
            os.close(setup_w)
        output = _Drain(proc.stdout, _OUTPUT_TAIL_BYTES)
        output.start()
        setup = _Drain(os.fdopen(setup_r, "rb"), 1 << 20)
        setup.start()

        bar = tqdm(total=n, unit="obj", desc=desc or f"{submission.name} (sandboxed)",
                   disable=not progress, dynamic_ncols=True)
        deadline = t_spawn + limits.seconds
        timed_out = out_of_memory = False
        t_ready = None
        state = ("starting", 0, 0)
        polls = 0
        with bar:
            while True:
                try:
                    proc.wait(timeout=0.02 if t_ready is None else 0.1)
                except subprocess.TimeoutExpired:
                    pass
                if t_ready is None and not setup.is_alive():
                    t_ready = time.perf_counter()
                state = _read_progress(output_dir / "progress", state, n)
                if state[1] > bar.n:
                    bar.update(state[1] - bar.n)
                if proc.returncode is not None:
                    break
                if time.perf_counter() > deadline:
                    timed_out = True
                    break
                polls += 1
                if polls % 5 == 0 and cgroups.stats().get("oom_kills", 0) > 0:
                    # The kernel killed one of its processes (often a pool worker, which leaves
                    # the pool waiting forever): stop now instead of at the time limit.
                    out_of_memory = True
                    break
        t_end = time.perf_counter()
        leftovers = _stop(proc, cgroups)
        setup.join(timeout=2)
        output.join(timeout=2)
        stats = cgroups.stats()
        cgroups.remove()
        state = _read_progress(output_dir / "progress", state, n)

        setup_report = _parse_setup(setup.text())
        if setup_report is None or not setup_report.get("ok"):
            detail = (setup_report or {}).get("error") or f"exit code {proc.returncode}"
            raise SandboxSetupError(
                f"the sandbox for {where} could not be started ({detail}); output:\n"
                + _tail(output.text(), 3000)
            )
        protections = _summarise(setup_report.get("protections", {}), cgroups, limits, stats)
        protections["leftover_processes_killed"] = leftovers
        protections["output_bytes"] = output.total

        ready = t_ready or t_spawn
        context = _Context(where, str(module_file), submission.root, copy_root, workspace, limits, n, state,
                           output.text(), stats, protections)
        if out_of_memory:
            raise SandboxFailure("memory", context.memory(), protections)
        if timed_out:
            raise SandboxFailure("timeout", context.timeout(), protections)
        result = _read_json(output_dir / "result.json")
        error = _read_json(output_dir / "error.json")
        if proc.returncode == 0 and result is not None and result.get("status") == "ok":
            try:
                values = _collect(result, output_dir, n, where)
            except SandboxFailure as exc:
                exc.sandbox = protections
                raise
            wall = t_end - ready
            seconds = result.get("predict_seconds")
            seconds = min(float(seconds), wall) if isinstance(seconds, (int, float)) and seconds >= 0 else wall
            report = InferenceReport(
                seconds=seconds,
                objects_per_second=n / seconds if seconds > 0 else float("inf"),
                batch_size=int(entry.batch_size),
                device=str(result.get("device", "cpu"))[:64],
                isolated=True,
                wall_seconds=wall,
                overhead_seconds=ready - t_start,
                sandbox=protections,
            )
            return values, report
        raise SandboxFailure(*context.failure(proc.returncode, error), protections)
    finally:
        if proc is not None and proc.returncode is None:
            _stop(proc, cgroups)
        cgroups.remove()
        _remove_tree(workspace)


def _stop(proc: subprocess.Popen, cgroups: _Cgroups) -> int:
    """Kill the worker and everything it started; returns how many processes were still there
    (besides the worker)."""
    before = cgroups.pids() if cgroups.dirs else _session_pids(proc.pid)
    before.discard(proc.pid)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    if cgroups.dirs:
        cgroups.kill_all()
    else:
        for pid in _session_pids(proc.pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)
    return len(before)


def _session_pids(sid: int) -> set[int]:
    """Processes of the worker's session (without cgroups: the best that can be found; a
    process that called setsid() again escapes)."""
    found = set()
    with contextlib.suppress(OSError):
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                with contextlib.suppress(OSError, IndexError, ValueError):
                    text = Path(f"/proc/{entry.name}/stat").read_text()
                    fields = text.rsplit(")", 1)[1].split()
                    if int(fields[3]) == sid or int(fields[2]) == sid:  # session or group
                        found.add(int(entry.name))
    return found


def _read_progress(path: Path, previous: tuple[str, int, int], n: int) -> tuple[str, int, int]:
    text = _read_small(path, 256)
    if not text:
        return previous
    parts = text.split()
    if len(parts) != 4 or not all(p.isdigit() for p in parts[1:]):
        return previous
    phase = parts[0] if parts[0] in ("starting", "import", "construct", "predict", "write", "done") else previous[0]
    return phase, min(int(parts[1]), n), min(int(parts[3]), n)


def _parse_setup(text: str) -> dict[str, Any] | None:
    line = text.strip().splitlines()[0] if text.strip() else ""
    try:
        data = json.loads(line)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _summarise(active: dict[str, Any], cgroups: _Cgroups, limits: SandboxLimits,
               stats: dict[str, int]) -> dict[str, Any]:
    """What a receipt states about the sandbox: each protection and limit that was active."""
    out: dict[str, Any] = {
        "landlock": int(active.get("landlock", 0) or 0),
        "landlock_network": bool(active.get("landlock_network", False)),
        "landlock_scoped_signals": bool(active.get("landlock_scoped_signals", False)),
        "network_namespace": bool(active.get("network_namespace", False)),
        "mount_namespace": bool(active.get("mount_namespace", False)),
        "masked": [str(m) for m in active.get("masked", [])][:16],
        "private_dev_shm": bool(active.get("private_dev_shm", False)),
        "scratch_tmpfs": bool(active.get("scratch_tmpfs", False)),
        "capabilities_dropped": bool(active.get("capabilities_dropped", False)),
        "subreaper": bool(active.get("subreaper", False)),
        "cgroup": cgroups.version or None,
        "time_limit_s": float(limits.seconds),
        "memory_limit_bytes": cgroups.limits.get("memory_limit_bytes"),
        "rlimit_data_bytes": active.get("rlimit_data_bytes"),
        "pids_limit": cgroups.limits.get("pids_limit"),
        "rlimit_nproc": active.get("rlimit_nproc"),
        "rlimit_fsize_bytes": active.get("rlimit_fsize_bytes"),
        "threads": limits.threads,
        "environment": "minimal",
    }
    if "peak_memory_bytes" in stats:
        out["peak_memory_bytes"] = stats["peak_memory_bytes"]
    return out


def _collect(result: Mapping[str, Any], output_dir: Path, n: int, where: str) -> dict[str, np.ndarray]:
    fields = result.get("fields")
    if not isinstance(fields, dict) or not fields:
        raise SandboxFailure("invalid-output", f"{where}: predict() returned no output field")
    values = {}
    for name in fields:
        if not isinstance(name, str) or not _FIELD_RE.match(name):
            raise SandboxFailure("invalid-output", f"{where}: invalid output field name {str(name)[:80]!r}")
        values[name] = _load_output(output_dir / f"{name}.npy", n, name, where)
    return values


def _tail(text: str, limit: int) -> str:
    text = text.strip()
    if not text:
        return "(no output)"
    return ("..." + text[-limit:]) if len(text) > limit else text


_FILESYSTEM_HINT = (
    "The sandbox lets a submission read only its own folder, the Python installation and system "
    "libraries, write only to its scratch folder ($TMPDIR, $HOME), and signal only its own "
    "processes; it sees no environment variables beyond PATH, LANG, HOME, TMPDIR and thread "
    "counts. Ship what the model needs (weights, tables) inside the submission folder."
)
_NETWORK_HINT = (
    "The sandbox has no network (not even localhost): ship what the model needs (weights, "
    "tables) inside the submission folder instead of downloading it at scoring time."
)


@dataclass
class _Context:
    """Everything needed to explain a failure."""

    where: str
    module_file: str
    root: Path
    copy_root: Path
    workspace: Path
    limits: SandboxLimits
    n: int
    state: tuple[str, int, int]
    output: str
    stats: dict[str, int]
    protections: dict[str, Any]

    def _clean(self, text: str) -> str:
        # Paths inside the sandbox's copy are reported as the submission's own files.
        return text.replace(str(self.copy_root), str(self.root)).replace(str(self.workspace), "<sandbox>")

    def _phase(self, phase: str | None = None, start: int | None = None) -> str:
        phase = phase or self.state[0]
        start = self.state[2] if start is None else start
        return {
            "starting": "while starting",
            "import": "while importing the entry point",
            "construct": "while constructing the model",
            "predict": f"in predict() on the batch at object {start} ({self.state[1]}/{self.n} done)",
            "write": "while writing its outputs",
            "done": "after finishing",
        }.get(phase, f"in {phase}")

    def _last_output(self) -> str:
        text = self._clean(self.output).strip()
        return f"\nLast output:\n{_tail(text, 1500)}" if text else ""

    def timeout(self) -> str:
        return (
            f"{self.where}: did not finish within the time limit of {self.limits.seconds:g} s; it "
            f"was {self._phase()}. Make it faster (a larger batch_size, a GPU, fewer fit "
            "iterations) or raise the limit (SandboxLimits.seconds)"
        )

    def memory(self, phase: str | None = None) -> str:
        return (
            f"{self.where}: ran out of memory (limit {self.limits.memory_bytes / _GIB:.3g} GiB) "
            f"{self._phase(phase)}. Use less: a smaller batch_size in submission.toml, fewer or "
            "lighter worker processes, or float32 instead of float64"
        )

    def failure(self, returncode: int, error: dict[str, Any] | None) -> tuple[str, str]:
        oom = self.stats.get("oom_kills", 0) > 0
        pids_hit = self.stats.get("pids_limit_hits", 0) > 0
        # The worker exits with 1 after writing error.json; any other exit was not the worker's
        # own report (an os._exit() in predict, a crash), and the exit itself is the cause.
        if error is not None and returncode == 1:
            status = str(error.get("status", "error"))
            phase = str(error.get("phase", self.state[0]))
            message = self._clean(str(error.get("message", ""))[:3000])
            trace = self._clean(str(error.get("traceback", ""))[-4000:])
            if status == "memory" or oom:
                return "memory", self.memory(phase) + f"\n{message}"
            if pids_hit and status == "error":
                return "processes", self.processes(phase)
            if status not in FAILURE_STATUSES:
                status = "error"
            if status == "invalid-output":
                return status, f"{self.where}: {message}"
            where = self.module_file if phase == "import" else self.where
            text = f"{where}: {message}"
            if re.search(r"socket|connect|getaddrinfo|Network is unreachable|urllib|requests", trace):
                text += "\n" + _NETWORK_HINT
            elif re.search(r"PermissionError|Operation not permitted|FileNotFoundError", message):
                text += "\n" + _FILESYSTEM_HINT
            if trace:
                text += "\n" + trace.rstrip()
            return status, text + self._last_output()
        if oom:
            return "memory", self.memory()
        if pids_hit:
            return "processes", self.processes()
        last = self._last_output()
        if returncode < 0:
            name = _signal_name(-returncode)
            if -returncode == signal.SIGKILL:
                return "crashed", (
                    f"{self.where}: the process was killed (SIGKILL) {self._phase()}, not by the "
                    f"harness; the system may have run out of memory.{last}"
                )
            return "crashed", (
                f"{self.where}: the process crashed with {name} {self._phase()} (a fault in native "
                f"code: a C extension, ctypes, or a library built for another machine).{last}"
            )
        return "error", (
            f"{self.where}: the process exited with code {returncode} {self._phase()} without "
            "returning predictions. A submission must not call sys.exit()/os._exit() or end its "
            f"own process; it returns predictions from predict().{last}"
        )

    def processes(self, phase: str | None = None) -> str:
        limit = self.protections.get("pids_limit") or self.limits.processes
        return (
            f"{self.where}: tried to run more than {limit} processes and threads at once (the "
            f"limit) {self._phase(phase)}. Use a bounded pool (multiprocessing.Pool(2)) and at "
            "most $OMP_NUM_THREADS threads"
        )

