"""Builders for real ``.deb`` files (ar + control.tar + data.tar written by hand), and the
hostile fixtures named after what they reproduce.

Other test modules import these (``from test_debfile_fixtures import ...``). The tests at the
bottom check the builder against ``dpkg-deb`` itself, so a fixture is a real package, not
something only assay accepts.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import lzma
import shutil
import subprocess
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
import zstandard

MTIME = 1_700_000_000


@dataclass(frozen=True)
class M:
    """One data.tar member."""

    name: str
    kind: str = "file"  # file, dir, symlink, hardlink, chr, blk, fifo
    data: bytes = b""
    mode: int = 0o644
    link: str = ""
    uid: int = 0
    gid: int = 0


def f(name: str, data: bytes = b"x\n", mode: int = 0o644) -> M:
    return M(name, "file", data, mode)


def d(name: str, mode: int = 0o755) -> M:
    return M(name, "dir", mode=mode)


def sym(name: str, target: str) -> M:
    return M(name, "symlink", mode=0o777, link=target)


def hard(name: str, target: str) -> M:
    return M(name, "hardlink", link=target)


def compress(data: bytes, comp: str) -> bytes:
    if comp == "gz":
        return gzip.compress(data, mtime=0)
    if comp == "xz":
        return lzma.compress(data)
    if comp == "zst":
        return zstandard.ZstdCompressor().compress(data)
    if comp == "bz2":
        return bz2.compress(data)
    if comp == "":
        return data
    raise ValueError(comp)


def make_tar(members: Sequence[M]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tf:
        for m in members:
            info = tarfile.TarInfo(m.name)
            info.mode, info.uid, info.gid, info.mtime = m.mode, m.uid, m.gid, MTIME
            info.uname = info.gname = "root"
            if m.kind == "file":
                info.size = len(m.data)
                tf.addfile(info, io.BytesIO(m.data))
                continue
            info.type = {
                "dir": tarfile.DIRTYPE,
                "symlink": tarfile.SYMTYPE,
                "hardlink": tarfile.LNKTYPE,
                "chr": tarfile.CHRTYPE,
                "blk": tarfile.BLKTYPE,
                "fifo": tarfile.FIFOTYPE,
            }[m.kind]
            info.linkname = m.link
            if m.kind in ("chr", "blk"):
                info.devmajor, info.devminor = 1, 3
            tf.addfile(info)
    return buf.getvalue()


def ar_archive(members: Sequence[tuple[str, bytes]]) -> bytes:
    out = bytearray(b"!<arch>\n")
    for name, data in members:
        header = f"{name:<16}{MTIME:<12}{0:<6}{0:<6}{100644:<8}{len(data):<10}".encode() + b"`\n"
        assert len(header) == 60
        out += header + data
        if len(data) % 2:
            out += b"\n"
    return bytes(out)


def control_text(package: str, version: str = "1.0-1", arch: str = "amd64", **extra: str) -> bytes:
    fields = {
        "Package": package,
        "Version": version,
        "Architecture": arch,
        "Maintainer": "Assay Tests <tests@assay.invalid>",
        "Installed-Size": "1",
        **{k.replace("_", "-"): v for k, v in extra.items()},
        "Description": f"test package {package}\n multi-line description\n .\n end",
    }
    return "".join(f"{k}: {v}\n" for k, v in fields.items()).encode()


def md5sums_of(members: Sequence[M]) -> bytes:
    return b"".join(
        f"{hashlib.md5(m.data).hexdigest()}  {m.name.removeprefix('./')}\n".encode()
        for m in members
        if m.kind == "file"
    )


def write_deb(
    out: Path,
    package: str,
    members: Sequence[M],
    *,
    control: bytes | None = None,
    control_comp: str = "gz",
    data_comp: str = "xz",
    md5sums: bytes | None = None,
    control_files: Mapping[str, bytes] | None = None,
    with_parents: bool = True,
    **fields: str,
) -> Path:
    """Write a .deb; ``members`` paths as in the data tar (``./usr/...``)."""
    members = list(members)
    if with_parents:
        seen: set[str] = set()
        dirs: list[M] = [d("./")]
        for m in members:
            parts = m.name.removeprefix("./").split("/")[:-1]
            for i in range(1, len(parts) + 1):
                p = "./" + "/".join(parts[:i]) + "/"
                if p not in seen and not any(x.name == p for x in members):
                    seen.add(p)
                    dirs.append(d(p))
        members = [*dirs, *members]
    ctrl = [f("./control", control or control_text(package, **fields))]
    ctrl.append(f("./md5sums", md5sums if md5sums is not None else md5sums_of(members)))
    for name, data in (control_files or {}).items():
        ctrl.append(f("./" + name, data, 0o755))
    cname = "control.tar" + (f".{control_comp}" if control_comp else "")
    dname = "data.tar" + (f".{data_comp}" if data_comp else "")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(
        ar_archive(
            [
                ("debian-binary", b"2.0\n"),
                (cname, compress(make_tar([d("./"), *ctrl]), control_comp)),
                (dname, compress(make_tar(members), data_comp)),
            ]
        )
    )
    return out


# ------------------------------------------------------------------ hostile fixtures


def deb_with_dotdot_path(tmp: Path) -> Path:
    return write_deb(
        tmp / "deb_with_dotdot_path.deb",
        "evil-dotdot",
        [f("./usr/share/../../../evil", b"pwned\n")],
        with_parents=False,
    )


def deb_with_absolute_path(tmp: Path) -> Path:
    return write_deb(
        tmp / "deb_with_absolute_path.deb",
        "evil-abs",
        [f("/etc/cron.d/evil", b"* * * * * root sh\n")],
        with_parents=False,
    )


def deb_with_symlink_escape(tmp: Path) -> Path:
    """A symlink inside the root pointing out, then a file written through it."""
    return write_deb(
        tmp / "deb_with_symlink_escape.deb",
        "evil-symlink",
        [d("./usr/"), d("./usr/lib/"), sym("./usr/lib/x", "/etc"), f("./usr/lib/x/passwd")],
        with_parents=False,
    )


def deb_with_relative_symlink_escape(tmp: Path) -> Path:
    return write_deb(
        tmp / "deb_with_relative_symlink_escape.deb",
        "evil-relsymlink",
        [d("./usr/"), d("./usr/lib/"), sym("./usr/lib/x", "../../../../tmp"), d("./usr/lib/x/")],
        with_parents=False,
    )


def deb_with_hardlink_outside(tmp: Path) -> Path:
    return write_deb(
        tmp / "deb_with_hardlink_outside.deb",
        "evil-hardlink",
        [hard("./usr/lib/shadow", "../../etc/shadow")],
    )


def deb_with_hardlink_to_unknown(tmp: Path) -> Path:
    return write_deb(
        tmp / "deb_with_hardlink_to_unknown.deb",
        "evil-hardlink2",
        [hard("./usr/lib/shadow", "etc/shadow")],
    )


def deb_with_device_node(tmp: Path) -> Path:
    return write_deb(
        tmp / "deb_with_device_node.deb", "evil-dev", [M("./dev/mem", "chr", mode=0o666)]
    )


def deb_with_fifo(tmp: Path) -> Path:
    return write_deb(tmp / "deb_with_fifo.deb", "evil-fifo", [M("./run/pipe", "fifo")])


def deb_with_setuid_binary(tmp: Path) -> Path:
    return write_deb(
        tmp / "deb_with_setuid_binary.deb",
        "suid",
        [
            f("./usr/bin/su", b"\x7fELF-not-really\n", 0o4755),
            f("./usr/bin/wall", b"wall\n", 0o2755),
            d("./var/mail/", 0o2775),
        ],
    )


# ------------------------------------------------------- the builder is a real .deb


needs_dpkg = pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="dpkg-deb not installed")


@needs_dpkg
@pytest.mark.parametrize("ccomp", ["gz", "xz", "zst", ""])
@pytest.mark.parametrize("dcomp", ["gz", "xz", "zst", "bz2", ""])
def test_builder_output_is_accepted_by_dpkg_deb(tmp_path: Path, ccomp: str, dcomp: str) -> None:
    deb = write_deb(
        tmp_path / "ok.deb",
        "hello",
        [f("./usr/bin/hello", b"#!/bin/true\n", 0o755), sym("./usr/bin/hi", "hello")],
        control_comp=ccomp,
        data_comp=dcomp,
    )
    info = subprocess.run(
        ["dpkg-deb", "--field", str(deb), "Package"], capture_output=True, check=True
    )
    assert info.stdout.strip() == b"hello"
    listing = subprocess.run(["dpkg-deb", "-c", str(deb)], capture_output=True, check=True)
    assert b"./usr/bin/hello" in listing.stdout
    assert b"./usr/bin/hi -> hello" in listing.stdout


HOSTILE = (
    deb_with_dotdot_path,
    deb_with_absolute_path,
    deb_with_symlink_escape,
    deb_with_relative_symlink_escape,
    deb_with_hardlink_outside,
    deb_with_hardlink_to_unknown,
    deb_with_device_node,
    deb_with_fifo,
    deb_with_setuid_binary,
)


if __name__ == "__main__":  # write the hostile fixtures for manual use: python ... OUTDIR
    import sys

    target = Path(sys.argv[1] if len(sys.argv) > 1 else "tests/assets/debs/out")
    for builder in HOSTILE:
        print(builder(target))
