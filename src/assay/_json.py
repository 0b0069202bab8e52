"""The one loader for JSON that comes from outside (registries, files, feeds, evidence).

Every document is held to the same limits, and every way it can be malformed or hostile ends in
one :class:`~assay.errors.InputError` that names the document:

* **size** — at most ``max_size`` bytes (callers pass the limit that fits the document kind;
  :data:`DEFAULT_MAX_SIZE` otherwise);
* **nesting** — arrays/objects nested at most :data:`MAX_DEPTH` deep (a 100,000-deep ``[[[…``
  is refused, never a ``RecursionError``);
* **integers** — at most :data:`MAX_INT_DIGITS` digits (no ``ValueError`` from Python's
  4,300-digit guard, no multi-kilobyte integers reaching arithmetic);
* **numbers** — no ``NaN``/``Infinity`` and no float literal that overflows to infinity;
* **duplicate keys** — refused: a key given twice in one object makes the document ambiguous
  (Go keeps the last value, other parsers the first), so no reading of it is safe;
* **strings** — UTF-8 only, no raw control characters, no lone UTF-16 surrogate escapes
  (``"\\ud800"``), which no UTF-8 encoder can write back.

Writing JSON is not this module's job (see :mod:`assay.oci.jsonc` for canonical output).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from assay.errors import InputError

__all__ = [
    "DEFAULT_MAX_SIZE",
    "MAX_DEPTH",
    "MAX_INT_DIGITS",
    "json_type",
    "load_json",
    "load_json_object",
]

DEFAULT_MAX_SIZE = 64 << 20
"""Bytes a document may have unless its reader passes another limit."""

MAX_DEPTH = 128
"""Deepest nesting of arrays and objects accepted (the top-level value is depth 1)."""

MAX_INT_DIGITS = 40
"""Most digits an integer literal may have (2**128 has 39)."""

_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_LONG_DIGITS = re.compile(f"[0-9]{{{MAX_INT_DIGITS + 1}}}")


def _parse_int(text: str) -> int:
    digits = len(text) - (text[0] == "-")
    if digits > MAX_INT_DIGITS:
        raise _Refused(f"an integer of {digits} digits (at most {MAX_INT_DIGITS} are accepted)")
    return int(text)


def _parse_float(text: str) -> float:
    if len(text) > 1000:
        raise _Refused(f"a number literal of {len(text)} characters")
    value = float(text)
    if not math.isfinite(value):
        raise _Refused(f"a number too large to represent ({text[:40]})")
    return value


def _parse_constant(name: str) -> Any:
    raise _Refused(f"{name} (not JSON)")


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    d = dict(pairs)
    if len(d) != len(pairs):
        seen: set[str] = set()
        for k, _ in pairs:
            if k in seen:
                raise _Refused(f"a duplicate JSON key {k[:60]!r} (an ambiguous document)")
            seen.add(k)
    return d


class _Refused(Exception):
    """Raised from the decoder hooks; turned into InputError with the document's name."""


_DECODER = json.JSONDecoder(
    object_pairs_hook=_pairs,
    parse_float=_parse_float,
    parse_constant=_parse_constant,
    strict=True,
)
# Only a document with a run of more than MAX_INT_DIGITS digits somewhere (in a string or not)
# can hold an over-long integer; only such documents pay for a Python call per integer.
_SLOW_DECODER = json.JSONDecoder(
    object_pairs_hook=_pairs,
    parse_int=_parse_int,
    parse_float=_parse_float,
    parse_constant=_parse_constant,
    strict=True,
)


def _check_depth(doc: Any, what: str) -> None:
    # Level by level, so the walk itself never recurses; only containers are queued.
    level: list[Any] = [doc] if isinstance(doc, dict | list) else []
    depth = 1
    while level:
        if depth > MAX_DEPTH:
            raise InputError(
                f"{what} is nested more than {MAX_DEPTH} levels deep; refusing it as hostile"
            )
        below: list[Any] = []
        for node in level:
            children = node.values() if type(node) is dict else node
            below += [c for c in children if type(c) is dict or type(c) is list]
        level = below
        depth += 1


def _check_strings(doc: Any, what: str) -> None:
    stack: list[Any] = [doc]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            try:
                node.encode("utf-8")
            except UnicodeEncodeError:
                raise InputError(
                    f"{what} holds a lone UTF-16 surrogate escape; refusing it as malformed"
                ) from None
        elif isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def load_json(raw: bytes | str, *, what: str, max_size: int = DEFAULT_MAX_SIZE) -> Any:
    """Decode one JSON document from outside under the limits in the module docstring.

    ``what`` names the document in error messages ("manifest sha256:…", "lock file x.lock.json").
    """
    if len(raw) > max_size:
        raise InputError(f"{what} is {len(raw)} bytes, over the {max_size}-byte limit; refusing it")
    if isinstance(raw, bytes | bytearray | memoryview):
        try:
            text = bytes(raw).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(
                f"{what} is not UTF-8 (byte {exc.start}); not a JSON document"
            ) from None
    else:
        text = raw
    try:
        decoder = _SLOW_DECODER if _LONG_DIGITS.search(text) else _DECODER
        doc, end = decoder.raw_decode(text, _skip_ws(text, 0))
    except _Refused as exc:
        raise InputError(f"{what} holds {exc}; refusing it") from None
    except RecursionError:
        raise InputError(
            f"{what} is nested more than {MAX_DEPTH} levels deep; refusing it as hostile"
        ) from None
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{what} is not valid JSON: {exc.msg} (line {exc.lineno} column {exc.colno})"
        ) from None
    except ValueError as exc:  # int/float conversion; the hooks bound these already
        raise InputError(f"{what} is not valid JSON: {str(exc)[:120]}") from None
    if _skip_ws(text, end) != len(text):
        raise InputError(f"{what} is not valid JSON: extra data after the document")
    if text.count("[") + text.count("{") > MAX_DEPTH:
        _check_depth(doc, what)
    if _SURROGATE_ESCAPE.search(text):
        _check_strings(doc, what)
    return doc


def load_json_object(
    raw: bytes | str, *, what: str, max_size: int = DEFAULT_MAX_SIZE
) -> dict[str, Any]:
    """:func:`load_json` for a document that must be a JSON object."""
    doc = load_json(raw, what=what, max_size=max_size)
    if not isinstance(doc, dict):
        raise InputError(f"{what} must be a JSON object, got {json_type(doc)}")
    return doc


def json_type(value: Any) -> str:
    """The JSON type of a decoded value, for messages ("a string", "an array", …)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


_WS = re.compile(r"[ \t\n\r]*")


def _skip_ws(text: str, pos: int) -> int:
    m = _WS.match(text, pos)
    return m.end() if m else pos
