"""Canonical JSON for every manifest, config and index assay writes.

Sorted keys, compact separators, UTF-8 (no ``\\u`` escapes for non-ASCII), no trailing newline,
no NaN/Infinity. The same document always serialises to the same bytes, so its digest is stable
across runs, machines and Python versions.
"""

from __future__ import annotations

import json

__all__ = ["canonical_json"]


def canonical_json(obj: object) -> bytes:
    """Serialise ``obj`` canonically (see module docstring)."""
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")
