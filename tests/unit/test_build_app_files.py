"""``app:`` and ``paths[].source`` directories: a tree beside the spec, confined, deterministic."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from assay.build.appfiles import app_entries, read_tree
from assay.build.spec import AppFiles, ImageSpec
from assay.errors import UsageError
from assay.oci.entry import Entry, EntryType
from fixtures.hang import fail_after


@pytest.fixture(autouse=True)
def _no_hang() -> Iterator[None]:
    with fail_after(10, "reading an app tree hung"):
        yield


@pytest.fixture
def spec_dir(tmp_path: Path) -> Path:
    d = tmp_path / "spec"
    (d / "src" / "pkg").mkdir(parents=True)
    (d / "src" / "pkg" / "__init__.py").write_bytes(b"")
    (d / "src" / "main.py").write_bytes(b"print('hi')\n")
    (d / "src" / "run.sh").write_bytes(b"#!/bin/sh\n")
    os.chmod(d / "src" / "run.sh", 0o700)
    os.chmod(d / "src" / "main.py", 0o600)
    (tmp_path / "secret").write_bytes(b"outside\n")
    return d


def _shape(entries: list[Entry]) -> list[tuple[str, str, int, int, int, int]]:
    return [(e.path, e.type.value, e.mode, e.uid, e.gid, e.mtime) for e in entries]


def test_a_tree_is_copied_sorted_with_fixed_owners_modes_and_mtimes(spec_dir: Path) -> None:
    got = read_tree(spec_dir, "./src", "/app", what="app", mtime=1234)
    assert _shape(got) == [
        ("app", "dir", 0o755, 0, 0, 1234),
        ("app/main.py", "file", 0o644, 0, 0, 1234),
        ("app/pkg", "dir", 0o755, 0, 0, 1234),
        ("app/pkg/__init__.py", "file", 0o644, 0, 0, 1234),
        ("app/run.sh", "file", 0o755, 0, 0, 1234),
    ]
    assert got[1].data == b"print('hi')\n"
    # host metadata does not leak in: other mtimes, modes and owners give the same entries
    os.utime(spec_dir / "src" / "main.py", (1, 1))
    os.chmod(spec_dir / "src" / "main.py", 0o664)
    assert read_tree(spec_dir, "src", "/app", what="app", mtime=1234) == got


def test_app_entries_bring_parents_and_keep_lower_metadata(spec_dir: Path) -> None:
    app = AppFiles(source="src", target="/srv/app", uid=65532, gid=65532)
    lower = {"srv": Entry("srv", EntryType.DIR, 0o750, 0, 0, 5)}
    got = app_entries(app, spec_dir, 99, lower)
    assert got[0] == lower["srv"]
    assert _shape(got)[1] == ("srv/app", "dir", 0o755, 65532, 65532, 99)
    assert {(e.uid, e.gid) for e in got[1:]} == {(65532, 65532)}
    with pytest.raises(UsageError, match="needs /srv to be a directory"):
        app_entries(app, spec_dir, 99, {"srv": Entry("srv", EntryType.SYMLINK, 0o777, link="x")})


@pytest.mark.parametrize("source", ["../secret", "src/../../secret", "/etc", "/"])
def test_sources_outside_the_spec_directory_are_refused(spec_dir: Path, source: str) -> None:
    with pytest.raises(UsageError, match="outside the spec's directory") as info:
        read_tree(spec_dir, source, "/app", what="app")
    assert "\n" not in str(info.value)


def test_a_symlink_inside_the_tree_is_refused(spec_dir: Path) -> None:
    os.symlink("/etc/shadow", spec_dir / "src" / "pkg" / "shadow")
    with pytest.raises(UsageError, match=r"app: pkg/shadow is a symbolic link; only regular"):
        read_tree(spec_dir, "src", "/app", what="app")


def test_a_symlinked_source_pointing_outside_is_refused(spec_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", spec_dir / "link")
    with pytest.raises(UsageError, match="outside the spec's directory"):
        read_tree(spec_dir, "link", "/app", what="app")


def test_a_fifo_and_a_socket_are_refused_without_hanging(spec_dir: Path) -> None:
    os.mkfifo(spec_dir / "src" / "pipe")
    with pytest.raises(UsageError, match=r"app: pipe is a FIFO"):
        read_tree(spec_dir, "src", "/app", what="app")
    os.unlink(spec_dir / "src" / "pipe")
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(spec_dir / "src" / "sock"))
        with pytest.raises(UsageError, match=r"app: sock is a socket"):
            read_tree(spec_dir, "src", "/app", what="app")
    finally:
        sock.close()


def test_a_file_is_not_a_tree_and_missing_is_named(spec_dir: Path) -> None:
    with pytest.raises(UsageError, match="is not a directory"):
        read_tree(spec_dir, "src/main.py", "/app", what="app")
    with pytest.raises(UsageError, match="does not exist"):
        read_tree(spec_dir, "nope", "/app", what="app")


def test_size_and_entry_bounds(spec_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from assay.build import appfiles

    monkeypatch.setattr(appfiles, "MAX_TREE_BYTES", 5)
    with pytest.raises(UsageError, match="5-byte tree limit"):
        read_tree(spec_dir, "src", "/app", what="app")
    monkeypatch.setattr(appfiles, "MAX_TREE_BYTES", 1 << 20)
    monkeypatch.setattr(appfiles, "MAX_TREE_ENTRIES", 3)
    with pytest.raises(UsageError, match="more than 3 entries"):
        read_tree(spec_dir, "src", "/app", what="app")


def test_control_characters_in_names_are_refused(spec_dir: Path) -> None:
    (spec_dir / "src" / "bad\nname").write_bytes(b"")
    with pytest.raises(UsageError, match="control character"):
        read_tree(spec_dir, "src", "/app", what="app")


def test_spec_keys() -> None:
    spec = ImageSpec.from_yaml(b"contents: {packages: [hello]}\napp: ./src\n")
    assert spec.app == AppFiles(source="./src", target="/app")
    spec = ImageSpec.from_yaml(
        b"contents: {packages: [hello]}\napp: {source: src, target: /opt/x, uid: 1}\n"
        b"paths: [{path: /srv, type: directory, source: static}]\n"
    )
    assert spec.app is not None and spec.app.target == "/opt/x" and spec.app.uid == 1
    assert spec.paths[0].source == "static"
    for bad, why in (
        (b"app: {source: src, target: relative}", "app.target: must be an absolute path"),
        (b"app: {source: src, target: /a/../b}", "app.target: must be an absolute path"),
        (b"app: {source: src, mode: 1}", "app.mode: unknown key"),
        (b"paths: [{path: /d, type: directory, content: x}]", "takes no 'content'"),
    ):
        with pytest.raises(UsageError, match=why):
            ImageSpec.from_yaml(b"contents: {packages: [hello]}\n" + bad + b"\n")
