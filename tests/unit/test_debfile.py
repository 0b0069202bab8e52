"""The .deb reader: control part, data entries, every compression, hostile archives."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_debfile_fixtures import (
    M,
    ar_archive,
    compress,
    control_text,
    d,
    deb_with_absolute_path,
    deb_with_device_node,
    deb_with_dotdot_path,
    deb_with_fifo,
    deb_with_hardlink_outside,
    deb_with_hardlink_to_unknown,
    deb_with_setuid_binary,
    f,
    hard,
    make_tar,
    sym,
    write_deb,
)

from assay.debian import debfile
from assay.debian.debfile import iter_data, open_deb, parse_control
from assay.errors import InputError
from assay.oci.entry import EntryType

COMPS = ["gz", "xz", "zst", ""]


@pytest.mark.parametrize("ccomp", COMPS)
@pytest.mark.parametrize("dcomp", [*COMPS, "bz2"])
def test_round_trip_every_compression(tmp_path: Path, ccomp: str, dcomp: str) -> None:
    body = os.urandom(3000)
    deb = write_deb(
        tmp_path / "p.deb",
        "hello",
        [
            f("./usr/bin/hello", body, 0o755),
            sym("./usr/bin/hi", "hello"),
            hard("./usr/bin/hello2", "./usr/bin/hello"),
            f("./etc/hello.conf", b"k=v\n"),
        ],
        control_comp=ccomp,
        data_comp=dcomp,
        control_files={"postinst": b"#!/bin/sh\nexit 0\n", "conffiles": b"/etc/hello.conf\n"},
        Depends="libc6 (>= 2.36)",
    )
    info = open_deb(deb)
    assert info.package == "hello" and info.version == "1.0-1" and info.architecture == "amd64"
    assert info.control["Depends"] == "libc6 (>= 2.36)"
    assert list(info.control)[:3] == ["Package", "Version", "Architecture"]
    assert info.control["Description"].startswith("test package hello\n multi-line")
    assert info.control_raw.startswith(b"Package: hello\n")
    assert info.conffiles == ("/etc/hello.conf",)
    assert info.scripts == ("postinst",)
    assert info.data_member == "data.tar" + (f".{dcomp}" if dcomp else "")
    assert f"{hashlib.md5(body).hexdigest()}  usr/bin/hello".encode() in info.md5sums

    entries = {e.path: e for e in iter_data(deb, package="hello")}
    assert "" not in entries and "usr" in entries and entries["usr"].type is EntryType.DIR
    hello = entries["usr/bin/hello"]
    assert hello.type is EntryType.FILE and hello.data == body and hello.mode == 0o755
    assert hello.owner == "hello" and hello.mtime > 0
    assert entries["usr/bin/hi"].type is EntryType.SYMLINK and entries["usr/bin/hi"].link == "hello"
    h2 = entries["usr/bin/hello2"]
    assert h2.type is EntryType.HARDLINK and h2.link == "usr/bin/hello"


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="dpkg-deb not installed")
@pytest.mark.parametrize("comp", ["gzip", "xz", "zstd", "none"])
def test_reads_what_dpkg_deb_builds(tmp_path: Path, comp: str) -> None:
    root = tmp_path / "root"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "usr/lib/x86_64-linux-gnu").mkdir(parents=True)
    (root / "usr/lib/x86_64-linux-gnu/libdemo.so.1.2").write_bytes(b"lib" * 1000)
    (root / "usr/lib/x86_64-linux-gnu/libdemo.so.1").symlink_to("libdemo.so.1.2")
    (root / "DEBIAN/control").write_bytes(control_text("libdemo1", "2:1.2-3~bpo1"))
    out = tmp_path / "libdemo1.deb"
    subprocess.run(
        ["dpkg-deb", "--build", "--root-owner-group", f"-Z{comp}", str(root), str(out)],
        check=True,
        capture_output=True,
    )
    info = open_deb(out)
    assert info.version == "2:1.2-3~bpo1"
    assert info.md5sums == b""  # dpkg-deb does not add md5sums by itself
    listing = subprocess.run(["dpkg-deb", "-c", str(out)], capture_output=True, check=True)
    theirs = sorted(
        line.split()[5].removeprefix("./").rstrip("/")
        for line in listing.stdout.decode().splitlines()
    )
    ours = sorted(["", *(e.path for e in iter_data(out, package="libdemo1"))])
    assert ours == theirs
    lib = next(e for e in iter_data(out, package="libdemo1") if e.path.endswith("so.1.2"))
    assert lib.data == b"lib" * 1000


def test_control_parse_keeps_order_and_continuations() -> None:
    fields = parse_control(
        b"Package: a\nVersion: 1\nDescription: short\n long line\n .\n more\nZ-Field: z\n",
        "t",
    )
    assert list(fields) == ["Package", "Version", "Description", "Z-Field"]
    assert fields["Description"] == "short\n long line\n .\n more"


@pytest.mark.parametrize(
    "raw,msg",
    [
        (b"Version: 1\n", "no Package"),
        (b" continuation\nPackage: a\n", "continues nothing"),
        (b"Package: a\nbroken line\n", "not 'Field: value'"),
    ],
)
def test_control_parse_rejects_malformed(raw: bytes, msg: str) -> None:
    with pytest.raises(InputError, match=msg):
        parse_control(raw, "t")


# ------------------------------------------------------------------- hostile archives


def _data_error(deb: Path, package: str) -> str:
    with pytest.raises(InputError) as exc:
        list(iter_data(deb, package=package))
    return str(exc.value)


def test_deb_with_dotdot_path_is_refused(tmp_path: Path) -> None:
    msg = _data_error(deb_with_dotdot_path(tmp_path), "evil-dotdot")
    assert "evil-dotdot" in msg and "./usr/share/../../../evil" in msg and "'..'" in msg


def test_deb_with_absolute_path_is_refused(tmp_path: Path) -> None:
    msg = _data_error(deb_with_absolute_path(tmp_path), "evil-abs")
    assert "evil-abs" in msg and "/etc/cron.d/evil" in msg and "absolute" in msg


def test_deb_with_hardlink_outside_is_refused(tmp_path: Path) -> None:
    msg = _data_error(deb_with_hardlink_outside(tmp_path), "evil-hardlink")
    assert "evil-hardlink" in msg and "usr/lib/shadow" in msg and "../../etc/shadow" in msg


def test_deb_with_hardlink_to_unknown_target_is_refused(tmp_path: Path) -> None:
    msg = _data_error(deb_with_hardlink_to_unknown(tmp_path), "evil-hardlink2")
    assert "usr/lib/shadow" in msg and "not an earlier regular file" in msg


def test_hardlink_to_a_directory_is_refused(tmp_path: Path) -> None:
    deb = write_deb(tmp_path / "h.deb", "hl", [d("./etc/"), hard("./usr/x", "./etc/")])
    assert "not an earlier regular file" in _data_error(deb, "hl")


def test_deb_with_device_node_is_refused(tmp_path: Path) -> None:
    msg = _data_error(deb_with_device_node(tmp_path), "evil-dev")
    assert "evil-dev" in msg and "dev/mem" in msg and "device node" in msg


def test_deb_with_fifo_is_refused(tmp_path: Path) -> None:
    msg = _data_error(deb_with_fifo(tmp_path), "evil-fifo")
    assert "evil-fifo" in msg and "'run/pipe' is a FIFO" in msg


def test_setuid_bits_are_reported_in_entries_not_dropped_here(tmp_path: Path) -> None:
    entries = {e.path: e for e in iter_data(deb_with_setuid_binary(tmp_path), package="suid")}
    assert entries["usr/bin/su"].mode == 0o4755
    assert entries["usr/bin/wall"].mode == 0o2755


def test_not_an_ar_archive(tmp_path: Path) -> None:
    p = tmp_path / "x.deb"
    p.write_bytes(b"PK\x03\x04 definitely a zip")
    with pytest.raises(InputError, match="no ar magic"):
        open_deb(p, package_hint="zip")


def test_truncated_ar_member(tmp_path: Path) -> None:
    good = write_deb(tmp_path / "g.deb", "g", [f("./a")])
    p = tmp_path / "t.deb"
    p.write_bytes(good.read_bytes()[:-40])
    with pytest.raises(InputError, match="runs past the end"):
        open_deb(p, package_hint="g")


def test_missing_members_and_wrong_format_version(tmp_path: Path) -> None:
    p = tmp_path / "m.deb"
    p.write_bytes(ar_archive([("debian-binary", b"2.0\n"), ("data.tar.gz", b"")]))
    with pytest.raises(InputError, match=r"missing control\.tar"):
        open_deb(p)
    p.write_bytes(ar_archive([("debian-binary", b"3.0\n")]))
    with pytest.raises(InputError, match="unsupported deb format"):
        open_deb(p)
    p.write_bytes(ar_archive([("control.tar.gz", b"")]))
    with pytest.raises(InputError, match="first ar member is not debian-binary"):
        open_deb(p)


def test_unknown_compression_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "c.deb"
    tar = make_tar([f("./control", control_text("c"))])
    p.write_bytes(
        ar_archive(
            [("debian-binary", b"2.0\n"), ("control.tar.lz4", tar), ("data.tar", make_tar([]))]
        )
    )
    with pytest.raises(InputError, match="unsupported compression"):
        open_deb(p)


@pytest.mark.parametrize("comp", ["gz", "xz", "zst", "bz2"])
def test_decompression_bomb_is_bounded(
    tmp_path: Path, comp: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    deb = write_deb(tmp_path / "b.deb", "bomb", [f("./zeros", bytes(2 << 20))], data_comp=comp)
    monkeypatch.setattr(debfile, "MAX_DATA_TAR", 1 << 20)
    with pytest.raises(InputError, match="expands beyond"):
        list(iter_data(deb, package="bomb"))


@pytest.mark.parametrize("comp", ["gz", "xz", "zst"])
def test_corrupt_or_truncated_stream(tmp_path: Path, comp: str) -> None:
    payload = compress(make_tar([f("./a", os.urandom(5000))]), comp)
    p = tmp_path / "c.deb"
    ctrl = compress(make_tar([f("./control", control_text("c"))]), "gz")
    p.write_bytes(
        ar_archive(
            [
                ("debian-binary", b"2.0\n"),
                ("control.tar.gz", ctrl),
                (f"data.tar.{comp}", payload[: len(payload) // 2]),
            ]
        )
    )
    with pytest.raises(InputError, match=r"truncated|cannot decompress"):
        list(iter_data(p, package="c"))


def test_member_types_in_entries(tmp_path: Path) -> None:
    deb = write_deb(tmp_path / "t.deb", "t", [M("./opt/x", "file", b"1", 0o600, uid=5, gid=7)])
    e = next(e for e in iter_data(deb, package="t") if e.path == "opt/x")
    assert (e.mode, e.uid, e.gid) == (0o600, 5, 7)


def _tarfile_view(data: bytes) -> list[tuple[str, str, int, int, int, int, str, bytes]]:
    import io
    import tarfile

    out = []
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tf:
        for info in tf:
            content = b""
            if info.isreg():
                fobj = tf.extractfile(info)
                assert fobj is not None
                content = fobj.read()
            out.append(
                (
                    info.name,
                    info.type.decode(),
                    info.mode,
                    info.uid,
                    info.gid,
                    int(info.mtime),
                    info.linkname,
                    content,
                )
            )
    return out


def _our_view(data: bytes) -> list[tuple[str, str, int, int, int, int, str, bytes]]:
    """The same members through assay's one archive reader (``assay.oci._tar``)."""
    import io

    from assay.oci import _tar

    tr = _tar.TarReader(
        io.BytesIO(data), max_member_size=1 << 30, max_total_size=1 << 32, max_members=10**6
    )
    out = []
    while (m := tr.next()) is not None:
        out.append(
            (
                m.name.rstrip("/") if m.typeflag == b"5" else m.name,  # tarfile drops the slash
                m.typeflag.decode(),
                m.mode,
                m.uid,
                m.gid,
                m.mtime,
                m.linkname,
                tr.read_data() if m.typeflag in (b"0", b"7") else b"",
            )
        )
    return out


@pytest.mark.parametrize("fmt", ["gnu", "pax", "ustar"])
def test_tar_reader_agrees_with_tarfile(fmt: str) -> None:
    import io
    import tarfile

    fmts = {"gnu": tarfile.GNU_FORMAT, "pax": tarfile.PAX_FORMAT, "ustar": tarfile.USTAR_FORMAT}
    buf = io.BytesIO()
    long_dir = "./usr/share/" + "d" * 90 + "/" + "e" * 60
    with tarfile.open(fileobj=buf, mode="w", format=fmts[fmt]) as tf:
        for name, kind, body, link in [
            ("./", tarfile.DIRTYPE, b"", ""),
            (long_dir + "/file-with-a-long-name.txt", tarfile.REGTYPE, b"x" * 1025, ""),
            ("./usr/bin/tool", tarfile.REGTYPE, b"", ""),
            ("./usr/bin/alias", tarfile.SYMTYPE, b"", "tool" if fmt == "ustar" else "t" * 150),
            ("./usr/bin/hl", tarfile.LNKTYPE, b"", "./usr/bin/tool"),
            ("./caf\u00e9", tarfile.REGTYPE, b"utf8", ""),
        ]:
            info = tarfile.TarInfo(name)
            info.type, info.linkname, info.size = kind, link, len(body)
            info.mode, info.uid, info.gid, info.mtime = 0o4755, 0, 42, 1_600_000_000
            if fmt == "gnu" and name.endswith("tool"):
                info.uid = 8**8 + 5  # base-256 encoded in GNU format
            tf.addfile(info, io.BytesIO(body))
    data = buf.getvalue()
    assert _our_view(data) == _tarfile_view(data)


def test_tar_reader_on_real_debs() -> None:
    """Real .debs from the host's apt cache (30 of them, < 1 MB) read the same as with tarfile."""
    debs = [
        p for p in sorted(Path("/var/cache/apt/archives").glob("*.deb")) if p.stat().st_size < 1e6
    ][:30]
    if not debs:
        pytest.skip("no .deb files in /var/cache/apt/archives")
    for deb in debs:
        data = debfile.read_data_member(deb, package=deb.name)
        assert _our_view(data) == _tarfile_view(data), deb.name


def test_tar_header_checksum_is_verified() -> None:
    from test_debfile_fixtures import make_tar

    data = bytearray(make_tar([f("./a", b"hello")]))
    data[0] ^= 1
    with pytest.raises(InputError, match="checksum"):
        list(debfile.iter_data(Path("t.deb"), package="t", data=bytes(data)))


def test_unpack_cache_round_trip_and_tamper(tmp_path: Path) -> None:
    deb = write_deb(tmp_path / "c.deb", "c", [f("./usr/bin/c", os.urandom(5000), 0o755)])
    cache = tmp_path / "cache"
    first = debfile.read_data_member(deb, package="c", cache_dir=cache)
    (cached,) = cache.rglob("*.tar.zst")
    assert debfile.read_data_member(deb, package="c", cache_dir=cache) == first
    blob = bytearray(cached.read_bytes())
    blob[len(b"ASSAY-DATA-TAR-1\n") + 3] ^= 0xFF  # recorded checksum no longer matches
    cached.write_bytes(bytes(blob))
    assert debfile.read_data_member(deb, package="c", cache_dir=cache) == first
    assert cached.read_bytes() != bytes(blob)  # rewritten


_SAMPLE_TAR = make_tar(
    [
        d("./"),
        d("./usr/"),
        f("./usr/a", b"a" * 700),
        sym("./usr/s", "a"),
        hard("./usr/h", "./usr/a"),
        f("./usr/" + "n" * 120, b"long"),
    ]
)

_HEADER_OFFSETS = [
    off for off in range(0, len(_SAMPLE_TAR), 512) if _SAMPLE_TAR[off + 257 : off + 262] == b"ustar"
]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, len(_SAMPLE_TAR) - 1), st.integers(0, 255)), max_size=8),
    st.booleans(),
)
def test_mutated_tar_fails_only_with_input_error(
    mutations: list[tuple[int, int]], fix_checksums: bool
) -> None:
    data = bytearray(_SAMPLE_TAR)
    for pos, value in mutations:
        data[pos] = value
    if fix_checksums:  # reach the field parsers, not just the checksum check
        for off in _HEADER_OFFSETS:
            block = data[off : off + 512]
            block[148:156] = b" " * 8
            data[off + 148 : off + 156] = b"%06o\0 " % (sum(block) & 0o777777)
    try:
        for e in iter_data(Path("x.deb"), package="fuzz", data=bytes(data)):
            assert not e.path.startswith("/") and ".." not in e.path.split("/")
    except InputError:
        pass


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=600), st.integers(0, 400))
def test_mutated_deb_fails_only_with_input_error(junk: bytes, cut: int) -> None:
    import tempfile

    good = ar_archive(
        [
            ("debian-binary", b"2.0\n"),
            ("control.tar.gz", compress(make_tar([f("./control", control_text("z"))]), "gz")),
            ("data.tar", _SAMPLE_TAR),
        ]
    )
    blob = good[:cut] + junk + good[cut + len(junk) :]
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "z.deb"
        p.write_bytes(blob)
        with contextlib.suppress(InputError):
            list(iter_data(p, package="z"))
