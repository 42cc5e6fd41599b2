"""Fetch the public files galbench knows, verified by sha256, from a mirror or their public URL.

The files are listed in ``remote_files.toml`` next to this module: for each, a key (its path
inside a mirror, e.g. ``"cosmos_hst/real_galaxy_catalog_26_extension_example.fits"``), the public
URL (raw GitHub at a pinned commit, Zenodo), sha256, size in bytes and license.

:func:`fetch` returns a verified local copy under ``<data home>/downloads/<key>``, trying in turn

1. the copy already there (verified once, then recognised by a stamp of its size, mtime and hash),
2. a mirror: the ``mirror`` argument, else ``$GALBENCH_MIRROR``: a local folder laid out like
   ``../shared/data``, or an ``http(s)://`` or ``file://`` URL prefix,
3. the public URL, through :func:`pooch.retrieve` with :class:`ResumableDownloader`.

Whatever the source, bytes go to ``<path>.part`` first and are renamed into place only after
their size and sha256 match the table, so the final path never holds a partial or altered file.
An interrupted HTTP download keeps its ``.part``; the next fetch resumes it with a Range request
(or starts over when the server ignores Range). Without network and without a mirror the error
says which file, from which URL, where to put it and how to point ``GALBENCH_MIRROR`` at a copy.
"""

from __future__ import annotations

import contextlib
import difflib
import fnmatch
import functools
import hashlib
import json
import logging
import os
import re
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlparse

from galbench.data.home import data_home
from galbench.data.manifest import sha256_file
from galbench.errors import GalbenchError, UnknownNameError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = [
    "MIRROR_ENV",
    "ChecksumError",
    "DownloadError",
    "RemoteFile",
    "RemoteTableError",
    "ResumableDownloader",
    "UnverifiedDownloadWarning",
    "download_path",
    "fetch",
    "known_files",
    "remote_file",
    "verify_file",
]

MIRROR_ENV = "GALBENCH_MIRROR"
TABLE_PATH = Path(__file__).with_name("remote_files.toml")
TABLE_SCHEMA = "galbench.remote_files/1"
#: Transfers at least this big (bytes) get a progress bar when ``progress=True``.
LARGE_FILE = 8 * 2**20
#: A downloaded file at least this big (bytes) is re-hashed only when its size or mtime changed
#: since it was last verified (hashing Galaxy10 DECaLS takes seconds); smaller files are
#: re-hashed at every fetch. :func:`verify_file` always hashes.
QUICK_CHECK_BYTES = 64 * 2**20
_CHUNK = 2**20
# HTTP reads: an interrupted response loses the bytes of its last, unfinished read, so keep
# reads small enough that a resumed download repeats little.
_HTTP_CHUNK = 2**16
_TIMEOUT = (15.0, 60.0)  # seconds: (connect, read between bytes)
_SHA256 = re.compile(r"[0-9a-f]{64}")

log = logging.getLogger(__name__)


class DownloadError(GalbenchError, OSError):
    """A file could not be fetched (no network, HTTP error, interrupted transfer, no copy)."""

    def __str__(self) -> str:  # OSError would prefix an errno when given two args; show the text.
        return str(self.args[0]) if self.args else ""


class ChecksumError(DownloadError):
    """A fetched or cached file does not match the size or sha256 recorded for it."""


class RemoteTableError(GalbenchError, ValueError):
    """``remote_files.toml`` (or a :class:`RemoteFile` built by hand) is malformed."""


class UnverifiedDownloadWarning(UserWarning):
    """A file has no published sha256: only its size (when known) could be checked."""


@dataclass(frozen=True)
class RemoteFile:
    """One public file galbench can fetch.

    ``key`` is the name :func:`fetch` takes and the path under ``<data home>/downloads``;
    ``mirror_path`` is the file's path inside a mirror (the same as ``key`` in the table).
    ``size`` is in bytes (``None`` when the exact size is not published; ``approx_size`` then
    serves messages only). ``sha256`` is ``None`` when no hash is published: such a file is
    checked by size only, and its hash at first download is recorded and checked afterwards.
    """

    key: str
    url: str
    sha256: str | None
    size: int | None
    license: str
    mirror_path: str = ""
    approx_size: int | None = None
    source: str = ""
    sha256_source: str = ""
    group: str = ""

    def __post_init__(self) -> None:
        where = f"remote file {self.key!r}"
        _check_relative(self.key, f"{where}: key")
        if not self.mirror_path:
            object.__setattr__(self, "mirror_path", self.key)
        _check_relative(self.mirror_path, f"{where}: mirror_path")
        if urlparse(self.url).scheme not in ("http", "https", "file"):
            raise RemoteTableError(f"{where}: url {self.url!r} is not an http(s):// or file:// URL")
        if self.sha256 is not None and not _SHA256.fullmatch(self.sha256):
            raise RemoteTableError(
                f"{where}: sha256 {self.sha256!r} is not 64 lowercase hex digits"
            )
        for name in ("size", "approx_size"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or value < 0):
                raise RemoteTableError(f"{where}: {name} must be a whole number of bytes, "
                                       f"got {value!r}")

    @property
    def verifiable(self) -> bool:
        """True when a published sha256 pins the file's content."""
        return self.sha256 is not None

    def describe_size(self) -> str:
        if self.size is not None:
            return _human(self.size)
        if self.approx_size is not None:
            return f"~{_human(self.approx_size)}"
        return "size unknown"


def _check_relative(path: str, where: str) -> None:
    parts = path.split("/")
    if not path or path.startswith("/") or "\\" in path or any(p in ("", ".", "..") for p in parts):
        raise RemoteTableError(f"{where} {path!r} must be a relative POSIX path without '.', "
                               "'..' or empty parts")


# --------------------------------------------------------------------------- the table

_GROUP_FIELDS = {"name", "description", "source", "license", "citation", "url_prefix",
                 "mirror_prefix", "files"}
_FILE_FIELDS = {"name", "url", "size", "approx_size", "sha256", "sha256_source"}


def _load_table(path: Path) -> dict[str, RemoteFile]:
    """Parse ``remote_files.toml``; every problem names the file, group and field."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise RemoteTableError(f"{path}: cannot read the table of remote files: {exc}") from exc
    if data.get("schema") != TABLE_SCHEMA:
        raise RemoteTableError(f"{path}: schema must be {TABLE_SCHEMA!r}, got "
                               f"{data.get('schema')!r}")
    files: dict[str, RemoteFile] = {}
    for i, group in enumerate(data.get("group", [])):
        gname = group.get("name", f"#{i}")
        where = f"{path}: group {gname!r}"
        unknown = set(group) - _GROUP_FIELDS
        if unknown:
            raise RemoteTableError(f"{where}: unknown field(s) {sorted(unknown)}; "
                                   f"allowed: {sorted(_GROUP_FIELDS)}")
        for field in ("name", "license", "mirror_prefix", "files"):
            if field not in group:
                raise RemoteTableError(f"{where}: missing field {field!r}")
        prefix = group["mirror_prefix"]
        for entry in group["files"]:
            fwhere = f"{where}, file {entry.get('name')!r}"
            unknown = set(entry) - _FILE_FIELDS
            if unknown:
                raise RemoteTableError(f"{fwhere}: unknown field(s) {sorted(unknown)}; "
                                       f"allowed: {sorted(_FILE_FIELDS)}")
            if "name" not in entry:
                raise RemoteTableError(f"{fwhere}: missing field 'name'")
            if "url" not in entry and "url_prefix" not in group:
                raise RemoteTableError(f"{fwhere}: no 'url', and the group has no 'url_prefix'")
            if "size" not in entry and "approx_size" not in entry:
                raise RemoteTableError(f"{fwhere}: give 'size' (exact bytes) or 'approx_size'")
            key = prefix + entry["name"]
            try:
                remote = RemoteFile(
                    key=key,
                    url=entry.get("url", group.get("url_prefix", "") + entry["name"]),
                    sha256=entry.get("sha256"),
                    size=entry.get("size"),
                    approx_size=entry.get("approx_size"),
                    license=group["license"],
                    mirror_path=key,
                    source=group.get("source", ""),
                    sha256_source=entry.get("sha256_source", ""),
                    group=gname,
                )
            except RemoteTableError as exc:
                raise RemoteTableError(f"{path}: {exc}") from None
            if key in files:
                raise RemoteTableError(f"{fwhere}: key {key!r} is listed twice")
            files[key] = remote
    return files


@functools.cache
def _table() -> dict[str, RemoteFile]:
    return _load_table(TABLE_PATH)


def known_files(pattern: str = "*") -> dict[str, RemoteFile]:
    """The files galbench can fetch, by key, sorted; ``pattern`` filters keys with shell
    wildcards (``known_files("cosmos_hst/*")``)."""
    return {k: v for k, v in sorted(_table().items()) if fnmatch.fnmatchcase(k, pattern)}


def remote_file(key: str) -> RemoteFile:
    """The table entry of ``key``; an unknown key raises with the closest known keys."""
    table = _table()
    try:
        return table[key]
    except KeyError:
        close = difflib.get_close_matches(key, list(table), n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
        groups = sorted({k.rsplit("/", 1)[0] + "/*" for k in table})
        raise UnknownNameError(
            f"unknown remote file {key!r}{hint} (galbench knows {len(table)} files: "
            f"{', '.join(groups)}; list them with galbench.data.download.known_files())"
        ) from None


def _resolve(key: str | RemoteFile) -> RemoteFile:
    return key if isinstance(key, RemoteFile) else remote_file(key)


def download_path(key: str | RemoteFile, home: str | os.PathLike[str] | None = None) -> Path:
    """Where :func:`fetch` keeps ``key``: ``<data home>/downloads/<key>``."""
    return data_home(home) / "downloads" / Path(*_resolve(key).key.split("/"))


# --------------------------------------------------------------------------- verification


def _human(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError  # pragma: no cover


def _stamp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.verified")


def _part_path(path: Path) -> Path:
    return path.with_name(path.name + ".part")


def _read_stamp(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(_stamp_path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _write_stamp(path: Path, sha256: str) -> None:
    st = path.stat()
    stamp = {"sha256": sha256, "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    tmp = _stamp_path(path).with_name(_stamp_path(path).name + f".tmp-{os.getpid()}")
    tmp.write_text(json.dumps(stamp, sort_keys=True), encoding="utf-8")
    os.replace(tmp, _stamp_path(path))


def _remove(*paths: Path) -> None:
    for p in paths:
        with contextlib.suppress(FileNotFoundError):
            p.unlink()


def _mismatch(entry: RemoteFile, path: Path, source: str, *, what: str, expected: object,
              actual: object, deleted: bool) -> ChecksumError:
    fate = f"nothing was kept at {path}" if deleted else f"the file is {path}"
    if source == entry.url:
        fix = ("Fix: fetch again (the transfer may have been corrupted); if the same hash comes "
               "back, the public file has changed and galbench's table "
               "(galbench/data/remote_files.toml) needs updating: please report it.")
    else:
        fix = (f"Fix: replace {source} with the original from {entry.url} (or delete it: "
               "galbench then downloads the file itself).")
    return ChecksumError(
        f"{entry.key}: {what} of the file from {source} does not match galbench's table "
        f"({fate}).\n  expected {what}: {expected}\n  actual {what}:   {actual}\n{fix}"
    )


def _check_content(entry: RemoteFile, path: Path, digest: str, *, source: str,
                   delete: bool, shown: Path | None = None) -> None:
    """Raise :class:`ChecksumError` (deleting ``path`` when ``delete``) unless ``path``'s size
    and ``digest`` match ``entry``; the message names ``shown`` (default ``path``)."""
    shown = shown or path
    size = path.stat().st_size
    if entry.size is not None and size != entry.size:
        if delete:
            _remove(path)
        raise _mismatch(entry, shown, source, what="size", expected=f"{entry.size} bytes",
                        actual=f"{size} bytes", deleted=delete)
    if entry.sha256 is not None and digest != entry.sha256:
        if delete:
            _remove(path)
        raise _mismatch(entry, shown, source, what="sha256", expected=entry.sha256,
                        actual=digest, deleted=delete)


def _warn_unverified(entry: RemoteFile, path: Path, digest: str) -> None:
    checked = f"its size ({entry.size} bytes) was checked" if entry.size is not None else \
        "neither its hash nor its exact size is published, so nothing could be checked"
    warnings.warn(
        f"{entry.key}: no published sha256, so its content is not verified; {checked}. Its "
        f"sha256 is {digest}: galbench recorded it next to {path} and checks it from now on.",
        UnverifiedDownloadWarning,
        stacklevel=3,
    )


def verify_file(key: str | RemoteFile, path: str | os.PathLike[str]) -> str:
    """Check ``path`` against the table entry of ``key`` (size, then the full sha256) and
    return its sha256. Raises :class:`ChecksumError` (the file is left in place) on a mismatch;
    warns :class:`UnverifiedDownloadWarning` when the table has no sha256 for ``key``."""
    entry = _resolve(key)
    path = Path(path)
    if not path.is_file():
        raise DownloadError(f"{entry.key}: {path} does not exist or is not a file")
    if entry.size is not None and path.stat().st_size != entry.size:
        _check_content(entry, path, "", source=str(path), delete=False)
    digest = sha256_file(path)
    _check_content(entry, path, digest, source=str(path), delete=False)
    if entry.sha256 is None:
        _warn_unverified(entry, path, digest)
    return digest


def _cached_copy_ok(entry: RemoteFile, path: Path) -> bool:
    """Whether the copy at ``path`` is the right file. For a big file, a stamp written when it
    was last verified (size, mtime, sha256) spares re-hashing it while unchanged."""
    st = path.stat()
    if entry.size is not None and st.st_size != entry.size:
        return False
    stamp = _read_stamp(path)
    unchanged = (stamp is not None and st.st_size >= QUICK_CHECK_BYTES
                 and stamp.get("size") == st.st_size and stamp.get("mtime_ns") == st.st_mtime_ns)
    if unchanged and (entry.sha256 is None or stamp.get("sha256") == entry.sha256):
        return True
    digest = sha256_file(path)
    if entry.sha256 is not None and digest != entry.sha256:
        return False
    if entry.sha256 is None:
        if stamp and stamp.get("sha256") not in (None, digest):
            return False  # changed since the hash recorded at first download
        if not stamp:
            _warn_unverified(entry, path, digest)
    _write_stamp(path, digest)
    return True


# --------------------------------------------------------------------------- transfers


def _progress_bar(entry: RemoteFile, total: int | None, initial: int, progress: bool):
    from tqdm.auto import tqdm

    size = total if total is not None else (entry.size or entry.approx_size)
    show = progress and (size is None or size >= LARGE_FILE)
    return tqdm(total=total, initial=initial, unit="B", unit_scale=True, unit_divisor=1024,
                desc=entry.key.rsplit("/", 1)[-1], disable=not show, leave=False)


class ResumableDownloader:
    """A pooch downloader (``pooch.retrieve(..., downloader=ResumableDownloader(...))``) that
    streams with :mod:`requests` into ``part``, resumes a ``part`` left by an interrupted
    download with an HTTP Range request (starting over when the server ignores Range), checks
    size and sha256, and only then moves the bytes to the file pooch asked for.

    An interrupted transfer raises :class:`DownloadError` and keeps ``part`` for the next try;
    a complete file with the wrong size or hash raises :class:`ChecksumError` and deletes it.
    ``sha256`` holds the hash of the last file delivered.
    """

    def __init__(self, entry: RemoteFile, part: str | os.PathLike[str], *, progress: bool = True,
                 timeout: float | tuple[float, float] = _TIMEOUT, session: Any = None) -> None:
        self.entry = entry
        self.part = Path(part)
        self.progress = progress
        self.timeout = timeout
        self.session = session
        self.sha256: str | None = None
        self.resumed_from = 0  # bytes of ``part`` kept by the last call (0: a fresh download)

    def __call__(self, url: str, output_file: Any, pooch: Any = None,
                 check_only: bool = False) -> bool | None:
        import requests

        owned = self.session is None
        session = requests.Session() if owned else self.session
        try:
            if check_only:  # pooch asks whether the URL exists
                try:
                    resp = session.head(url, allow_redirects=True, timeout=self.timeout)
                except requests.RequestException:
                    return False
                return resp.status_code == 200
            self._fetch(session, url, output_file)
        finally:
            if owned:
                session.close()
        return None

    def _fetch(self, session: Any, url: str, output_file: Any) -> None:
        self.part.parent.mkdir(parents=True, exist_ok=True)
        hasher, offset = self._resume_state()
        if not (self.entry.size is not None and offset == self.entry.size):
            hasher = self._stream(session, url, hasher, offset)
        size = self.part.stat().st_size
        if self.entry.size is not None and size < self.entry.size:
            raise DownloadError(
                f"{self.entry.key}: the download from {url} stopped after {size} of "
                f"{self.entry.size} bytes; the partial file is kept at {self.part} and the "
                "next fetch resumes it"
            )
        digest = hasher.hexdigest()
        try:
            _check_content(self.entry, self.part, digest, source=url, delete=True,
                           shown=self.part.with_name(self.part.name.removesuffix(".part")))
        except ChecksumError as exc:
            if not self.resumed_from:
                raise
            raise ChecksumError(
                f"{exc}\nIts first {self.resumed_from} bytes came from an earlier, interrupted "
                "download (now discarded): fetch again to download the file whole."
            ) from None
        self.sha256 = digest
        os.replace(self.part, output_file)

    def _resume_state(self) -> tuple[Any, int]:
        hasher = hashlib.sha256()
        if not self.part.is_file():
            return hasher, 0
        size = self.part.stat().st_size
        if self.entry.size is not None and size > self.entry.size:
            _remove(self.part)  # longer than the file: not a prefix of it
            return hasher, 0
        with open(self.part, "rb") as fh:
            while chunk := fh.read(_CHUNK):
                hasher.update(chunk)
        return hasher, size

    def _stream(self, session: Any, url: str, hasher: Any, offset: int, *,
                retried: bool = False) -> Any:
        import requests

        # identity: Range offsets and Content-Length must count the file's own bytes.
        headers = {"Accept-Encoding": "identity"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
        self.resumed_from = 0
        try:
            with session.get(url, headers=headers, stream=True, timeout=self.timeout) as resp:
                if offset and resp.status_code == 416:
                    total = _content_range_total(resp.headers.get("Content-Range", ""))
                    if total == offset:
                        self.resumed_from = offset
                        return hasher  # the part already holds the whole file
                    if retried:
                        resp.raise_for_status()
                    _remove(self.part)
                    return self._stream(session, url, hashlib.sha256(), 0, retried=True)
                resp.raise_for_status()
                if resp.status_code == 206:
                    start = _content_range_start(resp.headers.get("Content-Range", ""))
                    if not offset or start != offset:  # not the range asked for: start over
                        if retried:
                            raise requests.HTTPError(
                                f"unexpected partial response (Content-Range "
                                f"{resp.headers.get('Content-Range')!r})", response=resp)
                        _remove(self.part)
                        return self._stream(session, url, hashlib.sha256(), 0, retried=True)
                    mode = "ab"
                    self.resumed_from = offset
                else:  # 200: no Range asked, or the server ignored it and sends the whole file
                    mode, offset, hasher = "wb", 0, hashlib.sha256()
                length = resp.headers.get("Content-Length")
                total = offset + int(length) if length and length.isdigit() else self.entry.size
                with open(self.part, mode) as fh, \
                        _progress_bar(self.entry, total, offset, self.progress) as bar:
                    for chunk in resp.iter_content(_HTTP_CHUNK):
                        fh.write(chunk)
                        hasher.update(chunk)
                        bar.update(len(chunk))
                    fh.flush()
                    os.fsync(fh.fileno())
                if total is not None and self.part.stat().st_size < total:
                    raise requests.ConnectionError(
                        f"connection closed after {self.part.stat().st_size} of {total} bytes"
                    )
        except requests.RequestException as exc:
            kept = self.part.stat().st_size if self.part.is_file() else 0
            resume = (f"; {kept} bytes are kept in {self.part} and the next fetch resumes "
                      "them" if kept else "")
            raise DownloadError(f"{self.entry.key}: download from {url} failed: "
                                f"{type(exc).__name__}: {exc}{resume}") from exc
        return hasher


def _content_range_start(value: str) -> int | None:
    m = re.match(r"bytes (\d+)-\d+/(\d+|\*)", value.strip())
    return int(m.group(1)) if m else None


def _content_range_total(value: str) -> int | None:
    m = re.match(r"bytes (?:\*|\d+-\d+)/(\d+)", value.strip())
    return int(m.group(1)) if m else None


def _download(entry: RemoteFile, url: str, target: Path, progress: bool) -> str:
    """Fetch ``url`` to ``target`` through pooch and the resumable downloader; the sha256."""
    import pooch

    downloader = ResumableDownloader(entry, _part_path(target), progress=progress)
    try:
        pooch.retrieve(
            url,
            known_hash=f"sha256:{entry.sha256}" if entry.sha256 else None,
            fname=target.name,
            path=target.parent,
            downloader=downloader,
            progressbar=False,
        )
    except ValueError as exc:  # pooch's own hash check (the downloader checked first)
        raise _mismatch(entry, target, url, what="sha256", expected=entry.sha256,
                        actual=str(exc), deleted=True) from exc
    return downloader.sha256 or sha256_file(target)


def _copy(entry: RemoteFile, src: Path, target: Path, progress: bool) -> str:
    """Copy a mirror file into place through ``<target>.part``, verified; the sha256."""
    size = src.stat().st_size
    if entry.size is not None and size != entry.size:
        raise _mismatch(entry, src, str(src), what="size", expected=f"{entry.size} bytes",
                        actual=f"{size} bytes", deleted=False)
    part = _part_path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    hasher = hashlib.sha256()
    with open(src, "rb") as fin, open(part, "wb") as fout, \
            _progress_bar(entry, size, 0, progress) as bar:
        while chunk := fin.read(_CHUNK):
            fout.write(chunk)
            hasher.update(chunk)
            bar.update(len(chunk))
        fout.flush()
        os.fsync(fout.fileno())
    digest = hasher.hexdigest()
    _check_content(entry, part, digest, source=str(src), delete=True, shown=target)
    os.replace(part, target)
    return digest


def _from_url(entry: RemoteFile, url: str, target: Path, progress: bool) -> str:
    """Fetch ``url`` (http(s):// through pooch, or file://) into ``target``; the sha256."""
    parsed = urlparse(url)
    if parsed.scheme == "file":
        src = Path(unquote(parsed.path))
        if not src.is_file():
            raise DownloadError(f"{entry.key}: {url}: no such file")
        return _copy(entry, src, target, progress)
    return _download(entry, url, target, progress)


@contextlib.contextmanager
def _lock(target: Path) -> Iterator[None]:
    """Serialise fetches of one file across processes (DataLoader workers, parallel tests)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no advisory locks, best effort
        yield
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.with_name(f".{target.name}.lock"), "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _parse_mirror(mirror: str | os.PathLike[str]) -> tuple[str, Any]:
    text = os.fspath(mirror)
    scheme = urlparse(text).scheme
    if scheme in ("http", "https"):
        return "url", text.rstrip("/") + "/"
    if scheme == "file":
        return "dir", Path(unquote(urlparse(text).path))
    return "dir", Path(text).expanduser()


def _without_key(entry: RemoteFile, exc: Exception) -> str:
    return str(exc).removeprefix(f"{entry.key}: ")


def _offline_message(entry: RemoteFile, target: Path, attempts: list[str]) -> str:
    tried = "\n".join(f"  - {a}" for a in attempts)
    sha = f"sha256 {entry.sha256}" if entry.sha256 else "no published sha256"
    return (
        f"could not fetch {entry.key} ({entry.describe_size()}, {sha}, license: "
        f"{entry.license}). Tried:\n{tried}\n"
        f"To work offline, download it where there is network from\n  {entry.url}\n"
        f"and either put it at\n  {target}\n"
        f"or keep a mirror folder holding it at <mirror>/{entry.mirror_path} (the layout of "
        f"../shared/data) and point {MIRROR_ENV} at it, e.g. `export {MIRROR_ENV}=/path/to/mirror`"
        f" ({MIRROR_ENV} also takes an http(s):// or file:// URL prefix). galbench checks the "
        "file before using it."
    )


def fetch(key: str | RemoteFile, *, home: str | os.PathLike[str] | None = None,
          mirror: str | os.PathLike[str] | None = None, progress: bool = True) -> Path:
    """A verified local copy of a known public file: ``<data home>/downloads/<key>``.

    Parameters
    ----------
    key:
        A key of :func:`known_files` (e.g. ``"galaxy10/Galaxy10.h5"``), or a :class:`RemoteFile`.
    home:
        The data home (default ``$GALBENCH_HOME``, else the user cache dir).
    mirror:
        A local folder laid out like ``../shared/data``, or an ``http(s)://`` / ``file://`` URL
        prefix; default ``$GALBENCH_MIRROR``. A file the mirror lacks is fetched from its
        public URL; a mirror file with the wrong hash is an error (the mirror needs fixing).
    progress:
        Show a progress bar for transfers of :data:`LARGE_FILE` bytes or more.

    Raises
    ------
    ChecksumError
        The file found has the wrong size or sha256 (nothing is left at the final path).
    DownloadError
        No source could deliver the file (offline without a mirror, HTTP error, interrupted
        transfer: a partial download is kept as ``<path>.part`` and resumed next time).
    """
    entry = _resolve(key)
    target = download_path(entry, home)
    with _lock(target):
        if target.is_file():
            if _cached_copy_ok(entry, target):
                return target
            log.warning("%s: the copy at %s does not match galbench's table; fetching it again",
                        entry.key, target)
            _remove(target, _stamp_path(target))
        source = mirror if mirror is not None else (os.environ.get(MIRROR_ENV) or None)
        attempts: list[str] = []
        digest: str | None = None
        if source is not None:
            kind, base = _parse_mirror(source)
            if kind == "dir":
                src = base / Path(*entry.mirror_path.split("/"))
                if src.is_file():
                    digest = _copy(entry, src, target, progress)
                elif not base.is_dir():
                    attempts.append(f"mirror folder {base}: it does not exist")
                else:
                    attempts.append(f"mirror folder {base}: no file {entry.mirror_path}")
            else:
                url = base + quote(entry.mirror_path, safe="/")
                try:
                    digest = _from_url(entry, url, target, progress)
                except ChecksumError:
                    raise
                except DownloadError as exc:
                    attempts.append(f"mirror: {_without_key(entry, exc)}")
        if digest is None:
            try:
                digest = _from_url(entry, entry.url, target, progress)
            except ChecksumError:
                raise
            except DownloadError as exc:
                attempts.append(f"public URL: {_without_key(entry, exc)}")
                raise DownloadError(_offline_message(entry, target, attempts)) from exc
        _write_stamp(target, digest)
        if entry.sha256 is None:
            _warn_unverified(entry, target, digest)
        return target
