"""A lock never widens trust: edited locks are refused by ``assay build`` and ``lock --check``.

Each test first builds the attack for real: a signed fixture repository on 127.0.0.1, a real
unsigned ``.deb`` (dpkg-deb) that no signed index lists, served where the edited lock points,
then runs the installed ``assay`` console script in a subprocess.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from fixtures.debrepo import SOURCE_DATE_EPOCH as DATE
from fixtures.debrepo import (
    FakePkg,
    TestKey,
    build_deb,
    make_stable,
    serve,
    signed_contents,
    test_key,
)

__all__ = ["test_key"]  # the pytest fixture, imported for use here

ASSAY = shutil.which("assay") or "assay"


def run(*args: str, cache: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("SOURCE_DATE_EPOCH",)}
    env.pop("ASSAY_DEBIAN_MIRROR", None)
    env["ASSAY_CACHE_DIR"] = str(cache)
    return subprocess.run(
        [ASSAY, *args], env=env, capture_output=True, text=True, timeout=600, check=False
    )


def _repo(root: Path, key: TestKey) -> None:
    pkgs = [
        FakePkg("base-files", "12.4", files={"etc/debian_version": b"12.4\n"}),
        FakePkg("hello", "1.0-1", depends="libhello", files={"usr/bin/hello": b"#!/bin/true\n"}),
        FakePkg("libhello", "1.2-1", files={"usr/lib/libhello.so.1": b"\x7fELF fake\n"}),
    ]
    make_stable(root, pkgs, key)


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory, test_key: TestKey) -> Iterator[tuple[str, Path]]:
    """The signed repository, served; also a directory of attacker files beside it."""
    root = tmp_path_factory.mktemp("trust-repo")
    _repo(root, test_key)
    evil = FakePkg("hello", "1.0-1", files={"usr/bin/hello": b"#!/bin/sh\necho pwned\n"})
    deb = build_deb(evil, root / "pool" / "main" / "h" / "hello-evil")
    with serve(root) as url:
        yield url, deb


def _spec(tmp: Path, url: str, key: TestKey) -> Path:
    spec = tmp / "hello.yaml"
    spec.write_text(
        signed_contents(url, key.keyring, "[base-files, hello]")
        + "entrypoint: [/usr/bin/hello]\narchs: [amd64]\n"
    )
    return spec


@pytest.fixture
def locked(repo: tuple[str, Path], tmp_path: Path, test_key: TestKey) -> tuple[Path, Path]:
    url, _ = repo
    spec = _spec(tmp_path, url, test_key)
    proc = run("lock", str(spec), cache=tmp_path / "cache")
    assert proc.returncode == 0, proc.stderr
    return spec, tmp_path / "cache"


def _edit(spec: Path, change: Any) -> None:
    path = spec.with_name("hello.lock.json")
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data, indent=2))


def _point_hello_at(data: dict[str, Any], deb: Path, repository: str, filename: str) -> None:
    body = deb.read_bytes()
    for p in data["packages"]["amd64"]:
        if p["name"] == "hello":
            p.update(
                repository=repository,
                filename=filename,
                url=f"{repository}/{filename}",
                size=len(body),
                sha256=hashlib.sha256(body).hexdigest(),
            )


def _build(spec: Path, cache: Path) -> subprocess.CompletedProcess[str]:
    return run("build", str(spec), "--dest", f"oci:{spec.parent}/out:t", "-q", cache=cache)


def test_unsigned_deb_in_the_signed_repository_is_refused(
    repo: tuple[str, Path], locked: tuple[Path, Path]
) -> None:
    url, deb = repo
    spec, cache = locked
    filename = str(deb.relative_to(deb.parents[4]))
    assert httpx.get(f"{url}/{filename}").content == deb.read_bytes()  # the attack is served
    _edit(spec, lambda d: _point_hello_at(d, deb, url, filename))
    proc = _build(spec, cache)
    assert proc.returncode == 1, proc.stderr
    line = proc.stderr.strip().splitlines()[-1]
    assert "package hello 1.0-1" in line and "sha256" in line and "signed index" in line
    assert filename in line and "Traceback" not in proc.stderr
    assert not (spec.parent / "out").exists()
    # lock --check names the same package and exits 1.
    check = run("lock", str(spec), "--check", cache=cache)
    assert check.returncode == 1
    assert "package hello 1.0-1" in check.stderr and "filename" in check.stderr


def test_new_source_in_the_lock_is_refused(
    repo: tuple[str, Path], locked: tuple[Path, Path], tmp_path: Path
) -> None:
    _, deb = repo
    attacker = tmp_path / "attacker"
    (attacker / "pool").mkdir(parents=True)
    shutil.copy(deb, attacker / "pool" / deb.name)
    spec, cache = locked
    with serve(attacker) as evil_url:

        def change(d: dict[str, Any]) -> None:
            d["sources"].append({"uri": evil_url, "suite": "stable", "components": ["main"]})
            _point_hello_at(d, deb, evil_url, f"pool/{deb.name}")

        _edit(spec, change)
        proc = _build(spec, cache)
        check = run("lock", str(spec), "--check", cache=cache)
    assert proc.returncode == 1, proc.stderr
    assert f"lock source {evil_url} stable" in proc.stderr
    assert "not a repository the spec names" in proc.stderr
    assert check.returncode == 1 and evil_url in check.stderr


def test_changed_release_hash_is_refused(locked: tuple[Path, Path]) -> None:
    spec, cache = locked

    def change(d: dict[str, Any]) -> None:
        d["releases"][0]["sha256"] = "0" * 64

    _edit(spec, change)
    proc = _build(spec, cache)
    assert proc.returncode == 1, proc.stderr
    assert "InRelease with sha256 " + "0" * 64 in proc.stderr
    check = run("lock", str(spec), "--check", cache=cache)
    assert check.returncode == 1 and "0" * 64 in check.stderr


def test_changed_release_date_is_refused(locked: tuple[Path, Path]) -> None:
    """The Release Date is the default SOURCE_DATE_EPOCH: a lock cannot move it."""
    spec, cache = locked

    def change(d: dict[str, Any]) -> None:
        d["releases"][0]["dateEpoch"] = 86400

    _edit(spec, change)
    proc = _build(spec, cache)
    assert proc.returncode == 1, proc.stderr
    assert f"date_epoch is 86400 in the lock but {DATE} in the signed Release" in proc.stderr


def test_lock_check_passes_an_unedited_lock_and_names_a_changed_dependency_list(
    locked: tuple[Path, Path],
) -> None:
    spec, cache = locked
    ok = run("lock", str(spec), "--check", cache=cache)
    assert ok.returncode == 0, ok.stderr
    assert "matches" in ok.stderr

    def change(d: dict[str, Any]) -> None:
        d["packages"]["amd64"] = [p for p in d["packages"]["amd64"] if p["name"] != "libhello"]

    _edit(spec, change)
    bad = run("lock", str(spec), "--check", cache=cache)
    assert bad.returncode == 1
    assert "amd64: package libhello is resolved but missing from the lock" in bad.stderr


def test_build_from_a_lock_verifies_offline_from_the_cache(
    tmp_path: Path, test_key: TestKey
) -> None:
    """Once the pinned InRelease and Packages files are cached, no mirror is needed; and the
    signature is checked again from the cache (a cache InRelease from another key fails)."""
    root = tmp_path / "repo"
    _repo(root, test_key)
    cache = tmp_path / "cache"
    with serve(root) as url:
        spec = _spec(tmp_path, url, test_key)
        first = _build(spec, cache)
        assert first.returncode == 0, first.stderr
    shutil.rmtree(tmp_path / "out")
    again = _build(spec, cache)  # the server is gone
    assert again.returncode == 0, again.stderr
    check = run("lock", str(spec), "--check", cache=cache)
    assert check.returncode == 0, check.stderr
    # A spec that now trusts another keyring: the cached InRelease no longer verifies.
    other = tmp_path / "other.gpg"
    other.write_bytes(b"")
    spec.write_text(spec.read_text().replace(str(test_key.keyring), str(other)))
    lock = spec.with_name("hello.lock.json")
    data = json.loads(lock.read_text())
    data["specDigest"] = hashlib.sha256(spec.read_bytes()).hexdigest()
    lock.write_text(json.dumps(data))
    shutil.rmtree(tmp_path / "out")
    refused = _build(spec, cache)
    assert refused.returncode == 1, refused.stderr
    assert "InRelease" in refused.stderr and "Traceback" not in refused.stderr


def test_paths_source_outside_the_spec_directory_fails_the_build(
    locked: tuple[Path, Path],
) -> None:
    """``paths[].source: /etc/shadow`` (or a FIFO) is refused with exit 2, one line."""
    spec, cache = locked
    os.mkfifo(spec.parent / "pipe")
    head = spec.read_text().split("archs:")[0]
    for source in ("/etc/shadow", "pipe"):
        text = head + (
            f"paths:\n  - path: /etc/stolen\n    type: file\n    source: {source}\narchs: [amd64]\n"
        )
        spec.write_text(text)
        proc = run("lock", str(spec), cache=cache)
        assert proc.returncode == 0, proc.stderr
        built = _build(spec, cache)
        assert built.returncode == 2, built.stderr
        last = built.stderr.strip().splitlines()[-1]
        assert "/etc/stolen" in last and repr(source) in last
        assert "Traceback" not in built.stderr
