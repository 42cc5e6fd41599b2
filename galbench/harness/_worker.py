"""The sandboxed side of :mod:`galbench.harness`: run one submission over one image file.

:func:`galbench.harness.sandbox.run_in_sandbox` starts it as ``python -I -B _worker.py CONFIG``
in a fresh private folder. It imports only the standard library until every protection is in
place, because Landlock, capabilities and ``no_new_privs`` apply to the calling thread and the
threads and processes it starts *afterwards*: a thread started earlier (OpenBLAS starts some when
numpy is imported) would escape them.

Order: join the cgroups -> new network (and mount) namespace -> private ``/dev/shm`` -> resource
limits -> drop capabilities -> ``no_new_privs`` -> Landlock -> report "ready" on the setup pipe
and close it -> import numpy, then the submission -> predict batch by batch -> write outputs.

Nothing this process writes after the setup pipe is closed is trusted by the parent: the
submission runs in this very process and could forge any of it, so the parent re-checks every
file it reads back. The setup report is trustworthy because no submission code has run while
the pipe is open.

Exit codes: 0 done (``result.json`` and one ``<field>.npy`` per output field written); 1 the
submission failed (``error.json`` written); 2 the sandbox could not be set up (reported on the
setup pipe).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import platform
import re
import resource
import stat
import sys
import time
import traceback

# -- Linux constants (uapi headers) -----------------------------------------------------------
_SYS_LANDLOCK_CREATE_RULESET = 444  # the same number on every architecture (added in 5.13)
_SYS_LANDLOCK_ADD_RULE = 445
_SYS_LANDLOCK_RESTRICT_SELF = 446
_LANDLOCK_CREATE_RULESET_VERSION = 1
_LANDLOCK_RULE_PATH_BENEATH = 1

_FS_EXECUTE = 1 << 0
_FS_WRITE_FILE = 1 << 1
_FS_READ_FILE = 1 << 2
_FS_READ_DIR = 1 << 3
_FS_REMOVE_DIR = 1 << 4
_FS_REMOVE_FILE = 1 << 5
_FS_MAKE_CHAR = 1 << 6
_FS_MAKE_DIR = 1 << 7
_FS_MAKE_REG = 1 << 8
_FS_MAKE_SOCK = 1 << 9
_FS_MAKE_FIFO = 1 << 10
_FS_MAKE_BLOCK = 1 << 11
_FS_MAKE_SYM = 1 << 12
_FS_REFER = 1 << 13  # ABI 2
_FS_TRUNCATE = 1 << 14  # ABI 3
_FS_IOCTL_DEV = 1 << 15  # ABI 5
_NET_BIND_TCP = 1 << 0  # ABI 4
_NET_CONNECT_TCP = 1 << 1
_SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0  # ABI 6
_SCOPE_SIGNAL = 1 << 1

_FS_ABI1 = (1 << 13) - 1
_FS_READ = _FS_EXECUTE | _FS_READ_FILE | _FS_READ_DIR
#: Rights that a rule on a regular file (not a directory) may carry.
_FS_FILE_RIGHTS = _FS_EXECUTE | _FS_WRITE_FILE | _FS_READ_FILE | _FS_TRUNCATE | _FS_IOCTL_DEV

_PR_SET_PDEATHSIG = 1
_PR_SET_NO_NEW_PRIVS = 38
_PR_SET_CHILD_SUBREAPER = 36
_PR_CAPBSET_DROP = 24
_PR_CAP_AMBIENT = 47
_PR_CAP_AMBIENT_CLEAR_ALL = 4
_LINUX_CAPABILITY_VERSION_3 = 0x20080522
_CLONE_NEWNS = 0x00020000
_CLONE_NEWUSER = 0x10000000
_CLONE_NEWNET = 0x40000000
_MS_NOSUID, _MS_NODEV, _MS_NOEXEC = 2, 4, 8
_MS_BIND, _MS_REC, _MS_PRIVATE = 1 << 12, 1 << 14, 1 << 18

_FIELD_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_MAIN_PID = os.getpid()


class _RulesetAttr(ctypes.Structure):
    _fields_ = [
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    ]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


class SetupError(Exception):
    """A protection that was asked for could not be applied."""


def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return libc


def _check(result: int, what: str) -> int:
    if result < 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {os.strerror(code)}")
    return result


# -- protections ------------------------------------------------------------------------------
def join_cgroups(procs_files: list[str]) -> None:
    """Move this process into the sandbox's cgroups (before anything else runs)."""
    for path in procs_files:
        with open(path, "w") as f:
            f.write(str(os.getpid()))


#: Folders hidden behind an empty tmpfs in the sandbox's mount namespace (what it must read
#: there, e.g. an interpreter under /root, is bound back). Landlock does not govern connect() on
#: unix sockets, and uid 0 owns most of them: /run/docker.sock, systemd's private socket, an
#: ssh agent's under /tmp would otherwise be reachable.
MASKED = ("/run", "/var", "/tmp", "/home", "/root", "/srv", "/mnt", "/media", "/opt")


def isolate_namespaces(libc: ctypes.CDLL, config: dict, keep: list[str]) -> dict:
    """A new, empty network namespace (only a loopback device, down): no route anywhere, not
    even to the host's localhost; and a new mount namespace in which :data:`MASKED` folders are
    empty except for the paths in ``keep``, ``/dev/shm`` is private, and the scratch folder is
    a size-limited tmpfs (its pages count against the memory cgroup: the disk cannot be
    filled). As root directly; otherwise inside a user namespace, where the system allows one."""
    done = {"network_namespace": False, "mount_namespace": False, "masked": [],
            "private_dev_shm": False, "scratch_tmpfs": False}
    flags = _CLONE_NEWNET | _CLONE_NEWNS
    if os.geteuid() != 0 or libc.unshare(flags) != 0:
        uid, gid = os.getuid(), os.getgid()
        if libc.unshare(_CLONE_NEWUSER | flags) != 0:
            if libc.unshare(_CLONE_NEWUSER | _CLONE_NEWNET) != 0:
                return done
            flags = _CLONE_NEWNET
        done["user_namespace"] = True
        # Map our own ids, so that files we create keep their owner (unmapped ids fail).
        try:
            with open("/proc/self/setgroups", "w") as f:
                f.write("deny")
            with open("/proc/self/uid_map", "w") as f:
                f.write(f"{uid} {uid} 1")
            with open("/proc/self/gid_map", "w") as f:
                f.write(f"{gid} {gid} 1")
        except OSError:
            pass
    done["network_namespace"] = True
    if not flags & _CLONE_NEWNS or libc.mount(b"none", b"/", None, _MS_REC | _MS_PRIVATE, None) != 0:
        return done
    done["mount_namespace"] = True
    done["masked"] = _mask(libc, keep)
    shm, scratch = config.get("private_shm_bytes"), config.get("scratch_tmpfs_bytes")
    if shm and os.path.isdir("/dev/shm"):
        done["private_dev_shm"] = _tmpfs(libc, "/dev/shm", shm, "1777")
    if scratch:
        done["scratch_tmpfs"] = _tmpfs(libc, config["scratch"], scratch, "700")
    return done


def _mask(libc: ctypes.CDLL, keep: list[str]) -> list[str]:
    """Mount an empty tmpfs on each folder of :data:`MASKED`, then bind the ``keep`` paths
    under it back in place (through O_PATH descriptors opened before they were hidden)."""
    masked = [m for m in MASKED if os.path.isdir(m) and not os.path.islink(m)]
    kept: list[tuple[str, int]] = []
    for path in sorted({os.path.realpath(k) for k in keep}):
        if any(path.startswith(m + "/") for m in masked) and not any(
            path.startswith(k + "/") for k, _ in kept
        ):
            try:
                kept.append((path, os.open(path, os.O_PATH | os.O_CLOEXEC)))
            except OSError:
                continue
    done = []
    try:
        for folder in masked:
            mode = "1777" if folder.endswith("tmp") else "755"
            if _tmpfs(libc, folder, 1 << 20, mode):
                done.append(folder)
        for path, fd in kept:
            if not any(path.startswith(m + "/") for m in done):
                continue
            if os.path.isdir(f"/proc/self/fd/{fd}"):
                os.makedirs(path, exist_ok=True)
            else:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                open(path, "a").close()
            source = f"/proc/self/fd/{fd}".encode()
            if libc.mount(source, path.encode(), None, _MS_BIND | _MS_REC, None) != 0:
                code = ctypes.get_errno()
                raise SetupError(f"binding {path} back into the sandbox failed: {os.strerror(code)}")
    finally:
        for _, fd in kept:
            os.close(fd)
    return done


def _tmpfs(libc: ctypes.CDLL, path: str, size: int, mode: str) -> bool:
    """Mount a fresh tmpfs on ``path`` in our own mount namespace (on /dev/shm: multiprocessing's
    semaphores work, and nothing another process left in the host's /dev/shm is visible)."""
    options = f"mode={mode},size={int(size)}".encode()
    flags = _MS_NOSUID | _MS_NODEV | (_MS_NOEXEC if path == "/dev/shm" else 0)
    return libc.mount(b"tmpfs", path.encode(), b"tmpfs", flags, options) == 0


def set_resource_limits(config: dict) -> dict:
    """RLIMIT_DATA (not RLIMIT_AS: CUDA and torch map gigabytes of address space they never
    use), the largest file, no core dumps, and for non-root users the number of processes."""
    applied = {}

    def lower(which: int, value: int) -> int:
        soft, hard = resource.getrlimit(which)
        value = int(value) if hard == resource.RLIM_INFINITY else min(int(value), hard)
        resource.setrlimit(which, (value, value))
        return value

    applied["rlimit_data_bytes"] = lower(resource.RLIMIT_DATA, config["memory_bytes"])
    applied["rlimit_fsize_bytes"] = lower(resource.RLIMIT_FSIZE, config["file_bytes"])
    lower(resource.RLIMIT_CORE, 0)
    if os.geteuid() != 0 and config.get("rlimit_nproc"):
        # Counts every process and thread of this user, so the parent adds what already runs.
        applied["rlimit_nproc"] = lower(resource.RLIMIT_NPROC, config["rlimit_nproc"])
    return applied


def drop_capabilities(libc: ctypes.CDLL) -> bool:
    """As root (or in a user namespace): empty the bounding, ambient, permitted and effective
    capability sets. The uid stays 0 (the interpreter may live under /root), but without
    CAP_DAC_OVERRIDE, CAP_KILL, CAP_SYS_ADMIN, CAP_SYS_BOOT, CAP_NET_ADMIN ... and an empty
    bounding set means no execve() gives any of them back."""
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            last = int(f.read())
    except (OSError, ValueError):
        last = 40
    for cap in range(last + 1):
        libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0)
    libc.prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    _check(libc.capset(ctypes.byref(header), data), "capset")
    with open("/proc/self/status") as f:
        eff = [line for line in f if line.startswith("CapEff:")]
    return bool(eff) and int(eff[0].split()[1], 16) == 0


def landlock_abi(libc: ctypes.CDLL) -> int:
    version = libc.syscall(
        ctypes.c_long(_SYS_LANDLOCK_CREATE_RULESET), None, ctypes.c_size_t(0),
        ctypes.c_uint32(_LANDLOCK_CREATE_RULESET_VERSION),
    )
    return int(version) if version > 0 else 0


def world_readable_files(top: str) -> list[str]:
    """Regular files under ``top`` that any user may read: /etc minus its secrets (shadow,
    private keys), which root, even without capabilities, could otherwise open."""
    found = []
    for folder, dirs, files in os.walk(top):
        dirs[:] = [d for d in dirs if _mode(os.path.join(folder, d)) & 0o005 == 0o005]
        for name in files:
            path = os.path.join(folder, name)
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode) and st.st_mode & 0o004:
                found.append(path)
    return found


def _mode(path: str) -> int:
    try:
        return os.lstat(path).st_mode
    except OSError:
        return 0


def apply_landlock(libc: ctypes.CDLL, rules: dict) -> dict:
    """Restrict this thread (and every thread and process it starts) to the listed paths,
    no TCP bind/connect (ABI >= 4), no signals or abstract unix sockets outside the sandbox
    (ABI >= 6). ``rules``: ``read`` (execute, read files, list folders), ``read_files``, ``list``
    (list folders only), ``write`` (everything) and ``write_files`` (read, write, ioctl)."""
    abi = landlock_abi(libc)
    if abi < 1:
        return {"landlock": 0}
    handled_fs = _FS_ABI1
    if abi >= 2:
        handled_fs |= _FS_REFER
    if abi >= 3:
        handled_fs |= _FS_TRUNCATE
    if abi >= 5:
        handled_fs |= _FS_IOCTL_DEV
    handled_net = (_NET_BIND_TCP | _NET_CONNECT_TCP) if abi >= 4 else 0
    scoped = (_SCOPE_ABSTRACT_UNIX_SOCKET | _SCOPE_SIGNAL) if abi >= 6 else 0
    size = 8 if abi < 4 else 16 if abi < 6 else 24
    attr = _RulesetAttr(handled_fs, handled_net, scoped)
    ruleset = _check(
        libc.syscall(ctypes.c_long(_SYS_LANDLOCK_CREATE_RULESET), ctypes.byref(attr),
                     ctypes.c_size_t(size), ctypes.c_uint32(0)),
        "landlock_create_ruleset",
    )
    granted = {"read": [], "write": []}
    try:
        def allow(path: str, access: int, kind: str) -> None:
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                return  # absent on this system
            try:
                if not stat.S_ISDIR(os.fstat(fd).st_mode):
                    access &= _FS_FILE_RIGHTS
                rule = _PathBeneathAttr(access & handled_fs, fd)
                _check(
                    libc.syscall(ctypes.c_long(_SYS_LANDLOCK_ADD_RULE), ctypes.c_int(ruleset),
                                 ctypes.c_int(_LANDLOCK_RULE_PATH_BENEATH), ctypes.byref(rule),
                                 ctypes.c_uint32(0)),
                    f"landlock_add_rule({path})",
                )
            finally:
                os.close(fd)
            if kind:
                granted[kind].append(path)

        for path in rules.get("read", []):
            allow(path, _FS_READ, "read")
        for path in rules.get("read_files", []):
            allow(path, _FS_READ_FILE, "")
        for path in rules.get("list", []):
            allow(path, _FS_READ_DIR, "")
        for path in rules.get("write_files", []):
            allow(path, _FS_READ_FILE | _FS_WRITE_FILE | _FS_TRUNCATE | _FS_IOCTL_DEV, "write")
        for path in rules.get("write", []):
            allow(path, handled_fs, "write")
        _check(libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(PR_SET_NO_NEW_PRIVS)")
        _check(
            libc.syscall(ctypes.c_long(_SYS_LANDLOCK_RESTRICT_SELF), ctypes.c_int(ruleset),
                         ctypes.c_uint32(0)),
            "landlock_restrict_self",
        )
    finally:
        os.close(ruleset)
    return {
        "landlock": abi,
        "landlock_network": bool(handled_net),
        "landlock_scoped_signals": bool(scoped),
        "readable": granted["read"],
        "writable": granted["write"],
    }


def python_paths(deny: list[str]) -> list[str]:
    """The interpreter and its packages: prefixes and sys.path entries, minus any entry that
    contains a denied folder (the repository root of an editable install, the data home)."""
    candidates = [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix]
    candidates += [p for p in sys.path if p]
    candidates.append(os.path.dirname(os.path.realpath(sys.executable)))
    out = []
    for path in candidates:
        real = os.path.realpath(path)
        if os.path.exists(real) and real not in out and not _contains_denied(real, deny):
            out.append(real)
    return out


def _contains_denied(path: str, deny: list[str]) -> bool:
    """Whether granting ``path`` (recursively) would expose a denied folder."""
    real = os.path.realpath(path).rstrip("/") + "/"
    return any((os.path.realpath(d).rstrip("/") + "/").startswith(real) for d in deny)


def library_dirs() -> list[str]:
    """Folders the dynamic linker searches beyond /usr and /lib: $LD_LIBRARY_PATH and those of
    /etc/ld.so.conf (CUDA under /opt, for example), so that shared libraries still load."""
    import glob

    found = [p for p in os.environ.get("LD_LIBRARY_PATH", "").split(":") if p]
    pending, seen = ["/etc/ld.so.conf"], set()
    while pending:
        conf = pending.pop()
        if conf in seen:
            continue
        seen.add(conf)
        try:
            with open(conf) as f:
                lines = f.read().splitlines()
        except OSError:
            continue
        for line in lines:
            line = line.split("#", 1)[0].strip()
            if line.startswith("include "):
                pending.extend(sorted(glob.glob(line.split(None, 1)[1])))
            elif line.startswith("/"):
                found.append(line)
    return found


def setup_sandbox(config: dict) -> dict:
    """Apply every protection ``config`` asks for; returns what is active."""
    linux = sys.platform.startswith("linux")
    libc = _libc()
    if linux:
        # Die with the scorer: a scorer killed outright (SIGKILL, a CI timeout) cannot stop us.
        libc.prctl(_PR_SET_PDEATHSIG, 9, 0, 0, 0)
        if os.getppid() != int(config.get("parent_pid", os.getppid())):
            raise SetupError("the scorer exited before the sandbox was ready")
    active: dict = {"pid": os.getpid(), "kernel": platform.release()}
    active["python_paths"] = python_paths(config.get("deny", []))
    libraries = [p for p in library_dirs() if not _contains_denied(p, config.get("deny", []))]
    rules = dict(config["landlock_rules"])
    rules["read"] = rules.get("read", []) + active["python_paths"] + libraries
    if config.get("cgroup_procs"):
        join_cgroups(config["cgroup_procs"])
    if linux and config.get("isolate_network", True):
        keep = [config["workspace"], *rules["read"], *rules.get("write", [])]
        active.update(isolate_namespaces(libc, config, keep))
    if config.get("resource_limits", True):
        active.update(set_resource_limits(config))
    if linux and config.get("drop_capabilities", True) and (
        os.geteuid() == 0 or active.get("user_namespace")
    ):
        active["capabilities_dropped"] = drop_capabilities(libc)
    if linux:
        # Orphans of the submission's processes become our children (not init's), so that
        # what it leaves running can be found and stopped when the run ends.
        active["subreaper"] = libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    if linux and config.get("use_landlock", True):
        rules["read_files"] = rules.get("read_files", []) + world_readable_files("/etc")
        active.update(apply_landlock(libc, rules))
    if os.path.isdir(config["scratch"]):
        os.chdir(config["scratch"])
    return active


# -- running the submission -------------------------------------------------------------------
class _Progress:
    """``phase done total batch_start`` in a small file the parent polls (for its progress bar
    and to say where a run stopped)."""

    def __init__(self, path: str, total: int) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
        self.total, self.done, self.start, self.phase = total, 0, 0, "starting"

    def set(self, phase: str, done: int | None = None, start: int | None = None) -> None:
        self.phase = phase
        self.done = self.done if done is None else done
        self.start = self.start if start is None else start
        os.pwrite(self.fd, f"{phase} {self.done} {self.total} {self.start}\n".ljust(64).encode(), 0)


def _short_traceback(exc: BaseException, limit: int = 8) -> str:
    """The traceback from the submission's first frame on (this file's and importlib's frames
    say nothing to its author), at most ``limit`` frames."""
    tb = exc.__traceback__
    while tb is not None and (
        tb.tb_frame.f_code.co_filename == __file__
        or tb.tb_frame.f_code.co_filename.startswith("<frozen importlib")
    ):
        tb = tb.tb_next
    try:
        text = "".join(traceback.format_exception(type(exc), exc, tb, limit=-limit))
    except Exception:  # noqa: BLE001 - a hostile exception again
        text = f"{type(exc).__name__}: <unprintable>\n"
    return text[-6000:]


def _message(exc: BaseException) -> str:
    try:
        text = str(exc)
    except Exception:  # a hostile __str__
        text = "<unprintable>"
    return text[:2000]


def _write_json(path: str, data: dict) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f)
    os.replace(tmp, path)


class SubmissionFailure(Exception):
    def __init__(self, status: str, phase: str, message: str, cause: BaseException | None = None):
        super().__init__(message)
        self.status, self.phase, self.cause = status, phase, cause


def _as_fields(np, output, batch_start: int, batch_len: int) -> dict:
    from collections.abc import Mapping

    if isinstance(output, Mapping):
        items = list(output.items())
    elif isinstance(output, (np.ndarray, list, tuple)) or hasattr(output, "__array__"):
        items = [("mean", output)]
    else:
        raise SubmissionFailure(
            "invalid-output", "predict",
            f"predict() returned {type(output).__name__} for the batch at object {batch_start}; "
            "expected an array [B, ...] or a dict of arrays such as {'mean': ..., 'std': ...}",
        )
    fields = {}
    for name, value in items:
        if not isinstance(name, str) or not _FIELD_RE.match(name):
            raise SubmissionFailure(
                "invalid-output", "predict",
                f"predict() returned a field named {str(name)[:80]!r}; field names are "
                "identifiers such as 'mean' or 'std'",
            )
        try:
            array = np.asarray(value)
        except Exception as exc:
            raise SubmissionFailure(
                "invalid-output", "predict",
                f"predict() returned '{name}' that is not convertible to an array "
                f"({type(exc).__name__}: {_message(exc)})",
            ) from None
        if array.dtype.kind not in "biufcSUmM":
            raise SubmissionFailure(
                "invalid-output", "predict",
                f"predict() returned '{name}' with dtype {array.dtype} for the batch at object "
                f"{batch_start}; expected a numeric array (float32/float64)",
            )
        if array.ndim == 0 or len(array) != batch_len:
            raise SubmissionFailure(
                "invalid-output", "predict",
                f"predict() returned '{name}' with shape {array.shape} for a batch of {batch_len} "
                f"images starting at object {batch_start}; expected {batch_len} rows",
            )
        fields[name] = array
    return fields


def _load_entry_point(root: str, entry_point: str):
    import importlib.util

    module_name, class_name = entry_point.split(":")
    rel = os.path.join(*module_name.split("."))
    file = os.path.join(root, rel + ".py")
    if not os.path.isfile(file):
        file = os.path.join(root, rel, "__init__.py")
    name = module_name if module_name not in sys.modules else f"galbench_submission_{module_name}"
    try:
        spec = importlib.util.spec_from_file_location(name, file)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    except BaseException as exc:
        raise _failure(exc, "import", "importing the entry point failed") from None
    cls = getattr(module, class_name, None)
    if cls is None:
        raise SubmissionFailure(
            "error", "import",
            f"no class {class_name!r} in {rel}.py (entry_point {entry_point}); define it or fix "
            "entry_point in submission.toml",
        )
    return cls, class_name


def _failure(exc: BaseException, phase: str, prefix: str) -> SubmissionFailure:
    """The report of an exception the submission raised (or let through) in ``phase``."""
    if isinstance(exc, SubmissionFailure):
        return exc
    if isinstance(exc, SystemExit):
        text = (f"SystemExit: called sys.exit({exc.code!r}); a submission returns predictions "
                "instead of exiting")
    else:
        message = _message(exc)
        text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    status = "memory" if isinstance(exc, MemoryError) else "error"
    return SubmissionFailure(status, phase, f"{prefix}: {text}" if prefix else text, exc)


def run(config: dict, progress: _Progress) -> dict:
    timings = {}
    t0 = time.perf_counter()
    progress.set("import")
    import numpy as np

    images = np.load(config["images"], mmap_mode="r", allow_pickle=False)
    n = len(images)
    cls, class_name = _load_entry_point(config["submission"], config["entry_point"])
    timings["import_seconds"] = time.perf_counter() - t0

    progress.set("construct")
    t0 = time.perf_counter()
    try:
        from pathlib import Path

        model = cls(Path(config["submission"]))
    except BaseException as exc:
        _guard_fork()
        raise _failure(exc, "construct", f"constructing {class_name}(root) failed") from None
    _guard_fork()
    timings["construct_seconds"] = time.perf_counter() - t0
    if not callable(getattr(model, "predict", None)):
        raise SubmissionFailure(
            "error", "construct", f"{class_name} has no predict(images) method"
        )

    batch_size = int(config["batch_size"])
    chunks: dict = {}
    predict_seconds = 0.0
    for start in range(0, n, batch_size):
        batch = np.asarray(images[start : start + batch_size])  # a read-only view of the file
        progress.set("predict", start=start)
        t0 = time.perf_counter()
        try:
            output = model.predict(batch)
        except BaseException as exc:
            _guard_fork()
            raise _failure(exc, "predict", f"predict() raised on the batch at object {start}") from None
        _guard_fork()
        predict_seconds += time.perf_counter() - t0
        fields = _as_fields(np, output, start, len(batch))
        if chunks and set(fields) != set(chunks):
            raise SubmissionFailure(
                "invalid-output", "predict",
                f"predict() returned fields {sorted(fields)} at object {start}, but "
                f"{sorted(chunks)} before",
            )
        for name, value in fields.items():
            chunks.setdefault(name, []).append(np.array(value, copy=True))
        progress.set("predict", done=start + len(batch), start=start)

    progress.set("write", done=n)
    out = config["output"]
    shapes = {}
    for name, parts in chunks.items():
        try:
            array = np.concatenate(parts)
        except ValueError as exc:
            raise SubmissionFailure(
                "invalid-output", "predict",
                f"predict() returned '{name}' with different shapes across batches ({exc})",
            ) from None
        np.save(os.path.join(out, f"{name}.npy"), array, allow_pickle=False)
        shapes[name] = list(array.shape)
    device = getattr(model, "device", "cpu")
    return {
        "status": "ok",
        "fields": shapes,
        "predict_seconds": predict_seconds,
        "device": str(device)[:64],
        **timings,
    }


def _raise_mmap_threshold() -> None:
    """Free one 16 MiB block, as a long-running process soon does: glibc then serves blocks up
    to that size from the heap instead of mmap/munmap-ing each one (its dynamic threshold). A
    fresh process skips this, and code allocating many ~100 KiB temporaries (the Sersic fit's
    FFTs) runs 1.5x slower than in the scorer's own, warmed-up process."""
    block = bytearray(16 * 2**20)  # under glibc's 32 MiB cap for the dynamic threshold
    del block


def _stop_children() -> None:
    """Kill every process still running under us (a pool, a forgotten subprocess; as subreaper
    also orphans that called setsid()). The parent kills the whole cgroup too where there is one;
    this covers systems without cgroups."""
    for _ in range(100):
        children = []
        try:
            for entry in os.listdir("/proc"):
                if entry.isdigit():
                    try:
                        with open(f"/proc/{entry}/stat") as f:
                            if int(f.read().rsplit(")", 1)[1].split()[1]) == _MAIN_PID:
                                children.append(int(entry))
                    except (OSError, ValueError, IndexError):
                        continue
        except OSError:
            return
        if not children:
            return
        for pid in children:
            try:
                os.kill(pid, 9)
            except OSError:
                pass
        try:
            while os.waitpid(-1, os.WNOHANG)[0] > 0:
                pass
        except ChildProcessError:
            pass
        time.sleep(0.005)


def _guard_fork() -> None:
    """A process the submission forked that returns into this code must not go on as the
    worker (it would write outputs or error reports of its own)."""
    if os.getpid() != _MAIN_PID:
        os._exit(0)


def main(argv: list[str]) -> int:
    config_path = argv[1]
    with open(config_path) as f:
        config = json.load(f)
    setup_fd = int(config["setup_fd"])
    try:
        active = setup_sandbox(config)
        report = {"ok": True, "protections": active}
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which decides
        report = {"ok": False, "error": f"{type(exc).__name__}: {_message(exc)}",
                  "traceback": _short_traceback(exc)}
    with os.fdopen(setup_fd, "w") as pipe:  # closed before any submission code runs
        pipe.write(json.dumps(report) + "\n")
    if not report["ok"]:
        return 2
    # Only the interpreter's own paths, the galbench package and the submission remain
    # importable.
    allowed = set(active["python_paths"])
    sys.path[:] = [config["submission"], config["library"]] + [
        p for p in sys.path if p and os.path.realpath(p) in allowed
    ]
    progress = _Progress(config["progress"], int(config["n"]))
    _raise_mmap_threshold()
    try:
        result = run(config, progress)
        _guard_fork()
        _write_json(os.path.join(config["output"], "result.json"), result)
        progress.set("done")
        code = 0
    except BaseException as exc:  # noqa: BLE001 - everything becomes a structured report
        _guard_fork()
        exc = _failure(exc, progress.phase, "")
        cause = exc.cause or exc
        error = {
            "status": exc.status,
            "phase": exc.phase or progress.phase,
            "batch_start": progress.start,
            "done": progress.done,
            "message": _message(exc),
            "type": type(cause).__name__,
            "traceback": _short_traceback(cause) if exc.cause is not None else "",
        }
        try:
            _write_json(os.path.join(config["output"], "error.json"), error)
        except BaseException:  # noqa: BLE001 - e.g. the disk is full; the exit code remains
            pass
        code = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:  # noqa: BLE001
            pass
    _stop_children()
    # Skip interpreter shutdown: a submission's non-daemon threads or atexit hooks must not keep
    # a finished run alive (the parent kills whatever the submission left running).
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
