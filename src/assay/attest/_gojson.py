"""JSON bytes as Go's ``encoding/json`` writes them.

cosign, containers/image and go-securesystemslib are Go programs; where a format's bytes are
signed or hashed (the simple-signing payload, the DSSE envelope, the encrypted key body), assay
writes the same bytes they do: compact, object keys in the order given (Go structs) or sorted (Go
maps — pass ``sort_keys=True``), ``<``, ``>``, ``&``, U+2028 and U+2029 escaped as ``\\u00XX``,
other non-ASCII written as UTF-8.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["go_json"]

_HTML_ESCAPES = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}


def go_json(value: Any, *, sort_keys: bool = False) -> bytes:
    """Serialise ``value`` like Go's ``json.Marshal`` (dict order kept unless ``sort_keys``)."""
    text = json.dumps(
        value, separators=(",", ":"), ensure_ascii=False, sort_keys=sort_keys, allow_nan=False
    )
    if any(ch in text for ch in _HTML_ESCAPES):
        text = "".join(_HTML_ESCAPES.get(ch, ch) for ch in text)
    return text.encode("utf-8")
