"""Debian version ordering, exactly as dpkg orders versions (deb-version(7)).

A version is ``[epoch:]upstream[-revision]``. Comparison goes epoch (numeric), then upstream,
then revision, each compared with dpkg's algorithm: alternating non-digit and digit runs, where
in non-digit runs ``~`` sorts before everything (even the end of the string), letters sort before
non-letters, and digit runs compare numerically.

``version_key`` turns a version into a tuple that sorts the same way, so sorting thousands of
candidates costs one key computation each instead of pairwise re-parsing.
"""

from __future__ import annotations

import functools
import re

from assay.errors import InputError

__all__ = ["Version", "compare_versions", "parse_version", "version_key"]

MAX_VERSION_LENGTH = 256
"""Longest version string accepted (dpkg has no limit; real versions stay far below this)."""
_MAX_EPOCH = 2**31 - 1  # dpkg refuses epochs over INT_MAX

_VALID = re.compile(r"^(?:(\d+):)?([0-9][A-Za-z0-9.+~:-]*?)(?:-([A-Za-z0-9.+~]+))?$")
_RUNS = re.compile(r"(\D*)(\d*)")


def _char_order(c: str) -> int:
    if c == "~":
        return -1
    if c.isalpha():
        return ord(c)
    return ord(c) + 256


def _part_key(part: str) -> tuple[tuple[tuple[int, ...], int], ...]:
    """Key for an upstream version or revision.

    Each (non-digit run, digit run) pair becomes (char orders + terminator 0, number). The
    terminator 0 sits between ``~`` (-1) and every other character, which reproduces dpkg's rule
    that the end of a run sorts after ``~`` and before anything else.
    """
    key: list[tuple[tuple[int, ...], int]] = []
    for text, digits in _RUNS.findall(part):
        if not text and not digits:
            continue
        key.append(((*(_char_order(c) for c in text), 0), int(digits) if digits else 0))
    # A missing trailing pair compares as an empty run: ((0,), 0).
    return tuple(key)


class Version:
    """A parsed Debian version. Instances compare with dpkg's ordering."""

    __slots__ = ("_key", "epoch", "revision", "upstream")

    def __init__(self, text: str) -> None:
        epoch, upstream, revision = parse_version(text)
        self.epoch = epoch
        self.upstream = upstream
        self.revision = revision
        self._key = version_key(text)

    def __str__(self) -> str:
        # An upstream part containing ':' needs its epoch written out, even when it is 0.
        prefix = f"{self.epoch}:" if self.epoch or ":" in self.upstream else ""
        suffix = f"-{self.revision}" if self.revision else ""
        return f"{prefix}{self.upstream}{suffix}"

    def __repr__(self) -> str:
        return f"Version({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Version) and self._key == other._key

    def __hash__(self) -> int:
        return hash(self._key)

    def __lt__(self, other: Version) -> bool:
        return self._key < other._key

    def __le__(self, other: Version) -> bool:
        return self._key <= other._key

    def __gt__(self, other: Version) -> bool:
        return self._key > other._key

    def __ge__(self, other: Version) -> bool:
        return self._key >= other._key


def parse_version(text: str) -> tuple[int, str, str]:
    """Split a version into (epoch, upstream, revision); raise InputError if it is not valid."""
    text = text.strip()
    if len(text) > MAX_VERSION_LENGTH:
        raise InputError(
            f"invalid Debian version {text[:40]!r}…: longer than {MAX_VERSION_LENGTH} characters"
        )
    epoch = 0
    rest = text
    if ":" in text:
        head, _, rest = text.partition(":")
        if not head.isascii() or not head.isdigit():
            raise InputError(f"invalid Debian version {text!r}: epoch {head!r} is not a number")
        epoch = int(head)
        if epoch > _MAX_EPOCH:
            raise InputError(f"invalid Debian version {text!r}: epoch is larger than {_MAX_EPOCH}")
    if "-" in rest:
        upstream, _, revision = rest.rpartition("-")
        if not revision:
            raise InputError(f"invalid Debian version {text!r}: revision is empty")
    else:
        upstream, revision = rest, ""
    if not upstream or not _VALID.match(f"{upstream}-{revision}" if revision else upstream):
        raise InputError(f"invalid Debian version {text!r}")
    return epoch, upstream, revision


_Key = tuple[int, tuple[tuple[tuple[int, ...], int], ...], tuple[tuple[tuple[int, ...], int], ...]]


def _pad(
    key: tuple[tuple[tuple[int, ...], int], ...], n: int
) -> tuple[tuple[tuple[int, ...], int], ...]:
    return key + ((((0,), 0),) * (n - len(key)))


@functools.lru_cache(maxsize=65536)
def version_key(text: str) -> _Key:
    """A sort key with dpkg's ordering. Keys of different lengths are padded when compared.

    Tuples compare element-wise and a shorter tuple sorts first, which is not dpkg's rule (a
    missing run compares as an empty run, and ``~`` sorts before empty). So we pad both parts to
    a fixed width that is longer than any real version needs.
    """
    epoch, upstream, revision = parse_version(text)
    up = _part_key(upstream)
    rev = _part_key(revision) if revision else _part_key("0")
    width = 32
    if len(up) > width or len(rev) > width:
        raise InputError(f"Debian version {text!r} has too many components")
    return (epoch, _pad(up, width), _pad(rev, width))


def compare_versions(a: str, b: str) -> int:
    """Return -1, 0 or 1 as ``a`` sorts before, equal to, or after ``b`` under dpkg's rules."""
    ka, kb = version_key(a), version_key(b)
    return (ka > kb) - (ka < kb)
