"""Read image layers as streams into a ``MemoryFileView``, keeping only what catalogers want.

Each layer is decompressed on the fly (gzip, zstd or plain tar, detected from the first bytes),
walked once, and applied over the layers below it with OCI whiteout semantics: ``.wh.NAME``
deletes ``NAME`` (and everything below it) from lower layers, ``.wh..wh..opq`` empties its
directory of lower-layer content. Member names with ``..`` are refused (``InputError``).
Only wanted regular files keep their bytes; every symlink is kept so lookups resolve as in the
image. Nothing is written to disk.
"""

from __future__ import annotations

import tarfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any

from assay.errors import InputError
from assay.sbom.fs import MAX_FILE_BYTES, MemoryFileView, normalize_path

__all__ = ["ChunkReader", "apply_layer", "decompressed"]

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
    """gzip (possibly multi-member) → bytes, as a file object with ``read(n)``."""

    def __init__(self, raw: IO[bytes] | ChunkReader, head: bytes) -> None:
        self._raw = raw
        self._pending = head
        self._d = zlib.decompressobj(wbits=31)
        self._out = bytearray()
        self._eof = False

    def _fill(self, n: int) -> None:
        while len(self._out) < n and not self._eof:
            data = self._pending or self._raw.read(_CHUNK)
            self._pending = b""
            if not data:
                if not self._d.eof and self._d.unconsumed_tail == b"":
                    raise InputError("layer is a truncated gzip stream; the blob is incomplete")
                self._eof = True
                break
            try:
                self._out += self._d.decompress(data)
                while self._d.eof and self._d.unused_data:
                    rest = self._d.unused_data
                    self._d = zlib.decompressobj(wbits=31)
                    self._out += self._d.decompress(rest)
            except zlib.error as exc:
                raise InputError(f"layer is not valid gzip: {exc}") from None

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            self._fill(1 << 62)
            out = bytes(self._out)
            self._out.clear()
            return out
        self._fill(n)
        out = bytes(self._out[:n])
        del self._out[:n]
        return out


class _Prefixed:
    def __init__(self, raw: IO[bytes] | ChunkReader, head: bytes) -> None:
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


def decompressed(raw: IO[bytes] | ChunkReader) -> Any:
    """Wrap a layer blob stream in the right decompressor, chosen by its magic bytes."""
    head = raw.read(4)
    if head[:2] == b"\x1f\x8b":
        return _Inflate(raw, head)
    if head == b"\x28\xb5\x2f\xfd":
        import zstandard

        return zstandard.ZstdDecompressor().stream_reader(_Prefixed(raw, head))  # type: ignore[arg-type]
    return _Prefixed(raw, head)


def apply_layer(view: MemoryFileView, stream: Any, wants: Callable[[str], bool]) -> None:
    """Walk one (decompressed) layer tar and apply it over ``view``."""
    files: dict[str, bytes] = {}
    links: dict[str, str] = {}
    hardlinks: dict[str, str] = {}
    replaced: list[str] = []
    whiteouts: list[str] = []
    opaque: list[str] = []
    count = 0
    try:
        tar = tarfile.open(fileobj=stream, mode="r|", bufsize=_CHUNK)  # noqa: SIM115
        for member in tar:
            count += 1
            if count > MAX_MEMBERS:
                raise InputError(f"layer has more than {MAX_MEMBERS} entries; refusing it")
            if count % 2048 == 0:
                tar.members = []  # type: ignore[attr-defined]  # stream mode would otherwise keep every header in memory
            path = normalize_path(member.name)
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
            if member.issym():
                links[path] = member.linkname
            elif member.isreg():
                if wants(path):
                    if member.size > MAX_FILE_BYTES:
                        raise InputError(
                            f"layer member /{path} is {member.size} bytes, over the "
                            f"{MAX_FILE_BYTES}-byte limit for package metadata"
                        )
                    fh = tar.extractfile(member)
                    files[path] = fh.read() if fh is not None else b""
                else:
                    replaced.append(path)
            elif member.islnk():
                hardlinks[path] = normalize_path(member.linkname)
            else:
                replaced.append(path)
    except tarfile.TarError as exc:
        raise InputError(f"layer is not a valid tar archive: {exc}") from None
    except (EOFError, zlib.error) as exc:
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
