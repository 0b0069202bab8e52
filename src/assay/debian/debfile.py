"""Read Debian binary packages (deb(5)) without dpkg.

A ``.deb`` is an ``ar`` archive holding ``debian-binary`` ("2.0"), ``control.tar[.gz|.xz|.zst]``
and ``data.tar[.gz|.xz|.zst|.bz2]``. :func:`open_deb` reads the control part (the ``control``
stanza, ``md5sums``, ``conffiles`` and the names of maintainer scripts); :func:`iter_data` turns
the data archive into :class:`~assay.oci.entry.Entry` values.

Everything here treats the file as hostile: member and archive sizes are bounded, and the
control and data tars are read by the one archive reader (``assay.oci.layer.read_tar``): paths
are normalised (``./usr/bin/x`` -> ``usr/bin/x``) and refused when absolute or containing ``..``,
hardlinks must name a regular file seen earlier in the same archive, and device nodes, FIFOs
and sparse members are refused (writing through a symlink is judged by the rootfs assembly).
Each refusal is an :class:`~assay.errors.InputError` naming the package and path.
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
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from assay._atomic import atomic_write_bytes
from assay.errors import InputError
from assay.oci.entry import Entry, EntryType
from assay.oci.layer import read_tar

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
MAX_DATA_MEMBERS = 1_000_000

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
    for e in read_tar(
        io.BytesIO(ctar),
        what=f"{where}: {control_m.name}",
        allow_absolute=False,
        devices="refuse",
        whiteouts=False,
        max_member_size=MAX_CONTROL_FILE,
        max_total_size=MAX_CONTROL_TAR,
        max_members=10_000,
    ):
        files[e.path] = e.data if e.type is EntryType.FILE else files.get(e.path, b"")
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


def iter_data(
    path: Path, *, package: str, deb: DebFile | None = None, data: bytes | None = None
) -> Iterator[Entry]:
    """Yield the entries of the package's data.tar in archive order.

    ``data`` may carry an already decompressed data.tar (see :func:`read_data_member`), so a
    caller can decode on a worker thread. The root directory entry (``./``) is skipped.
    """
    if data is None:
        data = read_data_member(path, package=package, deb=deb)
    yield from read_tar(
        io.BytesIO(data),
        what=f"package {package} data.tar",
        allow_absolute=False,
        devices="refuse",
        whiteouts=False,
        max_member_size=MAX_DATA_TAR,
        max_total_size=MAX_DATA_TAR,
        max_members=MAX_DATA_MEMBERS,
        owner=package,
    )
