"""Debian package relationship fields (deb-control(5) ``Depends``, ``Provides``, ``Conflicts``…).

A relationship field is a comma-separated AND of ``|``-separated alternatives. Each alternative is
``name[:archqual] [(op version)] [[arch list]] [<profiles>]``. Binary ``Packages`` indexes never
carry architecture lists or build profiles, but we accept and evaluate them so a hand-written
spec or source stanza does not trip the parser.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from assay.debian.version import version_key
from assay.errors import InputError

__all__ = [
    "OPERATORS",
    "Relation",
    "parse_provides",
    "parse_relations",
    "satisfies",
]

OPERATORS = ("<<", "<=", "=", ">=", ">>")
# The obsolete single-character forms mean <= and >= (deb-control(5)).
_OBSOLETE = {"<": "<=", ">": ">="}

_ALT = re.compile(
    r"""^\s*
    (?P<name>[a-z0-9][a-z0-9+.\-]*)
    (?::(?P<archq>[a-z0-9\-]+))?
    \s*
    (?:\(\s*(?P<op><<|<=|>=|>>|=|<|>)\s*(?P<version>[^)\s]+)\s*\))?
    \s*
    (?:\[(?P<archs>[^\]]*)\])?
    \s*
    (?P<profiles>(?:<[^>]*>\s*)*)
    $""",
    re.VERBOSE,
)

_MAX_FIELD = 1 << 20  # the longest real fields (Provides of some Rust crates) are ~100 KiB


@dataclass(frozen=True, slots=True)
class Relation:
    """One alternative of a relationship: a package name with optional constraints."""

    name: str
    op: str | None = None
    version: str | None = None
    arch_qualifier: str | None = None  # "any", "native" or an architecture name
    arch_restriction: tuple[str, ...] = ()  # e.g. ("amd64", "!i386"); empty = everywhere

    def __str__(self) -> str:
        text = self.name
        if self.arch_qualifier:
            text += f":{self.arch_qualifier}"
        if self.op:
            text += f" ({self.op} {self.version})"
        return text

    def applies_to(self, arch: str) -> bool:
        """Whether an ``[arch …]`` restriction keeps this alternative for ``arch``."""
        if not self.arch_restriction:
            return True
        negated = [a[1:] for a in self.arch_restriction if a.startswith("!")]
        if negated:
            return arch not in negated
        return arch in self.arch_restriction

    def version_ok(self, version: str | None) -> bool:
        """Whether ``version`` satisfies this relation's version constraint.

        ``None`` stands for an unversioned Provides, which satisfies only unversioned relations.
        """
        if self.op is None:
            return True
        if version is None:
            return False
        assert self.version is not None
        return satisfies(version, self.op, self.version)


def satisfies(version: str, op: str, ref: str) -> bool:
    """Whether ``version op ref`` holds under dpkg ordering."""
    a, b = version_key(version), version_key(ref)
    if op == "=":
        return a == b
    if op == ">=":
        return a >= b
    if op == "<=":
        return a <= b
    if op == ">>":
        return a > b
    if op == "<<":
        return a < b
    raise InputError(f"unknown version operator {op!r} (expected one of {', '.join(OPERATORS)})")


def _parse_alt(text: str, field_text: str) -> Relation:
    m = _ALT.match(text)
    if not m:
        raise InputError(f"malformed relationship {text.strip()!r} in {field_text[:200]!r}")
    op = m["op"]
    version = m["version"]
    if op in _OBSOLETE:
        op = _OBSOLETE[op]
    if version is not None:
        version_key(version)  # validates; raises InputError naming the version
    archs = tuple(m["archs"].split()) if m["archs"] else ()
    return Relation(m["name"], op, version, m["archq"], archs)


@functools.lru_cache(maxsize=131072)
def parse_relations(text: str) -> tuple[tuple[Relation, ...], ...]:
    """Parse a ``Depends``-style field into groups of alternatives (AND of ORs).

    Raises InputError naming the offending part when the field is malformed.
    """
    if len(text) > _MAX_FIELD:
        raise InputError(f"relationship field is {len(text)} bytes long; refusing to parse it")
    groups: list[tuple[Relation, ...]] = []
    for group in text.split(","):
        if not group.strip():
            continue
        groups.append(tuple(_parse_alt(alt, text) for alt in group.split("|")))
    return tuple(groups)


@functools.lru_cache(maxsize=65536)
def parse_provides(text: str) -> tuple[Relation, ...]:
    """Parse a ``Provides`` field. Only ``=`` is allowed as a version operator there."""
    out: list[Relation] = []
    for group in parse_relations(text):
        if len(group) != 1:
            raise InputError(f"Provides field may not contain alternatives: {text[:200]!r}")
        rel = group[0]
        if rel.op is not None and rel.op != "=":
            raise InputError(f"Provides may only use '=' as a version operator: {str(rel)!r}")
        out.append(rel)
    return tuple(out)
