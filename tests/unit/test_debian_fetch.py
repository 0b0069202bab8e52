"""DebCache: parallel, verified, atomic downloads of real .deb files from a local server."""

# ruff: noqa: SIM117  (nested "with" keeps server, cache and pytest.raises readable)

from __future__ import annotations

import contextlib
import hashlib
import http.server
from collections.abc import Iterator
from pathlib import Path

import pytest

from assay.debian.fetch import DebCache
from assay.errors import InputError, NetworkError, VerificationError
from fixtures.debrepo import FakePkg, build_deb, serve
from fixtures.httpserve import serving


@pytest.fixture(scope="module")
def debs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[tuple[str, str, int]]]:
    """Twelve real .deb files in a directory; items as (relative path, sha256, size)."""
    root = tmp_path_factory.mktemp("debs")
    items = []
    for i in range(12):
        pkg = FakePkg(f"pkg{i}", f"1.{i}", files={f"usr/share/pkg{i}/data": bytes([i]) * 5000 * i})
        deb = build_deb(pkg, root / "pool")
        blob = deb.read_bytes()
        items.append((f"pool/{deb.name}", hashlib.sha256(blob).hexdigest(), len(blob)))
    return root, items


def cache_entries(cache: Path) -> list[str]:
    d = cache / "debs" / "sha256"
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


def new_cache(cache: Path, workers: int = 4) -> DebCache:
    c = DebCache(cache_dir=cache, workers=workers)
    c.backoff = 0.01
    return c


def test_fetch_all_parallel_then_warm(
    debs: tuple[Path, list[tuple[str, str, int]]], tmp_path: Path
) -> None:
    root, items = debs
    log: list[str] = []
    calls: list[tuple[int, int]] = []
    with serve(root, log=log) as url, new_cache(tmp_path) as cache:
        wanted = [(f"{url}/{p}", sha, size) for p, sha, size in items]
        got = cache.fetch_all(wanted, progress=lambda d, t: calls.append((d, t)))
        assert set(got) == {sha for _, sha, _ in items}
        for _, sha, size in items:
            path = got[sha]
            assert path == cache.path_for(sha) == tmp_path / "debs" / "sha256" / f"{sha}.deb"
            assert hashlib.sha256(path.read_bytes()).hexdigest() == sha
            assert path.stat().st_size == size
        total = sum(size for _, _, size in items)
        assert calls[-1] == (total, total)
        assert all(t == total for _, t in calls)
        assert len(log) == len(items)
        # Warm: nothing downloaded; full verification re-hashes but also downloads nothing.
        log.clear()
        assert cache.fetch_all(wanted) == got
        assert cache.fetch_all(wanted, full_verify=True) == got
        assert log == []
    assert cache_entries(tmp_path) == sorted(f"{sha}.deb" for _, sha, _ in items)


def test_hash_mismatch_names_url_expected_found_and_caches_nothing(
    debs: tuple[Path, list[tuple[str, str, int]]], tmp_path: Path
) -> None:
    root, items = debs
    path, real_sha, size = items[3]
    wrong = hashlib.sha256(b"something else").hexdigest()
    with serve(root) as url, new_cache(tmp_path) as cache:
        with pytest.raises(VerificationError) as info:
            cache.fetch_all([(f"{url}/{path}", wrong, size)])
    msg = str(info.value)
    assert f"{url}/{path}" in msg
    assert f"expected sha256 {wrong}" in msg and f"found sha256 {real_sha}" in msg
    assert cache_entries(tmp_path) == []  # no final file, no temp file


def test_file_larger_than_listed_is_rejected(
    debs: tuple[Path, list[tuple[str, str, int]]], tmp_path: Path
) -> None:
    root, items = debs
    path, sha, size = items[5]
    with serve(root) as url, new_cache(tmp_path) as cache:
        with pytest.raises(VerificationError, match=f"expected {size - 10} bytes"):
            cache.fetch_all([(f"{url}/{path}", sha, size - 10)])
    assert cache_entries(tmp_path) == []


def test_corrupt_cached_file_is_replaced(
    debs: tuple[Path, list[tuple[str, str, int]]], tmp_path: Path
) -> None:
    root, items = debs
    path, sha, size = items[4]
    log: list[str] = []
    with serve(root, log=log) as url, new_cache(tmp_path) as cache:
        item = [(f"{url}/{path}", sha, size)]
        target = cache.fetch_all(item)[sha]
        good = target.read_bytes()
        # Same size, different bytes: only a full verification notices.
        target.write_bytes(bytes(len(good)))
        log.clear()
        cache.fetch_all(item)
        assert log == []
        cache.fetch_all(item, full_verify=True)
        assert len(log) == 1 and target.read_bytes() == good
        # Truncated: the cheap size check notices.
        target.write_bytes(good[:100])
        cache.fetch_all(item)
        assert len(log) == 2 and target.read_bytes() == good


def test_missing_file_and_unreachable_are_network_errors(
    debs: tuple[Path, list[tuple[str, str, int]]], tmp_path: Path
) -> None:
    root, items = debs
    _, sha, size = items[1]
    with serve(root) as url, new_cache(tmp_path) as cache:
        with pytest.raises(NetworkError, match=f"{url}/pool/nope.deb: HTTP 404"):
            cache.fetch_all([(f"{url}/pool/nope.deb", sha, size)])
    with new_cache(tmp_path) as cache:
        with pytest.raises(NetworkError) as info:
            cache.fetch_all([("http://127.0.0.1:9/pool/x.deb", sha, size)])
    assert "http://127.0.0.1:9/pool/x.deb" in str(info.value)
    assert "ASSAY_DEBIAN_MIRROR" in str(info.value)
    assert cache_entries(tmp_path) == []


def test_retries_5xx(debs: tuple[Path, list[tuple[str, str, int]]], tmp_path: Path) -> None:
    root, items = debs
    path, sha, size = items[2]
    log: list[str] = []
    faults = {f"/{path}": [503, 500]}
    with serve(root, log=log, faults=faults) as url, new_cache(tmp_path) as cache:
        got = cache.fetch_all([(f"{url}/{path}", sha, size)])
    assert hashlib.sha256(got[sha].read_bytes()).hexdigest() == sha
    assert log.count(f"/{path}") == 3


@contextlib.contextmanager
def truncating_server(blob: bytes) -> Iterator[tuple[str, list[int]]]:
    """Announce the full length, send half, close: what a dropped connection looks like."""
    hits: list[int] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            hits.append(1)
            self.send_response(200)
            self.send_header("Content-Length", str(len(blob)))
            self.end_headers()
            self.wfile.write(blob[: len(blob) // 2])
            self.wfile.flush()
            self.close_connection = True

    with serving(http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)) as url:
        yield url, hits


def test_interrupted_download_leaves_nothing_valid(
    debs: tuple[Path, list[tuple[str, str, int]]], tmp_path: Path
) -> None:
    root, items = debs
    path, sha, size = items[11]
    blob = (root / path).read_bytes()
    with truncating_server(blob) as (url, hits), new_cache(tmp_path) as cache:
        with pytest.raises(NetworkError, match="after 4 attempts"):
            cache.fetch_all([(f"{url}/{path}", sha, size)])
        assert len(hits) == 4
    assert cache_entries(tmp_path) == []


def test_one_failure_stops_the_batch_and_keeps_finished_files_valid(
    debs: tuple[Path, list[tuple[str, str, int]]], tmp_path: Path
) -> None:
    root, items = debs
    bad = hashlib.sha256(b"x").hexdigest()
    with serve(root) as url, new_cache(tmp_path, workers=2) as cache:
        wanted = [(f"{url}/{p}", sha, size) for p, sha, size in items[:6]]
        wanted.append((f"{url}/{items[6][0]}", bad, items[6][2]))
        with pytest.raises(VerificationError, match=bad):
            cache.fetch_all(wanted)
    names = cache_entries(tmp_path)
    assert f"{bad}.deb" not in names
    assert not [n for n in names if n.startswith(".tmp-")]
    for name in names:  # whatever did finish is complete and correct
        assert hashlib.sha256((tmp_path / "debs" / "sha256" / name).read_bytes()).hexdigest() == (
            name.removesuffix(".deb")
        )


def test_input_validation(tmp_path: Path) -> None:
    cache = DebCache(cache_dir=tmp_path)
    with pytest.raises(InputError, match="not a lowercase hex SHA256"):
        cache.path_for("../../etc/passwd")
    sha = "a" * 64
    with pytest.raises(InputError, match="listed with sizes"):
        cache.fetch_all([("http://127.0.0.1:9/a", sha, 1), ("http://127.0.0.1:9/b", sha, 2)])
    assert cache.fetch_all([]) == {}
    cache.close()


def test_fixture_builds_real_debs(tmp_path: Path) -> None:
    """The fixture's .deb files are what dpkg-deb itself reads back."""
    import subprocess

    pkg = FakePkg(
        "hello",
        "1:2.0-1",
        arch="arm64",
        depends="libc6 (>= 2.36)",
        multi_arch="same",
        files={"usr/bin/hello": b"#!/bin/sh\necho hi\n", "etc/hello.conf": b"x=1\n"},
    )
    deb = build_deb(pkg, tmp_path)
    assert deb.name == "hello_2.0-1_arm64.deb"
    fields = subprocess.run(
        ["dpkg-deb", "-f", str(deb), "Package", "Version", "Architecture", "Depends"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert fields.splitlines() == [
        "Package: hello",
        "Version: 1:2.0-1",
        "Architecture: arm64",
        "Depends: libc6 (>= 2.36)",
    ]
    listing = subprocess.run(
        ["dpkg-deb", "-c", str(deb)], check=True, capture_output=True, text=True
    ).stdout
    assert "root/root" in listing and "-rwxr-xr-x" in listing
    assert "./usr/bin/hello" in listing and "./etc/hello.conf" in listing
    # Reproducible: building again (bypassing the fixture's build cache) gives the same bytes,
    # which is what makes that cache sound.
    from fixtures.debrepo import _build_deb

    again = _build_deb(pkg, tmp_path / "again")
    assert again != deb and again.read_bytes() == deb.read_bytes()


def test_stale_temporaries_are_swept(
    debs: tuple[Path, list[tuple[str, str, int]]], tmp_path: Path
) -> None:
    import os

    root, items = debs
    path, sha, size = items[0]
    d = tmp_path / "debs" / "sha256"
    d.mkdir(parents=True)
    old, fresh = d / ".tmp-old.abc", d / ".tmp-fresh.abc"
    old.write_bytes(b"partial")
    fresh.write_bytes(b"partial")  # possibly another process's download in progress
    os.utime(old, (1, 1))
    with serve(root) as url, new_cache(tmp_path) as cache:
        cache.fetch_all([(f"{url}/{path}", sha, size)])
    assert not old.exists() and fresh.exists()
