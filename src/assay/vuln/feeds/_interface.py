"""The interface every feed implements, bounded readers for feed files, and feed dates.

A feed's age is the age of its data, not of the import: each feed records the date its publisher
gave the data (KEV ``dateReleased``, EPSS ``score_date``, OSV ``modified``, NVD ``timestamp``).
Where the data carries no date (the Debian tracker JSON), ``date_hint`` is used: the HTTP
``Last-Modified`` of the download, or the file's modification time at ``db import``.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import gzip
import io
import lzma
import os
import stat
import zlib
from collections.abc import Callable, Collection, Generator
from pathlib import Path
from typing import Any, BinaryIO, Protocol, cast

from assay._json import iter_json_pieces
from assay._json import load_json as _load_json
from assay.errors import InputError
from assay.vuln.db import AdvisoryDB, utc_stamp

__all__ = [
    "MAX_FEED_BYTES",
    "MAX_FEED_PIECE",
    "MAX_GZIP_RATIO",
    "Feed",
    "FeedReader",
    "feed_date",
    "file_date",
    "http_date",
    "iter_feed_json",
    "load_json",
    "open_feed",
    "read_bounded",
]

# The Debian tracker JSON is ~80 MB today; leave generous headroom but refuse absurd inputs.
MAX_FEED_BYTES = 1 << 30
# A compressed feed may expand to at most this many times its compressed size (the Debian
# tracker JSON compresses about 10:1; a gzip bomb reaches 1000:1).
MAX_GZIP_RATIO = 100
# The largest piece of a streamed feed JSON decoded at once: one CVE entry of the Debian tracker,
# one NVD vulnerability (real ones are kilobytes, the largest with CPE lists a few hundred KB).
# 4 MB of the costliest JSON shape ([[],[],…]) decodes to ~110 MB of Python objects.
MAX_FEED_PIECE = 4 << 20


class Feed(Protocol):
    """A published advisory format that can be imported into the advisory DB."""

    name: str  # the source name shown by `db status`, e.g. "debian-tracker"
    env_var: str  # environment variable that overrides ``default_url``
    default_url: str  # the official public location of the feed

    def import_path(self, db: AdvisoryDB, path: Path, origin: str = "", date_hint: str = "") -> int:
        """Import the feed file (or directory) at ``path``; return the number of records.

        ``date_hint`` (RFC 3339) dates the data when the feed itself does not; by default the
        file's modification time.
        """
        ...


def feed_date(value: object, what: str) -> str:
    """A feed's own date (ISO 8601, naive = UTC) as ``YYYY-MM-DDTHH:MM:SSZ``; "" when absent."""
    if value is None or value == "":
        return ""
    if not isinstance(value, str) or len(value) > 64:
        raise InputError(f"{what} is not a date")
    try:
        return utc_stamp(dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00")))
    except ValueError:
        raise InputError(f"{what} {value[:64]!r} is not an ISO 8601 date") from None


def file_date(path: Path) -> str:
    """The modification time of ``path`` (a directory: its newest file) as RFC 3339 UTC."""
    try:
        mtime = os.stat(path).st_mtime
        if path.is_dir():
            mtime = max(
                (f.stat().st_mtime for f in path.rglob("*") if f.is_file() and not f.is_symlink()),
                default=mtime,
            )
    except OSError as exc:
        raise InputError(f"cannot read feed file {path}: {exc.strerror}") from None
    return utc_stamp(dt.datetime.fromtimestamp(mtime, dt.UTC))


def http_date(value: str | None) -> str:
    """An HTTP ``Last-Modified`` header as RFC 3339 UTC; "" when absent or unparsable."""
    if not value:
        return ""
    try:
        return utc_stamp(email.utils.parsedate_to_datetime(value))
    except (TypeError, ValueError, IndexError):
        return ""


class _Source(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...

    def close(self) -> None: ...


class FeedReader(io.RawIOBase):
    """A feed file's content, decompressed as it is read, bounded absolutely and by ratio.

    gzip (also multi-member), xz and zstd are recognised by their magic bytes; anything else is
    read as it is. More than ``cap`` bytes of content (``limit``, and for compressed files also
    :data:`MAX_GZIP_RATIO` times the compressed size) is an :class:`InputError` naming the file
    as a decompression bomb, as are corrupt or truncated compressed data. Only what the caller
    reads is ever held in memory.
    """

    def __init__(self, path: Path, limit: int = MAX_FEED_BYTES) -> None:
        super().__init__()
        self.path = path
        self.limit = limit
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        except OSError as exc:
            raise InputError(f"cannot read feed file {path}: {exc.strerror}") from None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise InputError(f"feed file {path} is not a regular file; refusing to read it")
            os.set_blocking(fd, True)
        except BaseException:
            os.close(fd)
            raise
        self._raw: BinaryIO = os.fdopen(fd, "rb")
        self._at_end: Callable[[], None] = lambda: None
        magic = self._raw.read(6)
        self._raw.seek(0)
        self.compressed = True
        self._inner: _Source
        if magic[:2] == b"\x1f\x8b":
            self._inner = gzip.GzipFile(fileobj=self._raw, mode="rb")
            self.kind = "gzip"
        elif magic == b"\xfd7zXZ\x00":
            self._inner = lzma.LZMAFile(self._raw, "rb")  # noqa: SIM115 - closed in close()
            self.kind = "xz"
        elif magic[:4] == b"\x28\xb5\x2f\xfd":
            import zstandard

            from assay.oci._zstdframes import ZstdFrames

            frames = ZstdFrames(self._raw, f"feed file {path}")
            self._at_end = frames.check_complete  # zstandard ends quietly inside a frame
            self._inner = zstandard.ZstdDecompressor().stream_reader(
                cast(BinaryIO, frames), read_across_frames=True, closefd=False
            )
            self.kind = "zstd"
        else:
            if st.st_size > limit:
                self._raw.close()
                raise InputError(
                    f"feed file {path} is larger than {limit} bytes; refusing to read it"
                )
            self._inner = self._raw
            self.compressed = False
            self.kind = "plain"
        ratio_cap = max(st.st_size * MAX_GZIP_RATIO, 1 << 20)
        self.cap = min(limit, ratio_cap) if self.compressed else limit
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)

    def read(self, size: int | None = -1) -> bytes:
        """At most ``size`` bytes of content (all that is left, up to the cap, when negative)."""
        if size is None or size < 0:
            size = self.cap + 1 - self.count
        if size == 0:
            return b""
        want = min(size, self.cap + 1 - self.count)
        try:
            data = self._inner.read(max(want, 1))
        except EOFError:
            raise InputError(
                f"feed file {self.path} is truncated {self.kind}; download it again"
            ) from None
        except (OSError, lzma.LZMAError, zlib.error) as exc:
            raise InputError(f"feed file {self.path} is not valid {self.kind}: {exc}") from None
        except Exception as exc:  # zstandard.ZstdError has no stable import path for typing
            if type(exc).__name__ != "ZstdError":
                raise
            raise InputError(f"feed file {self.path} is not valid zstd: {exc}") from None
        if not data:
            self._at_end()
        self.count += len(data)
        if self.count > self.cap:
            if self.compressed:
                raise InputError(
                    f"feed file {self.path} expands past {self.cap} bytes (limit: "
                    f"{MAX_GZIP_RATIO}x its compressed size, at most {self.limit}); refusing "
                    "it as a decompression bomb"
                )
            raise InputError(
                f"feed file {self.path} is larger than {self.limit} bytes; refusing to read it"
            )
        return data

    def close(self) -> None:
        try:
            if self._inner is not self._raw:
                self._inner.close()
        finally:
            self._raw.close()
            super().close()


def open_feed(path: Path, limit: int = MAX_FEED_BYTES) -> FeedReader:
    """The content of a feed file as a stream (see :class:`FeedReader`); use it with ``with``."""
    return FeedReader(path, limit)


def read_bounded(path: Path, limit: int = MAX_FEED_BYTES) -> bytes:
    """A whole (small) feed file, decompressed, refusing more than ``limit`` bytes of content.

    Large feeds are read with :func:`open_feed` and :func:`iter_feed_json` instead, so that only
    one record at a time is held in memory.
    """
    with open_feed(path, limit) as fh:
        parts = []
        while chunk := fh.read(1 << 20):
            parts.append(chunk)
        return b"".join(parts)


def iter_feed_json(
    path: Path,
    what: str,
    *,
    max_piece: int = MAX_FEED_PIECE,
    split: Collection[str] = (),
    split_objects: bool = True,
    limit: int = MAX_FEED_BYTES,
) -> Generator[tuple[tuple[str | int, ...], Any], None, None]:
    """A (possibly compressed) feed JSON document, decoded piece by piece through the shared
    bounded loader (:func:`assay._json.iter_json_pieces`): memory holds one piece at a time."""
    with open_feed(path, limit) as fh:
        yield from iter_json_pieces(
            fh.read, what=what, max_piece=max_piece, split=split, split_objects=split_objects
        )


def load_json(data: bytes, what: str) -> Any:
    """A feed document through the shared bounded loader (see :mod:`assay._json`)."""
    return _load_json(data, what=what, max_size=MAX_FEED_BYTES)
