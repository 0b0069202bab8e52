"""The interface every feed implements, and bounded readers for feed files."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path
from typing import Any, Protocol

from assay._json import load_json as _load_json
from assay.errors import InputError
from assay.vuln.db import AdvisoryDB

__all__ = ["MAX_FEED_BYTES", "MAX_GZIP_RATIO", "Feed", "load_json", "read_bounded"]

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

    def import_path(self, db: AdvisoryDB, path: Path, origin: str = "") -> int:
        """Import the feed file (or directory) at ``path``; return the number of records."""
        ...


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
