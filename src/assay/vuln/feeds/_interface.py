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
import os
import zlib
from pathlib import Path
from typing import Any, Protocol

from assay._json import load_json as _load_json
from assay.errors import InputError
from assay.vuln.db import AdvisoryDB, utc_stamp

__all__ = [
    "MAX_FEED_BYTES",
    "MAX_GZIP_RATIO",
    "Feed",
    "feed_date",
    "file_date",
    "http_date",
    "load_json",
    "read_bounded",
]

# The Debian tracker JSON is ~80 MB today; leave generous headroom but refuse absurd inputs.
MAX_FEED_BYTES = 1 << 30
# A gzip feed may expand to at most this many times its compressed size (the Debian tracker
# JSON compresses about 10:1; a gzip bomb reaches 1000:1).
MAX_GZIP_RATIO = 100


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


def read_bounded(path: Path, limit: int = MAX_FEED_BYTES) -> bytes:
    """Read a feed file, gunzipping ``.gz`` content, refusing more than ``limit`` bytes."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read(limit + 1)
    except OSError as exc:
        raise InputError(f"cannot read feed file {path}: {exc.strerror}") from None
    if len(raw) > limit:
        raise InputError(f"feed file {path} is larger than {limit} bytes; refusing to read it")
    if raw[:2] == b"\x1f\x8b":
        # Bounded absolutely and by ratio: a 1 MB gzip bomb must not become gigabytes of JSON.
        cap = min(limit, max(len(raw) * MAX_GZIP_RATIO, 1 << 20))
        d = zlib.decompressobj(wbits=31)
        try:
            out = d.decompress(raw, cap + 1)
        except (zlib.error, gzip.BadGzipFile) as exc:
            raise InputError(f"feed file {path} is not valid gzip: {exc}") from None
        if len(out) > cap or d.unconsumed_tail:
            raise InputError(
                f"feed file {path} expands past {cap} bytes (limit: {MAX_GZIP_RATIO}x its "
                f"compressed size, at most {limit}); refusing it as a decompression bomb"
            )
        if not d.eof:
            raise InputError(f"feed file {path} is truncated gzip; download it again")
        return out
    return raw


def load_json(data: bytes, what: str) -> Any:
    """A feed document through the shared bounded loader (see :mod:`assay._json`)."""
    return _load_json(data, what=what, max_size=MAX_FEED_BYTES)
