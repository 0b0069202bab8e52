"""Image layers: a deterministic writer, a hostile-input-safe streaming reader, and merging.

``write_layer`` turns ``Entry`` values into a compressed layer blob whose digest depends only
on the entries and SOURCE_DATE_EPOCH: entries sorted by path (parents first), mtimes clamped,
owner names normalised, no atime/ctime, hardlinks kept, USTAR headers with PAX records only when
a value does not fit, gzip without name or timestamp at a fixed level (or zstd at a fixed
level). The tar stream is hashed (diff_id) and compressed in one pass to a temp file.

``read_layer`` streams a gzip/zstd/plain layer and yields ``Entry`` values; it is the one
reader for every tar from outside (layers, and through ``read_tar`` the members of .debs). It
verifies the blob digest (when given a ``VerifyingReader``) and the diff_id at the end of the
stream, and refuses ``..`` components, hardlinks to anything not earlier in the same layer,
over-large members, sparse and unknown member types, truncated or corrupt gzip. Device nodes and
FIFOs are reported as entries (never materialised by assay) unless told to refuse or skip them.
Leading ``/`` and ``./`` are normalised away (tar writers differ there; no path ever leaves the
root after normalisation); pass ``allow_absolute=False`` to refuse ``/`` instead. Whiteouts come
out as ``EntryType.WHITEOUT`` / ``EntryType.OPAQUE`` entries. Only wanted files keep their
content in memory (``want_data``, within a ``DataBudget`` checked before reading); ``sink``
streams content elsewhere instead.

``apply_layers`` merges layers into one filesystem view as a runtime applies them: whiteouts,
symlinked parent directories and hardlinks resolved inside the root.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import types
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, BinaryIO, Literal, cast

import zstandard

from assay.errors import InputError, UsageError
from assay.oci import _tar
from assay.oci import mediatypes as mt
from assay.oci._pgzip import ParallelGzip
from assay.oci._zstdframes import ZstdFrames
from assay.oci.digest import Digest, DigestingWriter, Readable, VerifyingReader, digest_hex
from assay.oci.entry import Entry, EntryType

__all__ = [
    "DEFAULT_GZIP_LEVEL",
    "DEFAULT_ZSTD_LEVEL",
    "DataBudget",
    "LayerBlob",
    "apply_layers",
    "decompressed",
    "read_layer",
    "read_tar",
    "sort_key",
    "write_layer",
    "write_tar",
]

DEFAULT_GZIP_LEVEL = 6  # gzip's own default; 9 is ~6x slower for ~1.5% smaller layers
DEFAULT_ZSTD_LEVEL = 9  # ~15% smaller than gzip -6 in about the same time
MAX_MEMBER_SIZE = 4 << 30
MAX_LAYER_SIZE = 64 << 30
MAX_MEMBERS = 2_000_000
# Paths one merged image view may hold (files, directories, links of every layer): each costs
# about 1 KB while layers are merged, and a 10 MB gzip layer can name 800,000 empty files.
MAX_IMAGE_ENTRIES = 300_000
_MAX_ENTRIES_ENV = "ASSAY_MAX_IMAGE_ENTRIES"
_FLUSH = 1 << 20

Compression = Literal["gzip", "zstd", "none"]
DevicePolicy = Literal["refuse", "skip", "report"]

_zlib: types.ModuleType
try:  # ISA-L inflates about twice as fast as zlib; same API, optional
    from isal import isal_zlib as _zlib
except ImportError:  # pragma: no cover - depends on the platform's wheels
    _zlib = zlib
_ZLIB_ERRORS: tuple[type[BaseException], ...] = (zlib.error, _zlib.error)

_WH = ".wh."
_OPQ = ".wh..wh..opq"


@dataclass(frozen=True)
class LayerBlob:
    path: Path  # the compressed blob on disk
    digest: Digest  # of the compressed blob
    size: int  # of the compressed blob
    diff_id: Digest  # of the uncompressed tar
    media_type: str
    uncompressed_size: int
    entries: int = 0


def sort_key(path: str) -> tuple[str, ...]:
    """Order paths so that a directory comes right before its children."""
    return tuple(path.split("/"))


def _check_path(path: str) -> None:
    if (
        not path
        or path.startswith("/")
        or path.endswith("/")
        or "\0" in path
        or any(c in ("", ".", "..") for c in path.split("/"))
    ):
        raise InputError(
            f"invalid layer path {path!r}: must be relative, without '.', '..' or empty "
            "components and without a trailing '/'"
        )


def _tar_name(e: Entry) -> str:
    if e.type is EntryType.WHITEOUT:
        head, _, base = e.path.rpartition("/")
        return f"{head}/{_WH}{base}" if head else f"{_WH}{base}"
    if e.type is EntryType.OPAQUE:
        return f"{e.path}/{_OPQ}" if e.path else _OPQ
    return e.path


def _prepare(entries: Iterable[Entry], epoch: int) -> list[Entry]:
    """Validate, deduplicate directories, canonicalise hardlink groups, sort."""
    by_path: dict[str, Entry] = {}
    for e in entries:
        if e.type is EntryType.OPAQUE and e.path == "":
            pass
        else:
            _check_path(e.path)
        if e.type in (EntryType.CHAR, EntryType.BLOCK, EntryType.FIFO):
            raise InputError(
                f"{e.path}: assay does not write device nodes or FIFOs into images"
                + (f" (from {e.owner})" if e.owner else "")
            )
        mtime = max(0, min(e.mtime, epoch))
        if mtime != e.mtime:
            e = replace(e, mtime=mtime)
        key = _tar_name(e)
        old = by_path.get(key)
        if old is not None:
            if (
                old.type is EntryType.DIR
                and e.type is EntryType.DIR
                and (old.mode, old.uid, old.gid) == (e.mode, e.uid, e.gid)
            ):
                if e.mtime > old.mtime:
                    by_path[key] = e
                continue
            raise InputError(
                f"duplicate path {e.path!r} in one layer"
                + (f" (from {old.owner or 'generated'} and {e.owner or 'generated'})")
                + "; resolve the conflict before writing the layer"
            )
        by_path[key] = e

    # Hardlinks: every group (a file plus the links to it) is written with the first path in
    # sort order as the file, so the target always precedes its links in the archive.
    def root_of(e: Entry) -> Entry:
        seen = 0
        while e.type is EntryType.HARDLINK:
            target = by_path.get(e.link)
            if target is None or target.type not in (EntryType.FILE, EntryType.HARDLINK):
                raise InputError(
                    f"hardlink {e.path!r} points to {e.link!r}, which is not a regular file in "
                    "this layer"
                )
            e = target
            seen += 1
            if seen > 64:
                raise InputError(f"hardlink loop at {e.path!r}")
        return e

    groups: dict[str, list[str]] = {}
    for key, e in by_path.items():
        if e.type is EntryType.HARDLINK:
            groups.setdefault(root_of(e).path, []).append(key)
    for root_path, links in groups.items():
        root = by_path[root_path]
        members = sorted([root_path, *links], key=sort_key)
        carrier = members[0]
        by_path[carrier] = replace(root, path=carrier, owner=by_path[carrier].owner)
        for p in members[1:]:
            by_path[p] = Entry(
                path=p,
                type=EntryType.HARDLINK,
                mode=root.mode,
                uid=root.uid,
                gid=root.gid,
                mtime=root.mtime,
                link=carrier,
                owner=by_path[p].owner,
            )
    return [by_path[k] for k in sorted(by_path, key=sort_key)]


def _owner_name(uid: int) -> str:
    return "root" if uid == 0 else ""


def write_tar(entries: Iterable[Entry], out: _tar.Writable, *, source_date_epoch: int) -> int:
    """Write ``entries`` as a deterministic tar stream to ``out``; return the member count."""
    tw = _tar.TarWriter(out)
    n = 0
    for e in _prepare(entries, source_date_epoch):
        name = _tar_name(e)
        mode = e.mode & 0o7777
        data: bytes | None = None
        link = ""
        if e.type is EntryType.FILE:
            flag, data = _tar.REGTYPE, e.data
        elif e.type is EntryType.DIR:
            flag, name = _tar.DIRTYPE, name + "/"
        elif e.type is EntryType.SYMLINK:
            if not e.link:
                raise InputError(f"symlink {e.path!r} has an empty target")
            flag, link, mode = _tar.SYMTYPE, e.link, mode or 0o777
        elif e.type is EntryType.HARDLINK:
            flag, link = _tar.LNKTYPE, e.link
        else:  # whiteout / opaque marker: an empty file owned by root
            tw.add(name, _tar.REGTYPE, mode=0, mtime=e.mtime)
            n += 1
            continue
        tw.add(
            name,
            flag,
            mode=mode,
            uid=e.uid,
            gid=e.gid,
            mtime=e.mtime,
            size=len(data) if data is not None else 0,
            linkname=link,
            uname=_owner_name(e.uid),
            gname=_owner_name(e.gid),
            data=data,
        )
        n += 1
    tw.close()
    return n


class _Buffered:
    """Collect small writes and hand them on in ~1 MiB chunks."""

    def __init__(self, sink: Callable[[bytes], None]) -> None:
        self._sink = sink
        self._parts: list[bytes] = []
        self._size = 0

    def write(self, data: bytes) -> int:
        self._parts.append(data)
        self._size += len(data)
        if self._size >= _FLUSH:
            self.flush()
        return len(data)

    def flush(self) -> None:
        if self._parts:
            self._sink(b"".join(self._parts))
            self._parts.clear()
            self._size = 0


def _nothing() -> None:
    pass


def write_layer(
    entries: Iterable[Entry],
    dest_dir: Path,
    *,
    source_date_epoch: int,
    compression: Compression = "gzip",
    level: int | None = None,
    workers: int | None = None,
) -> LayerBlob:
    """Write a deterministic layer blob into ``dest_dir`` (named by its digest).

    The same entries (in any order) and epoch always give the same digest. ``level`` defaults to
    ``DEFAULT_GZIP_LEVEL`` / ``DEFAULT_ZSTD_LEVEL``; it is part of what makes the digest, so
    callers that promise reproducibility must keep it fixed. ``workers`` (gzip only; default:
    the usable CPUs, at most 8) changes the speed, never the bytes.
    """
    if source_date_epoch < 0:
        raise ValueError("source_date_epoch must not be negative")
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-layer-", dir=dest_dir)
    cleanup: Callable[[], None] = _nothing
    try:
        with os.fdopen(fd, "wb") as fh:
            blob = DigestingWriter(fh)
            diff = DigestingWriter(None)
            compress: Callable[[bytes], bytes]
            finish: Callable[[], bytes]
            if compression == "gzip":
                lvl = DEFAULT_GZIP_LEVEL if level is None else level
                # One gzip member, no name, mtime 0, fixed OS byte, 1 MiB blocks on all cores.
                pgz = ParallelGzip(lvl, workers)
                cleanup = pgz.close
                compress, finish = pgz.compress, pgz.flush
                media_type, suffix = mt.OCI_LAYER_GZIP, ".tar.gz"
            elif compression == "zstd":
                lvl = DEFAULT_ZSTD_LEVEL if level is None else level
                zc = zstandard.ZstdCompressor(
                    level=lvl, write_checksum=True, write_content_size=False, threads=0
                ).compressobj()
                compress, finish = zc.compress, zc.flush
                media_type, suffix = mt.OCI_LAYER_ZSTD, ".tar.zst"
            elif compression == "none":
                compress, finish = bytes, bytes
                media_type, suffix = mt.OCI_LAYER_TAR, ".tar"
            else:
                raise ValueError(f"unknown compression {compression!r}")

            def sink(chunk: bytes) -> None:
                diff.write(chunk)
                out = compress(chunk)
                if out:
                    blob.write(out)

            buf = _Buffered(sink)
            count = write_tar(entries, buf, source_date_epoch=source_date_epoch)
            buf.flush()
            tail = finish()
            if tail:
                blob.write(tail)
            fh.flush()
            os.fsync(fh.fileno())
        final = dest_dir / (digest_hex(blob.digest) + suffix)
        os.chmod(tmp, 0o644)
        os.replace(tmp, final)
    except BaseException:
        cleanup()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return LayerBlob(
        path=final,
        digest=blob.digest,
        size=blob.size,
        diff_id=diff.digest,
        media_type=media_type,
        uncompressed_size=diff.size,
        entries=count,
    )


# ---------------------------------------------------------------------------------------------
# Reading


class _Prefixed:
    """A stream that first returns ``head``, then reads from ``raw``."""

    def __init__(self, head: bytes, raw: Readable) -> None:
        self._head = head
        self._raw = raw

    def read(self, n: int = -1) -> bytes:
        if self._head:
            if n < 0 or n >= len(self._head):
                head, self._head = self._head, b""
                if n < 0:
                    return head + self._raw.read()
                return head
            head, self._head = self._head[:n], self._head[n:]
            return head
        return self._raw.read(n)

    def readable(self) -> bool:
        return True


_INFLATE_OUT = 4 << 20


class _Inflate:
    """gzip (possibly several members) → bytes, with ``read(n)``; output per call bounded.

    A stream that ends before a gzip member's end is an ``InputError`` (a truncated blob),
    as is corrupt deflate data. ISA-L inflates about twice as fast as zlib when present.
    """

    def __init__(self, raw: Readable, head: bytes, what: str) -> None:
        self._raw = raw
        self._pending = head
        self._what = what
        self._d: Any = None  # the current member's decompressor; None between members
        self._eof = False

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            parts = []
            while chunk := self.read(_INFLATE_OUT):
                parts.append(chunk)
            return b"".join(parts)
        while not self._eof:
            if self._d is not None and self._d.unconsumed_tail:
                data = self._d.unconsumed_tail
            else:
                data = self._pending or self._raw.read(1 << 20)
                self._pending = b""
            if not data:
                if self._d is not None:
                    raise InputError(
                        f"{self._what}: truncated gzip stream (the blob ends inside compressed "
                        "data); re-fetch or rebuild the layer"
                    )
                self._eof = True
                break
            if self._d is None:
                if not data.strip(b"\0"):
                    continue  # NUL padding between or after members (as gzip -d accepts)
                self._d = _zlib.decompressobj(wbits=31)
            try:
                out: bytes = self._d.decompress(data, min(n, _INFLATE_OUT) or 1)
            except _ZLIB_ERRORS as exc:
                raise InputError(f"{self._what}: corrupt gzip data: {exc}") from None
            if self._d.eof:
                self._pending = self._d.unused_data
                self._d = None
            if out:
                return out
        return b""


class _Guarded:
    """Turn decompressor exceptions into InputError."""

    def __init__(
        self,
        inner: _tar.Readable,
        kind: str,
        what: str,
        at_end: Callable[[], None] | None = None,
    ) -> None:
        self._inner = inner
        self._kind = kind
        self._what = what
        self._at_end = at_end

    def read(self, n: int = -1) -> bytes:
        try:
            data = self._inner.read(n)
        except (OSError, EOFError, zlib.error, zstandard.ZstdError) as e:
            raise InputError(f"{self._what}: corrupt {self._kind} data: {e}") from None
        if not data and n != 0 and self._at_end is not None:
            self._at_end()
        return data


def decompressed(stream: Readable, media_type: str = "", what: str = "layer") -> _tar.Readable:
    """The uncompressed tar of a layer blob: gzip, zstd or plain, chosen by its first bytes.

    ``media_type``, when given, must be a layer type. Output per ``read`` is bounded, so a
    run of compressed zeros never becomes a gigabyte in memory at once.
    """
    if media_type and mt.layer_compression(media_type) is None:
        raise InputError(f"{what}: media type {media_type!r} is not a layer type assay can read")
    head = _tar.read_exact_from(stream, 4)
    if head[:2] == b"\x1f\x8b":
        return _Inflate(stream, head, what)
    raw = _Prefixed(head, stream)
    if head == b"\x28\xb5\x2f\xfd":
        frames = ZstdFrames(raw, what)
        reader = zstandard.ZstdDecompressor().stream_reader(
            cast(BinaryIO, frames), read_across_frames=True, closefd=False
        )
        return _Guarded(reader, "zstd", what, at_end=frames.check_complete)
    return raw


class DataBudget:
    """How many bytes of file content a reader may still keep in memory (shared by layers).

    Checked against a member's size *before* its data is read.
    """

    def __init__(self, limit: int, per_file: int) -> None:
        self.limit = limit
        self.per_file = per_file
        self.used = 0

    def take(self, size: int, what: str, path: str) -> None:
        if size > self.per_file:
            raise InputError(
                f"{what}: {path!r} is {size} bytes, over the {self.per_file}-byte limit for a "
                "file assay reads; the image looks malformed or hostile"
            )
        if self.used + size > self.limit:
            raise InputError(
                f"{what}: the files assay needs to read exceed {self.limit} bytes in total at "
                f"{path!r}; refusing the image (it looks malformed or hostile)"
            )
        self.used += size


def _normalise(name: str, *, allow_absolute: bool, what: str, kind: str = "path") -> str:
    if name.startswith("/") and not allow_absolute:
        raise InputError(f"{what}: absolute {kind} {name!r} refused")
    if "\0" in name:
        raise InputError(f"{what}: {kind} {name!r} contains a NUL byte; refusing it")
    if "/." not in name and "//" not in name and not name.startswith(("/", ".")):
        return name[:-1] if name.endswith("/") else name  # the common case, already clean
    parts = []
    for c in name.split("/"):
        if c in ("", "."):
            continue
        if c == "..":
            raise InputError(f"{what}: {kind} {name!r} has a '..' component; refusing it")
        parts.append(c)
    return "/".join(parts)


Sink = Callable[[str, int], Callable[[bytes], object] | None]


def read_tar(
    stream: _tar.Readable,
    *,
    what: str = "layer",
    allow_absolute: bool = True,
    devices: DevicePolicy = "report",
    want_data: Callable[[str], bool] | None = None,
    max_member_size: int = MAX_MEMBER_SIZE,
    max_total_size: int = MAX_LAYER_SIZE,
    max_members: int = MAX_MEMBERS,
    whiteouts: bool = True,
    budget: DataBudget | None = None,
    sink: Sink | None = None,
    strict_links: bool = False,
    owner: str = "",
) -> Iterator[Entry]:
    """Yield the entries of an uncompressed tar stream (see the module docstring).

    ``want_data(path)`` decides whose content is kept in memory (default: every file); skipped
    files come with ``data=b""`` and ``content_size`` set. ``budget`` bounds the kept content
    (checked before reading). ``sink(path, size)`` may instead return a write function that
    receives the content in chunks (nothing kept). ``whiteouts=False`` treats ``.wh.`` names as
    ordinary files (for archives that are not image layers, e.g. a .deb's data.tar).

    A hardlink must name a regular file earlier in the same archive (by its name in the
    archive; ``apply_layers`` checks it again after resolving symlinked parent directories).
    With ``strict_links`` (the default for non-layers, e.g. .debs) no member may be written
    through a symlink of the same archive; image layers may (the merge resolves it inside the
    root, as a runtime does).
    """
    tr = _tar.TarReader(
        stream,
        max_member_size=max_member_size,
        max_total_size=max_total_size,
        max_members=max_members,
        what=what,
    )
    files: set[str] = set()  # regular files (and hardlinks) seen so far
    symlinks: set[str] = set()

    while (m := tr.next()) is not None:
        path = _normalise(m.name, allow_absolute=allow_absolute, what=what)
        t = m.typeflag
        if strict_links and symlinks:
            parts = path.split("/")
            for i in range(1, len(parts)):
                parent = "/".join(parts[:i])
                if parent in symlinks:
                    raise InputError(
                        f"{what}: {path!r} would be written through the symlink {parent!r} of "
                        "the same archive; refusing it"
                    )
        if not path:
            if t == _tar.DIRTYPE:
                continue  # the root directory itself ("./")
            raise InputError(f"{what}: member {m.name!r} names the root but is not a directory")
        head, _, base = path.rpartition("/")
        if whiteouts and base.startswith(_WH):
            if base == _OPQ:
                yield Entry(path=head, type=EntryType.OPAQUE, mode=0, mtime=m.mtime)
                continue
            if base.startswith(_WH + _WH):
                continue  # other AUFS metadata (.wh..wh.plnk etc.): not part of the image
            hidden = base[len(_WH) :]
            if hidden in ("", ".", ".."):
                raise InputError(f"{what}: malformed whiteout {m.name!r}")
            hidden_path = f"{head}/{hidden}" if head else hidden
            yield Entry(path=hidden_path, type=EntryType.WHITEOUT, mode=0, mtime=m.mtime)
            continue
        if t in (_tar.REGTYPE, _tar.CONTTYPE):
            symlinks.discard(path)
            files.add(path)
            write = sink(path, m.size) if sink is not None else None
            if write is not None:
                while chunk := tr.read_data(1 << 20):
                    write(chunk)
                data = None
            elif want_data is None or want_data(path):
                if budget is not None:
                    budget.take(m.size, what, path)
                data = tr.read_data()
            else:
                data = None
            yield Entry(
                path,
                EntryType.FILE,
                m.mode,
                m.uid,
                m.gid,
                m.mtime,
                data or b"",
                owner=owner,
                content_size=m.size if data is None else None,
            )
        elif t == _tar.DIRTYPE:
            symlinks.discard(path)
            files.discard(path)
            yield Entry(path, EntryType.DIR, m.mode, m.uid, m.gid, m.mtime, owner=owner)
        elif t == _tar.SYMTYPE:
            if not m.linkname:
                raise InputError(f"{what}: symlink {path!r} has an empty target")
            if "\0" in m.linkname:
                raise InputError(f"{what}: symlink {path!r} has a NUL byte in its target")
            files.discard(path)
            symlinks.add(path)
            yield Entry(
                path, EntryType.SYMLINK, m.mode, m.uid, m.gid, m.mtime, link=m.linkname, owner=owner
            )
        elif t == _tar.LNKTYPE:
            target = _normalise(
                m.linkname,
                allow_absolute=allow_absolute,
                what=what,
                kind=f"target of hardlink {path!r}:",
            )
            if not target:
                raise InputError(f"{what}: hardlink {path!r} points at the root; refusing it")
            if target not in files:
                raise InputError(
                    f"{what}: hardlink {path!r} points to {m.linkname!r}, which is not an "
                    "earlier regular file of the same archive (a link outside it); refusing it"
                )
            symlinks.discard(path)
            files.add(path)
            yield Entry(
                path, EntryType.HARDLINK, m.mode, m.uid, m.gid, m.mtime, link=target, owner=owner
            )
        elif t in (_tar.CHRTYPE, _tar.BLKTYPE, _tar.FIFOTYPE):
            kind = {_tar.CHRTYPE: EntryType.CHAR, _tar.BLKTYPE: EntryType.BLOCK}.get(
                t, EntryType.FIFO
            )
            if devices == "refuse":
                if kind is EntryType.FIFO:
                    raise InputError(f"{what}: {path!r} is a FIFO (named pipe); refusing it")
                raise InputError(
                    f"{what}: {path!r} is a {kind.value} device node "
                    f"({m.devmajor},{m.devminor}); refusing it"
                )
            symlinks.discard(path)
            files.discard(path)
            if devices == "report":
                yield Entry(
                    path,
                    kind,
                    m.mode,
                    m.uid,
                    m.gid,
                    m.mtime,
                    devmajor=m.devmajor,
                    devminor=m.devminor,
                )
        else:
            raise InputError(
                f"{what}: {m.name!r} has unsupported tar type {t!r} (sparse, multi-volume and "
                "unknown member types are not accepted)"
            )
    tr.drain()


def read_layer(
    stream: Readable,
    *,
    media_type: str = "",
    diff_id: Digest | None = None,
    what: str = "layer",
    allow_absolute: bool = True,
    devices: DevicePolicy = "report",
    want_data: Callable[[str], bool] | None = None,
    max_member_size: int = MAX_MEMBER_SIZE,
    max_total_size: int = MAX_LAYER_SIZE,
    budget: DataBudget | None = None,
    sink: Sink | None = None,
) -> Iterator[Entry]:
    """Stream the entries of a layer blob (gzip, zstd or plain tar; detected from its bytes).

    ``media_type``, when given, must be a layer type. With ``diff_id`` the uncompressed stream is
    verified at its end (``VerificationError`` on mismatch); a ``VerifyingReader`` as ``stream``
    checks the compressed digest there too — consume the iterator fully.
    """
    plain: _tar.Readable = decompressed(stream, media_type, what)
    verifier = None
    if diff_id is not None:
        verifier = VerifyingReader(plain, diff_id, what=f"{what} (uncompressed, diff_id)")
        plain = verifier
    yield from read_tar(
        plain,
        what=what,
        allow_absolute=allow_absolute,
        devices=devices,
        want_data=want_data,
        max_member_size=max_member_size,
        max_total_size=max_total_size,
        budget=budget,
        sink=sink,
    )
    if verifier is not None:
        verifier.drain()
    while plain.read(1 << 20):
        pass  # the rest of the decompressed stream (its end checks truncation)
    drain = getattr(stream, "drain", None)
    if callable(drain):
        drain()  # the compressed digest is checked at its end
    else:
        with contextlib.suppress(OSError):
            while stream.read(1 << 16):
                pass


# ---------------------------------------------------------------------------------------------
# Merging


def _descendants_removed(view: dict[str, Entry], roots: set[str], *, keep_root: bool) -> None:
    """Delete every path in ``view`` at or below one of ``roots`` (``""`` = everything)."""
    if not roots:
        return
    if "" in roots:
        view.clear()
        return
    doomed = []
    for p in view:
        parts = p.split("/")
        for i in range(1, len(parts) + 1):
            prefix = "/".join(parts[:i])
            if prefix in roots and (i < len(parts) or not keep_root):
                doomed.append(p)
                break
    for p in doomed:
        del view[p]


_MAX_HOPS = 40


class _Resolver:
    """Resolve symlinked parent directories inside the root, as a runtime applying layers does
    (``..`` stops at the root; absolute targets start at it; the last component is not
    followed)."""

    def __init__(self, view: dict[str, Entry]) -> None:
        self.view = view
        self.cache: dict[str, str] = {}

    def parent_of(self, path: str, what: str) -> str:
        """``path`` with its directory part resolved."""
        head, sep, base = path.rpartition("/")
        if not sep:
            return path
        resolved = self.cache.get(head)
        if resolved is None:
            resolved = self._walk(head, what)
            self.cache[head] = resolved
        return f"{resolved}/{base}" if resolved else base

    def _walk(self, directory: str, what: str) -> str:
        pending = directory.split("/")
        pending.reverse()
        done: list[str] = []
        hops = 0
        while pending:
            part = pending.pop()
            if part in ("", "."):
                continue
            if part == "..":
                if done:
                    done.pop()
                continue
            done.append(part)
            e = self.view.get("/".join(done))
            if e is None or e.type is EntryType.DIR:
                continue
            if e.type is EntryType.SYMLINK:
                hops += 1
                if hops > _MAX_HOPS:
                    raise InputError(f"{what}: too many levels of symlinks resolving {directory!r}")
                done.pop()
                if e.link.startswith("/"):
                    done = []
                pending.extend(reversed(e.link.split("/")))
                continue
            raise InputError(
                f"{what}: {directory!r} is used as a directory but /{'/'.join(done)} is a "
                f"{e.type.value}; refusing the layer (a runtime cannot apply it either)"
            )
        return "/".join(done)


def max_image_entries() -> int:
    """The most paths a merged image view may hold: ``ASSAY_MAX_IMAGE_ENTRIES`` or 300,000."""
    raw = os.environ.get(_MAX_ENTRIES_ENV, "").strip()
    if not raw:
        return MAX_IMAGE_ENTRIES
    if not raw.isdigit() or not 0 < int(raw) <= 100_000_000:
        raise UsageError(f"{_MAX_ENTRIES_ENV}={raw!r}: give a whole number of paths, 1 or more")
    return int(raw)


def apply_layers(
    layers: Iterable[Iterable[Entry]],
    *,
    what: str = "layer",
    origins: dict[str, tuple[int, str]] | None = None,
) -> dict[str, Entry]:
    """Merge layers (lowest first) into one view ``{path: Entry}``, as a runtime applies them.

    Whiteouts and opaque markers of a layer hide paths of lower layers only (OCI image spec).
    The other entries are applied in archive order; every parent directory is resolved through
    symlinks inside the root (including symlinks of the same layer), so a file written
    "through" a symlinked directory lands where the symlink points. A non-directory replacing
    a directory hides that directory's contents. A hardlink must name a regular file written
    earlier in the same layer (after the same resolution; else ``InputError``); it keeps
    ``type=HARDLINK`` and ``link`` (the resolved target) and carries its target's ``data`` (or
    ``content_size``). ``origins``, when given, receives for every file and hardlink in the view
    the (layer index, archive path) of the member whose content it has.
    """
    view: dict[str, Entry] = {}
    res = _Resolver(view)
    limit = max_image_entries()
    for index, layer in enumerate(layers):
        where = f"{what} #{index + 1}" if what == "layer" else what
        entries: list[Entry] = []
        removed: set[str] = set()
        opaque: set[str] = set()
        for e in layer:
            if len(entries) + len(view) >= limit:
                raise InputError(
                    f"{where}: the image has more than {limit} paths (files, directories and "
                    f"links); refusing it to bound memory (set {_MAX_ENTRIES_ENV} to allow more)"
                )
            if e.type is EntryType.WHITEOUT:
                removed.add(res.parent_of(e.path, where))
            elif e.type is EntryType.OPAQUE:
                opaque.add(res._walk(e.path, where) if e.path else "")
            else:
                entries.append(e)
        if removed or opaque:
            _descendants_removed(view, removed, keep_root=False)
            _descendants_removed(view, opaque, keep_root=True)
            res.cache.clear()
        upper: dict[str, str] = {}  # resolved path -> archive path, for this layer's files
        for e in entries:
            tar_path = e.path
            target = res.parent_of(tar_path, where)
            if e.type is EntryType.HARDLINK:
                link = res.parent_of(e.link, where)
                linked = view.get(link)
                if (
                    link not in upper
                    or linked is None
                    or linked.type not in (EntryType.FILE, EntryType.HARDLINK)
                ):
                    raise InputError(
                        f"{where}: hardlink {tar_path!r} points to {e.link!r}, which is not a "
                        "regular file written earlier in the same layer; refusing it"
                    )
                if linked.type is EntryType.HARDLINK:
                    link = linked.link  # one inode: name the file the chain started from
                e = replace(e, link=link, data=linked.data, content_size=linked.content_size)
                if origins is not None and link in origins:
                    origins[target] = origins[link]
            elif e.type is EntryType.FILE and origins is not None:
                origins[target] = (index, tar_path)
            if target != tar_path:
                e = replace(e, path=target)
            old = view.get(target)
            if old is not None:
                if old.type is EntryType.DIR and e.type is not EntryType.DIR:
                    _descendants_removed(view, {target}, keep_root=False)
                    res.cache.clear()
                elif old.type is EntryType.SYMLINK:
                    res.cache.clear()
            if e.type is EntryType.SYMLINK:
                res.cache.clear()
            if e.type in (EntryType.FILE, EntryType.HARDLINK):
                upper[target] = tar_path
            else:
                upper.pop(target, None)
                if origins is not None:
                    origins.pop(target, None)
            view[target] = e
    if origins is not None:
        for path in [p for p in origins if p not in view]:
            del origins[path]
    return view
