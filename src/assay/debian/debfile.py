"""Read Debian binary packages (deb(5)) without dpkg.

A ``.deb`` is an ``ar`` archive holding ``debian-binary`` ("2.0"), ``control.tar[.gz|.xz|.zst]``
and ``data.tar[.gz|.xz|.zst|.bz2]``. :func:`open_deb` reads the control part (the ``control``
stanza, ``md5sums``, ``conffiles`` and the names of maintainer scripts); :func:`iter_data` turns
the data archive into :class:`~assay.oci.entry.Entry` values.

Everything here treats the file as hostile: member and archive sizes are bounded, paths are
normalised (``./usr/bin/x`` -> ``usr/bin/x``) and refused when absolute or containing ``..``,
hardlinks must name a regular file seen earlier in the same archive, and device nodes and FIFOs
are refused. Each refusal is an :class:`~assay.errors.InputError` naming the package and path.
setuid/setgid bits are kept in the entries; the rootfs assembly decides what to do with them.

Whole members are decompressed into memory (bounded) and parsed from there: the caller keeps
every file's content anyway, and one ``lzma``/``zstd`` call over a whole member is the cheapest
way to pay the decompression cost, which dominates (the C decoders release the GIL, so several
packages can be decoded on several threads).
"""

from __future__ import annotations

import bz2
import hashlib
import io
import logging
import lzma
import tarfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from assay._atomic import atomic_write_bytes
from assay.errors import InputError
from assay.oci.entry import Entry, EntryType

__all__ = [
    "MAX_CONTROL_TAR",
    "MAX_DATA_TAR",
    "DebFile",
    "iter_data",
    "open_deb",
    "parse_control",
    "read_data_member",
]

logger = logging.getLogger(__name__)

AR_MAGIC = b"!<arch>\n"
MAX_MEMBERS = 16  # deb(5) has three; tolerate a few extra (signatures: _gpgorigin, ...)
MAX_CONTROL_TAR = 64 << 20  # uncompressed control.tar
MAX_CONTROL_FILE = 32 << 20  # one member of control.tar (md5sums of huge packages ~ few MB)
MAX_DATA_TAR = 4 << 30  # uncompressed data.tar
MAX_PATH = 4096

_SCRIPTS = ("preinst", "postinst", "prerm", "postrm", "config", "triggers")


@dataclass(frozen=True)
class DebFile:
    """The control part of a ``.deb``."""

    path: Path
    control: dict[str, str]  # fields of DEBIAN/control, in file order, values unfolded as stored
    control_raw: bytes  # the control file verbatim
    md5sums: bytes  # DEBIAN/md5sums verbatim ("" when the package has none)
    conffiles: tuple[str, ...]  # absolute paths as listed ("/etc/foo")
    scripts: tuple[str, ...]  # maintainer scripts present (not run by assay)
    data_member: str  # e.g. "data.tar.xz"
    data_offset: int = field(repr=False, default=0)
    data_size: int = field(repr=False, default=0)

    @property
    def package(self) -> str:
        return self.control.get("Package", "")

    @property
    def version(self) -> str:
        return self.control.get("Version", "")

    @property
    def architecture(self) -> str:
        return self.control.get("Architecture", "")


# --------------------------------------------------------------------------------------- ar


@dataclass(frozen=True)
class _Member:
    name: str
    offset: int
    size: int


def _ar_members(fh: BinaryIO, total: int, where: str) -> list[_Member]:
    if fh.read(8) != AR_MAGIC:
        raise InputError(f"{where}: not a Debian package (no ar magic); re-fetch the file")
    members: list[_Member] = []
    pos = 8
    while pos < total:
        if pos % 2:
            fh.seek(1, io.SEEK_CUR)
            pos += 1
            if pos >= total:
                break
        header = fh.read(60)
        if len(header) != 60 or header[58:60] != b"`\n":
            raise InputError(f"{where}: corrupt ar member header at offset {pos}")
        name = header[0:16].decode("ascii", "replace").strip()
        if name.endswith("/"):  # GNU ar style terminator
            name = name[:-1]
        try:
            size = int(header[48:58].decode("ascii").strip())
        except ValueError:
            raise InputError(f"{where}: corrupt ar member size at offset {pos}") from None
        start = pos + 60
        if size < 0 or start + size > total:
            raise InputError(f"{where}: ar member {name!r} runs past the end of the file")
        members.append(_Member(name, start, size))
        if len(members) > MAX_MEMBERS:
            raise InputError(f"{where}: too many ar members (> {MAX_MEMBERS})")
        fh.seek(size, io.SEEK_CUR)
        pos = start + size
    return members


def _decompress(raw: bytes, member: str, limit: int, where: str) -> bytes:
    """Decompress one tar member by its suffix, refusing output above ``limit`` bytes."""
    try:
        if member.endswith(".tar"):
            out = raw
        elif member.endswith(".xz"):
            dec = lzma.LZMADecompressor()
            out = dec.decompress(raw, max_length=limit + 1)
            if len(out) <= limit and not dec.eof:
                raise InputError(f"{where}: {member} is truncated")
        elif member.endswith(".gz"):
            gdec = zlib.decompressobj(16 + zlib.MAX_WBITS)
            out = gdec.decompress(raw, limit + 1)
            if len(out) <= limit and not gdec.eof:
                raise InputError(f"{where}: {member} is truncated")
        elif member.endswith(".zst"):
            import zstandard

            zdec = zstandard.ZstdDecompressor().decompressobj()
            chunks: list[bytes] = []
            got = 0
            view = memoryview(raw)
            for i in range(0, len(raw), 1 << 20):
                piece = zdec.decompress(view[i : i + (1 << 20)])
                got += len(piece)
                if got > limit:
                    raise InputError(
                        f"{where}: {member} expands beyond the {limit >> 20} MiB limit"
                    )
                chunks.append(piece)
            if not zdec.eof:
                raise InputError(f"{where}: {member} is truncated")
            out = b"".join(chunks)
        elif member.endswith(".bz2"):
            bdec = bz2.BZ2Decompressor()
            out = bdec.decompress(raw, max_length=limit + 1)
            if len(out) <= limit and not bdec.eof:
                raise InputError(f"{where}: {member} is truncated")
        else:
            raise InputError(f"{where}: unsupported compression for member {member!r}")
    except (lzma.LZMAError, zlib.error, OSError, EOFError, ValueError) as exc:
        raise InputError(f"{where}: cannot decompress {member}: {exc}") from None
    except InputError:
        raise
    except Exception as exc:  # zstandard.ZstdError has no stable import path for typing
        raise InputError(f"{where}: cannot decompress {member}: {exc}") from None
    if len(out) > limit:
        raise InputError(f"{where}: {member} expands beyond the {limit >> 20} MiB limit")
    return out


def _read_range(path: Path, offset: int, size: int) -> bytes:
    with path.open("rb") as fh:
        fh.seek(offset)
        data = fh.read(size)
    if len(data) != size:
        raise InputError(f"{path}: file shrank while reading; re-fetch it")
    return data


# ---------------------------------------------------------------------------------- control


def parse_control(raw: bytes, where: str) -> dict[str, str]:
    """Parse one deb822 stanza (DEBIAN/control) into ordered fields.

    Continuation lines are joined with ``\\n`` (their leading space kept, as dpkg stores them).
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    fields: dict[str, str] = {}
    current = ""
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            if fields:
                break  # one stanza only
            continue
        if line.startswith("#"):
            continue
        if line[0] in " \t":
            if not current:
                raise InputError(f"{where}: control line {lineno} continues nothing")
            fields[current] += "\n" + line
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or " " in name:
            raise InputError(f"{where}: control line {lineno} is not 'Field: value'")
        current = name
        fields[name] = value.strip()
    if "Package" not in fields:
        raise InputError(f"{where}: control file has no Package field")
    return fields


def _norm_path(name: str, package: str) -> str:
    """``./usr/bin/x`` -> ``usr/bin/x``; refuse absolute paths and ``..``; ``""`` for the root."""
    if len(name) > MAX_PATH:
        raise InputError(f"package {package}: path longer than {MAX_PATH} bytes: {name[:80]}...")
    if "\0" in name:
        raise InputError(f"package {package}: path with a NUL byte: {name!r}")
    if name.startswith("/"):
        raise InputError(
            f"package {package}: absolute path {name!r} in data.tar; a .deb must use "
            "relative paths (./usr/...) — refusing the package"
        )
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise InputError(
            f"package {package}: path {name!r} in data.tar has a '..' component — refusing the "
            "package (it could write outside the image root)"
        )
    return "/".join(parts)


def open_deb(path: Path, *, package_hint: str = "") -> DebFile:
    """Read the control part of the ``.deb`` at ``path``."""
    path = Path(path)
    where = f"{path.name}" + (f" (package {package_hint})" if package_hint else "")
    try:
        total = path.stat().st_size
        with path.open("rb") as fh:
            members = _ar_members(fh, total, where)
    except OSError as exc:
        raise InputError(f"{where}: cannot read: {exc}") from None
    names = [m.name for m in members]
    if not members or members[0].name != "debian-binary":
        raise InputError(f"{where}: first ar member is not debian-binary ({names})")
    version = _read_range(path, members[0].offset, min(members[0].size, 64))
    if not version.startswith(b"2."):
        raise InputError(f"{where}: unsupported deb format version {version.strip()!r}")
    control_m = next((m for m in members if m.name.startswith("control.tar")), None)
    data_m = next((m for m in members if m.name.startswith("data.tar")), None)
    if control_m is None or data_m is None:
        raise InputError(f"{where}: missing control.tar or data.tar member ({names})")
    raw = _read_range(path, control_m.offset, control_m.size)
    ctar = _decompress(raw, control_m.name, MAX_CONTROL_TAR, where)
    files: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(ctar), mode="r:") as tf:
            for info in tf:
                name = _norm_path(info.name, package_hint or path.name)
                if info.isfile():
                    if info.size > MAX_CONTROL_FILE:
                        raise InputError(f"{where}: control member {name} is too large")
                    fobj = tf.extractfile(info)
                    assert fobj is not None
                    files[name] = fobj.read()
                else:
                    files.setdefault(name, b"")
    except tarfile.TarError as exc:
        raise InputError(f"{where}: corrupt {control_m.name}: {exc}") from None
    if "control" not in files:
        raise InputError(f"{where}: {control_m.name} has no control file")
    control = parse_control(files["control"], where)
    conffiles = tuple(
        line.strip()
        for line in files.get("conffiles", b"").decode("utf-8", "replace").splitlines()
        if line.strip()
    )
    return DebFile(
        path=path,
        control=control,
        control_raw=files["control"],
        md5sums=files.get("md5sums", b""),
        conffiles=conffiles,
        scripts=tuple(s for s in _SCRIPTS if s in files),
        data_member=data_m.name,
        data_offset=data_m.offset,
        data_size=data_m.size,
    )


# ------------------------------------------------------------------------------------- data


_CACHE_MAGIC = b"ASSAY-DATA-TAR-1\n"


def read_data_member(
    path: Path, *, package: str, deb: DebFile | None = None, cache_dir: Path | None = None
) -> bytes:
    """Return the uncompressed ``data.tar`` of the package at ``path`` (bounded).

    With ``cache_dir``, the decoded tar is kept there re-compressed with zstd (fast to decode;
    xz decoding is most of the cost of unpacking), keyed by the SHA-256 of the compressed
    member. A cached copy is used only if its recorded SHA-256 of the decoded tar matches; a
    damaged or altered cache file is ignored and rewritten.
    """
    deb = deb or open_deb(path, package_hint=package)
    raw = _read_range(Path(path), deb.data_offset, deb.data_size)
    where = f"{Path(path).name} ({package})"
    if cache_dir is None or deb.data_member.endswith(".tar"):
        return _decompress(raw, deb.data_member, MAX_DATA_TAR, where)
    key = hashlib.sha256(raw).hexdigest()
    cached = Path(cache_dir) / key[:2] / f"{key}.tar.zst"
    hit = _read_cached(cached, where)
    if hit is not None:
        return hit
    data = _decompress(raw, deb.data_member, MAX_DATA_TAR, where)
    import zstandard

    body = zstandard.ZstdCompressor(level=3).compress(data)
    try:
        atomic_write_bytes(cached, _CACHE_MAGIC + hashlib.sha256(data).digest() + body)
    except OSError as exc:
        logger.warning("cannot write unpack cache %s: %s", cached, exc)
    return data


def _read_cached(cached: Path, where: str) -> bytes | None:
    try:
        blob = cached.read_bytes()
    except OSError:
        return None
    head = len(_CACHE_MAGIC) + 32
    if not blob.startswith(_CACHE_MAGIC) or len(blob) < head:
        return None
    try:
        data = _decompress(blob[head:], ".zst", MAX_DATA_TAR, where)
    except InputError:
        return None
    if hashlib.sha256(data).digest() != blob[len(_CACHE_MAGIC) : head]:
        logger.warning("unpack cache %s does not match its checksum; ignoring it", cached)
        return None
    return data


@dataclass(frozen=True)
class _TarMember:
    name: str
    kind: str  # tar typeflag: "0" file, "1" hardlink, "2" symlink, "3"/"4" device, "5" dir, ...
    mode: int
    uid: int
    gid: int
    mtime: int
    linkname: str
    offset: int  # of the content in the tar
    size: int


def _tar_num(field: bytes, what: str, package: str) -> int:
    if field and field[0] & 0x80:  # GNU base-256
        if field[0] == 0xFF:
            raise InputError(f"package {package}: negative {what} in data.tar")
        return int.from_bytes(bytes([field[0] & 0x7F]) + field[1:], "big")
    text = field.split(b"\0", 1)[0].strip(b" ")
    if not text:
        return 0
    try:
        return int(text, 8)
    except ValueError:
        raise InputError(f"package {package}: corrupt {what} field in data.tar") from None


def _tar_str(field: bytes) -> str:
    return field.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _pax_records(blob: bytes, package: str) -> dict[str, str]:
    out: dict[str, str] = {}
    pos = 0
    while pos < len(blob):
        sp = blob.find(b" ", pos)
        if sp < 0:
            break
        try:
            length = int(blob[pos:sp])
        except ValueError:
            raise InputError(f"package {package}: corrupt PAX header in data.tar") from None
        if length <= 0 or pos + length > len(blob):
            raise InputError(f"package {package}: corrupt PAX header in data.tar")
        key, _, value = blob[sp + 1 : pos + length - 1].partition(b"=")
        out[key.decode("utf-8", "replace")] = value.decode("utf-8", "surrogateescape")
        pos += length
    return out


def _iter_tar(data: bytes, package: str) -> Iterator[_TarMember]:
    """A strict reader for the ustar/GNU/PAX tar that dpkg-deb writes (faster than tarfile)."""
    pos = 0
    total = len(data)
    long_name: str | None = None
    long_link: str | None = None
    pax: dict[str, str] = {}
    while pos + 512 <= total:
        header = data[pos : pos + 512]
        if header == b"\0" * 512:
            return
        chk = _tar_num(header[148:156], "checksum", package)
        if chk != sum(header[:148]) + 256 + sum(header[156:]):
            raise InputError(f"package {package}: data.tar header checksum mismatch at {pos}")
        kind = chr(header[156]) if header[156] else "0"
        size = _tar_num(header[124:136], "size", package)
        start = pos + 512
        if start + size > total:
            raise InputError(f"package {package}: data.tar member runs past the end")
        pos = start + ((size + 511) // 512) * 512
        if kind in ("L", "K"):
            if size > MAX_PATH + 1:
                raise InputError(f"package {package}: over-long name in data.tar")
            value = _tar_str(data[start : start + size])
            if kind == "L":
                long_name = value
            else:
                long_link = value
            continue
        if kind in ("x", "g"):
            if size > 1 << 20:
                raise InputError(f"package {package}: over-large PAX header in data.tar")
            records = _pax_records(data[start : start + size], package)
            if kind == "x":
                pax = records
            continue
        name = _tar_str(header[0:100])
        if header[257:263] == b"ustar\0":  # POSIX ustar: prefix field
            prefix = _tar_str(header[345:500])
            if prefix:
                name = f"{prefix}/{name}"
        if long_name is not None:
            name = long_name
        link = long_link if long_link is not None else _tar_str(header[157:257])
        mode = _tar_num(header[100:108], "mode", package)
        uid = _tar_num(header[108:116], "uid", package)
        gid = _tar_num(header[116:124], "gid", package)
        mtime = _tar_num(header[136:148], "mtime", package)
        if pax:
            name = pax.get("path", name)
            link = pax.get("linkpath", link)
            try:
                uid = int(pax.get("uid", uid))
                gid = int(pax.get("gid", gid))
                mtime = int(float(pax.get("mtime", mtime)))
                if "size" in pax:
                    raise InputError(f"package {package}: PAX size records are not supported")
            except ValueError:
                raise InputError(f"package {package}: corrupt PAX record in data.tar") from None
        long_name = long_link = None
        pax = {}
        yield _TarMember(name, kind, mode, uid, gid, mtime, link, start, size)
    if pos < total and data[pos:].strip(b"\0"):
        raise InputError(f"package {package}: trailing garbage or truncated data.tar")


def iter_data(
    path: Path, *, package: str, deb: DebFile | None = None, data: bytes | None = None
) -> Iterator[Entry]:
    """Yield the entries of the package's data.tar in archive order.

    ``data`` may carry an already decompressed data.tar (see :func:`read_data_member`), so a
    caller can decode on a worker thread. The root directory entry (``./``) is skipped.
    """
    if data is None:
        data = read_data_member(path, package=package, deb=deb)
    files_seen: set[str] = set()
    for m in _iter_tar(data, package):
        rel = _norm_path(m.name, package)
        if not rel:
            continue
        mode, uid, gid, mtime = m.mode & 0o7777, m.uid, m.gid, m.mtime
        if m.kind in ("0", "7"):
            files_seen.add(rel)
            content = data[m.offset : m.offset + m.size]
            yield Entry(rel, EntryType.FILE, mode, uid, gid, mtime, content, "", package)
        elif m.kind == "5":
            yield Entry(rel, EntryType.DIR, mode, uid, gid, mtime, b"", "", package)
        elif m.kind == "2":
            target = m.linkname
            if not target or "\0" in target or len(target) > MAX_PATH:
                raise InputError(f"package {package}: symlink {rel} has an invalid target")
            yield Entry(rel, EntryType.SYMLINK, mode, uid, gid, mtime, b"", target, package)
        elif m.kind == "1":
            if m.linkname.startswith("/"):
                raise InputError(
                    f"package {package}: hardlink {rel} points to absolute path "
                    f"{m.linkname!r} — refusing the package"
                )
            parts = [p for p in m.linkname.split("/") if p not in ("", ".")]
            if ".." in parts:
                raise InputError(
                    f"package {package}: hardlink {rel} points outside the package "
                    f"({m.linkname!r}) — refusing the package"
                )
            target = "/".join(parts)
            if target not in files_seen:
                raise InputError(
                    f"package {package}: hardlink {rel} points to {m.linkname!r}, which "
                    "is not a regular file earlier in the archive — refusing the package"
                )
            yield Entry(rel, EntryType.HARDLINK, mode, uid, gid, mtime, b"", target, package)
        elif m.kind in ("3", "4"):
            raise InputError(
                f"package {package}: device node {rel} in data.tar — images carry no "
                "device nodes (the runtime provides /dev); refusing the package"
            )
        elif m.kind == "6":
            raise InputError(f"package {package}: FIFO {rel} in data.tar — refusing")
        else:
            raise InputError(f"package {package}: unsupported tar member type {m.kind!r} at {rel}")
