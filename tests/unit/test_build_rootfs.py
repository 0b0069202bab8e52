"""Rootfs assembly over hand-built .deb files: order, overwrites, symlinks, hostile input."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import pytest
from test_debfile_fixtures import (
    M,
    d,
    deb_with_absolute_path,
    deb_with_device_node,
    deb_with_dotdot_path,
    deb_with_hardlink_outside,
    deb_with_relative_symlink_escape,
    deb_with_setuid_binary,
    deb_with_symlink_escape,
    f,
    hard,
    sym,
    write_deb,
)

from assay.build.generated import Accounts, Group, User
from assay.build.rootfs import AssemblyResult, assemble, path_sort_key
from assay.debian.model import ReleaseInfo, RepoSource
from assay.errors import InputError
from assay.oci.entry import Entry, EntryType


@dataclass(frozen=True)
class Pkg:
    name: str


def _asm(debs: list[tuple[str, Path]], **kw: object) -> AssemblyResult:
    return assemble([(Pkg(n), p) for n, p in debs], arch="amd64", **kw)  # type: ignore[arg-type]


def _by_path(r: AssemblyResult) -> dict[str, Entry]:
    return {e.path: e for e in r.entries}


def _check_layer_invariants(r: AssemblyResult) -> None:
    paths = [e.path for e in r.entries]
    assert paths == sorted(paths, key=path_sort_key)
    assert len(set(paths)) == len(paths)
    seen: set[str] = set()
    types = {e.path: e.type for e in r.entries}
    for e in r.entries:
        parent = e.path.rpartition("/")[0]
        assert not parent or (parent in seen and types[parent] is EntryType.DIR), e.path
        assert not e.path.startswith("/") and ".." not in e.path.split("/")
        if e.type is EntryType.HARDLINK:
            assert e.link in seen and types[e.link] is EntryType.FILE, e
        seen.add(e.path)


# --------------------------------------------------------------------------- hostile


@pytest.mark.parametrize(
    "builder,package,path",
    [
        (deb_with_dotdot_path, "evil-dotdot", "../../../evil"),
        (deb_with_absolute_path, "evil-abs", "/etc/cron.d/evil"),
        (deb_with_symlink_escape, "evil-symlink", "usr/lib/x/passwd"),
        (deb_with_relative_symlink_escape, "evil-relsymlink", "usr/lib/x"),
        (deb_with_hardlink_outside, "evil-hardlink", "usr/lib/shadow"),
        (deb_with_device_node, "evil-dev", "dev/mem"),
    ],
)
def test_hostile_debs_are_refused_naming_package_and_path(
    tmp_path: Path, builder: object, package: str, path: str
) -> None:
    deb = builder(tmp_path)  # type: ignore[operator]
    with pytest.raises(InputError) as exc:
        _asm([(package, deb)])
    msg = str(exc.value)
    assert package in msg and path in msg, msg


def test_symlink_escape_message_names_the_link(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"through symlink /usr/lib/x -> /etc"):
        _asm([("evil-symlink", deb_with_symlink_escape(tmp_path))])


def test_symlink_escape_across_packages(tmp_path: Path) -> None:
    """Package A plants the link, package B writes through it."""
    a = write_deb(tmp_path / "a.deb", "a", [sym("./usr/lib/x", "/etc")])
    b = write_deb(tmp_path / "b.deb", "b", [f("./usr/lib/x/passwd", b"root::0:0::/:/bin/sh\n")])
    with pytest.raises(InputError, match=r"package b: path usr/lib/x .* symlink /usr/lib/x"):
        _asm([("a", a), ("b", b)])


def test_relative_in_root_symlink_is_followed(tmp_path: Path) -> None:
    a = write_deb(tmp_path / "a.deb", "a", [d("./usr/lib/real/"), sym("./usr/lib/alias", "real")])
    b = write_deb(tmp_path / "b.deb", "b", [f("./usr/lib/alias/data", b"D")])
    r = _asm([("a", a), ("b", b)])
    got = _by_path(r)
    assert got["usr/lib/real/data"].data == b"D" and "usr/lib/alias/data" not in got
    assert any("placed at /usr/lib/real/data" in w for w in r.warnings)
    _check_layer_invariants(r)


def test_file_below_a_file_is_refused(tmp_path: Path) -> None:
    a = write_deb(tmp_path / "a.deb", "a", [f("./usr/x", b"1")])
    b = write_deb(tmp_path / "b.deb", "b", [f("./usr/x/y", b"2")], with_parents=False)
    with pytest.raises(InputError, match="needs usr/x to be a directory"):
        _asm([("a", a), ("b", b)])


def test_setuid_dropped_and_listed(tmp_path: Path) -> None:
    r = _asm([("suid", deb_with_setuid_binary(tmp_path))])
    got = _by_path(r)
    assert got["usr/bin/su"].mode == 0o755 and got["usr/bin/wall"].mode == 0o755
    assert r.setuid_dropped == ["/usr/bin/su (suid)", "/usr/bin/wall (suid)"]
    assert got["var/mail"].mode == 0o2775  # setgid directory kept


@pytest.mark.parametrize("allow", [["/usr/bin/su"], ["usr/bin/su"], ["/usr/bin/s*"]])
def test_setuid_kept_when_allow_listed(tmp_path: Path, allow: list[str]) -> None:
    r = _asm([("suid", deb_with_setuid_binary(tmp_path))], setuid_allow=allow)
    assert _by_path(r)["usr/bin/su"].mode == 0o4755
    assert r.setuid_dropped == ["/usr/bin/wall (suid)"]


# ------------------------------------------------------------------------ overwrites


def test_conflicting_file_is_refused_naming_both(tmp_path: Path) -> None:
    a = write_deb(tmp_path / "a.deb", "pkg-a", [f("./usr/bin/tool", b"A")])
    b = write_deb(tmp_path / "b.deb", "pkg-b", [f("./usr/bin/tool", b"B")])
    with pytest.raises(InputError) as exc:
        _asm([("pkg-a", a), ("pkg-b", b)])
    assert "pkg-b" in str(exc.value) and "pkg-a" in str(exc.value)
    assert "/usr/bin/tool" in str(exc.value)


def test_identical_file_is_shared_and_reported(tmp_path: Path) -> None:
    a = write_deb(tmp_path / "a.deb", "pkg-a", [f("./usr/share/x", b"same")])
    b = write_deb(tmp_path / "b.deb", "pkg-b", [f("./usr/share/x", b"same")])
    r = _asm([("pkg-a", a), ("pkg-b", b)])
    assert r.owners["pkg-a"] == ["usr/share/x"] and r.owners["pkg-b"] == ["usr/share/x"]
    assert any("identically" in w for w in r.warnings)


def test_replaces_allows_overwrite(tmp_path: Path) -> None:
    a = write_deb(tmp_path / "a.deb", "old", [f("./usr/bin/tool", b"A"), f("./usr/bin/o", b"o")])
    b = write_deb(
        tmp_path / "b.deb", "new", [f("./usr/bin/tool", b"B")], Replaces="old (<< 2), other"
    )
    r = _asm([("old", a), ("new", b)])
    assert _by_path(r)["usr/bin/tool"].data == b"B"
    assert r.owners["new"] == ["usr/bin/tool"] and r.owners["old"] == ["usr/bin/o"]
    md5 = _by_path(r)["var/lib/dpkg/status.d/old.md5sums"].data
    assert b"usr/bin/tool" not in md5 and b"usr/bin/o" in md5


def test_directory_over_symlink_to_directory_keeps_symlink(tmp_path: Path) -> None:
    a = write_deb(tmp_path / "a.deb", "a", [d("./opt/real/"), sym("./opt/link", "real")])
    b = write_deb(tmp_path / "b.deb", "b", [d("./opt/link/"), f("./opt/link/f", b"1")])
    got = _by_path(_asm([("a", a), ("b", b)]))
    assert got["opt/link"].type is EntryType.SYMLINK and got["opt/real/f"].data == b"1"


# ----------------------------------------------------------------- contents & order


def test_docs_excluded_but_copyright_kept(tmp_path: Path) -> None:
    a = write_deb(
        tmp_path / "a.deb",
        "a",
        [
            f("./usr/bin/a", b"bin"),
            f("./usr/share/doc/a/copyright", b"GPL"),
            f("./usr/share/doc/a/changelog.Debian.gz", b"log"),
            f("./usr/share/man/man1/a.1.gz", b"man"),
            f("./usr/share/locale/de/LC_MESSAGES/a.mo", b"mo"),
        ],
    )
    r = _asm([("a", a)])
    got = _by_path(r)
    assert got["usr/share/doc/a/copyright"].data == b"GPL"
    assert "usr/share/doc/a/changelog.Debian.gz" not in got
    assert not any(p.startswith(("usr/share/man", "usr/share/locale")) for p in got)
    assert r.excluded == {"a": 3}
    md5 = got["var/lib/dpkg/status.d/a.md5sums"].data.decode()
    assert "usr/share/doc/a/copyright" in md5 and "usr/bin/a" in md5
    assert "changelog" not in md5 and "man1" not in md5
    r2 = _asm([("a", a)], exclude=())
    assert "usr/share/man/man1/a.1.gz" in _by_path(r2) and r2.excluded == {}


def test_status_d_stanza_and_md5sums(tmp_path: Path) -> None:
    a = write_deb(
        tmp_path / "a.deb", "liba1", [f("./usr/lib/liba.so.1", b"\0lib")], Source="a (1.0-0)"
    )
    got = _by_path(_asm([("liba1", a)]))
    stanza = got["var/lib/dpkg/status.d/liba1"].data.decode()
    lines = stanza.splitlines()
    assert lines[0] == "Package: liba1" and lines[1] == "Status: install ok installed"
    assert "Source: a (1.0-0)" in lines and stanza.endswith(" end\n")
    md5 = got["var/lib/dpkg/status.d/liba1.md5sums"].data
    digest = hashlib.md5(b"\0lib").hexdigest()
    assert md5 == f"{digest}  usr/lib/liba.so.1\n".encode()
    assert got["var/lib/dpkg/status.d/liba1"].owner == ""


def test_md5sums_computed_when_package_has_none(tmp_path: Path) -> None:
    a = write_deb(
        tmp_path / "a.deb",
        "a",
        [f("./usr/bin/a", b"A"), f("./etc/a.conf", b"c")],
        md5sums=b"",
        control_files={"conffiles": b"/etc/a.conf\n"},
    )
    md5 = _by_path(_asm([("a", a)]))["var/lib/dpkg/status.d/a.md5sums"].data
    assert md5 == f"{hashlib.md5(b'A').hexdigest()}  usr/bin/a\n".encode()


def test_generated_files(tmp_path: Path) -> None:
    a = write_deb(tmp_path / "a.deb", "a", [f("./usr/bin/a", b"A")])
    release = ReleaseInfo(
        source=RepoSource("http://127.0.0.1/debian", "bookworm"),
        url="http://127.0.0.1/debian/dists/bookworm/InRelease",
        sha256="0" * 64,
        date="Sat, 10 May 2025 10:00:00 UTC",
        date_epoch=1746871200,
        valid_until=None,
        codename="bookworm",
        suite="stable",
        origin="Debian",
        version="12.11",
    )
    r = _asm([("a", a)], release=release, mtime=1234)
    got = _by_path(r)
    assert got["etc/passwd"].data.decode().splitlines() == [
        "root:x:0:0:root:/root:/sbin/nologin",
        "nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin",
        "nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin",
    ]
    assert "nonroot:x:65532:" in got["etc/group"].data.decode().splitlines()
    home = got["home/nonroot"]
    assert (home.type, home.mode, home.uid, home.gid) == (EntryType.DIR, 0o700, 65532, 65532)
    assert got["root"].mode == 0o700 and got["tmp"].mode == 0o1777
    assert b"hosts:          files dns" in got["etc/nsswitch.conf"].data
    assert got["etc/os-release"].type is EntryType.SYMLINK
    osr = got["usr/lib/os-release"].data.decode()
    assert 'VERSION_ID="12"' in osr and "VERSION_CODENAME=bookworm" in osr
    assert all(got[p].mtime == 1234 and got[p].owner == "" for p in ("etc/passwd", "tmp"))
    assert "etc/shadow" not in got and "etc/ld.so.cache" not in got
    assert "etc/ssl/certs/ca-certificates.crt" not in got
    for host in ("etc/hostname", "etc/resolv.conf", "etc/hosts"):
        assert host not in got
    _check_layer_invariants(r)


def test_custom_accounts_and_package_os_release_kept(tmp_path: Path) -> None:
    bf = write_deb(
        tmp_path / "bf.deb",
        "base-files",
        [
            f("./usr/lib/os-release", b'ID=debian\nVERSION_ID="12"\n'),
            sym("./etc/os-release", "../usr/lib/os-release"),
        ],
    )
    acc = Accounts(
        users=(User("root", 0, 0, "/root"), User("app", 1000, 1000, "/srv/app")),
        groups=(Group("root", 0), Group("app", 1000, ("root",))),
    )
    got = _by_path(_asm([("base-files", bf)], accounts=acc))
    assert got["usr/lib/os-release"].owner == "base-files"
    assert got["etc/passwd"].data == (
        b"root:x:0:0::/root:/sbin/nologin\napp:x:1000:1000::/srv/app:/sbin/nologin\n"
    )
    assert got["etc/group"].data == b"root:x:0:\napp:x:1000:root\n"
    assert got["srv/app"].uid == 1000 and got["srv"].mode == 0o755


def test_host_files_are_dropped(tmp_path: Path) -> None:
    a = write_deb(tmp_path / "a.deb", "a", [f("./etc/hostname", b"buildhost\n"), f("./etc/x")])
    r = _asm([("a", a)])
    assert "etc/hostname" not in _by_path(r) and any("host file" in w for w in r.warnings)


def test_hardlinks_point_to_earlier_entries(tmp_path: Path) -> None:
    a = write_deb(
        tmp_path / "a.deb",
        "a",
        [f("./usr/bin/zz", b"same inode"), hard("./usr/bin/aa", "./usr/bin/zz")],
    )
    r = _asm([("a", a)])
    got = _by_path(r)
    assert got["usr/bin/aa"].type is EntryType.FILE and got["usr/bin/aa"].data == b"same inode"
    assert got["usr/bin/zz"].type is EntryType.HARDLINK and got["usr/bin/zz"].link == "usr/bin/aa"
    _check_layer_invariants(r)


def test_hardlink_to_excluded_file_is_materialised(tmp_path: Path) -> None:
    a = write_deb(
        tmp_path / "a.deb",
        "a",
        [f("./usr/share/doc/a/NEWS", b"news"), hard("./usr/lib/a/NEWS", "./usr/share/doc/a/NEWS")],
    )
    got = _by_path(_asm([("a", a)]))
    assert got["usr/lib/a/NEWS"].type is EntryType.FILE and got["usr/lib/a/NEWS"].data == b"news"


def test_wrong_package_or_architecture_is_refused(tmp_path: Path) -> None:
    a = write_deb(tmp_path / "a.deb", "a", [f("./x")])
    with pytest.raises(InputError, match="expected package b"):
        _asm([("b", a)])
    arm = write_deb(tmp_path / "arm.deb", "arm", [f("./x")], arch="arm64")
    with pytest.raises(InputError, match="architecture arm64 does not match"):
        _asm([("arm", arm)])
    allarch = write_deb(tmp_path / "all.deb", "allp", [f("./x")], arch="all")
    assert "x" in _by_path(_asm([("allp", allarch)]))


def test_deterministic_and_progress(tmp_path: Path) -> None:
    debs = [
        (f"p{i}", write_deb(tmp_path / f"p{i}.deb", f"p{i}", [f(f"./usr/share/p{i}/f", b"%d" % i)]))
        for i in range(6)
    ]
    calls: list[tuple[int, int]] = []
    r1 = _asm(debs, progress=lambda done, total: calls.append((done, total)), workers=1)
    r2 = _asm(debs, workers=3)
    assert r1.entries == r2.entries and r1.owners == r2.owners
    assert calls == [(i, 6) for i in range(1, 7)]
    _check_layer_invariants(r1)


def test_extra_paths_applied_last(tmp_path: Path) -> None:
    a = write_deb(tmp_path / "a.deb", "a", [f("./usr/bin/a", b"A")])
    extra = [
        Entry("var/app", EntryType.DIR, 0o750, uid=65532, gid=65532),
        Entry("etc/app.conf", EntryType.FILE, 0o600, data=b"k=v\n"),
    ]
    got = _by_path(_asm([("a", a)], extra_paths=extra))
    assert got["var/app"].uid == 65532 and got["var"].type is EntryType.DIR
    assert got["etc/app.conf"].data == b"k=v\n"


def test_device_entry_never_reaches_the_layer(tmp_path: Path) -> None:
    a = write_deb(tmp_path / "a.deb", "a", [M("./dev/null", "chr")])
    with pytest.raises(InputError, match="device node"):
        _asm([("a", a)])


def test_directory_replaced_by_symlink_is_refused(tmp_path: Path) -> None:
    a = write_deb(tmp_path / "a.deb", "a", [f("./usr/lib/app/x", b"1")])
    b = write_deb(tmp_path / "b.deb", "b", [sym("./usr/lib/app", "/etc")], Replaces="a")
    with pytest.raises(InputError, match=r"package b: /usr/lib/app would replace the directory"):
        _asm([("a", a), ("b", b)])


def test_extra_hardlink_and_symlink(tmp_path: Path) -> None:
    a = write_deb(tmp_path / "a.deb", "a", [f("./usr/bin/a", b"A")])
    extra = [
        Entry("usr/bin/b", EntryType.HARDLINK, 0o755, link="usr/bin/a"),
        Entry("usr/bin/c", EntryType.SYMLINK, 0o777, link="a"),
    ]
    r = _asm([("a", a)], extra_paths=extra)
    got = _by_path(r)
    assert got["usr/bin/b"].type is EntryType.HARDLINK and got["usr/bin/b"].link == "usr/bin/a"
    assert got["usr/bin/c"].link == "a"
    _check_layer_invariants(r)
    with pytest.raises(InputError, match="not a regular file"):
        _asm([("a", a)], extra_paths=[Entry("x", EntryType.HARDLINK, 0o644, link="usr/bin")])


@pytest.mark.skipif(not Path("/lib/x86_64-linux-gnu/libz.so.1").exists(), reason="no host libz")
def test_ld_so_cache_written_when_libc6_present(tmp_path: Path) -> None:
    from assay.build.ldcache import parse_cache

    real = Path("/lib/x86_64-linux-gnu/libz.so.1").resolve()
    libc6 = write_deb(
        tmp_path / "libc6.deb",
        "libc6",
        [
            f(f"./lib/x86_64-linux-gnu/{real.name}", real.read_bytes()),
            sym("./lib/x86_64-linux-gnu/libz.so.1", real.name),
        ],
    )
    got = _by_path(_asm([("libc6", libc6)]))
    cache = got["etc/ld.so.cache"]
    assert cache.owner == "" and cache.mode == 0o644
    assert parse_cache(cache.data) == [("libz.so.1", 0x0303, "/lib/x86_64-linux-gnu/libz.so.1")]
    mips = write_deb(tmp_path / "m.deb", "libc6", [f("./lib/x")], arch="mips64el")
    other = assemble([(Pkg("libc6"), mips)], arch="mips64el")
    assert "etc/ld.so.cache" not in _by_path(other)
    assert any("ld.so.cache" in w for w in other.warnings)
