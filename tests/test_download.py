"""galbench.data.download: the table of public files, mirrors, verification, resumable HTTP.

Nothing here touches the internet: the mirror is ../shared/data, HTTP is a local server on
127.0.0.1 started per test, and "offline" is a closed local port.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import unquote

import numpy as np
import pytest

from galbench.data import download
from galbench.data.download import (
    ChecksumError,
    DownloadError,
    RemoteFile,
    RemoteTableError,
    ResumableDownloader,
    UnverifiedDownloadWarning,
    download_path,
    fetch,
    known_files,
    remote_file,
    verify_file,
)
from galbench.errors import GalbenchError, UnknownNameError

MIRROR = Path(__file__).resolve().parents[1].parent / "shared" / "data"
needs_mirror = pytest.mark.skipif(
    not (MIRROR / "SHA256SUMS").is_file(), reason=f"no shared data mirror at {MIRROR}"
)
CATALOG = "cosmos_hst/real_galaxy_catalog_26_extension_example.fits"
PNG = "gz_decals_rings/images/J000411.19+020924.0.png"  # a '+' in the name: URL quoting


@pytest.fixture(autouse=True)
def _no_mirror_no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(download.MIRROR_ENV, raising=False)
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy",
                "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _mirror_sums() -> dict[str, str]:
    sums = {}
    for line in (MIRROR / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split(None, 1)
        name = name.removeprefix("./")
        if name != "SHA256SUMS":  # lists itself, hashed while empty
            sums[name] = digest
    return sums


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------- the table


@needs_mirror
def test_table_covers_every_mirrored_file_with_matching_hashes() -> None:
    sums = _mirror_sums()
    table = known_files()
    assert len(sums) == 488
    missing = sorted(set(sums) - set(table))
    assert not missing, f"files of the mirror missing from remote_files.toml: {missing[:5]}"
    for key, digest in sums.items():
        entry = table[key]
        assert entry.mirror_path == key
        assert entry.sha256 == digest, key
        data = (MIRROR / key).read_bytes()
        assert entry.size == len(data), key
        assert _sha(data) == digest, f"{key}: the mirror file does not match SHA256SUMS"
        assert entry.url.startswith("https://raw.githubusercontent.com/"), key
        assert re.search(r"/[0-9a-f]{40}/", entry.url), f"{key}: URL not pinned to a commit"
        assert entry.url.endswith("/" + key.rsplit("/", 1)[1])
        assert entry.license
    # Beyond the mirror: the two Galaxy10 files, on Zenodo.
    assert set(table) - set(sums) == {"galaxy10/Galaxy10.h5", "galaxy10/Galaxy10_DECals.h5"}


def test_table_values() -> None:
    sdss = remote_file("galaxy10/Galaxy10.h5")
    assert sdss.url == "https://zenodo.org/records/10844811/files/Galaxy10.h5"
    assert sdss.size == 210_234_548
    assert sdss.sha256 == "969a6b1cefcc36e09fffa86febd2f699a4aa19b837ba0427f01b0bc6ded458af"
    decals = remote_file("galaxy10/Galaxy10_DECals.h5")
    assert decals.url == "https://zenodo.org/records/10845026/files/Galaxy10_DECals.h5"
    assert decals.size is None and decals.approx_size == 2_540_000_000  # published as 2.54 GB
    assert decals.describe_size() == "~2.5 GB"
    assert "astroNN" in decals.sha256_source
    assert remote_file(CATALOG).url == (
        "https://raw.githubusercontent.com/LSSTDESC/BlendingToolKit/"
        "6901e8ce5d2d3f19bf5e1b7463e26332fce816fd/data/cosmos/"
        "real_galaxy_catalog_26_extension_example.fits"
    )
    assert remote_file("gz_decals_rings/example_ring_catalog_basic.csv").url.split("/")[5] == (
        "fda17b0f30969cff176736e30c63f0a5765f9842"
    )
    assert remote_file(PNG).url.split("/")[5] == "ae92ee5d8c09b32658e52a5637b46e38ef06aa29"
    assert remote_file("hsc_hst_cutouts/PSF_HST.fits").url.endswith(
        "/data/test_resampling/PSF_HST.fits")
    assert remote_file("hsc_hst_cutouts/hsc_cosmos.npz").url.endswith("/data/hsc_cosmos.npz")
    assert len(known_files("cosmos_hst/*")) == 9
    assert len(known_files("gz_decals_rings/images/*")) == 470


def test_unknown_key_suggests_close_ones() -> None:
    with pytest.raises(UnknownNameError, match="did you mean 'galaxy10/Galaxy10.h5'") as info:
        remote_file("galaxy10/Galaxy1O.h5")
    assert isinstance(info.value, GalbenchError)
    assert "known_files()" in str(info.value)


def test_malformed_table_names_file_and_field(tmp_path: Path) -> None:
    table = tmp_path / "remote.toml"
    table.write_text('schema = "galbench.remote_files/1"\n[[group]]\nname = "g"\n'
                     'license = "MIT"\nmirror_prefix = "g/"\nurl_prefix = "https://x/"\n'
                     'files = [{ name = "a.bin", size = 3, sha256 = "ABC" }]\n')
    with pytest.raises(RemoteTableError, match=r"remote\.toml: remote file 'g/a\.bin': sha256"):
        download._load_table(table)
    table.write_text(table.read_text().replace('sha256 = "ABC"', 'md5 = "x"'))
    with pytest.raises(RemoteTableError, match=r"group 'g', file 'a\.bin': unknown field.*md5"):
        download._load_table(table)
    with pytest.raises(RemoteTableError, match="relative POSIX path"):
        RemoteFile(key="../etc/passwd", url="https://x/y", sha256=None, size=1, license="MIT")


# --------------------------------------------------------------------------- local mirror


@needs_mirror
def test_fetch_from_mirror_folder_then_from_the_verified_copy(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    got = fetch(CATALOG, home=home, mirror=MIRROR, progress=False)
    assert got == home / "downloads" / Path(CATALOG)
    assert got == download_path(CATALOG, home)
    assert got.read_bytes() == (MIRROR / CATALOG).read_bytes()
    assert not got.with_name(got.name + ".part").exists()

    # $GALBENCH_MIRROR is the default mirror; a '+' in the name is fine.
    monkeypatch.setenv(download.MIRROR_ENV, str(MIRROR))
    png = fetch(PNG, home=home, progress=False)
    assert png.read_bytes() == (MIRROR / PNG).read_bytes()

    # The second fetch neither copies nor downloads: the copy there is verified.
    def forbidden(*args, **kwargs):
        raise AssertionError("fetched again")

    monkeypatch.setattr(download, "_copy", forbidden)
    monkeypatch.setattr(download, "_download", forbidden)
    mtime = got.stat().st_mtime_ns
    assert fetch(CATALOG, home=home, mirror=MIRROR, progress=False) == got
    assert fetch(PNG, home=home, progress=False) == png
    assert got.stat().st_mtime_ns == mtime

    # A big file is not even re-hashed while its size and mtime match the stamp.
    hashed = []
    real_sha256_file = download.sha256_file
    monkeypatch.setattr(download, "QUICK_CHECK_BYTES", 1)
    monkeypatch.setattr(download, "sha256_file",
                        lambda path: hashed.append(path) or real_sha256_file(path))
    assert fetch(CATALOG, home=home, mirror=MIRROR, progress=False) == got
    assert hashed == []
    os.utime(got, ns=(mtime + 10**9, mtime + 10**9))  # touched: hashed again (and still good)
    assert fetch(CATALOG, home=home, mirror=MIRROR, progress=False) == got
    assert hashed == [got]


@needs_mirror
def test_altered_local_copy_is_detected_and_replaced(tmp_path: Path) -> None:
    home = tmp_path / "home"
    got = fetch(CATALOG, home=home, mirror=MIRROR, progress=False)
    data = bytearray(got.read_bytes())
    data[100] ^= 0xFF  # same size, other content
    got.write_bytes(bytes(data))
    with pytest.raises(ChecksumError, match=remote_file(CATALOG).sha256):
        verify_file(CATALOG, got)
    assert got.is_file()  # verify_file reports, it does not delete
    again = fetch(CATALOG, home=home, mirror=MIRROR, progress=False)
    assert again.read_bytes() == (MIRROR / CATALOG).read_bytes()
    assert verify_file(CATALOG, again) == remote_file(CATALOG).sha256


@needs_mirror
@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_corrupted_mirror_file_is_rejected(tmp_path: Path, damage: str) -> None:
    bad_mirror = tmp_path / "mirror"
    (bad_mirror / "cosmos_hst").mkdir(parents=True)
    data = bytearray((MIRROR / CATALOG).read_bytes())
    if damage == "flip":
        data[-1] ^= 0x01
    else:
        del data[len(data) // 2:]
    (bad_mirror / CATALOG).write_bytes(bytes(data))
    home = tmp_path / "home"
    with pytest.raises(ChecksumError) as info:
        fetch(CATALOG, home=home, mirror=bad_mirror, progress=False)
    msg = str(info.value)
    assert CATALOG in msg and str(bad_mirror / CATALOG) in msg and "Fix:" in msg
    if damage == "flip":
        assert remote_file(CATALOG).sha256 in msg and _sha(bytes(data)) in msg
    else:
        assert f"{remote_file(CATALOG).size} bytes" in msg and f"{len(data)} bytes" in msg
    target = download_path(CATALOG, home)
    assert not target.exists() and not target.with_name(target.name + ".part").exists()


@needs_mirror
def test_mirror_without_the_file_falls_back_to_the_public_url(tmp_path: Path) -> None:
    src = tmp_path / "elsewhere" / "table.fits"
    src.parent.mkdir()
    shutil.copy(MIRROR / CATALOG, src)
    entry = RemoteFile(key="extra/table.fits", url=src.as_uri(), sha256=_sha(src.read_bytes()),
                       size=src.stat().st_size, license="MIT")
    got = fetch(entry, home=tmp_path / "home", mirror=MIRROR, progress=False)
    assert got.read_bytes() == src.read_bytes()


# --------------------------------------------------------------------------- HTTP


@pytest.fixture
def server(tmp_path: Path):
    """A local HTTP server over ``state.root`` that honours ``Range: bytes=N-`` unless
    ``support_range`` is False, and cuts every body after ``truncate_at`` bytes when set."""
    state = SimpleNamespace(root=tmp_path / "served", support_range=True, truncate_at=None,
                            log=[])
    state.root.mkdir()

    class Handler(BaseHTTPRequestHandler):
        def do_HEAD(self) -> None:
            path = state.root / unquote(self.path.lstrip("/"))
            self.send_response(200 if path.is_file() else 404)
            self.end_headers()

        def do_GET(self) -> None:
            state.log.append((unquote(self.path), self.headers.get("Range")))
            path = state.root / unquote(self.path.lstrip("/"))
            if not path.is_file():
                self.send_error(404)
                return
            data = path.read_bytes()
            start, status = 0, 200
            rng = self.headers.get("Range")
            if rng and state.support_range:
                start = int(re.fullmatch(r"bytes=(\d+)-", rng).group(1))
                if start >= len(data):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                status = 206
            body = data[start:]
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.end_headers()
            if state.truncate_at is not None:
                self.wfile.write(body[: state.truncate_at])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}/"
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def _served_entry(server, size: int = 300_000, *, sha: bool = True, exact_size: bool = True,
                  seed: int = 0) -> tuple[RemoteFile, bytes]:
    data = np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes()
    (server.root / "extra").mkdir(exist_ok=True)
    (server.root / "extra" / "blob.bin").write_bytes(data)
    entry = RemoteFile(
        key="extra/blob.bin",
        # The public URL is unreachable: everything comes through the mirror under test.
        url=f"http://127.0.0.1:{_closed_port()}/blob.bin",
        sha256=_sha(data) if sha else None,
        size=size if exact_size else None,
        approx_size=None if exact_size else size,
        license="MIT",
    )
    return entry, data


@needs_mirror
def test_fetch_through_an_http_mirror(tmp_path: Path, server) -> None:
    (server.root / "gz_decals_rings" / "images").mkdir(parents=True)
    shutil.copy(MIRROR / PNG, server.root / PNG)
    got = fetch(PNG, home=tmp_path / "home", mirror=server.url, progress=False)
    assert got.read_bytes() == (MIRROR / PNG).read_bytes()
    assert server.log == [("/" + PNG, None)]


def test_interrupted_download_is_resumed_with_a_range_request(
        tmp_path: Path, server, monkeypatch: pytest.MonkeyPatch) -> None:
    entry, data = _served_entry(server)
    home = tmp_path / "home"
    target = download_path(entry, home)
    part = target.with_name(target.name + ".part")

    server.truncate_at = 120_000
    with pytest.raises(DownloadError, match="resumes") as info:
        fetch(entry, home=home, mirror=server.url, progress=False)
    assert "bytes are kept" in str(info.value) and entry.url in str(info.value)
    assert not target.exists()
    kept = part.read_bytes()  # what arrived, less the last unfinished read
    assert 0 < len(kept) <= 120_000 and kept == data[: len(kept)]

    server.truncate_at = None
    monkeypatch.setattr(download, "LARGE_FILE", 1)  # draw the progress bar too
    got = fetch(entry, home=home, mirror=server.url, progress=True)
    assert got == target and got.read_bytes() == data and not part.exists()
    assert server.log[-1] == ("/extra/blob.bin", f"bytes={len(kept)}-")


@pytest.mark.parametrize("support_range", [True, False])
def test_part_left_by_an_earlier_run_is_resumed_or_restarted(
        tmp_path: Path, server, support_range: bool) -> None:
    entry, data = _served_entry(server)
    server.support_range = support_range
    home = tmp_path / "home"
    target = download_path(entry, home)
    target.parent.mkdir(parents=True)
    target.with_name(target.name + ".part").write_bytes(data[: len(data) // 2])
    got = fetch(entry, home=home, mirror=server.url, progress=False)
    assert got.read_bytes() == data
    # The Range header is always sent; a server that ignores it sends the whole file (200).
    assert server.log == [("/extra/blob.bin", f"bytes={len(data) // 2}-")]
    assert not target.with_name(target.name + ".part").exists()


def test_part_holding_wrong_bytes_is_caught_and_discarded(tmp_path: Path, server) -> None:
    entry, data = _served_entry(server)
    home = tmp_path / "home"
    target = download_path(entry, home)
    part = target.with_name(target.name + ".part")
    target.parent.mkdir(parents=True)
    part.write_bytes(b"\0" * 1000)  # not a prefix of the file
    with pytest.raises(ChecksumError, match=entry.sha256) as info:
        fetch(entry, home=home, mirror=server.url, progress=False)
    assert "first 1000 bytes came from an earlier, interrupted download" in str(info.value)
    assert not part.exists() and not target.exists()
    assert fetch(entry, home=home, mirror=server.url, progress=False).read_bytes() == data


def test_complete_part_of_unknown_size_is_finished_without_a_body(
        tmp_path: Path, server) -> None:
    entry, data = _served_entry(server, exact_size=False)
    home = tmp_path / "home"
    target = download_path(entry, home)
    target.parent.mkdir(parents=True)
    target.with_name(target.name + ".part").write_bytes(data)
    assert fetch(entry, home=home, mirror=server.url, progress=False).read_bytes() == data
    assert server.log == [("/extra/blob.bin", f"bytes={len(data)}-")]  # answered 416


def test_file_without_published_hash_is_recorded_and_checked_later(
        tmp_path: Path, server) -> None:
    entry, data = _served_entry(server, sha=False)
    home = tmp_path / "home"
    with pytest.warns(UnverifiedDownloadWarning, match=_sha(data)):
        got = fetch(entry, home=home, mirror=server.url, progress=False)
    assert got.read_bytes() == data
    assert fetch(entry, home=home, mirror=server.url, progress=False) == got  # no warning
    got.write_bytes(data[::-1])  # same size, other content: differs from the recorded hash
    with pytest.warns(UnverifiedDownloadWarning):
        again = fetch(entry, home=home, mirror=server.url, progress=False)
    assert again.read_bytes() == data
    assert [r for r in server.log if r[0] == "/extra/blob.bin"] == [("/extra/blob.bin", None)] * 2


def test_pooch_downloader_protocol(tmp_path: Path, server) -> None:
    import pooch

    entry, data = _served_entry(server)
    part = tmp_path / "blob.bin.part"
    downloader = ResumableDownloader(entry, part, progress=False)
    assert downloader(server.url + "extra/blob.bin", None, None, check_only=True) is True
    assert downloader(server.url + "missing.bin", None, None, check_only=True) is False
    got = pooch.retrieve(server.url + "extra/blob.bin", known_hash=f"sha256:{entry.sha256}",
                         fname="blob.bin", path=tmp_path, downloader=downloader,
                         progressbar=False)
    assert Path(got).read_bytes() == data and downloader.sha256 == entry.sha256


def test_http_error_from_the_mirror_is_reported(tmp_path: Path, server) -> None:
    entry, _ = _served_entry(server)
    (server.root / "extra" / "blob.bin").unlink()  # the mirror answers 404
    with pytest.raises(DownloadError, match="404") as info:
        fetch(entry, home=tmp_path / "home", mirror=server.url, progress=False)
    assert f"mirror: download from {server.url}extra/blob.bin failed" in str(info.value)


# --------------------------------------------------------------------------- offline


def test_offline_without_mirror_says_what_to_download_from_where(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/files/blob.bin"
    entry = RemoteFile(key="extra/blob.bin", url=url, sha256="0" * 64, size=1234,
                       license="CC-BY-4.0")
    home = tmp_path / "home"
    with pytest.raises(DownloadError) as info:
        fetch(entry, home=home, progress=False)
    msg = str(info.value)
    assert isinstance(info.value, (GalbenchError, OSError))
    assert "could not fetch extra/blob.bin" in msg
    assert url in msg and "ConnectionError" in msg
    assert str(download_path(entry, home)) in msg
    assert "GALBENCH_MIRROR" in msg and "<mirror>/extra/blob.bin" in msg
    assert not download_path(entry, home).exists()


@needs_mirror
def test_offline_error_lists_the_mirror_tried_too(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    entry = RemoteFile(key="extra/blob.bin", url=f"http://127.0.0.1:{_closed_port()}/b",
                       sha256="0" * 64, size=1, license="MIT")
    monkeypatch.setenv(download.MIRROR_ENV, str(MIRROR))
    with pytest.raises(DownloadError, match=f"mirror folder {re.escape(str(MIRROR))}: no file "
                                            "extra/blob.bin"):
        fetch(entry, home=tmp_path / "home", progress=False)



@needs_mirror
def test_cli_lists_and_fetches_from_a_mirror(tmp_path, capsys):
    from galbench.cli import main

    assert main(["download", "--list", "galaxy10/*"]) == 0
    out = capsys.readouterr().out
    assert "galaxy10/Galaxy10.h5  210,234,548 bytes  https://zenodo.org/" in out
    assert "galaxy10/Galaxy10_DECals.h5  ~" in out  # no exact size published
    key = "cosmos_hst/real_galaxy_catalog_26_extension_example.fits"
    assert main(["download", key, "--home", str(tmp_path), "--mirror", str(MIRROR), "--quiet"]) == 0
    assert (tmp_path / "downloads" / key).read_bytes() == (MIRROR / key).read_bytes()
    assert main(["download", "no/such/*"]) == 2  # a usage error, said on stderr
    assert "no known file matches 'no/such/*'" in capsys.readouterr().err
