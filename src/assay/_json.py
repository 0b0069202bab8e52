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

:func:`iter_json_pieces` reads one large document (a feed of hundreds of MB) under the same
limits piece by piece — the items of a top-level array, the members of a top-level object —
holding one piece in memory at a time.

Writing JSON is not this module's job (see :mod:`assay.oci.jsonc` for canonical output).
"""

from __future__ import annotations

import codecs
import json
import math
import re
from collections.abc import Callable, Collection, Generator, Iterator
from typing import Any

from assay.errors import InputError, VerificationError

__all__ = [
    "DEFAULT_MAX_SIZE",
    "MAX_DEPTH",
    "MAX_INT_DIGITS",
    "iter_json_pieces",
    "json_type",
    "load_evidence_json",
    "load_evidence_object",
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
# A run of more than MAX_INT_DIGITS digits, found by mapping every digit to "0" and searching
# for the run as a substring: ~5x faster than the regex [0-9]{41} (a per-document cost).
_DIGITS_TO_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_RUN = b"0" * (MAX_INT_DIGITS + 1)


def _has_long_digits(raw: bytes | str) -> bool:
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogatepass")
    return _LONG_RUN in raw.translate(_DIGITS_TO_ZERO)


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


def _check_depth(doc: Any, what: str, base: int = 0) -> None:
    # Level by level, so the walk itself never recurses; only containers are queued. ``base``:
    # containers enclosing ``doc`` in its document (a streamed piece sits inside the top level).
    level: list[Any] = [doc] if isinstance(doc, dict | list) else []
    depth = 1 + base
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
    long_digits = _has_long_digits(bytes(raw) if isinstance(raw, bytearray | memoryview) else raw)
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
        decoder = _SLOW_DECODER if long_digits else _DECODER
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


Path = tuple[str | int, ...]
"""Where a piece of a streamed document sits: ``(key,)``, ``(index,)`` or ``(key, index)``."""

_READ_CHUNK = 1 << 20
_MAX_KEY = 1 << 16
_MAX_NAMES = 32 << 20
"""Characters of member names a streamed document's split objects may hold in all (they are
kept to refuse duplicates: a stream of a billion tiny members must not become a huge set)."""


class _PieceReader:
    """A sliding window over a UTF-8 byte stream, decoding one JSON value at a time."""

    def __init__(self, read: Callable[[int], bytes], what: str) -> None:
        self._read = read
        self.what = what
        self._utf8 = codecs.getincrementaldecoder("utf-8")("strict")
        self._bytes = 0
        self.buf = ""
        self.pos = 0
        self.eof = False
        self.names = 0

    def _fill(self, more: int) -> None:
        """Read until ``more`` characters beyond the window's end are in (or the stream ends)."""
        parts = [self.buf[self.pos :]]
        got = 0
        while got < more and not self.eof:
            data = self._read(_READ_CHUNK)
            try:
                text = self._utf8.decode(data, final=not data)
            except UnicodeDecodeError as exc:
                raise InputError(
                    f"{self.what} is not UTF-8 (byte {self._bytes + exc.start}); "
                    "not a JSON document"
                ) from None
            self._bytes += len(data)
            self.eof = not data
            parts.append(text)
            got += len(text)
        self.buf = "".join(parts)
        self.pos = 0

    def peek(self) -> str:
        """The next character that is not whitespace ("" at the end of the stream)."""
        while True:
            self.pos = _skip_ws(self.buf, self.pos)
            if self.pos < len(self.buf) or self.eof:
                return self.buf[self.pos : self.pos + 1]
            self.buf, self.pos = "", 0  # whitespace only: nothing to keep
            self._fill(_READ_CHUNK)

    def expect(self, chars: str, where: str) -> str:
        c = self.peek()
        if not c or c not in chars:
            found = repr(c) if c else "the end of the document"
            raise InputError(
                f"{self.what} is not valid JSON: expected {' or '.join(map(repr, chars))} "
                f"{where}, found {found}"
            )
        self.pos += 1
        return c

    def value(self, max_size: int, base: int) -> Any:
        """Decode the value at the window's position (at most ``max_size`` characters, nested
        inside ``base`` containers) under the module's limits."""
        self.peek()
        while True:
            start = self.pos
            try:
                doc, end = _DECODER.raw_decode(self.buf, start)
            except _Refused as exc:
                raise InputError(f"{self.what} holds {exc}; refusing it") from None
            except RecursionError:
                raise self._too_deep() from None
            except json.JSONDecodeError as exc:
                if self.eof:
                    raise InputError(
                        f"{self.what} is not valid JSON: {exc.msg} (character {exc.pos} of "
                        "its window)"
                    ) from None
                self._grow(start, max_size)
                continue
            except ValueError as exc:
                raise InputError(f"{self.what} is not valid JSON: {str(exc)[:120]}") from None
            # A number (or the text after it) may be cut at the window's end: read on, retry.
            if len(self.buf) - end < 3 and not self.eof:
                self._grow(start, max_size)
                continue
            break
        if end - start > max_size:
            raise self._too_big(max_size)
        self.pos = end
        buf = self.buf
        if _has_long_digits(buf[start:end]):
            try:
                _SLOW_DECODER.raw_decode(buf[start:end])
            except _Refused as exc:
                raise InputError(f"{self.what} holds {exc}; refusing it") from None
        if buf.count("[", start, end) + buf.count("{", start, end) > MAX_DEPTH - base:
            _check_depth(doc, self.what, base)
        if _SURROGATE_ESCAPE.search(buf, start, end):
            _check_strings(doc, self.what)
        return doc

    def _grow(self, start: int, max_size: int) -> None:
        held = len(self.buf) - start
        if held > max_size:
            raise self._too_big(max_size)
        self.pos = start
        # Double what is held (few retries for a large piece), never past one over the limit.
        self._fill(max(1, min(max(_READ_CHUNK, held), max_size + 1 - held)))

    def _too_big(self, max_size: int) -> InputError:
        return InputError(
            f"{self.what} holds a value larger than {max_size} bytes (or is not valid JSON "
            "there); refusing it"
        )

    def _too_deep(self) -> InputError:
        return InputError(
            f"{self.what} is nested more than {MAX_DEPTH} levels deep; refusing it as hostile"
        )


def iter_json_pieces(
    read: Callable[[int], bytes],
    *,
    what: str,
    max_piece: int = DEFAULT_MAX_SIZE,
    split: Collection[str] = (),
    split_objects: bool = True,
) -> Generator[tuple[Path, Any], None, None]:
    """Decode one JSON document from the byte stream ``read`` piece by piece.

    The document is held to the limits of :func:`load_json` (nesting counted from the top of the
    document, integers, numbers, duplicate keys — also among the top-level members — strings), but
    only one piece is decoded and held at a time, each at most ``max_piece`` characters:

    * a top-level array yields ``((index,), item)`` for each item;
    * a top-level object yields ``((key,), value)`` for each member (with ``split_objects``;
      otherwise it is one piece, ``((), object)``), and for a member named in ``split`` whose
      value is a non-empty array, ``((key, index), item)`` for each of its items instead, or a
      non-empty object, ``((key, name), value)`` for each of its members (an empty one is
      ``((key,), [])`` or ``((key,), {})``); ``"*"`` in ``split`` names every member;
    * any other top-level value is one piece, ``((), value)``.

    Whitespace between pieces is skipped without being kept. A malformed document raises
    :class:`~assay.errors.InputError` at the piece where it goes wrong, after the pieces before
    it were yielded (a caller that must be all-or-nothing imports in a transaction).
    """
    r = _PieceReader(read, what)
    first = r.peek()
    if first == "[":
        r.pos += 1
        yield from _items(r, (), max_piece, 1)
    elif first == "{" and split_objects:
        r.pos += 1
        seen: set[str] = set()
        if r.peek() == "}":
            r.pos += 1
        else:
            while True:
                key = _key(r, seen)
                inner = r.peek() if key in split or "*" in split else ""
                if inner == "[":
                    r.pos += 1
                    if r.peek() == "]":  # still say that the member is there
                        r.pos += 1
                        yield (key,), []
                    else:
                        yield from _items(r, (key,), max_piece, 2)
                elif inner == "{":
                    r.pos += 1
                    if r.peek() == "}":
                        r.pos += 1
                        yield (key,), {}
                    else:
                        yield from _members(r, (key,), max_piece, 2)
                else:
                    yield (key,), r.value(max_piece, 1)
                if r.expect(",}", "after a top-level member") == "}":
                    break
    elif not first:
        raise InputError(f"{what} is not valid JSON: it is empty")
    else:
        yield (), r.value(max_piece, 0)
    if r.peek():
        raise InputError(f"{what} is not valid JSON: extra data after the document")


def _members(r: _PieceReader, path: Path, max_piece: int, base: int) -> Iterator[tuple[Path, Any]]:
    seen: set[str] = set()
    while True:
        key = _key(r, seen)
        yield (*path, key), r.value(max_piece, base)
        if r.expect(",}", "after an object member") == "}":
            return


def _key(r: _PieceReader, seen: set[str]) -> str:
    """The next member name (not one in ``seen``) and its colon."""
    if r.peek() != '"':
        r.expect('"', "(a member name)")
    key: str = r.value(_MAX_KEY, 1)
    r.names += len(key) + 8
    if r.names > _MAX_NAMES:
        raise InputError(
            f"{r.what} holds more than {_MAX_NAMES} characters of member names; refusing it"
        )
    if key in seen:
        raise InputError(
            f"{r.what} holds a duplicate JSON key {key[:60]!r} (an ambiguous document); refusing it"
        )
    seen.add(key)
    r.expect(":", f"after the member name {key[:60]!r}")
    return key


def _items(r: _PieceReader, path: Path, max_piece: int, base: int) -> Iterator[tuple[Path, Any]]:
    if base > MAX_DEPTH:  # pragma: no cover - base is 1 or 2
        raise r._too_deep()
    if r.peek() == "]":
        r.pos += 1
        return
    index = 0
    while True:
        yield (*path, index), r.value(max_piece, base)
        index += 1
        if r.expect(",]", "after an array item") == "]":
            return


def load_json_object(
    raw: bytes | str, *, what: str, max_size: int = DEFAULT_MAX_SIZE
) -> dict[str, Any]:
    """:func:`load_json` for a document that must be a JSON object."""
    doc = load_json(raw, what=what, max_size=max_size)
    if not isinstance(doc, dict):
        raise InputError(f"{what} must be a JSON object, got {json_type(doc)}")
    return doc


def load_evidence_json(raw: bytes, *, what: str, max_size: int = DEFAULT_MAX_SIZE) -> Any:
    """:func:`load_json` for evidence under verification (signatures, envelopes, statements,
    bundles): a malformed document fails the check, so its defect is a
    :class:`~assay.errors.VerificationError` with the same message."""
    try:
        return load_json(raw, what=what, max_size=max_size)
    except InputError as exc:
        raise VerificationError(str(exc)) from None


def load_evidence_object(
    raw: bytes, *, what: str, max_size: int = DEFAULT_MAX_SIZE
) -> dict[str, Any]:
    """:func:`load_evidence_json` for evidence that must be a JSON object."""
    doc = load_evidence_json(raw, what=what, max_size=max_size)
    if not isinstance(doc, dict):
        raise VerificationError(f"{what} is not a JSON object")
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
