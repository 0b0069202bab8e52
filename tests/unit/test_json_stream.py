"""The streamed JSON reader (assay._json.iter_json_pieces) and the feed file reader
(assay.vuln.feeds._interface.FeedReader): the same limits as the whole-document loader, one piece
in memory at a time, decompression bounded."""

from __future__ import annotations

import gzip
import io
import json
import lzma
import os
import random
from pathlib import Path
from typing import Any

import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from assay import _json
from assay._json import MAX_DEPTH, iter_json_pieces, load_json
from assay.errors import InputError
from assay.vuln.feeds._interface import MAX_GZIP_RATIO, open_feed, read_bounded


def _pieces(text: str | bytes, seed: int = 0, **kw: Any) -> list[tuple[tuple[Any, ...], Any]]:
    data = text.encode() if isinstance(text, str) else text
    stream = io.BytesIO(data)
    rng = random.Random(seed)
    return list(iter_json_pieces(lambda n: stream.read(rng.randint(1, 7)), what="d", **kw))


@pytest.fixture(autouse=True)
def _tiny_window(monkeypatch: pytest.MonkeyPatch) -> None:
    # a window of a few bytes puts every token across a read boundary somewhere
    monkeypatch.setattr(_json, "_READ_CHUNK", 5)


def _reassemble(pieces: list[tuple[tuple[Any, ...], Any]], top: Any) -> Any:
    if not pieces or pieces[0][0] == ():
        return pieces[0][1] if pieces else top
    out: Any = [] if isinstance(top, list) else {}
    for path, value in pieces:
        if isinstance(out, list):
            out.append(value)
        elif len(path) == 1:
            out[path[0]] = value
        else:
            inner = out.setdefault(path[0], [] if isinstance(path[1], int) else {})
            if isinstance(inner, list):
                inner.append(value)
            else:
                inner[path[1]] = value
    return out


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**30), 10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None)
@given(doc=json_values, seed=st.integers(0, 1000), indent=st.sampled_from([None, 1]))
def test_streamed_pieces_reassemble_to_the_whole_document(doc: Any, seed: int, indent: Any) -> None:
    text = json.dumps(doc, indent=indent)
    whole = load_json(text, what="d")
    got = _pieces(text, seed, split=("*",))
    if isinstance(whole, dict | list) and whole:
        assert _reassemble(got, whole) == whole
    elif isinstance(whole, dict | list):
        assert got == []
    else:
        assert got == [((), whole)]


def test_split_members_and_the_rest_whole() -> None:
    text = '{"a": {"x": 1}, "vulnerabilities": [{"id": 1}, 2], "e": [], "o": {}}'
    assert _pieces(text, split=("vulnerabilities", "e")) == [
        (("a",), {"x": 1}),
        (("vulnerabilities", 0), {"id": 1}),
        (("vulnerabilities", 1), 2),
        (("e",), []),
        (("o",), {}),
    ]
    assert _pieces(text, split_objects=False) == [((), json.loads(text))]
    assert _pieces("[1, 22, 333]") == [((0,), 1), ((1,), 22), ((2,), 333)]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"a": 1, "a": 2}', "duplicate JSON key 'a'"),
        ('{"s": {"c": 1, "c": 2}}', "duplicate JSON key 'c'"),
        ("[1, 2", "not valid JSON"),
        ('{"a" 1}', "expected ':'"),
        ("[1] [2]", "extra data"),
        ("", "empty"),
        ("[" * 100_000, "nested more than"),
        ('{"s": {"c": ' + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1) + "}}", "nested more than"),
        ('{"a": ' + "9" * 41 + "}", "integer of 41 digits"),
        ('["\\ud800"]', "lone UTF-16 surrogate"),
        ("[1e999]", "too large"),
        ("[NaN]", "NaN"),
        (b'["\xff"]', "not UTF-8"),
        ('["a\x01"]', "not valid JSON"),
    ],
    ids=lambda v: str(v)[:20],
)
def test_hostile_streams_are_one_input_error(text: str | bytes, message: str) -> None:
    with pytest.raises(InputError, match=message) as info:
        _pieces(text, split=("*",))
    assert str(info.value).startswith("d ") and "\n" not in str(info.value)


def test_depth_counts_from_the_top_of_the_document() -> None:
    inner = "[" * (MAX_DEPTH - 2) + "]" * (MAX_DEPTH - 2)
    assert _pieces('{"s": {"c": ' + inner + "}}", split=("*",))  # exactly MAX_DEPTH deep
    assert load_json('{"s": {"c": ' + inner + "}}", what="d")


def test_a_piece_over_its_limit_is_refused_without_reading_on() -> None:
    reads = 0
    body = b'{"s": "' + b"a" * 10_000_000

    def read(n: int) -> bytes:
        nonlocal reads
        reads += n
        return body[reads - n : reads]

    with pytest.raises(InputError, match="larger than 1000"):
        list(iter_json_pieces(read, what="d", max_piece=1000))
    assert reads < 2000


def test_whitespace_between_pieces_is_not_kept() -> None:
    stream = io.BytesIO(b"[1," + b" " * 3_000_000 + b"2]")
    held: list[int] = []
    orig = _json._PieceReader.peek

    def peek(self: Any) -> str:
        held.append(len(self.buf))
        return orig(self)

    _json._PieceReader.peek = peek  # type: ignore[method-assign]
    try:
        got = list(iter_json_pieces(stream.read, what="d"))
    finally:
        _json._PieceReader.peek = orig  # type: ignore[method-assign]
    assert got == [((0,), 1), ((1,), 2)]
    assert max(held) < 64


# -- feed files -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "compress",
    [
        lambda b: gzip.compress(b[:7]) + gzip.compress(b[7:]),  # two gzip members
        lzma.compress,
        lambda b: zstandard.ZstdCompressor().compress(b),
        lambda b: b,
    ],
    ids=["gzip-members", "xz", "zstd", "plain"],
)
def test_feed_reader_decompresses_by_magic(compress: Any, tmp_path: Path) -> None:
    body = json.dumps({"vulnerabilities": [{"n": i} for i in range(500)]}).encode()
    p = tmp_path / "f"
    p.write_bytes(compress(body))
    assert read_bounded(p) == body


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (gzip.compress(b"x" * 100_000)[:-20], "truncated gzip"),
        (lzma.compress(b"x" * 100_000)[:-20], "xz"),
        (b"\x1f\x8b" + b"garbage" * 10, "not valid gzip"),
        (zstandard.ZstdCompressor().compress(b"x" * 100_000)[:-5], "zstd"),
    ],
    ids=["gzip-truncated", "xz-truncated", "gzip-garbage", "zstd-truncated"],
)
def test_corrupt_compressed_feeds_are_input_errors(
    data: bytes, message: str, tmp_path: Path
) -> None:
    p = tmp_path / "f"
    p.write_bytes(data)
    with pytest.raises(InputError, match=message):
        read_bounded(p)


@pytest.mark.parametrize(
    "compress",
    [gzip.compress, lzma.compress, lambda b: zstandard.ZstdCompressor().compress(b)],
    ids=["gzip", "xz", "zstd"],
)
def test_decompression_is_bounded_by_ratio_while_streaming(compress: Any, tmp_path: Path) -> None:
    p = tmp_path / "bomb"
    p.write_bytes(compress(b"0" * (8 << 20)))
    cap = max(p.stat().st_size * MAX_GZIP_RATIO, 1 << 20)
    assert cap < 8 << 20
    with open_feed(p) as fh:
        got = 0
        with pytest.raises(InputError, match="decompression bomb"):
            while chunk := fh.read(1 << 16):
                got += len(chunk)
        assert got <= cap


def test_special_files_are_refused(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="not a regular file"):
        read_bounded(fifo)  # would block forever if opened for reading
    with pytest.raises(InputError, match="not a regular file"):
        read_bounded(tmp_path)
