"""A small tar codec: a deterministic USTAR/PAX writer and a bounded streaming reader.

Written for assay's needs rather than wrapping ``tarfile``: the writer controls every header
byte (so layer digests do not depend on the Python version) and uses PAX records only when a
value does not fit USTAR; the reader bounds every size it reads (PAX records, GNU long names,
member sizes) before allocating, and never touches the filesystem. Path policy (``..``,
absolute paths, whiteouts, symlinks) lives in the callers (``layer.py``, ``archive.py``).
"""

from __future__ import annotations

import os
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


def _parse_number(field: bytes, what: str) -> int:
    if field and field[0] & 0x80:
        # GNU base-256: big-endian two's complement.
        value = (
            int.from_bytes(field, "big", signed=field[0] == 0xFF)
            if field[0] == 0xFF
            else (int.from_bytes(bytes([field[0] & 0x7F]) + field[1:], "big"))
        )
        return value
    text = field.split(b"\0", 1)[0].strip(b" \0")
    if not text:
        return 0
    try:
        return int(text, 8)
    except ValueError:
        raise InputError(
            f"corrupt tar header: {what} field {text[:20]!r} is not a number"
        ) from None


def _signed_checksum(block: bytes) -> int:
    """The header checksum as some old tar writers computed it (bytes as signed chars)."""
    high = sum(1 for b in block[:148] + block[156:] if b > 127)
    return sum(block) - sum(block[148:156]) + 256 - 256 * high


def _cstr(field: bytes) -> bytes:
    return field.split(b"\0", 1)[0]


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


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
        self.position = 0
        self.members = 0
        self._left = 0  # data bytes left in the current member
        self._pad = 0
        self.ended = False

    def _read_exact(self, n: int) -> bytes:
        parts = []
        need = n
        while need:
            chunk = self._s.read(need)
            if not chunk:
                break
            parts.append(chunk)
            need -= len(chunk)
        data = b"".join(parts)
        self.position += len(data)
        if self.position > self._max_total:
            raise InputError(
                f"{self._what}: more than {self._max_total} bytes uncompressed; refusing it "
                "(raise the limit if the image is really this large)"
            )
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
        while n:
            chunk = self._read_exact(min(n, 1 << 20))
            if not chunk:
                raise InputError(f"{self._what}: truncated (ends inside a member's data)")
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

    def _finish_member(self) -> None:
        self._skip(self._left + self._pad)
        self._left = self._pad = 0

    def _read_special(self, size: int, limit: int, kind: str) -> bytes:
        if size > limit:
            raise InputError(f"{self._what}: {kind} of {size} bytes is over the {limit}-byte limit")
        data = self._read_exact(size)
        if len(data) != size:
            raise InputError(f"{self._what}: truncated inside a {kind}")
        self._skip(-size % BLOCK)
        return data

    def next(self) -> TarMember | None:
        if self.ended:
            return None
        self._finish_member()
        pax: dict[str, str] = {}
        longname: bytes | None = None
        longlink: bytes | None = None
        while True:
            block = self._block()
            if block is None:
                # EOF without end-of-archive blocks: accepted (many writers omit them) only
                # when no extended header is pending.
                if pax or longname is not None or longlink is not None:
                    raise InputError(f"{self._what}: truncated after an extended header")
                self.ended = True
                return None
            if block == _ZERO_BLOCK:
                self.ended = True
                return None
            header_at = self.position - BLOCK
            try:
                stored = _parse_number(block[148:156], "checksum")
            except InputError:
                stored = -1
            unsigned = sum(block) - sum(block[148:156]) + 256
            if stored != unsigned and stored != _signed_checksum(block):
                raise InputError(
                    f"{self._what}: bad header checksum at byte {header_at}; "
                    "the data is not a tar archive or is corrupt"
                )
            typeflag = block[156:157]
            size = _parse_number(block[124:136], "size")
            if size < 0:
                raise InputError(f"{self._what}: negative member size at byte {header_at}")
            if typeflag in (PAX_HEADER, PAX_GLOBAL):
                raw = self._read_special(size, MAX_PAX_SIZE, "PAX header")
                if typeflag == PAX_HEADER:
                    pax.update(_parse_pax(raw, self._what))
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
        magic = block[257:263]
        name_b = _cstr(block[0:100])
        if magic == b"ustar\x00":
            prefix = _cstr(block[345:500])
            if prefix:
                name_b = prefix + b"/" + name_b
        name = _decode(longname) if longname is not None else _decode(name_b)
        linkname = _decode(longlink) if longlink is not None else _decode(_cstr(block[157:257]))
        member = TarMember(
            name=pax.get("path", name),
            typeflag=typeflag,
            mode=_parse_number(block[100:108], "mode") & 0o7777,
            uid=_pax_int(pax, "uid") if "uid" in pax else _parse_number(block[108:116], "uid"),
            gid=_pax_int(pax, "gid") if "gid" in pax else _parse_number(block[116:124], "gid"),
            mtime=_pax_int(pax, "mtime")
            if "mtime" in pax
            else _parse_number(block[136:148], "mtime"),
            size=_pax_int(pax, "size") if "size" in pax else size,
            linkname=pax.get("linkpath", linkname),
            uname=pax.get("uname", _decode(_cstr(block[265:297]))),
            gname=pax.get("gname", _decode(_cstr(block[297:329]))),
            devmajor=_parse_number(block[329:337], "devmajor"),
            devminor=_parse_number(block[337:345], "devminor"),
            offset=self.position,
        )
        if member.size < 0:
            raise InputError(f"{self._what}: negative size for {member.name!r}")
        has_data = typeflag in (REGTYPE, AREGTYPE, CONTTYPE) or typeflag not in (
            LNKTYPE,
            SYMTYPE,
            CHRTYPE,
            BLKTYPE,
            DIRTYPE,
            FIFOTYPE,
        )
        if member.size > self._max_member and has_data:
            raise InputError(
                f"{self._what}: member {member.name!r} is {member.size} bytes, over the "
                f"{self._max_member}-byte limit; refusing it"
            )
        self._left = member.size if has_data else 0
        self._pad = -self._left % BLOCK
        return member

    def drain(self) -> None:
        """Consume the rest of the stream (padding after the end-of-archive marker)."""
        self._finish_member()
        while self._read_exact(1 << 16):
            pass


def _pax_int(pax: dict[str, str], key: str) -> int:
    value = pax[key]
    try:
        return int(float(value)) if key == "mtime" else int(value)
    except ValueError:
        raise InputError(f"PAX header: {key}={value[:40]!r} is not a number") from None


def _parse_pax(raw: bytes, what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    pos = 0
    while pos < len(raw):
        if raw[pos:] == b"\0" * (len(raw) - pos):
            break
        sp = raw.find(b" ", pos, pos + 20)
        if sp < 0:
            raise InputError(f"{what}: malformed PAX record at offset {pos}")
        try:
            length = int(raw[pos:sp])
        except ValueError:
            raise InputError(f"{what}: malformed PAX record length at offset {pos}") from None
        if length <= sp - pos + 1 or pos + length > len(raw) or raw[pos + length - 1] != 0x0A:
            raise InputError(f"{what}: malformed PAX record at offset {pos}")
        record = raw[sp + 1 : pos + length - 1]
        key, eq, value = record.partition(b"=")
        if not eq:
            raise InputError(f"{what}: PAX record without '=' at offset {pos}")
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
