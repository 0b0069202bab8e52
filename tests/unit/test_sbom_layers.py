"""Layer streams into the filesystem view: whiteouts, symlinks inside the root, hostile input."""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import tarfile
from pathlib import Path

import pytest
import zstandard

from assay.errors import InputError
from assay.sbom.fs import MemoryFileView, read_directory
from assay.sbom.layers import LayerInput, view_of_layers


def _tar(members: list[tuple[str, str, bytes | str]]) -> bytes:
    """(name, kind, data-or-target) with kind in file/dir/symlink/hardlink."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, payload in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                assert isinstance(payload, bytes)
                info.size = len(payload)
                tar.addfile(info, io.BytesIO(payload))
                continue
            if kind == "dir":
                info.type = tarfile.DIRTYPE
            elif kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, str(payload)
            elif kind == "hardlink":
                info.type, info.linkname = tarfile.LNKTYPE, str(payload)
            tar.addfile(info)
    return buf.getvalue()


def _everything(path: str) -> bool:
    return True


def _layer(raw: bytes) -> LayerInput:
    return LayerInput(open=lambda: contextlib.nullcontext(io.BytesIO(raw)))


def _view(*raws: bytes, wants=_everything) -> MemoryFileView:  # type: ignore[no-untyped-def]
    return view_of_layers([_layer(r) for r in raws], wants)


def test_whiteouts_remove_lower_layer_content_only() -> None:
    view = _view(
        _tar(
            [
                ("etc/a", "file", b"a"),
                ("etc/b", "file", b"b"),
                ("opt/x/1", "file", b"1"),
                ("opt/x/2", "file", b"2"),
                ("var/keep", "file", b"k"),
            ]
        ),
        _tar(
            [
                ("etc/.wh.a", "file", b""),
                ("opt/x/.wh..wh..opq", "file", b""),
                ("opt/x/3", "file", b"3"),  # same layer as the opaque marker: kept
                ("var/.wh.nothing", "file", b""),
            ]
        ),
    )
    assert view.paths() == ["etc/b", "opt/x/3", "var/keep"]


def test_gzip_zstd_and_plain_layers_are_detected() -> None:
    raw = _tar([("etc/os-release", "file", b"ID=debian\n")])
    for blob in (raw, gzip.compress(raw), zstandard.ZstdCompressor().compress(raw)):
        view = _view(blob)
        assert view.read("etc/os-release") == b"ID=debian\n"


def test_short_reads_from_the_stream() -> None:
    raw = gzip.compress(_tar([("a", "file", b"x" * 5000)]))

    class Dribble(io.BytesIO):
        def read(self, n: int | None = -1) -> bytes:
            return super().read(7 if n is None or n < 0 else min(n, 7))

    view = view_of_layers(
        [LayerInput(open=lambda: contextlib.nullcontext(Dribble(raw)))], _everything
    )
    assert view.read("a") == b"x" * 5000


def test_only_wanted_files_keep_bytes() -> None:
    view = _view(_tar([("a", "file", b"1"), ("b", "file", b"2")]), wants=lambda p: p == "b")
    assert view.paths() == ["b"]


def test_dotdot_member_is_refused() -> None:
    with pytest.raises(InputError, match=r"'\.\.' component"):
        _view(_tar([("usr/../../etc/passwd", "file", b"x")]))


def test_symlinks_resolve_inside_the_root() -> None:
    view = _view(
        _tar(
            [
                ("usr/lib/os-release", "file", b"ID=debian\n"),
                ("etc/os-release", "symlink", "../usr/lib/os-release"),
                ("usr/share/doc/libfoo", "symlink", "libfoo-common"),
                ("usr/share/doc/libfoo-common/copyright", "file", b"c"),
                ("escape", "symlink", "../../../../usr/lib/os-release"),
                ("abs", "symlink", "/usr/lib/os-release"),
                ("loop1", "symlink", "loop2"),
                ("loop2", "symlink", "loop1"),
            ]
        ),
    )
    assert view.read("etc/os-release") == b"ID=debian\n"
    assert view.read("usr/share/doc/libfoo/copyright") == b"c"
    assert view.read("escape") == b"ID=debian\n"  # '..' stops at the root, like a chroot
    assert view.read("abs") == b"ID=debian\n"
    assert view.read("loop1") is None


def test_hardlink_to_a_kept_file() -> None:
    view = _view(_tar([("a/METADATA", "file", b"m"), ("b/METADATA", "hardlink", "a/METADATA")]))
    assert view.read("b/METADATA") == b"m"


def test_upper_layer_replacing_a_symlink_with_a_directory() -> None:
    view = _view(
        _tar([("usr/share/doc/x", "symlink", "y"), ("usr/share/doc/y/copyright", "file", b"y")]),
        _tar([("usr/share/doc/x", "dir", b""), ("usr/share/doc/x/copyright", "file", b"x")]),
    )
    assert view.read("usr/share/doc/x/copyright") == b"x"


def test_not_a_tar_is_an_input_error() -> None:
    with pytest.raises(InputError):
        _view(gzip.compress(b"this is not a tar archive" * 40))


def test_truncated_gzip_is_an_input_error() -> None:
    raw = gzip.compress(_tar([("a", "file", os.urandom(100_000))]))
    with pytest.raises(InputError, match="truncated"):
        _view(raw[: len(raw) // 2])


def test_read_directory_does_not_follow_symlinks_out_of_the_root(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("s")
    root = tmp_path / "root"
    (root / "var/lib/dpkg").mkdir(parents=True)
    (root / "var/lib/dpkg/status").symlink_to(outside / "secret")
    (root / "etc").mkdir()
    (root / "etc/os-release").write_text("ID=debian\n")
    (root / "linkdir").symlink_to(outside)
    view = read_directory(root, _everything)
    assert view.read("var/lib/dpkg/status") is None  # resolves to /…/secret inside the root
    assert view.read("linkdir/secret") is None
    assert view.read("etc/os-release") == b"ID=debian\n"


@pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT])
def test_long_names_in_every_tar_format(fmt: int) -> None:
    long_dir = "usr/lib/python3/dist-packages/" + "x" * 60 + "/" + "y" * 40
    name = f"{long_dir}/pkg-1.0.dist-info/METADATA"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        info = tarfile.TarInfo(name)
        info.size = 3
        tar.addfile(info, io.BytesIO(b"abc"))
        link = tarfile.TarInfo(f"{long_dir}/link")
        link.type, link.linkname = (
            tarfile.SYMTYPE,
            "z" * 120 if fmt != tarfile.USTAR_FORMAT else "z",
        )
        tar.addfile(link)
    view = _view(buf.getvalue())
    assert view.files == {name: b"abc"}
    assert view.symlinks[f"{long_dir}/link"].startswith("z")


def test_huge_pax_header_is_refused() -> None:
    record = b"x" * (2 << 20)
    header = tarfile.TarInfo("././@PaxHeader")
    header.type = tarfile.XHDTYPE
    header.size = len(record)
    buf = io.BytesIO()
    buf.write(header.tobuf(tarfile.USTAR_FORMAT))
    buf.write(record + b"\0" * (-len(record) % 512) + b"\0" * 1024)
    with pytest.raises(InputError, match="PAX header"):
        _view(buf.getvalue())


def test_oversized_metadata_file_is_refused() -> None:
    from assay.sbom.fs import MAX_FILE_BYTES

    info = tarfile.TarInfo("var/lib/dpkg/status")
    info.size = MAX_FILE_BYTES + 1
    raw = info.tobuf(tarfile.PAX_FORMAT)  # header only: the size alone must be refused
    with pytest.raises(InputError, match="limit"):
        _view(raw + b"\0" * 1024)
