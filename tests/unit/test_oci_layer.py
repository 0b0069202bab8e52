"""Deterministic layer writing, streaming reading, and merging with whiteouts."""

from __future__ import annotations

import gzip
import io
import json
import os
import random
import subprocess
import sys
import tarfile
from dataclasses import replace
from pathlib import Path

import pytest
import zstandard

from assay.errors import InputError, UsageError, VerificationError
from assay.oci import mediatypes as mt
from assay.oci.digest import sha256_digest
from assay.oci.entry import Entry, EntryType
from assay.oci.layer import MAX_IMAGE_ENTRIES, apply_layers, read_layer, read_tar, write_layer

EPOCH = 1_700_000_000
F, D, S, H = EntryType.FILE, EntryType.DIR, EntryType.SYMLINK, EntryType.HARDLINK


def sample_entries() -> list[Entry]:
    return [
        Entry("usr", D, 0o755),
        Entry("usr/bin", D, 0o755),
        Entry("usr/bin/tool", F, 0o755, data=b"#!tool\n", mtime=EPOCH + 10_000),
        Entry("usr/bin/tool-alias", H, 0o755, link="usr/bin/tool"),
        Entry("usr/lib", D, 0o755),
        Entry("usr/lib/libx.so.1", F, 0o644, data=b"\x7fELF" + bytes(3000), mtime=100),
        Entry("usr/lib/libx.so", S, 0o777, link="libx.so.1"),
        Entry("etc", D, 0o755),
        Entry("etc/passwd", F, 0o644, data=b"root:x:0:0::/root:/sbin/nologin\n"),
        Entry("home", D, 0o755),
        Entry("home/nonroot", D, 0o700, uid=65532, gid=65532),
        Entry("tmp", D, 0o1777),
        Entry("usr/bin/su-like", F, 0o4755, data=b"x"),
    ]


def write(tmp_path: Path, entries: list[Entry], **kw: object) -> tuple[bytes, object]:
    blob = write_layer(entries, tmp_path / "out", source_date_epoch=kw.pop("epoch", EPOCH), **kw)  # type: ignore[arg-type]
    return blob.path.read_bytes(), blob


def test_blob_metadata_is_consistent(tmp_path: Path) -> None:
    data, blob = write(tmp_path, sample_entries())
    assert blob.digest == sha256_digest(data)  # type: ignore[attr-defined]
    assert blob.size == len(data)  # type: ignore[attr-defined]
    raw = gzip.decompress(data)
    assert blob.diff_id == sha256_digest(raw)  # type: ignore[attr-defined]
    assert blob.uncompressed_size == len(raw)  # type: ignore[attr-defined]
    assert blob.media_type == mt.OCI_LAYER_GZIP  # type: ignore[attr-defined]
    assert blob.path.name.startswith(blob.digest.split(":")[1])  # type: ignore[attr-defined]
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".tmp")]


def test_same_entries_in_any_order_give_the_same_digest(tmp_path: Path) -> None:
    entries = sample_entries()
    first, _ = write(tmp_path, entries)
    for seed in range(5):
        shuffled = entries[:]
        random.Random(seed).shuffle(shuffled)
        again, _ = write(tmp_path, shuffled)
        assert again == first


def test_different_source_date_epoch_changes_digest(tmp_path: Path) -> None:
    a, _ = write(tmp_path, sample_entries(), epoch=EPOCH)
    b, _ = write(tmp_path, sample_entries(), epoch=EPOCH + 1)
    assert a != b


def test_digest_independent_of_umask_tz_and_cwd(tmp_path: Path) -> None:
    # Run the writer in fresh interpreters with different environments.
    script = (
        "import sys, json; sys.path.insert(0, sys.argv[1]);"
        "from test_oci_layer import sample_entries, EPOCH;"
        "from assay.oci.layer import write_layer; from pathlib import Path;"
        "b = write_layer(sample_entries(), Path(sys.argv[2]), source_date_epoch=EPOCH);"
        "print(json.dumps([b.digest, b.diff_id]))"
    )
    here = str(Path(__file__).parent)
    results = []
    for i, (tz, umask) in enumerate([("UTC", "022"), ("Pacific/Kiritimati", "077")]):
        cwd = tmp_path / f"cwd{i}"
        cwd.mkdir()
        out = subprocess.run(
            [
                "sh",
                "-c",
                f'umask {umask}; exec "$0" "$@"',
                sys.executable,
                "-c",
                script,
                here,
                str(tmp_path / f"o{i}"),
            ],
            cwd=cwd,
            env={**os.environ, "TZ": tz},
            capture_output=True,
            text=True,
            check=True,
        )
        results.append(json.loads(out.stdout))
    assert results[0] == results[1]


def test_gzip_header_has_no_name_and_zero_mtime(tmp_path: Path) -> None:
    data, _ = write(tmp_path, sample_entries())
    assert data[:3] == b"\x1f\x8b\x08"
    flags = data[3]
    assert flags & 0x08 == 0, "FNAME must not be set"
    assert flags & 0x10 == 0, "FCOMMENT must not be set"
    assert data[4:8] == b"\0\0\0\0", "MTIME must be 0"


def test_tar_headers_are_normalised(tmp_path: Path) -> None:
    data, _ = write(tmp_path, sample_entries())
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        members = tf.getmembers()
    names = [m.name for m in members]
    # sorted, parents first
    assert names == sorted(names, key=lambda n: n.split("/"))
    assert names.index("usr") < names.index("usr/bin") < names.index("usr/bin/tool")
    by = {m.name: m for m in members}
    assert by["usr/bin/tool"].mtime == EPOCH  # clamped
    assert by["usr/lib/libx.so.1"].mtime == 100  # older stays
    assert by["home/nonroot"].uid == 65532 and by["home/nonroot"].uname == ""
    assert by["etc"].uname == "root" and by["etc"].gname == "root"
    assert by["tmp"].mode == 0o1777
    assert by["usr/bin/su-like"].mode == 0o4755
    for m in members:
        assert m.pax_headers == {}, f"{m.name} should not need PAX"
    # USTAR magic, no GNU extensions
    raw = gzip.decompress(data)
    assert raw[257:265] == b"ustar\x0000"


def test_hardlinks_preserved_target_first(tmp_path: Path) -> None:
    # The link sorts before its target: the writer swaps roles so the earlier path is the file.
    entries = [
        Entry("b", F, 0o644, data=b"shared"),
        Entry("a", H, 0o644, link="b"),
        Entry("c", H, 0o644, link="a"),
    ]
    data, _ = write(tmp_path, entries)
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        ms = {m.name: m for m in tf.getmembers()}
        assert ms["a"].isfile()
        assert ms["b"].islnk() and ms["b"].linkname == "a"
        assert ms["c"].islnk() and ms["c"].linkname == "a"
        tf.extractall(tmp_path / "x", filter="tar")
    assert os.stat(tmp_path / "x/a").st_ino == os.stat(tmp_path / "x/b").st_ino
    assert (tmp_path / "x/c").read_bytes() == b"shared"


def test_hardlink_to_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not a regular file in this layer"):
        write(tmp_path, [Entry("a", H, 0o644, link="nowhere")])


def test_long_paths_use_pax_only_when_needed(tmp_path: Path) -> None:
    mid = "d" * 120  # fits USTAR prefix+name split ... if the last component is short
    deep = "/".join(["p" * 40] * 5) + "/f"  # 206 bytes, splittable
    too_long = "x" * 150 + "/" + "y" * 150  # last component > 100: needs PAX
    entries = [
        Entry(mid, D, 0o755),
        Entry(mid + "/f", F, 0o644, data=b"1"),
        Entry(deep, F, 0o644, data=b"2"),
        Entry("x" * 150, D, 0o755),
        Entry(too_long, F, 0o644, data=b"3"),
        Entry("link", S, 0o777, link="/" + "t" * 200),
        Entry("café", F, 0o644, data=b"4"),
    ]
    data, blob = write(tmp_path, entries)
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        ms = {m.name: m for m in tf.getmembers()}
    assert ms[deep].pax_headers == {}
    assert ms[mid + "/f"].pax_headers == {}
    assert ms[too_long].pax_headers == {"path": too_long}
    assert ms["link"].pax_headers == {"linkpath": "/" + "t" * 200}
    assert ms["link"].linkname == "/" + "t" * 200
    assert ms["café"].pax_headers == {"path": "café"}
    back = {e.path: e for e in read_layer(io.BytesIO(data), diff_id=blob.diff_id)}  # type: ignore[attr-defined]
    assert back[too_long].data == b"3" and back[deep].data == b"2"


def test_big_uid_uses_pax(tmp_path: Path) -> None:
    data, _ = write(tmp_path, [Entry("f", F, 0o644, uid=3_000_000, data=b"")])
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        (m,) = tf.getmembers()
    assert m.uid == 3_000_000 and m.pax_headers == {"uid": "3000000"}


@pytest.mark.parametrize("compression", ["gzip", "zstd", "none"])
def test_round_trip(tmp_path: Path, compression: str) -> None:
    entries = sample_entries()
    data, blob = write(tmp_path, entries, compression=compression)
    if compression == "zstd":
        assert data[:4] == b"\x28\xb5\x2f\xfd"
        assert blob.media_type == mt.OCI_LAYER_ZSTD  # type: ignore[attr-defined]
    back = list(read_layer(io.BytesIO(data), media_type=blob.media_type, diff_id=blob.diff_id))  # type: ignore[attr-defined]
    got = {e.path: e for e in back}
    assert set(got) == {e.path for e in entries}
    by_path = {e.path: e for e in entries}
    for e in entries:
        g = got[e.path]
        assert g.type is e.type
        if e.type is H:  # a hardlink shares its target's inode metadata
            e = replace(by_path[e.link], type=H, link=e.link, path=e.path, data=b"")
        assert g.data == e.data
        assert g.mode == (e.mode or 0o777)
        assert (g.uid, g.gid) == (e.uid, e.gid)
        assert g.mtime == min(e.mtime, EPOCH)
        if e.type in (S, H):
            assert g.link == e.link


def test_zstd_is_deterministic_and_differs_from_gzip(tmp_path: Path) -> None:
    a, ba = write(tmp_path, sample_entries(), compression="zstd")
    b, _ = write(tmp_path, list(reversed(sample_entries())), compression="zstd")
    g, bg = write(tmp_path, sample_entries())
    assert a == b
    assert ba.diff_id == bg.diff_id  # type: ignore[attr-defined]
    assert zstandard.ZstdDecompressor().decompressobj().decompress(a) == gzip.decompress(g)


def test_diff_id_mismatch_is_detected(tmp_path: Path) -> None:
    data, _ = write(tmp_path, sample_entries())
    with pytest.raises(VerificationError, match="uncompressed"):
        list(read_layer(io.BytesIO(data), diff_id=sha256_digest(b"other")))


def test_devices_are_not_written(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="device"):
        write(tmp_path, [Entry("dev/null", EntryType.CHAR, 0o666, devmajor=1, devminor=3)])


def test_duplicate_paths(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"duplicate path 'a'.*pkg1.*pkg2"):
        write(tmp_path, [Entry("a", F, 0o644, owner="pkg1"), Entry("a", F, 0o644, owner="pkg2")])
    # identical directories from two packages collapse
    write(tmp_path, [Entry("usr", D, 0o755, owner="p1"), Entry("usr", D, 0o755, owner="p2")])


# -- hostile input ----------------------------------------------------------------------------


def make_tar(members: list[tuple[tarfile.TarInfo, bytes]], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for info, data in members:
            info.size = len(data) if info.isreg() else 0
            tf.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return buf.getvalue()


def ti(
    name: str, kind: bytes = tarfile.REGTYPE, link: str = "", mode: int = 0o644
) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.mode = mode
    return info


def entries_of(data: bytes, **kw: object) -> list[Entry]:
    return list(read_layer(io.BytesIO(data), **kw))  # type: ignore[arg-type]


def test_hostile_dotdot_refused() -> None:
    data = make_tar([(ti("../x"), b"evil")])
    with pytest.raises(InputError, match=r"'\.\./x' has a '\.\.' component"):
        entries_of(data)
    data = make_tar([(ti("usr/../../etc/x"), b"evil")])
    with pytest.raises(InputError, match=r"'..' component"):
        entries_of(data)


def test_nul_in_pax_path_refused() -> None:
    info = ti("x")
    info.pax_headers = {"path": "etc/passwd\0.txt"}
    with pytest.raises(InputError, match="NUL byte"):
        entries_of(make_tar([(info, b"1")]))


def test_absolute_paths_normalised_by_default_refused_on_request() -> None:
    data = make_tar([(ti("/etc/passwd"), b"root"), (ti("./usr/bin/x"), b"x")])
    got = entries_of(data)
    assert [e.path for e in got] == ["etc/passwd", "usr/bin/x"]
    with pytest.raises(InputError, match="absolute path '/etc/passwd' refused"):
        entries_of(data, allow_absolute=False)


def test_hardlink_to_outside_refused() -> None:
    data = make_tar([(ti("x", tarfile.LNKTYPE, "/etc/shadow"), b"")])
    with pytest.raises(InputError, match=r"hardlink 'x' points to '/etc/shadow'.*outside"):
        entries_of(data)
    data = make_tar([(ti("x", tarfile.LNKTYPE, "../../etc/shadow"), b"")])
    with pytest.raises(InputError, match=r"'..' component"):
        entries_of(data)
    # a link to a later file is equally refused
    data = make_tar([(ti("a", tarfile.LNKTYPE, "b"), b""), (ti("b"), b"1")])
    with pytest.raises(InputError, match="hardlink 'a'"):
        entries_of(data)


def test_file_through_same_layer_symlink_lands_inside_the_root() -> None:
    """A layer member written "through" a symlink of the same layer goes where a runtime puts
    it: below the symlink's target, resolved inside the image root (never on the host)."""
    data = make_tar(
        [(ti("etc", tarfile.SYMTYPE, "/host/etc", 0o777), b""), (ti("etc/cron.d/x"), b"evil")]
    )
    view = apply_layers([entries_of(data)])
    assert view["host/etc/cron.d/x"].data == b"evil"
    assert "etc/cron.d/x" not in view and view["etc"].link == "/host/etc"
    # strict_links refuses it outright
    with pytest.raises(
        InputError, match=r"'etc/cron.d/x' would be written through the symlink 'etc'"
    ):
        list(read_tar(io.BytesIO(data), whiteouts=False, strict_links=True))
    # replacing the symlink with a directory first is fine
    data = make_tar(
        [
            (ti("etc", tarfile.SYMTYPE, "/x", 0o777), b""),
            (ti("etc", tarfile.DIRTYPE, mode=0o755), b""),
            (ti("etc/ok"), b"1"),
        ]
    )
    assert [e.type for e in entries_of(data)] == [S, D, F]
    assert apply_layers([entries_of(data)])["etc/ok"].data == b"1"


def test_device_nodes_refused_skipped_or_reported() -> None:
    dev = ti("dev/sda", tarfile.BLKTYPE, mode=0o660)
    dev.devmajor, dev.devminor = 8, 0
    data = make_tar([(dev, b""), (ti("ok"), b"1")])
    with pytest.raises(InputError, match="'dev/sda' is a block device node \\(8,0\\)"):
        entries_of(data, devices="refuse")
    assert [e.path for e in entries_of(data, devices="skip")] == ["ok"]
    rep = entries_of(data)  # the default: recorded, never materialised
    assert rep == entries_of(data, devices="report")
    assert rep[0].type is EntryType.BLOCK and (rep[0].devmajor, rep[0].devminor) == (8, 0)


def test_oversized_member_refused_before_reading() -> None:
    data = make_tar([(ti("big"), b"x" * 5000)])
    with pytest.raises(InputError, match="'big' is 5000 bytes, over the 4096-byte limit"):
        entries_of(data, max_member_size=4096)
    # A header claiming 100 GiB with no data behind it: refused from the header alone.
    header = bytearray(make_tar([(ti("huge"), b"")])[:512])
    header[124:136] = b"\x80" + (100 << 30).to_bytes(11, "big")  # GNU base-256 size
    header[148:156] = b" " * 8
    header[148:156] = b"%06o\0 " % sum(header)
    with pytest.raises(InputError, match="'huge' is 107374182400 bytes, over"):
        entries_of(bytes(header) + bytes(1024))


def test_total_size_bound() -> None:
    data = make_tar([(ti(f"f{i}"), b"x" * 2000) for i in range(10)])
    with pytest.raises(InputError, match="more than 10000 bytes uncompressed"):
        entries_of(data, max_total_size=10000)


def test_corrupt_and_truncated_input() -> None:
    data = make_tar([(ti("a"), b"x" * 2000)])
    with pytest.raises(InputError, match="bad header checksum"):
        entries_of(b"not a tar" * 100)
    with pytest.raises(InputError, match="truncated"):
        entries_of(data[:1000])
    with pytest.raises(InputError, match="truncated gzip stream"):
        entries_of(gzip.compress(data)[:-20])
    gz = bytearray(gzip.compress(data))
    gz[15] ^= 0xFF
    with pytest.raises(InputError, match="corrupt gzip data"):
        entries_of(bytes(gz))


def test_unknown_media_type_refused() -> None:
    with pytest.raises(InputError, match="not a layer type"):
        entries_of(make_tar([]), media_type="application/vnd.oci.image.layer.v1.tar+encrypted")


def test_want_data_skips_content() -> None:
    data = make_tar([(ti("keep"), b"k" * 10), (ti("skip"), b"s" * 100)])
    got = {e.path: e for e in entries_of(data, want_data=lambda p: p == "keep")}
    assert got["keep"].data == b"k" * 10
    assert got["skip"].data == b"" and got["skip"].size == 100


def test_whiteouts_reported() -> None:
    data = make_tar(
        [
            (ti("etc", tarfile.DIRTYPE, mode=0o755), b""),
            (ti("etc/.wh.old.conf"), b""),
            (ti("var/cache/.wh..wh..opq"), b""),
            (ti(".wh..wh.plnk", tarfile.DIRTYPE), b""),
        ]
    )
    got = entries_of(data)
    assert [(e.path, e.type) for e in got] == [
        ("etc", D),
        ("etc/old.conf", EntryType.WHITEOUT),
        ("var/cache", EntryType.OPAQUE),
    ]
    # read_tar for non-layer archives keeps .wh. names as files
    plain = list(read_tar(io.BytesIO(data), whiteouts=False))
    assert "etc/.wh.old.conf" in [e.path for e in plain]


def test_gnu_longname_and_base256_are_read() -> None:
    long = "g" * 300
    info = ti(long)
    info.uid = 10_000_000  # needs base-256 in GNU format
    data = make_tar([(info, b"gnu")], fmt=tarfile.GNU_FORMAT)
    (e,) = entries_of(data)
    assert e.path == long and e.uid == 10_000_000 and e.data == b"gnu"


# -- merging ----------------------------------------------------------------------------------


def test_apply_layers_whiteouts_and_opaque(tmp_path: Path) -> None:
    lower = [
        Entry("etc", D, 0o755),
        Entry("etc/a", F, 0o644, data=b"a"),
        Entry("etc/b", F, 0o644, data=b"b"),
        Entry("var", D, 0o755),
        Entry("var/cache", D, 0o755),
        Entry("var/cache/x", F, 0o644, data=b"x"),
        Entry("var/cache/sub", D, 0o755),
        Entry("var/cache/sub/y", F, 0o644, data=b"y"),
        Entry("opt", D, 0o755),
        Entry("opt/app", D, 0o755),
        Entry("opt/app/bin", F, 0o755, data=b"z"),
    ]
    upper = [
        Entry("etc/a", EntryType.WHITEOUT, 0),
        Entry("var/cache", EntryType.OPAQUE, 0),
        Entry("var/cache", D, 0o755),
        Entry("var/cache/new", F, 0o644, data=b"n"),
        Entry("opt/app", F, 0o644, data=b"file replaces dir"),
    ]
    # through real layer blobs, so the whiteout encoding is exercised too
    b1 = write_layer(lower, tmp_path, source_date_epoch=EPOCH)
    b2 = write_layer(upper, tmp_path, source_date_epoch=EPOCH)
    with tarfile.open(b2.path) as tf:
        names = tf.getnames()
    assert "etc/.wh.a" in names and "var/cache/.wh..wh..opq" in names
    with open(b1.path, "rb") as f1, open(b2.path, "rb") as f2:
        view = apply_layers([read_layer(f1), read_layer(f2)])
    assert sorted(view) == ["etc", "etc/b", "opt", "opt/app", "var", "var/cache", "var/cache/new"]
    assert view["opt/app"].type is F


def test_apply_layers_hardlink_carries_content() -> None:
    view = apply_layers(
        [
            [Entry("a", F, 0o644, data=b"shared"), Entry("b", H, 0o644, link="a")],
            [Entry("a", EntryType.WHITEOUT, 0)],
        ]
    )
    assert list(view) == ["b"]
    assert view["b"].type is H and view["b"].link == "a" and view["b"].data == b"shared"


def test_whiteout_does_not_hide_same_layer_entry() -> None:
    view = apply_layers(
        [
            [Entry("a", F, 0o644, data=b"old")],
            [Entry("a", EntryType.WHITEOUT, 0), Entry("a", F, 0o644, data=b"new")],
        ]
    )
    assert view["a"].data == b"new"


def test_apply_layers_resolves_lower_symlink_inside_root() -> None:
    view = apply_layers(
        [
            [
                Entry("usr", D, 0o755),
                Entry("usr/bin", D, 0o755),
                Entry("bin", S, 0o777, link="usr/bin"),
                Entry("evil", S, 0o777, link="../../../../etc"),
            ],
            [Entry("bin/tool", F, 0o755, data=b"t"), Entry("evil/x", F, 0o644, data=b"e")],
        ]
    )
    assert "usr/bin/tool" in view and "bin/tool" not in view
    assert "etc/x" in view  # clamped at the image root, never above it


# -- parallel gzip ----------------------------------------------------------------------------


def test_parallel_gzip_is_independent_of_workers_and_write_sizes() -> None:
    from assay.oci._pgzip import BLOCK, ParallelGzip

    rng = random.Random(7)
    words = [
        bytes(rng.choice(b"abcdefghij") for _ in range(rng.randint(1, 12))) for _ in range(500)
    ]
    data = b" ".join(rng.choice(words) for _ in range(700_000))  # ~4.5 MiB, several blocks
    assert len(data) > 3 * BLOCK
    outputs = set()
    for workers, step in [(1, len(data)), (2, 4096), (4, 1_000_003), (3, 777)]:
        pg = ParallelGzip(6, workers)
        parts = [pg.compress(data[i : i + step]) for i in range(0, len(data), step)]
        outputs.add(b"".join(parts) + pg.flush())
    assert len(outputs) == 1
    (out,) = outputs
    assert gzip.decompress(out) == data
    # one gzip member whose size is close to plain zlib at the same level
    single = gzip.compress(data, 6, mtime=0)
    assert len(out) < len(single) * 1.02
    # the system gzip tool agrees the stream is intact
    proc = subprocess.run(["gzip", "-t"], input=out, capture_output=True)
    assert proc.returncode == 0, proc.stderr


def test_parallel_gzip_empty_input() -> None:
    from assay.oci._pgzip import ParallelGzip

    pg = ParallelGzip(6, 2)
    assert gzip.decompress(pg.compress(b"") + pg.flush()) == b""


def test_layer_digest_independent_of_workers(tmp_path: Path) -> None:
    big = [Entry(f"f{i}", F, 0o644, data=random.Random(i).randbytes(300_000)) for i in range(8)]
    a = write_layer(big, tmp_path / "a", source_date_epoch=EPOCH, workers=1)
    b = write_layer(big, tmp_path / "b", source_date_epoch=EPOCH, workers=4)
    assert a.digest == b.digest and a.diff_id == b.diff_id


def test_tar_bytes_are_stable_across_versions(tmp_path: Path) -> None:
    """The uncompressed tar of ``sample_entries()`` is pinned (tests/assets/oci).

    A change here changes every image digest assay produces; if it is intended, regenerate the
    asset and say so in the commit message.
    """
    asset = Path(__file__).parent.parent / "assets" / "oci" / "sample_layer.diff_id"
    blob = write_layer(sample_entries(), tmp_path, source_date_epoch=EPOCH, compression="none")
    assert blob.diff_id == asset.read_text().strip()


def _files(n: int, prefix: str = "f") -> list[Entry]:
    return [Entry(f"{prefix}{i}", EntryType.FILE, 0o644, data=b"") for i in range(n)]


def test_merged_view_is_capped_in_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each path of the merged view costs memory whether or not anyone wants it: the view (and
    the layer being merged) together hold at most ASSAY_MAX_IMAGE_ENTRIES paths."""
    assert MAX_IMAGE_ENTRIES == 300_000
    monkeypatch.setenv("ASSAY_MAX_IMAGE_ENTRIES", "10")
    assert len(apply_layers([_files(5), _files(5, "g")])) == 10
    with pytest.raises(InputError, match=r"layer #2: the image has more than 10 paths"):
        apply_layers([_files(5), _files(6, "g")])
    with pytest.raises(InputError, match="more than 10 paths"):
        apply_layers([_files(11)])
    for bad in ("0", "-1", "ten", "1e6"):
        monkeypatch.setenv("ASSAY_MAX_IMAGE_ENTRIES", bad)
        with pytest.raises(UsageError, match="ASSAY_MAX_IMAGE_ENTRIES"):
            apply_layers([_files(1)])
    monkeypatch.delenv("ASSAY_MAX_IMAGE_ENTRIES")
    assert len(apply_layers([_files(1000)])) == 1000
