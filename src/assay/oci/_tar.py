"""A small tar codec: a deterministic USTAR/PAX writer and a bounded streaming reader.

Written for assay's needs rather than wrapping ``tarfile``: the writer controls every header
byte (so layer digests do not depend on the Python version) and uses PAX records only when a
value does not fit USTAR; the reader bounds every size it reads (PAX records, GNU long names,
member sizes) before allocating, and never touches the filesystem. Path policy (``..``,
absolute paths, whiteouts, symlinks) lives in the callers (``layer.py``, ``archive.py``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import BinaryIO, Protocol

from assay.errors import InputError

BLOCK = 512

REGTYPE = b"0"
AREGTYPE = b"\0"
LNKTYPE = b"1"
SYMTYPE = b"2"
CHRTYPE = b"3"
BLKTYPE = b"4"
DIRTYPE = b"5"
FIFOTYPE = b"6"
CONTTYPE = b"7"
PAX_HEADER = b"x"
PAX_GLOBAL = b"g"
GNU_LONGNAME = b"L"
GNU_LONGLINK = b"K"

_ZERO_BLOCK = bytes(BLOCK)
MAX_PAX_SIZE = 1 << 20
MAX_LONGNAME_SIZE = 64 << 10


class Writable(Protocol):
    def write(self, data: bytes, /) -> object: ...


class Readable(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


def _octal(value: int, width: int) -> bytes | None:
    """``width``-byte NUL-terminated octal field, or None when the value does not fit."""
    if value < 0 or value >= 8 ** (width - 1):
        return None
    return b"%0*o\0" % (width - 1, value)


def _pax_record(key: str, value: str) -> bytes:
    body = f" {key}={value}\n".encode()
    n = len(body) + 1
    while len(str(n).encode()) + len(body) != n:
        n = len(str(n).encode()) + len(body)
    return str(n).encode() + body


def _split_ustar(name: bytes) -> tuple[bytes, bytes] | None:
    """Split a name into USTAR (prefix, name), or None when it cannot be represented."""
    if len(name) <= 100:
        return b"", name
    if len(name) > 256:
        return None
    # The prefix is everything before some '/', at most 155 bytes; the rest at most 100.
    for i in range(min(len(name) - 1, 155), 0, -1):
        if name[i : i + 1] == b"/" and 0 < len(name) - i - 1 <= 100:
            return name[:i], name[i + 1 :]
    return None


def _header(
    name: bytes,
    mode: int,
    uid: int,
    gid: int,
    size: int,
    mtime: int,
    typeflag: bytes,
    linkname: bytes,
    uname: bytes,
    gname: bytes,
    devmajor: int = 0,
    devminor: int = 0,
    prefix: bytes = b"",
) -> bytes:
    fields = [
        name.ljust(100, b"\0"),
        _octal(mode, 8) or b"",
        _octal(uid, 8) or b"",
        _octal(gid, 8) or b"",
        _octal(size, 12) or b"",
        _octal(mtime, 12) or b"",
        b" " * 8,
        typeflag,
        linkname.ljust(100, b"\0"),
        b"ustar\x00",
        b"00",
        uname.ljust(32, b"\0"),
        gname.ljust(32, b"\0"),
        _octal(devmajor, 8) or b"",
        _octal(devminor, 8) or b"",
        prefix.ljust(155, b"\0"),
        b"\0" * 12,
    ]
    buf = bytearray(b"".join(fields))
    assert len(buf) == BLOCK, len(buf)
    buf[148:156] = b"%06o\0 " % sum(buf)
    return bytes(buf)


class TarWriter:
    """Write tar members to ``out``; deterministic for the same calls.

    USTAR headers; a PAX ``x`` header (records sorted by key) precedes a member only when its
    path or link does not fit USTAR (too long, or not ASCII) or a number does not fit its field.
    """

    def __init__(self, out: Writable) -> None:
        self._out = out
        self.closed = False

    def add(
        self,
        name: str,
        typeflag: bytes,
        *,
        mode: int,
        uid: int = 0,
        gid: int = 0,
        mtime: int = 0,
        size: int = 0,
        linkname: str = "",
        uname: str = "",
        gname: str = "",
        data: bytes | None = None,
        source: Readable | None = None,
    ) -> None:
        """Add one member; file content comes from ``data`` or ``size`` bytes of ``source``."""
        bname = name.encode("utf-8", "surrogateescape")
        blink = linkname.encode("utf-8", "surrogateescape")
        pax: dict[str, str] = {}
        split = _split_ustar(bname) if bname.isascii() else None
        if split is None:
            pax["path"] = name
            prefix, short = b"", _pax_placeholder(bname)
        else:
            prefix, short = split
        if len(blink) > 100 or not blink.isascii():
            pax["linkpath"] = linkname
            blink = _pax_placeholder(blink)
        for key, value, width in (("uid", uid, 8), ("gid", gid, 8), ("size", size, 12)):
            if _octal(value, width) is None:
                if value < 0:
                    raise ValueError(f"negative {key} for {name!r}")
                pax[key] = str(value)
        if _octal(mtime, 12) is None:
            pax["mtime"] = str(mtime)
        for key, owner in (("uname", uname), ("gname", gname)):
            if len(owner.encode()) > 31 or not owner.isascii():
                pax[key] = owner
        bu = uname.encode() if "uname" not in pax else b""
        bg = gname.encode() if "gname" not in pax else b""
        if pax:
            records = b"".join(_pax_record(k, pax[k]) for k in sorted(pax))
            pax_name = b"PaxHeaders/" + short[-80:]
            self._out.write(
                _header(pax_name, 0o644, 0, 0, len(records), 0, PAX_HEADER, b"", b"", b"")
            )
            self._out.write(records)
            self._pad(len(records))
        self._out.write(
            _header(
                short,
                mode,
                uid if "uid" not in pax else 0,
                gid if "gid" not in pax else 0,
                size if "size" not in pax else 0,
                mtime if "mtime" not in pax else 0,
                typeflag,
                blink,
                bu,
                bg,
                prefix=prefix,
            )
        )
        if typeflag in (REGTYPE, AREGTYPE, CONTTYPE) and size:
            if data is not None:
                if len(data) != size:
                    raise ValueError(f"size mismatch for {name!r}")
                self._out.write(data)
            elif source is not None:
                left = size
                while left:
                    chunk = source.read(min(left, 1 << 20))
                    if not chunk:
                        raise InputError(f"{name}: source ended {left} bytes early")
                    self._out.write(chunk)
                    left -= len(chunk)
            else:
                raise ValueError("no content given for a non-empty file")
            self._pad(size)

    def _pad(self, size: int) -> None:
        rem = size % BLOCK
        if rem:
            self._out.write(b"\0" * (BLOCK - rem))

    def close(self) -> None:
        """Write the end-of-archive marker (two zero blocks)."""
        if not self.closed:
            self._out.write(b"\0" * (2 * BLOCK))
            self.closed = True


def _pax_placeholder(name: bytes) -> bytes:
    """A USTAR-representable stand-in for a name carried in a PAX record."""
    tail = name[-100:]
    return tail.decode("ascii", "replace").encode("ascii", "replace").replace(b"?", b"_")[:100]


# ---------------------------------------------------------------------------------------------
# Reader
#
# Headers are read the way Go's archive/tar reads them (the library under containerd, runc's
# image tools and umoci), which is also how GNU tar reads them:
#
# * the format comes from the magic: ``ustar\0`` is USTAR/PAX (its 155-byte prefix field is
#   part of the name), ``ustar  \0`` is GNU (no prefix field: bytes 345.. hold atime, ctime and
#   sparse data; only when those do not parse as numbers and the field is ASCII is it taken
#   as a prefix, for archives written by Go before 1.8), ``ustar\0`` with ``tar\0`` at byte 508
#   is star (a 131-byte prefix), anything else with a valid checksum is V7 (no prefix);
# * a PAX ``x`` header applies to the next member only and replaces (not merges with) an earlier
#   ``x`` header; a record with an empty value keeps the header's own value; GNU ``L``/``K``
#   records win over PAX ``path``/``linkpath``; a ``g`` header ends the pending extended headers
#   (Go returns it as a member of its own; nothing applies it to later members);
# * type ``\0`` with a name ending in ``/`` is a directory; the size of links, devices, FIFOs and
#   directories is ignored (they carry no data);
# * one zero block followed by a non-zero block is an error; end of stream at a header
#   boundary ends the archive (many writers omit the two zero blocks).
#
# Bounds: a PAX header at most 1 MiB, a GNU long name/link at most 64 KiB, at most 16 extended
# headers before one member, and all extended headers of one archive together at most
# 64 MiB + 4 KiB per member read so far (so thousands of 1 MiB PAX headers cannot cost
# gigabytes of time or memory). Sparse members (GNU type ``S`` or ``GNU.sparse.*`` PAX records)
# and multi-volume members are refused.

_MAX_EXT_PER_MEMBER = 16
_EXT_BUDGET_BASE = 64 << 20
_EXT_BUDGET_PER_MEMBER = 4 << 10
_READ_CHUNK = 256 << 10
_OCTAL = re.compile(rb"[0-7]{1,22}")
_DECIMAL = re.compile(rb"[+-]?[0-9]+")
_PAX_TIME = re.compile(r"[+-]?[0-9]{1,19}(\.[0-9]*)?")
_HEADER_ONLY = frozenset((LNKTYPE, SYMTYPE, CHRTYPE, BLKTYPE, DIRTYPE, FIFOTYPE))
SPARSETYPE = b"S"


@dataclass
class TarMember:
    name: str
    typeflag: bytes
    mode: int
    uid: int
    gid: int
    mtime: int
    size: int
    linkname: str
    uname: str
    gname: str
    devmajor: int
    devminor: int
    offset: int  # of the member's data in the uncompressed stream

    @property
    def has_data(self) -> bool:
        return self.typeflag not in _HEADER_ONLY


class _BadNumber(ValueError):
    pass


def _number(field: bytes) -> int:
    """A numeric header field as Go's archive/tar parses it (octal, or GNU base-256)."""
    if field and field[0] & 0x80:
        inv = 0xFF if field[0] & 0x40 else 0
        x = 0
        for i, c in enumerate(field):
            c ^= inv
            if i == 0:
                c &= 0x7F
            if x >> 56:
                raise _BadNumber("base-256 overflow")
            x = x << 8 | c
        if x >> 63:
            raise _BadNumber("base-256 overflow")
        return ~x if inv else x
    text = field.strip(b" \0").split(b"\0", 1)[0]
    if not text:
        return 0
    if not _OCTAL.fullmatch(text):
        raise _BadNumber(text[:20].decode("ascii", "replace"))
    value = int(text, 8)
    if value >> 64:
        raise _BadNumber("octal overflow")
    return value


def _parse_number(field: bytes, what: str) -> int:
    try:
        return _number(field)
    except _BadNumber as e:
        raise InputError(f"corrupt tar header: {what} field {e} is not a number") from None


def _checksum_ok(block: bytes, stored: int) -> bool:
    """The stored checksum equals the unsigned sum (or, for some old writers, the signed sum)
    of the header with the checksum field counted as spaces."""
    unsigned = sum(block) - sum(block[148:156]) + 256
    if stored == unsigned:
        return True
    high = sum(1 for b in block[:148] + block[156:] if b > 127)
    return stored == unsigned - 256 * high


def _cstr(field: bytes) -> bytes:
    return field.split(b"\0", 1)[0]


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def _header_name(block: bytes) -> bytes:
    """The member name of a (checksum-verified) header block, prefix included when the format
    has one."""
    name = _cstr(block[0:100])
    magic = block[257:263]
    prefix = b""
    if magic == b"ustar\0":
        prefix = _cstr(block[345:476] if block[508:512] == b"tar\0" else block[345:500])
    elif magic == b"ustar " and block[263:265] == b" \0":
        try:
            for field in (block[345:357], block[357:369]):
                if field[0] != 0:
                    _number(field)
        except _BadNumber:
            candidate = _cstr(block[345:500])
            if candidate.isascii():
                prefix = candidate
    return prefix + b"/" + name if prefix else name


def _has_owner_fields(block: bytes) -> bool:
    return block[257:262] == b"ustar"


class TarReader:
    """Iterate the members of an uncompressed tar stream with bounded sizes.

    ``next()`` returns the next member (PAX and GNU long-name headers folded in) or None at the
    end of the archive; the member's data is read with ``read_data()`` or skipped automatically
    by the following ``next()``.
    """

    def __init__(
        self,
        stream: Readable,
        *,
        max_member_size: int,
        max_total_size: int,
        max_members: int,
        what: str = "tar archive",
    ) -> None:
        self._s = stream
        self._what = what
        self._max_member = max_member_size
        self._max_total = max_total_size
        self._max_members = max_members
        self.position = 0  # logical bytes consumed
        self._pulled = 0  # bytes read from the stream
        self._buf = b""
        self._bpos = 0
        self.members = 0
        self._left = 0  # data bytes left in the current member
        self._pad = 0
        self._ext_bytes = 0
        self.ended = False

    def _pull(self, n: int) -> bytes:
        chunk = self._s.read(n)
        if chunk:
            self._pulled += len(chunk)
            if self._pulled > self._max_total:
                raise InputError(
                    f"{self._what}: more than {self._max_total} bytes uncompressed; refusing it "
                    "(raise the limit if the image is really this large)"
                )
        return chunk

    def _read_exact(self, n: int) -> bytes:
        """Up to ``n`` bytes (fewer only at the end of the stream)."""
        avail = len(self._buf) - self._bpos
        if n <= avail:
            out = self._buf[self._bpos : self._bpos + n]
            self._bpos += n
            self.position += n
            return out
        parts = [self._buf[self._bpos :]] if avail else []
        need = n - avail
        self._buf, self._bpos = b"", 0
        while need > 0:
            if need >= _READ_CHUNK:
                chunk = self._pull(need)
                if not chunk:
                    break
                parts.append(chunk)
                need -= len(chunk)
                continue
            chunk = self._pull(_READ_CHUNK)
            if not chunk:
                break
            if len(chunk) > need:
                parts.append(chunk[:need])
                self._buf, self._bpos = chunk, need
                need = 0
            else:
                parts.append(chunk)
                need -= len(chunk)
        data = parts[0] if len(parts) == 1 else b"".join(parts)
        self.position += len(data)
        return data

    def _block(self) -> bytes | None:
        data = self._read_exact(BLOCK)
        if not data:
            return None
        if len(data) != BLOCK:
            raise InputError(
                f"{self._what}: truncated (ends inside a header at byte {self.position})"
            )
        return data

    def _skip(self, n: int) -> None:
        avail = len(self._buf) - self._bpos
        if n <= avail:
            self._bpos += n
            self.position += n
            return
        self.position += avail
        n -= avail
        self._buf, self._bpos = b"", 0
        while n:
            chunk = self._pull(min(n, 1 << 20))
            if not chunk:
                raise InputError(f"{self._what}: truncated (ends inside a member's data)")
            self.position += len(chunk)
            n -= len(chunk)

    def read_data(self, n: int = -1) -> bytes:
        """Read up to ``n`` bytes (all when negative) of the current member's data."""
        if n < 0 or n > self._left:
            n = self._left
        if n == 0:
            return b""
        data = self._read_exact(n)
        if len(data) != n:
            raise InputError(f"{self._what}: truncated (ends inside a member's data)")
        self._left -= n
        return data

    @property
    def data_left(self) -> int:
        """Bytes of the current member's data not read yet."""
        return self._left

    def _finish_member(self) -> None:
        self._skip(self._left + self._pad)
        self._left = self._pad = 0

    def _read_special(self, size: int, limit: int, kind: str) -> bytes:
        if size > limit:
            raise InputError(f"{self._what}: {kind} of {size} bytes is over the {limit}-byte limit")
        self._ext_bytes += size
        budget = _EXT_BUDGET_BASE + _EXT_BUDGET_PER_MEMBER * self.members
        if self._ext_bytes > budget:
            raise InputError(
                f"{self._what}: extended (PAX/GNU long name) headers total over {budget} bytes "
                f"after {self.members} members; refusing it as a header bomb"
            )
        data = self._read_exact(size)
        if len(data) != size:
            raise InputError(f"{self._what}: truncated inside a {kind}")
        self._skip(-size % BLOCK)
        return data

    def _end_block(self) -> None:
        """After one zero block: a second zero block or the end of the stream ends the archive."""
        nxt = self._read_exact(BLOCK)
        if nxt and (len(nxt) != BLOCK or nxt != _ZERO_BLOCK):
            raise InputError(
                f"{self._what}: a zero block followed by data at byte {self.position - len(nxt)}; "
                "the archive is corrupt"
            )
        self.ended = True

    def next(self) -> TarMember | None:
        if self.ended:
            return None
        self._finish_member()
        pax: dict[str, str] = {}
        longname: bytes | None = None
        longlink: bytes | None = None
        extended = 0
        while True:
            block = self._block()
            if block is None:
                if pax or longname is not None or longlink is not None:
                    raise InputError(f"{self._what}: truncated after an extended header")
                self.ended = True
                return None
            if block == _ZERO_BLOCK:
                if pax or longname is not None or longlink is not None:
                    raise InputError(f"{self._what}: end of archive after an extended header")
                self._end_block()
                return None
            header_at = self.position - BLOCK
            try:
                stored = _number(block[148:156])
            except _BadNumber:
                stored = -1
            if not _checksum_ok(block, stored):
                raise InputError(
                    f"{self._what}: bad header checksum at byte {header_at}; "
                    "the data is not a tar archive or is corrupt"
                )
            typeflag = block[156:157]
            size = _parse_number(block[124:136], "size")
            if size < 0:
                raise InputError(f"{self._what}: negative member size at byte {header_at}")
            if typeflag in (PAX_HEADER, PAX_GLOBAL, GNU_LONGNAME, GNU_LONGLINK):
                extended += 1
                if extended > _MAX_EXT_PER_MEMBER:
                    raise InputError(
                        f"{self._what}: more than {_MAX_EXT_PER_MEMBER} extended headers before "
                        f"one member at byte {header_at}; refusing it"
                    )
            if typeflag == PAX_HEADER:
                pax = _parse_pax(self._read_special(size, MAX_PAX_SIZE, "PAX header"), self._what)
                continue
            if typeflag == PAX_GLOBAL:
                # Go's archive/tar returns a global header as a member of its own and nothing
                # applies it later: pending extended headers end here.
                self._read_special(size, MAX_PAX_SIZE, "PAX global header")
                pax, longname, longlink = {}, None, None
                continue
            if typeflag == GNU_LONGNAME:
                longname = _cstr(self._read_special(size, MAX_LONGNAME_SIZE, "GNU long name"))
                continue
            if typeflag == GNU_LONGLINK:
                longlink = _cstr(self._read_special(size, MAX_LONGNAME_SIZE, "GNU long link"))
                continue
            break
        self.members += 1
        if self.members > self._max_members:
            raise InputError(f"{self._what}: more than {self._max_members} members; refusing it")
        name = _decode(_header_name(block))
        linkname = _decode(_cstr(block[157:257]))
        owners = _has_owner_fields(block)
        dev = typeflag in (CHRTYPE, BLKTYPE)
        member = TarMember(
            name=name,
            typeflag=typeflag,
            mode=_parse_number(block[100:108], "mode") & 0o7777,
            uid=_parse_number(block[108:116], "uid"),
            gid=_parse_number(block[116:124], "gid"),
            mtime=_parse_number(block[136:148], "mtime"),
            size=size,
            linkname=linkname,
            uname=_decode(_cstr(block[265:297])) if owners else "",
            gname=_decode(_cstr(block[297:329])) if owners else "",
            devmajor=_parse_number(block[329:337], "devmajor") if owners and dev else 0,
            devminor=_parse_number(block[337:345], "devminor") if owners and dev else 0,
            offset=0,
        )
        if pax:
            _merge_pax(member, pax, self._what)
        if longname:
            member.name = _decode(longname)
        if longlink:
            member.linkname = _decode(longlink)
        if member.typeflag == AREGTYPE:
            member.typeflag = DIRTYPE if member.name.endswith("/") else REGTYPE
        if member.typeflag == SPARSETYPE:
            raise InputError(
                f"{self._what}: {member.name!r} is a GNU sparse member; sparse files are not "
                "accepted (re-create the archive without --sparse)"
            )
        if member.size < 0:
            raise InputError(f"{self._what}: negative size for {member.name!r}")
        has_data = member.has_data
        if member.size > self._max_member and has_data:
            raise InputError(
                f"{self._what}: member {member.name!r} is {member.size} bytes, over the "
                f"{self._max_member}-byte limit; refusing it"
            )
        member.offset = self.position
        self._left = member.size if has_data else 0
        self._pad = -self._left % BLOCK
        return member

    def drain(self) -> None:
        """Consume the rest of the stream (padding after the end-of-archive marker)."""
        self._finish_member()
        self._buf, self._bpos = b"", 0
        while self._pull(1 << 16):
            pass


def _merge_pax(m: TarMember, pax: dict[str, str], what: str) -> None:
    """Apply PAX records to a member as Go's archive/tar does (empty values keep the header's)."""
    for key, value in pax.items():
        if key.startswith("GNU.sparse."):
            raise InputError(
                f"{what}: {m.name!r} is a sparse member (PAX {key}); sparse files are not "
                "accepted (re-create the archive without --sparse)"
            )
        if not value:
            continue
        if key == "path":
            m.name = value
        elif key == "linkpath":
            m.linkname = value
        elif key == "uname":
            m.uname = value
        elif key == "gname":
            m.gname = value
        elif key in ("uid", "gid", "size"):
            raw = value.encode("utf-8", "surrogateescape")
            if not _DECIMAL.fullmatch(raw) or len(raw) > 20:
                raise InputError(f"{what}: PAX {key}={value[:40]!r} is not a number")
            number = int(raw)
            if not -(1 << 63) <= number < 1 << 63:
                raise InputError(f"{what}: PAX {key}={value[:40]!r} is out of range")
            setattr(m, key, number)
        elif key == "mtime":
            if not _PAX_TIME.fullmatch(value):
                raise InputError(f"{what}: PAX mtime={value[:40]!r} is not a time")
            m.mtime = int(value.split(".", 1)[0])


def _parse_pax(raw: bytes, what: str) -> dict[str, str]:
    """PAX records (``LEN key=value\n``) as Go's archive/tar parses them: the whole header
    must be records; keys without ``=`` or NUL; path-like values without NUL."""
    out: dict[str, str] = {}
    pos = 0
    end = len(raw)
    while pos < end:
        sp = raw.find(b" ", pos, min(end, pos + 21))
        if sp <= pos or not raw[pos:sp].isdigit():
            raise InputError(f"{what}: malformed PAX record at offset {pos}")
        length = int(raw[pos:sp])
        if length < 5 or pos + length > end or length <= sp - pos + 1:
            raise InputError(f"{what}: malformed PAX record length at offset {pos}")
        if raw[pos + length - 1] != 0x0A:
            raise InputError(f"{what}: PAX record at offset {pos} does not end in a newline")
        record = raw[sp + 1 : pos + length - 1]
        key, eq, value = record.partition(b"=")
        if not eq or not key or b"\0" in key:
            raise InputError(f"{what}: malformed PAX record at offset {pos}")
        if key in (b"path", b"linkpath", b"uname", b"gname") and b"\0" in value:
            raise InputError(f"{what}: PAX {key.decode()} record with a NUL byte")
        out[_decode(key)] = _decode(value)
        pos += length
    return out


def read_exact_from(stream: Readable, n: int) -> bytes:
    parts = []
    while n:
        chunk = stream.read(n)
        if not chunk:
            break
        parts.append(chunk)
        n -= len(chunk)
    return b"".join(parts)


class FileSlice:
    """A read-only window ``[offset, offset+size)`` of an open file (positional reads only, so
    several slices of one file can be read independently)."""

    def __init__(self, fh: BinaryIO, offset: int, size: int) -> None:
        self._fd = fh.fileno()
        self._pos = offset
        self._end = offset + size

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        left = self._end - self._pos
        if n is None or n < 0 or n > left:
            n = left
        if n <= 0:
            return b""
        data: bytes = os.pread(self._fd, n, self._pos)
        self._pos += len(data)
        return data

    def close(self) -> None:
        pass
