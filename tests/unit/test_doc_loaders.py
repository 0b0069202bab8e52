"""The shared loaders for outside documents: JSON (assay._json), YAML (assay._yaml), and the
terminal-safe text helper (assay._text). Each hostile class ends in one InputError line."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from assay._json import (
    MAX_DEPTH,
    MAX_INT_DIGITS,
    load_evidence_json,
    load_evidence_object,
    load_json,
    load_json_object,
)
from assay._text import printable
from assay._yaml import MAX_ALIASES, MAX_NODES, load_yaml, load_yaml_all
from assay.errors import InputError, VerificationError

DEEP = 100_000


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"[" * DEEP + b"]" * DEEP, "nested more than 128 levels"),
        (b'{"a":' * DEEP + b"1" + b"}" * DEEP, "nested more than 128 levels"),
        (b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1), "nested more than 128 levels"),
        (b"9" * 5000, "integer of 5000 digits"),
        (b'{"size": -' + b"1" * (MAX_INT_DIGITS + 1) + b"}", "integer of 41 digits"),
        (b"[1e400]", "too large to represent"),
        (b"[NaN]", "NaN"),
        (b"[-Infinity]", "-Infinity"),
        (b'{"a": 1, "a": 2}', "duplicate JSON key 'a'"),
        (b'["\\ud800"]', "lone UTF-16 surrogate"),
        (b"\xff\xfe[]", "not UTF-8"),
        (b"\xef\xbb\xbf[]", "not valid JSON"),
        (b"[1] [2]", "extra data"),
        (b'["a\x01"]', "not valid JSON"),
        (b"", "not valid JSON"),
        (b"[" + b"0," * 10, "not valid JSON"),
    ],
    ids=lambda v: v[:24] if isinstance(v, bytes) else v,
)
def test_hostile_json_is_one_input_error(raw: bytes, message: str) -> None:
    with pytest.raises(InputError, match=message) as info:
        load_json(raw, what="test document")
    text = str(info.value)
    assert text.startswith("test document") and "\n" not in text and len(text) < 300


def test_limits_are_exact() -> None:
    ok_depth = b"[" * MAX_DEPTH + b"]" * MAX_DEPTH
    assert load_json(ok_depth, what="d") is not None
    assert load_json(b"9" * MAX_INT_DIGITS, what="d") == int("9" * MAX_INT_DIGITS)
    # A long digit run inside a string is not an integer.
    assert load_json(b'["' + b"7" * 5000 + b'"]', what="d") == ["7" * 5000]
    assert load_json(b'{"a": [1, 2.5, true, null, "\\u00e9\\ud83d\\ude00"]}', what="d") == {
        "a": [1, 2.5, True, None, "é😀"]
    }
    with pytest.raises(InputError, match="over the 10-byte limit"):
        load_json(b"[" + b" " * 20 + b"]", what="d", max_size=10)
    with pytest.raises(InputError, match="must be a JSON object, got an array"):
        load_json_object(b"[]", what="d")


def test_evidence_loaders_fail_verification_with_the_loader_message() -> None:
    # Evidence under verification: the same one-line message, as a failed check (exit 1).
    with pytest.raises(VerificationError, match=r"^signature payload holds an integer of 41"):
        load_evidence_json(b"[" + b"1" * 41 + b"]", what="signature payload")
    with pytest.raises(VerificationError, match="over the 10-byte limit"):
        load_evidence_json(b"[" + b" " * 20 + b"]", what="d", max_size=10)
    with pytest.raises(VerificationError, match=r"^in-toto statement is not a JSON object$"):
        load_evidence_object(b"[1]", what="in-toto statement")
    assert load_evidence_json(b"[1]", what="d") == [1]
    assert load_evidence_object(b'{"a": 1}', what="d") == {"a": 1}


ALIAS_BOMB = "\n".join(
    ["a: &a [x, x, x, x, x, x, x, x, x]"]
    + [
        f"{n}: &{n} [{', '.join('*' + p for _ in range(9))}]"
        for p, n in zip("abcdefgh", "bcdefghi", strict=True)
    ]
)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (ALIAS_BOMB, "alias bomb"),
        ("x: &x [1]\ny: [" + ", ".join(["*x"] * (MAX_ALIASES + 1)) + "]", "alias references"),
        ("[" * DEEP + "]" * DEEP, "nested more than 64"),
        ("a:\n" + "".join(" " * (i + 1) + "- \n" for i in range(200)), "nested more than 64"),
        ("{a: " * 500 + "1" + "}" * 500, "nested more than 64"),
        ("a: " + "9" * 5000, "integer of 5000 digits"),
        ("a: 1\na: 2\n", "key 'a' appears twice"),
        ("&a [*a]", "recursive alias"),
        ("? [1]\n: x\n", "mapping key that is a collection"),
        ("a: !!python/object:os.system x", "not valid YAML"),
        ("a: [", "not valid YAML"),
        ("a: 1\n---\nb: 2\n", "not valid YAML"),
    ],
    ids=lambda v: v[:24],
)
def test_hostile_yaml_is_one_input_error(text: str, message: str) -> None:
    started = time.perf_counter()
    with pytest.raises(InputError, match=message) as info:
        load_yaml(text, what="spec.yaml", max_size=4 << 20)
    assert time.perf_counter() - started < 10
    assert str(info.value).startswith("spec.yaml: ") and "\n" not in str(info.value)


def test_yaml_aliases_within_limits_still_work() -> None:
    doc = load_yaml("base: &b {a: 1}\nx: *b\ny: [*b, *b]\n", what="d")
    assert doc == {"base": {"a": 1}, "x": {"a": 1}, "y": [{"a": 1}, {"a": 1}]}
    assert load_yaml("", what="d") is None
    assert MAX_NODES >= 10_000


def test_printable_escapes_terminal_controls() -> None:
    hostile = "pkg\x1b]0;pwned\x07\x1b[2J\r\x9b31m\u202etxt.exe"
    out = printable(hostile)
    assert all(ch.isprintable() for ch in out)
    assert out == "pkg\\x1b]0;pwned\\x07\\x1b[2J\\x0d\\x9b31m\\u202etxt.exe"
    assert printable("a\nb\tc", keep_newlines=True) == "a\nb\tc"
    assert printable("a\nb") == "a\\x0ab"
    assert printable("héllo wörld ✓") == "héllo wörld ✓"


def test_run_unpacks_a_layer_without_directory_entries(tmp_path: Path) -> None:
    from assay.build.run import unpack_rootfs
    from assay.oci.entry import Entry, EntryType

    view = {
        "usr/bin/hello": Entry("usr/bin/hello", EntryType.FILE, 0o755, data=b"#!/bin/sh\n"),
        "etc/deep/er/conf": Entry("etc/deep/er/conf", EntryType.FILE, 0o644, data=b"x"),
    }
    unpack_rootfs(view, tmp_path)
    assert (tmp_path / "usr/bin/hello").read_bytes() == b"#!/bin/sh\n"
    assert (tmp_path / "etc/deep/er/conf").read_bytes() == b"x"
    assert (tmp_path / "usr/bin").stat().st_mode & 0o777 == 0o755


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: 1\n---\n" + ALIAS_BOMB, "alias bomb"),
        ("a: 1\n---\n" + "[" * DEEP + "]" * DEEP, "nested more than 64"),
        ("a: 1\n---\nb:\n" + "".join(" " * (i + 1) + "- \n" for i in range(200)), "nested"),
        ("a: 1\n---\nb: " + "9" * 5000, "integer of 5000 digits"),
        ("a: 1\n---\nb: 1\nb: 2\n", "key 'b' appears twice"),
        ("a: 1\n---\nb: [", "not valid YAML"),
        # the alias budget is the stream's, not each document's
        (
            "\n---\n".join(
                "x: &x [1]\ny: [" + ", ".join(["*x"] * (MAX_ALIASES // 2 + 1)) + "]"
                for _ in range(2)
            ),
            "alias references",
        ),
    ],
    ids=lambda v: v[:24],
)
def test_hostile_multi_document_yaml_is_one_input_error(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message) as info:
        load_yaml_all(text, what="p.yaml", max_size=4 << 20)
    assert str(info.value).startswith("p.yaml: ") and "\n" not in str(info.value)


def test_multi_document_yaml_expanded_nodes_are_counted_over_the_stream() -> None:
    # each document alone is under the node budget (~42,000 expanded), three together are over
    one = "x: &x [" + ", ".join(["1"] * 2000) + "]\ny: [" + ", ".join(["*x"] * 20) + "]"
    assert len(load_yaml(one, what="p.yaml")["y"]) == 20
    with pytest.raises(InputError, match="nodes once aliases are expanded"):
        load_yaml_all(f"{one}\n---\n{one}\n---\n{one}", what="p.yaml")
    assert len(load_yaml_all(f"{one}\n---\n{one}\n---\n{one}", what="p", max_nodes=10**6)) == 3


def test_multi_document_yaml_reads_every_document() -> None:
    docs = load_yaml_all("a: &b {c: 1}\nd: *b\n---\n---\n- x\n", what="p.yaml")
    assert docs == [{"a": {"c": 1}, "d": {"c": 1}}, None, ["x"]]
    assert load_yaml_all("", what="p.yaml") == []
    with pytest.raises(InputError, match="not valid YAML"):
        load_yaml("a: 1\n---\nb: 2\n", what="p.yaml")
