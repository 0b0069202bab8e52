"""The one archive reader against crafted layers and .debs: each evasion, bomb and refusal class.

Layers are written byte by byte (tests/fixtures/tarcraft.py) and read through the same entry
points the commands use: ``assay.sbom.layers.view_of_layers`` (sbom, scan), ``read_layer`` +
``apply_layers`` (inspect, rebuild diffs), ``assay.build.run.unpack_image`` (run) and
``assay.debian.debfile`` (.debs).
"""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import time
from pathlib import Path

import pytest

from assay.errors import InputError, VerificationError
from assay.oci.digest import sha256_digest
from assay.oci.entry import EntryType
from assay.oci.layer import apply_layers, read_layer, read_tar
from assay.oci.reference import parse_image_ref
from assay.oci.source import open_local_image
from assay.sbom.catalogers.dpkg import DpkgCataloger
from assay.sbom.fs import MemoryFileView
from assay.sbom.layers import LayerInput, view_of_layers
from fixtures import tarcraft as tc


def _layer(raw: bytes, **kw: object) -> LayerInput:
    return LayerInput(open=lambda: contextlib.nullcontext(io.BytesIO(raw)), **kw)  # type: ignore[arg-type]


def _dpkg_view(*raws: bytes) -> MemoryFileView:
    return view_of_layers([_layer(r) for r in raws], DpkgCataloger().wants)


def _packages(view: MemoryFileView) -> set[str]:
    return {p.name for p in DpkgCataloger().catalog(view, _context())}


def _context():  # type: ignore[no-untyped-def]
    from assay.sbom.catalogers.interface import CatalogContext

    return CatalogContext(distro=None)


BASE = [tc.directory("var/"), tc.directory("var/lib/")]


# -- the three evasion encodings --------------------------------------------------------------


def test_gnu_header_with_junk_in_the_prefix_area() -> None:
    """GNU magic ('ustar  \\0'): bytes 345.. are atime/ctime/..., never part of the name."""
    junk = b"00000000000\x0000000000000\x00" + b"evil/prefix/junk"
    raw = tc.archive(
        *BASE,
        tc.directory("var/lib/dpkg/"),
        tc.member(
            "var/lib/dpkg/status",
            tc.status_stanza("openssl", "1.1.1"),
            magic=b"ustar ",
            version=b" \x00",
            prefix_field=junk,
        ),
    )
    view = _dpkg_view(raw)
    assert view.read("var/lib/dpkg/status") is not None
    assert _packages(view) == {"openssl"}


def test_pre_go18_gnu_header_whose_times_do_not_parse_uses_the_prefix() -> None:
    """Go's archive/tar (so every runtime) reads an unparseable GNU atime as a USTAR prefix."""
    raw = tc.archive(
        tc.member("status", b"x", magic=b"ustar ", version=b" \x00", prefix_field=b"opt/sub")
    )
    assert [e.path for e in read_layer(io.BytesIO(raw))] == ["opt/sub/status"]


def test_ustar_prefix_is_part_of_the_name() -> None:
    raw = tc.archive(tc.member("status", b"x", prefix_field=b"var/lib/dpkg"))
    assert [e.path for e in read_layer(io.BytesIO(raw))] == ["var/lib/dpkg/status"]


def test_dpkg_directory_as_a_symlink_with_status_written_through_it() -> None:
    raw = tc.archive(
        *BASE,
        tc.directory("opt/"),
        tc.directory("opt/db/"),
        tc.symlink("var/lib/dpkg", "/opt/db"),
        tc.directory("var/lib/dpkg/status.d/"),
        tc.file("var/lib/dpkg/status.d/openssl", tc.status_stanza("openssl")),
        tc.file("var/lib/dpkg/status.d/zlib1g", tc.status_stanza("zlib1g")),
    )
    view = _dpkg_view(raw)
    assert sorted(view.paths()) == ["opt/db/status.d/openssl", "opt/db/status.d/zlib1g"]
    assert _packages(view) == {"openssl", "zlib1g"}
    merged = apply_layers([read_layer(io.BytesIO(raw))])
    assert merged["opt/db/status.d/openssl"].type is EntryType.FILE


def test_status_written_to_the_target_before_a_later_layer_links_it() -> None:
    """The file is only wanted under its name through a symlink made in a later layer."""
    lower = tc.archive(tc.directory("opt/"), tc.file("opt/status", tc.status_stanza("bash", "5.2")))
    upper = tc.archive(
        *BASE, tc.directory("var/lib/dpkg/"), tc.symlink("var/lib/dpkg/status", "/opt/status")
    )
    view = _dpkg_view(lower, upper)
    assert _packages(view) == {"bash"}


def test_status_d_entries_as_hardlinks_to_files_elsewhere() -> None:
    raw = tc.archive(
        tc.directory("opt/"),
        tc.file("opt/a", tc.status_stanza("openssl")),
        tc.file("opt/b", tc.status_stanza("libc6")),
        *BASE,
        tc.directory("var/lib/dpkg/"),
        tc.directory("var/lib/dpkg/status.d/"),
        tc.hardlink("var/lib/dpkg/status.d/openssl", "opt/a"),
        tc.hardlink("var/lib/dpkg/status.d/libc6", "opt/b"),
    )
    view = _dpkg_view(raw)
    assert view.read("var/lib/dpkg/status.d/openssl") == tc.status_stanza("openssl")
    assert _packages(view) == {"openssl", "libc6"}


def test_catalog_of_evasion_image_through_sbom_entry_point(tmp_path: Path) -> None:
    """The same through the image source (diff_ids checked) and every cataloger."""
    from assay.sbom.source import load_image

    raw = tc.archive(
        *BASE,
        tc.directory("d/"),
        tc.symlink("var/lib/dpkg", "../../d"),
        tc.directory("var/lib/dpkg/status.d/"),
        tc.file("var/lib/dpkg/status.d/curl", tc.status_stanza("curl", "8.0")),
    )
    tc.write_layout(tmp_path / "img", [raw])
    view, _info = load_image(f"oci:{tmp_path / 'img'}:latest", DpkgCataloger().wants)
    assert _packages(view) == {"curl"}


# -- bad hardlinks, devices, FIFOs, sparse, truncation ----------------------------------------


@pytest.mark.parametrize(
    "members,match",
    [
        ([tc.hardlink("a", "missing")], "not an earlier regular file"),
        ([tc.hardlink("a", "b"), tc.file("b", b"1")], "not an earlier regular file"),
        ([tc.directory("d/"), tc.hardlink("a", "d")], "not an earlier regular file"),
        ([tc.hardlink("a", "../etc/shadow")], "'..' component"),
    ],
)
def test_bad_hardlinks_are_refused_by_every_reader(members: list[bytes], match: str) -> None:
    raw = tc.archive(*members)
    with pytest.raises(InputError, match=match) as exc:
        list(read_layer(io.BytesIO(raw), what="layer sha256:abc"))
    assert "layer sha256:abc" in str(exc.value) and "\n" not in str(exc.value)
    with pytest.raises(InputError, match=match):
        _dpkg_view(raw)
    with pytest.raises(InputError, match=match):
        list(read_tar(io.BytesIO(raw), whiteouts=False, what="package t data.tar"))


def test_hardlink_to_a_lower_layer_file_is_refused_after_resolution() -> None:
    lower = tc.archive(tc.file("a", b"1"))
    upper = tc.archive(tc.file("b", b"2"), tc.hardlink("c", "b"))
    assert (
        apply_layers([read_layer(io.BytesIO(lower)), read_layer(io.BytesIO(upper))])["c"].data
        == b"2"
    )
    link_dir = tc.archive(tc.directory("x/"), tc.file("x/f", b"1"), tc.symlink("y", "x"))
    through = tc.archive(tc.file("z", b"0"), tc.hardlink("h", "z"), tc.hardlink("g", "y/f"))
    with pytest.raises(InputError, match="not an earlier regular file"):
        apply_layers([read_layer(io.BytesIO(link_dir)), read_layer(io.BytesIO(through))])


def test_devices_and_fifos_are_recorded_never_materialised(tmp_path: Path) -> None:
    raw = tc.archive(
        tc.directory("dev/"),
        tc.member("dev/null", b"", b"3", devmajor=1, devminor=3),
        tc.member("dev/sda", b"", b"4", devmajor=8, devminor=0),
        tc.member("run/pipe", b"", b"6"),
        tc.file("etc/ok", b"1"),
    )
    entries = {e.path: e for e in read_layer(io.BytesIO(raw))}
    assert entries["dev/null"].type is EntryType.CHAR and entries["dev/null"].devminor == 3
    assert entries["dev/sda"].type is EntryType.BLOCK
    assert entries["run/pipe"].type is EntryType.FIFO
    view = _dpkg_view(raw)  # the sbom reader accepts the same layer (nothing to catalog)
    assert view.paths() == []
    from assay.build.run import unpack_image

    tc.write_layout(tmp_path / "img", [raw])
    with open_local_image(parse_image_ref(f"oci:{tmp_path / 'img'}:latest")) as src:
        (image,) = src.manifests()
        root = tmp_path / "root"
        root.mkdir()
        unpack_image(src, image, root)
    assert sorted(tc.tree_of(root)) == ["dev", "etc", "etc/ok", "run"]
    # .debs refuse them
    for member, what in (
        (tc.member("./dev/sda", b"", b"4"), "device node"),
        (tc.member("./p", b"", b"6"), "FIFO"),
    ):
        with pytest.raises(InputError, match=what):
            list(read_tar(io.BytesIO(tc.archive(member)), whiteouts=False, devices="refuse"))


def test_sparse_members_are_refused_everywhere() -> None:
    gnu_sparse = tc.member(
        "var/lib/dpkg/status", b"x" * 10, b"S", magic=b"ustar ", version=b" \x00"
    )
    pax_sparse = tc.archive(
        tc.pax(tc.pax_record("GNU.sparse.major", "1") + tc.pax_record("GNU.sparse.minor", "0")),
        tc.file("var/lib/dpkg/status", b"x"),
    )
    for raw in (tc.archive(gnu_sparse), pax_sparse):
        with pytest.raises(InputError, match="sparse"):
            list(read_layer(io.BytesIO(raw)))
        with pytest.raises(InputError, match="sparse"):
            _dpkg_view(raw)
        with pytest.raises(InputError, match="sparse"):
            list(read_tar(io.BytesIO(raw), whiteouts=False))


def test_truncated_gzip_is_refused_by_every_reader(tmp_path: Path) -> None:
    raw = tc.archive(
        *BASE, tc.directory("var/lib/dpkg/"), tc.file("var/lib/dpkg/status", os.urandom(50_000))
    )
    gz = gzip.compress(raw)
    for cut in (len(gz) // 2, len(gz) - 4):
        with pytest.raises(InputError, match="truncated gzip"):
            list(read_layer(io.BytesIO(gz[:cut]), what="layer L"))
        with pytest.raises(InputError, match="layer L: truncated gzip"):
            view_of_layers([_layer(gz[:cut], what="layer L")], lambda p: True)
    import zstandard

    zst = zstandard.ZstdCompressor(write_checksum=True).compress(raw)
    for cut in (len(zst) // 2, len(zst) - 2):
        with pytest.raises(InputError, match="layer L: truncated zstd"):
            view_of_layers([_layer(zst[:cut], what="layer L")], lambda p: True)
    assert _dpkg_view(zst).read("var/lib/dpkg/status") is not None
    # cut at a tar header boundary, gzip intact: a shorter but valid tar -> the diff_id catches it
    with pytest.raises(VerificationError):
        _dpkg_view_with_diff(gzip.compress(raw[:1024]), sha256_digest(raw))


def _dpkg_view_with_diff(blob: bytes, diff_id: object) -> MemoryFileView:
    return view_of_layers([_layer(blob, diff_id=diff_id)], DpkgCataloger().wants)


def test_diff_id_mismatch_fails_closed(tmp_path: Path) -> None:
    from assay.sbom.source import load_image

    raw = tc.archive(
        *BASE, tc.directory("var/lib/dpkg/"), tc.file("var/lib/dpkg/status", tc.status_stanza("a"))
    )
    other = tc.archive(tc.file("x", b"y"))
    tc.write_layout(tmp_path / "img", [raw], diff_ids=[str(sha256_digest(other))])
    with pytest.raises(VerificationError, match="diff_id"):
        load_image(f"oci:{tmp_path / 'img'}:latest", DpkgCataloger().wants)
    from assay.build.run import unpack_image

    with open_local_image(parse_image_ref(f"oci:{tmp_path / 'img'}:latest")) as src:
        (image,) = src.manifests()
        (tmp_path / "root").mkdir()
        with pytest.raises(VerificationError, match="diff_id"):
            unpack_image(src, image, tmp_path / "root")


# -- header parsing details -------------------------------------------------------------------


def test_pax_and_gnu_precedence_as_go_reads_them() -> None:
    raw = tc.archive(
        tc.pax(tc.pax_record("path", "first")),
        tc.pax(tc.pax_record("path", "second") + tc.pax_record("mtime", "1.5")),  # replaces
        tc.file("ignored", b"1"),
        tc.pax(tc.pax_record("path", "from-pax")),
        tc.gnu_long(b"from-gnu"),  # GNU long name wins over PAX path
        tc.file("ignored2", b"2"),
        tc.pax(tc.pax_record("path", "")),  # an empty value keeps the header's name
        tc.file("kept", b"3"),
        tc.pax(tc.pax_record("path", "dropped")),
        tc.pax(tc.pax_record("comment", "x"), typeflag=b"g"),  # a global header ends them
        tc.file("plain", b"4"),
        tc.member("legacy-dir/", b"", b"\0"),
    )
    got = [(e.path, e.type.value) for e in read_layer(io.BytesIO(raw))]
    assert got == [
        ("second", "file"),
        ("from-gnu", "file"),
        ("kept", "file"),
        ("plain", "file"),
        ("legacy-dir", "dir"),
    ]


@pytest.mark.parametrize(
    "records,match",
    [
        (b"5 a=\n", None),
        (b"11 size=-5\n", "negative size"),
        (b"12 size=1e9\n", "not a number"),
        (b"13 mtime=inf\n", "not a time"),
        (b"99 path=x\n", "malformed PAX record length"),
        (b"8 path\n", "malformed PAX record"),
        (b"10 path=\x00\n", "NUL"),
        (b"x path=y\n", "malformed PAX record"),
    ],
)
def test_malformed_pax_records(records: bytes, match: str | None) -> None:
    raw = tc.archive(tc.pax(records), tc.file("f", b"1"))
    if match is None:
        assert [e.path for e in read_layer(io.BytesIO(raw))] == ["f"]
        return
    with pytest.raises(InputError, match=match):
        list(read_layer(io.BytesIO(raw)))


def test_zero_block_followed_by_data_is_refused() -> None:
    raw = tc.file("a", b"1") + bytes(512) + tc.file("hidden", b"2") + bytes(1024)
    with pytest.raises(InputError, match="zero block followed by data"):
        list(read_layer(io.BytesIO(raw)))


# -- bombs ------------------------------------------------------------------------------------


def _pax_bomb(count: int, size: int = 1 << 20) -> list[bytes]:
    record = tc.pax_record("comment", "a" * (size - 20))
    one = tc.pax(record) + tc.file("f", b"")
    return [one] * count + [bytes(1024)]


def test_pax_header_bomb_is_refused_quickly() -> None:
    """3,000 PAX headers of 1 MiB (3 GiB of tar): refused after the 64 MiB header budget."""
    pieces = _pax_bomb(3000)
    consumed = tc.Stream(pieces)
    layer = LayerInput(open=lambda: contextlib.nullcontext(io.BufferedReader(consumed)))
    start = time.monotonic()
    with pytest.raises(InputError, match="header bomb"):
        view_of_layers([layer], lambda p: True)
    assert consumed.consumed < 80 << 20
    assert time.monotonic() - start < 30


def test_many_extended_headers_before_one_member_are_refused() -> None:
    raw = tc.archive(*([tc.pax(tc.pax_record("path", "x"))] * 20), tc.file("f", b""))
    with pytest.raises(InputError, match="extended headers before one member"):
        list(read_layer(io.BytesIO(raw)))


def test_status_file_bomb_is_refused_before_reading_past_the_budget() -> None:
    """40 status files of 60 MiB each: refused at the 256 MiB budget, checked on the header."""
    big = 60 << 20
    members = [
        tc.directory("var/"),
        tc.directory("var/lib/"),
        tc.directory("var/lib/dpkg/"),
        tc.directory("var/lib/dpkg/status.d/"),
    ]

    pieces = [*members]
    for i in range(40):
        pieces += [tc.header(f"var/lib/dpkg/status.d/p{i}", size=big), big]
    bomb = tc.Stream(pieces)
    layer = LayerInput(open=lambda: contextlib.nullcontext(io.BufferedReader(bomb)))
    with pytest.raises(InputError, match="exceed 268435456 bytes in total"):
        view_of_layers([layer], DpkgCataloger().wants)
    assert bomb.consumed < 300 << 20  # stopped at the fifth header, not after 2.4 GB


def test_unpack_size_bound_is_checked_before_writing(tmp_path: Path) -> None:
    from assay.build.run import unpack_image

    raw = tc.archive(tc.file("a", bytes(3 << 20)), tc.file("b", bytes(3 << 20)))
    tc.write_layout(tmp_path / "img", [raw])
    root = tmp_path / "root"
    root.mkdir()
    with open_local_image(parse_image_ref(f"oci:{tmp_path / 'img'}:latest")) as src:
        (image,) = src.manifests()
        with pytest.raises(InputError, match="over the 4194304-byte limit of assay run"):
            unpack_image(src, image, root, max_unpacked=4 << 20)
        assert list(root.iterdir()) == []
        unpack_image(src, image, root, max_unpacked=8 << 20)
    assert (root / "a").stat().st_size == 3 << 20


# -- .deb through the same reader -------------------------------------------------------------


def test_deb_members_go_through_the_one_reader(tmp_path: Path) -> None:
    from assay.debian.debfile import iter_data, open_deb

    data = tc.archive(
        tc.directory("./"),
        tc.member(
            "./usr/bin/x",
            b"bin",
            magic=b"ustar ",
            version=b" \x00",
            prefix_field=b"00000000000\x0000000000000\x00junk",
        ),
        tc.gnu_long(b"./usr/share/doc/t/" + b"n" * 150),
        tc.file("ignored", b"doc"),
    )
    path = tmp_path / "t.deb"
    path.write_bytes(tc.deb(data))
    deb = open_deb(path)
    assert deb.package == "t"
    got = {e.path: e.data for e in iter_data(path, package="t", deb=deb)}
    assert got == {"usr/bin/x": b"bin", "usr/share/doc/t/" + "n" * 150: b"doc"}
    # writing through the package's own symlink is left to the rootfs assembly (which follows
    # in-root relative links as dpkg does and refuses escaping ones, naming the link)
    path.write_bytes(tc.deb(tc.archive(tc.symlink("./etc", "/host"), tc.file("./etc/x", b"1"))))
    assert [e.path for e in iter_data(path, package="t")] == ["etc", "etc/x"]


def test_rebuild_diff_hashes_content_while_streaming(tmp_path: Path) -> None:
    from assay.build.layerdiff import diff_images, flatten

    a = tc.write_layout(
        tmp_path / "a", [tc.archive(tc.file("x", b"1" * 5000), tc.hardlink("y", "x"))]
    )
    b = tc.write_layout(
        tmp_path / "b", [tc.archive(tc.file("x", b"2" * 5000), tc.hardlink("y", "x"))]
    )
    with (
        open_local_image(parse_image_ref(f"oci:{a}:latest")) as sa,
        open_local_image(parse_image_ref(f"oci:{b}:latest")) as sb,
    ):
        (ia,), (ib,) = sa.manifests(), sb.manifests()
        view, shas = flatten(sa, ia)
        assert view["x"].data == b"" and view["x"].size == 5000  # content never held
        assert shas["x"] == shas["y"] == str(sha256_digest(b"1" * 5000)).split(":")[1]
        diff = diff_images(sa, ia, sb, ib)
    assert [(f.path, f.field) for f in diff.files] == [("x", "sha256")]
