"""The interface every feed implements, and bounded readers for feed files."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path
from typing import Any, Protocol

from assay._json import load_json as _load_json
from assay.errors import InputError
from assay.vuln.db import AdvisoryDB

__all__ = ["MAX_FEED_BYTES", "Feed", "load_json", "read_bounded"]

# The Debian tracker JSON is ~80 MB today; leave generous headroom but refuse absurd inputs.
MAX_FEED_BYTES = 1 << 30


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
        d = zlib.decompressobj(wbits=31)
        try:
            out = d.decompress(raw, limit + 1)
        except (zlib.error, gzip.BadGzipFile) as exc:
            raise InputError(f"feed file {path} is not valid gzip: {exc}") from None
        if len(out) > limit or d.unconsumed_tail:
            raise InputError(f"feed file {path} expands past {limit} bytes; refusing it")
        return out
    return raw


def load_json(data: bytes, what: str) -> Any:
    """A feed document through the shared bounded loader (see :mod:`assay._json`)."""
    return _load_json(data, what=what, max_size=MAX_FEED_BYTES)
