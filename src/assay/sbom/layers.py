"""Read image layers as streams into a ``MemoryFileView``, keeping only what catalogers want.

Each layer is decompressed on the fly (gzip, zstd or plain tar, detected from the first bytes),
walked once, and applied over the layers below it with OCI whiteout semantics: ``.wh.NAME``
deletes ``NAME`` (and everything below it) from lower layers, ``.wh..wh..opq`` empties its
directory of lower-layer content. Member names with ``..`` are refused (``InputError``).
Only wanted regular files keep their bytes; every symlink is kept so lookups resolve as in the
image. Nothing is written to disk.
"""

from __future__ import annotations

import types
import zlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

from assay.errors import InputError
from assay.sbom.fs import MAX_FILE_BYTES, MemoryFileView, Selection, as_selection, normalize_path

_zlib: types.ModuleType
try:  # ISA-L inflates about twice as fast as zlib; same API, optional
    from isal import isal_zlib as _zlib
except ImportError:  # pragma: no cover - depends on the platform's wheels
    _zlib = zlib
_ZLIB_ERRORS: tuple[type[BaseException], ...] = (zlib.error, _zlib.error)
_STREAM_ERRORS: tuple[type[BaseException], ...] = (EOFError, *_ZLIB_ERRORS)

__all__ = ["ChunkReader", "Readable", "apply_layer", "decompressed"]


class Readable(Protocol):
    """Anything with ``read(n)``: a file, a ``VerifyingReader``, a ``ChunkReader``."""

    def read(self, n: int = -1, /) -> bytes: ...


_CHUNK = 1 << 20
_WH = ".wh."
_OPAQUE = ".wh..wh..opq"
MAX_MEMBERS = 5_000_000  # per layer


class ChunkReader:
    """A minimal read-only file object over an iterator of byte chunks (e.g. a registry blob)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._it: Iterator[bytes] = iter(chunks)
        self._buf = b""
        self._eof = False

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            parts = [self._buf, *self._it]
            self._buf, self._eof = b"", True
            return b"".join(parts)
        while len(self._buf) < n and not self._eof:
            try:
                self._buf += next(self._it)
            except StopIteration:
                self._eof = True
        out, self._buf = self._buf[:n], self._buf[n:]
        return out

    def drain(self) -> None:
        """Read to the end (a verifying iterator checks its digest only there)."""
        self._buf = b""
        for _ in self._it:
            pass
        self._eof = True


class _Inflate:
    """gzip (possibly multi-member) → bytes, as a file object with ``read(n)``.

    ``read`` may return fewer bytes than asked (never more), like a raw stream; callers loop.
    Output per call is bounded, so a run of compressed zeros never becomes a gigabyte in
    memory at once (a "zip bomb" layer, or just a sparse file).
    """

    def __init__(self, raw: Readable, head: bytes) -> None:
        self._raw = raw
        self._pending = head
        self._d = _zlib.decompressobj(wbits=31)
        self._eof = False

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            parts = []
            while chunk := self.read(_CHUNK * 4):
                parts.append(chunk)
            return b"".join(parts)
        while not self._eof:
            if self._d.unconsumed_tail:
                data = self._d.unconsumed_tail
            else:
                data = self._pending or self._raw.read(_CHUNK)
                self._pending = b""
            if not data:
                if not self._d.eof:
                    raise InputError("layer is a truncated gzip stream; the blob is incomplete")
                self._eof = True
                break
            try:
                out: bytes = self._d.decompress(data, min(n, _CHUNK * 4) or 1)
                if self._d.eof and self._d.unused_data:
                    self._pending = self._d.unused_data
                    self._d = _zlib.decompressobj(wbits=31)
            except _ZLIB_ERRORS as exc:
                raise InputError(f"layer is not valid gzip: {exc}") from None
            if out:
                return out
        return b""


class _Prefixed:
    def __init__(self, raw: Readable, head: bytes) -> None:
        self._raw, self._head = raw, head

    def read(self, n: int = -1) -> bytes:
        if self._head:
            if n is None or n < 0:
                out, self._head = self._head + self._raw.read(), b""
                return out
            out, self._head = self._head[:n], self._head[n:]
            if len(out) < n:
                out += self._raw.read(n - len(out))
            return out
        return self._raw.read(n)


def decompressed(raw: Readable) -> Any:
    """Wrap a layer blob stream in the right decompressor, chosen by its magic bytes."""
    head = raw.read(4)
    if head[:2] == b"\x1f\x8b":
        return _Inflate(raw, head)
    if head == b"\x28\xb5\x2f\xfd":
        import zstandard

        return zstandard.ZstdDecompressor().stream_reader(_Prefixed(raw, head))  # type: ignore[arg-type]
    return _Prefixed(raw, head)


_MAX_PAX = 1 << 20
_MAX_LONGNAME = 64 << 10
_REG, _HARD, _SYM = (b"0", b"\0", b"7"), b"1", b"2"


class _Tar:
    """A minimal streaming tar reader: ustar/PAX/GNU headers, bounded, data skipped cheaply.

    ``tarfile`` in stream mode costs several times more per member; a layer of a large image
    has tens of thousands of members and catalogers want a few hundred of them.
    """

    def __init__(self, stream: Any) -> None:
        self._s = stream
        self._buf = b""
        self._pos = 0

    def _take(self, n: int) -> bytes:
        end = self._pos + n
        if end <= len(self._buf):
            out = self._buf[self._pos : end]
            self._pos = end
            return out
        parts = [self._buf[self._pos :]]
        have = len(parts[0])
        while have < n:
            chunk = self._s.read(max(n - have, _CHUNK))
            if not chunk:
                break
            parts.append(chunk)
            have += len(chunk)
        joined = b"".join(parts)
        self._buf, self._pos = joined, min(n, len(joined))
        return joined[:n]

    def _skip(self, n: int) -> None:
        avail = len(self._buf) - self._pos
        if n <= avail:
            self._pos += n
            return
        n -= avail
        self._buf, self._pos = b"", 0
        while n > 0:
            chunk = self._s.read(min(n, _CHUNK))
            if not chunk:
                raise InputError("layer tar is truncated (member data ends early)")
            n -= len(chunk)

    def _data(self, size: int, limit: int, what: str) -> bytes:
        if size > limit:
            raise InputError(f"layer tar: {what} of {size} bytes exceeds the {limit}-byte limit")
        data = self._take(size)
        if len(data) != size:
            raise InputError("layer tar is truncated (member data ends early)")
        self._skip(-size % 512)
        return data

    def members(self, wants: Callable[[str], bool]) -> Iterator[tuple[str, bytes, str, bytes]]:
        """Yield (path, type flag, link target, data); data only for wanted regular files."""
        pax: dict[str, str] = {}
        long_name = long_link = ""
        while True:
            block = self._take(512)
            if len(block) < 512:
                if not block:
                    return  # no end-of-archive blocks: accepted, as GNU tar does
                raise InputError("layer tar is truncated (partial header)")
            if block == b"\0" * 512:
                return
            try:
                chksum = int(block[148:156].rstrip(b" \0").decode() or "0", 8)
            except ValueError:
                raise InputError("layer is not a tar archive (bad header checksum field)") from None
            if chksum != sum(block[:148]) + 256 + sum(block[156:]):
                raise InputError("layer is not a tar archive (header checksum mismatch)")
            size = _number(block[124:136])
            flag = block[156:157]
            if flag in (b"x", b"g"):
                raw = self._data(size, _MAX_PAX, "PAX header")
                if flag == b"x":
                    pax = _parse_pax(raw)
                continue
            if flag in (b"L", b"K"):
                value = self._data(size, _MAX_LONGNAME, "GNU long name").rstrip(b"\0")
                if flag == b"L":
                    long_name = value.decode("utf-8", "surrogateescape")
                else:
                    long_link = value.decode("utf-8", "surrogateescape")
                continue
            name = block[0:100].split(b"\0", 1)[0]
            if block[257:262] == b"ustar":
                prefix = block[345:500].split(b"\0", 1)[0]
                if prefix:
                    name = prefix + b"/" + name
            path = pax.get("path") or long_name or name.decode("utf-8", "surrogateescape")
            link = (
                pax.get("linkpath")
                or long_link
                or block[157:257].split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
            )
            if "size" in pax:
                try:
                    size = int(pax["size"])
                except ValueError:
                    raise InputError("layer tar: PAX size is not a number") from None
            pax, long_name, long_link = {}, "", ""
            if size < 0:
                raise InputError("layer tar: negative member size")
            if flag == b"\0" and path.endswith("/"):
                flag = b"5"
            norm = normalize_path(path)
            if flag in _REG and norm and wants(norm):
                yield norm, b"0", link, self._data(size, MAX_FILE_BYTES, f"/{norm}")
                continue
            if flag in (_HARD, _SYM, b"5", b"3", b"4", b"6"):
                size = 0 if flag != b"0" else size  # these carry no data
            self._skip(size + (-size % 512))
            yield norm, b"0" if flag in _REG else flag, link, b""


def _number(field: bytes) -> int:
    if field and field[0] & 0x80:  # GNU base-256
        value = int.from_bytes(field[1:], "big")
        return -value if field[0] & 0x40 else value
    text = field.split(b"\0", 1)[0].strip()
    try:
        return int(text or b"0", 8)
    except ValueError:
        raise InputError(f"layer tar: bad number field {field!r}") from None


def _parse_pax(raw: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    pos = 0
    while pos < len(raw):
        space = raw.find(b" ", pos)
        if space < 0:
            break
        try:
            length = int(raw[pos:space])
        except ValueError:
            raise InputError("layer tar: malformed PAX record") from None
        if length <= 0 or pos + length > len(raw):
            raise InputError("layer tar: malformed PAX record length")
        record = raw[space + 1 : pos + length - 1]
        key, _, value = record.partition(b"=")
        out[key.decode("utf-8", "replace")] = value.decode("utf-8", "surrogateescape")
        pos += length
    return out


def apply_layer(
    view: MemoryFileView, stream: Any, select: Selection | Callable[[str], bool]
) -> None:
    """Walk one (decompressed) layer tar and apply it over ``view``."""
    selection = as_selection(select)
    wants = selection.wants
    files: dict[str, bytes] = {}
    links: dict[str, str] = {}
    hardlinks: dict[str, str] = {}
    replaced: list[str] = []
    whiteouts: list[str] = []
    opaque: list[str] = []
    count = 0
    try:
        for path, flag, link, data in _Tar(stream).members(wants):
            count += 1
            if count > MAX_MEMBERS:
                raise InputError(f"layer has more than {MAX_MEMBERS} entries; refusing it")
            if not path:
                continue
            base = path.rsplit("/", 1)[-1]
            if base.startswith(_WH):
                parent = path[: -len(base)].rstrip("/")
                if base == _OPAQUE:
                    opaque.append(parent)
                else:
                    target = base[len(_WH) :]
                    whiteouts.append(f"{parent}/{target}" if parent else target)
                continue
            if flag == _SYM:
                links[path] = link
            elif flag == b"0":
                if wants(path):
                    files[path] = selection.reduce(path, data)
                else:
                    replaced.append(path)
            elif flag == _HARD:
                hardlinks[path] = normalize_path(link)
            else:
                replaced.append(path)
    except _STREAM_ERRORS as exc:
        raise InputError(f"layer stream is truncated or corrupt: {exc}") from None
    # Whiteouts hide lower layers only; this layer's own entries are applied afterwards.
    for directory in opaque:
        view.remove_below(directory)
    for path in whiteouts:
        view.remove(path)
    for path in replaced:
        view.discard(path)
    for path, target in links.items():
        view.add_symlink(path, target)
    for path, data in files.items():
        view.add_file(path, data)
    for path, target in hardlinks.items():
        if wants(path):
            linked = files.get(target, view.files.get(target))
            if linked is not None:
                view.add_file(path, linked)
        else:
            view.discard(path)
