"""``paths[].source`` is confined to the spec's directory: regular files only, size-bounded."""

from __future__ import annotations

import os
import socket
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from assay.build import builder
from assay.build.builder import read_path_source
from assay.errors import UsageError
from fixtures.hang import fail_after


@pytest.fixture(autouse=True)
def _no_hang() -> Iterator[None]:
    """A FIFO that blocks the open would hang the test: fail it after 10 s instead."""
    with fail_after(10, "reading a paths source hung"):
        yield


@pytest.fixture
def spec_dir(tmp_path: Path) -> Path:
    d = tmp_path / "spec"
    (d / "files").mkdir(parents=True)
    (d / "files" / "app.conf").write_bytes(b"ok\n")
    (tmp_path / "secret").write_bytes(b"outside\n")
    return d


def test_a_file_beside_the_spec_is_read(spec_dir: Path) -> None:
    assert read_path_source(spec_dir, "files/app.conf", "/etc/app.conf") == b"ok\n"
    assert read_path_source(spec_dir, str(spec_dir / "files/app.conf"), "/x") == b"ok\n"
    os.symlink("app.conf", spec_dir / "files" / "alias")  # a symlink that stays inside
    assert read_path_source(spec_dir, "files/alias", "/x") == b"ok\n"


@pytest.mark.parametrize("source", ["../secret", "files/../../secret", "/etc/shadow", "/dev/zero"])
def test_paths_outside_the_spec_directory_are_refused(spec_dir: Path, source: str) -> None:
    with pytest.raises(UsageError, match="outside the spec's directory") as info:
        read_path_source(spec_dir, source, "/etc/app.conf")
    assert "/etc/app.conf" in str(info.value) and "\n" not in str(info.value)


def test_a_symlink_escaping_the_spec_directory_is_refused(spec_dir: Path) -> None:
    os.symlink("/etc/shadow", spec_dir / "shadow")
    os.symlink("../../secret", spec_dir / "files" / "up")
    os.symlink("/dev", spec_dir / "dev")
    for source in ("shadow", "files/up", "dev/zero"):
        with pytest.raises(UsageError, match="outside the spec's directory"):
            read_path_source(spec_dir, source, "/x")


def test_a_fifo_is_refused_without_hanging(spec_dir: Path) -> None:
    os.mkfifo(spec_dir / "pipe")
    with pytest.raises(UsageError, match="is a FIFO, not a regular file"):
        read_path_source(spec_dir, "pipe", "/x")


def test_a_socket_a_directory_and_a_device_are_refused(spec_dir: Path) -> None:
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(spec_dir / "sock"))
        with pytest.raises(UsageError, match="is a socket"):
            read_path_source(spec_dir, "sock", "/x")
    finally:
        sock.close()
    with pytest.raises(UsageError, match="is a directory"):
        read_path_source(spec_dir, "files", "/x")
    try:
        os.mknod(spec_dir / "zero", stat.S_IFCHR | 0o600, os.makedev(1, 5))
    except PermissionError:
        pytest.skip("cannot create a device node here")
    with pytest.raises(UsageError, match="is a character device"):
        read_path_source(spec_dir, "zero", "/x")


def test_missing_and_oversized_sources_are_named(
    spec_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(UsageError, match="'files/nope' does not exist"):
        read_path_source(spec_dir, "files/nope", "/x")
    monkeypatch.setattr(builder, "MAX_PATH_SOURCE", 2)
    with pytest.raises(UsageError, match="over the 2-byte limit"):
        read_path_source(spec_dir, "files/app.conf", "/x")
