"""The current time as the evidence assay writes records it."""

from __future__ import annotations

import datetime as dt

__all__ = ["utc_now"]


def utc_now() -> str:
    """Now, UTC, to the second, RFC 3339 with ``Z`` (e.g. ``2026-11-26T16:35:02Z``)."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
