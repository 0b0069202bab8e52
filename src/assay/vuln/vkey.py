"""Debian versions as byte strings whose plain byte order (memcmp) is dpkg's order.

Stored next to each version in the advisory DB, this lets any SQL engine compare Debian
versions with ``<`` on a BLOB/bytea column, so fleet rescans run as ordinary joins.

Encoding: ``num(epoch) + part(upstream) + END + part(revision or "0") + END`` where ``part`` is
each (non-digit run, digit run) pair as the run's characters (``~`` -> 0x01, letters -> their
ASCII code, other characters -> 0x80 + code), a run terminator 0x02, then ``num`` of the digits
(one length byte after stripping leading zeros, then the digits). ``END`` is 0x02: it sorts
after ``~`` and before any other character, exactly like the end of a version in dpkg.
"""

from __future__ import annotations

import functools
import re

from assay.debian.version import parse_version
from assay.errors import InputError

__all__ = ["deb_sort_key"]

_RUNS = re.compile(r"(\D*)(\d*)")
_TILDE, _END = 0x01, 0x02


def _num(digits: str) -> bytes:
    d = digits.lstrip("0")
    if len(d) > 255:
        raise InputError(f"number with more than 255 digits in a Debian version: {digits[:20]}…")
    return bytes([len(d)]) + d.encode("ascii")


def _part(text: str) -> bytes:
    out = bytearray()
    for run, digits in _RUNS.findall(text):
        if not run and not digits:
            continue
        for c in run:
            if c == "~":
                out.append(_TILDE)
            elif c.isascii() and c.isalpha():
                out.append(ord(c))
            else:
                code = ord(c)
                if code >= 0x80:
                    raise InputError(f"non-ASCII character {c!r} in a Debian version")
                out.append(0x80 + code)
        out.append(_END)
        out += _num(digits)
    out.append(_END)
    return bytes(out)


@functools.lru_cache(maxsize=65536)
def deb_sort_key(version: str) -> bytes | None:
    """The byte key of a Debian version, or None if the version is not valid."""
    try:
        epoch, upstream, revision = parse_version(version)
        return _num(str(epoch)) + _part(upstream) + _part(revision or "0")
    except InputError:
        return None
