"""Licenses: DEP-5 ``copyright`` files and free-form license strings → SPDX expressions.

Debian's machine-readable copyright format (DEP-5) names licenses with short names
(``GPL-2+``, ``Expat``, ``BSD-3-clause``). They are mapped to SPDX identifiers with the table
below; names that are already SPDX identifiers pass through; anything else becomes a
``LicenseRef-…`` (SPDX requires those to be declared, the SPDX writer does that). A package with
no parseable license gets ``""`` (written as ``NOASSERTION``).

The expression for a package is the ``AND`` of the distinct ``License:`` expressions of its
``Files:`` paragraphs: the package as a whole carries all of them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = [
    "dep5_license_names",
    "expression_from_names",
    "license_refs",
    "normalize_license",
    "parse_dep5",
]

# Debian short name (lower-cased) → SPDX id. "+" means "or any later version".
_DEBIAN_TO_SPDX: dict[str, str] = {
    "gpl": "GPL-1.0-or-later",
    "gpl-1": "GPL-1.0-only",
    "gpl-1+": "GPL-1.0-or-later",
    "gpl-2": "GPL-2.0-only",
    "gpl-2+": "GPL-2.0-or-later",
    "gpl-2.0": "GPL-2.0-only",
    "gpl-2.0+": "GPL-2.0-or-later",
    "gpl-3": "GPL-3.0-only",
    "gpl-3+": "GPL-3.0-or-later",
    "gpl-3.0": "GPL-3.0-only",
    "gpl-3.0+": "GPL-3.0-or-later",
    "lgpl": "LGPL-2.0-or-later",
    "lgpl-2": "LGPL-2.0-only",
    "lgpl-2+": "LGPL-2.0-or-later",
    "lgpl-2.0": "LGPL-2.0-only",
    "lgpl-2.0+": "LGPL-2.0-or-later",
    "lgpl-2.1": "LGPL-2.1-only",
    "lgpl-2.1+": "LGPL-2.1-or-later",
    "lgpl-3": "LGPL-3.0-only",
    "lgpl-3+": "LGPL-3.0-or-later",
    "lgpl-3.0": "LGPL-3.0-only",
    "lgpl-3.0+": "LGPL-3.0-or-later",
    "agpl-3": "AGPL-3.0-only",
    "agpl-3+": "AGPL-3.0-or-later",
    "gfdl-1.1": "GFDL-1.1-only",
    "gfdl-1.1+": "GFDL-1.1-or-later",
    "gfdl-1.2": "GFDL-1.2-only",
    "gfdl-1.2+": "GFDL-1.2-or-later",
    "gfdl-1.3": "GFDL-1.3-only",
    "gfdl-1.3+": "GFDL-1.3-or-later",
    "gfdl-niv-1.1": "GFDL-1.1-no-invariants-only",
    "gfdl-niv-1.1+": "GFDL-1.1-no-invariants-or-later",
    "gfdl-niv-1.2": "GFDL-1.2-no-invariants-only",
    "gfdl-niv-1.2+": "GFDL-1.2-no-invariants-or-later",
    "gfdl-niv-1.3": "GFDL-1.3-no-invariants-only",
    "gfdl-niv-1.3+": "GFDL-1.3-no-invariants-or-later",
    "apache-2": "Apache-2.0",
    "apache-2.0": "Apache-2.0",
    "apache 2.0": "Apache-2.0",
    "apache license 2.0": "Apache-2.0",
    "apache software license": "Apache-2.0",
    "artistic": "Artistic-1.0-Perl",
    "artistic-1": "Artistic-1.0-Perl",
    "artistic-2": "Artistic-2.0",
    "artistic-2.0": "Artistic-2.0",
    "expat": "MIT",
    "mit": "MIT",
    "mit/x11": "MIT",
    "x11": "X11",
    "bsd-2-clause": "BSD-2-Clause",
    "bsd-3-clause": "BSD-3-Clause",
    "bsd-4-clause": "BSD-4-Clause",
    "isc": "ISC",
    "zlib": "Zlib",
    "mpl-1.1": "MPL-1.1",
    "mpl-2.0": "MPL-2.0",
    "psf-2": "PSF-2.0",
    "psf": "PSF-2.0",
    "python": "Python-2.0",
    "python-2.0": "Python-2.0",
    "cc0": "CC0-1.0",
    "cc0-1.0": "CC0-1.0",
    "cc-by-3.0": "CC-BY-3.0",
    "cc-by-4.0": "CC-BY-4.0",
    "cc-by-sa-3.0": "CC-BY-SA-3.0",
    "cc-by-sa-4.0": "CC-BY-SA-4.0",
    "openssl": "OpenSSL",
    "ssleay": "SSLeay-standalone",
    "unicode": "Unicode-DFS-2016",
    "curl": "curl",
    "bsl-1.0": "BSL-1.0",
    "boost-1.0": "BSL-1.0",
    "epl-1.0": "EPL-1.0",
    "epl-2.0": "EPL-2.0",
    "cddl-1.0": "CDDL-1.0",
    "unlicense": "Unlicense",
    "wtfpl": "WTFPL",
    "ftl": "FTL",
    "libpng": "Libpng",
    "libpng-2.0": "libpng-2.0",
    "ofl-1.1": "OFL-1.1",
    "sil-ofl-1.1": "OFL-1.1",
    "tcl": "TCL",
    "vim": "Vim",
    "zpl-2.1": "ZPL-2.1",
    "0bsd": "0BSD",
    "mit-0": "MIT-0",
    "bzip2-1.0.6": "bzip2-1.0.6",
    "ruby": "Ruby",
    "php-3.01": "PHP-3.01",
    "postgresql": "PostgreSQL",
    "sleepycat": "Sleepycat",
    "lppl-1.3c": "LPPL-1.3c",
    "ncsa": "NCSA",
    "hpnd": "HPND",
    "ijg": "IJG",
    "info-zip": "Info-ZIP",
    "gpl-2.0-only": "GPL-2.0-only",
    "gpl-2.0-or-later": "GPL-2.0-or-later",
    "gpl-3.0-only": "GPL-3.0-only",
    "gpl-3.0-or-later": "GPL-3.0-or-later",
    "lgpl-2.1-only": "LGPL-2.1-only",
    "lgpl-2.1-or-later": "LGPL-2.1-or-later",
    "lgpl-3.0-only": "LGPL-3.0-only",
    "lgpl-3.0-or-later": "LGPL-3.0-or-later",
    "agpl-3.0-only": "AGPL-3.0-only",
    "agpl-3.0-or-later": "AGPL-3.0-or-later",
    "gpl-1.0-only": "GPL-1.0-only",
    "gpl-1.0-or-later": "GPL-1.0-or-later",
    "lgpl-2.0-only": "LGPL-2.0-only",
    "lgpl-2.0-or-later": "LGPL-2.0-or-later",
    "blueoak-1.0.0": "BlueOak-1.0.0",
    "python-2.0.1": "Python-2.0.1",
    "cc-by-sa-2.0": "CC-BY-SA-2.0",
    "unicode-3.0": "Unicode-3.0",
    "unicode-dfs-2016": "Unicode-DFS-2016",
    "x11-distribute-modifications-variant": "X11-distribute-modifications-variant",
}

# SPDX license exceptions that appear in Debian copyright files (lower-cased → SPDX id).
_EXCEPTIONS: dict[str, str] = {
    "gcc-exception-3.1": "GCC-exception-3.1",
    "gcc-exception-2.0": "GCC-exception-2.0",
    "autoconf-exception-2.0": "Autoconf-exception-2.0",
    "autoconf-exception-3.0": "Autoconf-exception-3.0",
    "bison-exception-2.2": "Bison-exception-2.2",
    "classpath-exception-2.0": "Classpath-exception-2.0",
    "font-exception-2.0": "Font-exception-2.0",
    "libtool-exception": "Libtool-exception",
    "linux-syscall-note": "Linux-syscall-note",
    "llvm-exception": "LLVM-exception",
    "openssl-exception": "openvpn-openssl-exception",
}

_SPDX_IDS_LOWER = {v.lower(): v for v in _DEBIAN_TO_SPDX.values()}
_REF_UNSAFE = re.compile(r"[^A-Za-z0-9.\-]+")
_OPERATOR = re.compile(r"\s+(or|and)\s+|\s*,\s*(?:(or|and)\s+)?", re.IGNORECASE)
_WITH = re.compile(r"\s+with\s+", re.IGNORECASE)
_DEP5_FORMAT = re.compile(
    r"^Format:\s*\S*(copyright-format|dep5|dep-5)", re.IGNORECASE | re.MULTILINE
)


def license_ref(name: str) -> str:
    cleaned = _REF_UNSAFE.sub("-", name.strip()).strip("-.") or "unknown"
    return f"LicenseRef-{cleaned}"


def normalize_license(name: str) -> str:
    """One license name → an SPDX id, or a ``LicenseRef-…`` when it is not one."""
    key = name.strip().lower()
    if not key:
        return ""
    if key in _DEBIAN_TO_SPDX:
        return _DEBIAN_TO_SPDX[key]
    if key in _SPDX_IDS_LOWER:
        return _SPDX_IDS_LOWER[key]
    return license_ref(name)


def _term(text: str) -> str:
    """``GPL-3+ with GCC-exception-3.1`` → ``GPL-3.0-or-later WITH GCC-exception-3.1``."""
    pieces = _WITH.split(text.strip(), maxsplit=1)
    lic = normalize_license(pieces[0])
    if len(pieces) == 1:
        return lic
    exc = pieces[1].strip()
    exc_key = exc.lower().removesuffix(" exception").replace(" ", "-")
    if lic.startswith("LicenseRef-") or exc_key not in _EXCEPTIONS:
        return license_ref(f"{pieces[0]}-with-{exc}")
    return f"{lic} WITH {_EXCEPTIONS[exc_key]}"


def _field_expression(value: str) -> str:
    """A DEP-5 ``License:`` first line → SPDX expression (``or``/``and``/``,`` and ``with``)."""
    value = value.strip()
    if not value:
        return ""
    terms: list[str] = []
    ops: list[str] = []
    pos = 0
    for m in _OPERATOR.finditer(value):
        terms.append(value[pos : m.start()])
        op = (m.group(1) or m.group(2) or "and").upper()
        ops.append(op)
        pos = m.end()
    terms.append(value[pos:])
    if any(" " in _WITH.split(t.strip(), maxsplit=1)[0] for t in terms if t.strip()):
        return ""  # a DEP-5 short name has no spaces: this is prose
    out = [_term(t) for t in terms if t.strip()]
    if not out:
        return ""
    if len(out) != len(ops) + 1:
        ops = ["AND"] * (len(out) - 1)
    if len(out) == 1:
        return out[0]
    # Debian gives "or" and "and" without precedence rules; keep each OR-run together.
    groups: list[list[str]] = [[out[0]]]
    for op, term in zip(ops, out[1:], strict=True):
        if op == "OR":
            groups[-1].append(term)
        else:
            groups.append([term])
    if len(groups) == 1:
        return " OR ".join(groups[0])
    parts = [g[0] if len(g) == 1 else "(" + " OR ".join(g) + ")" for g in groups]
    return " AND ".join(parts)


def _and_parts(expression: str) -> list[str]:
    """Top-level ``AND`` operands of an expression this module built (no nesting beyond one)."""
    parts, depth, start = [], 0, 0
    i = 0
    while i < len(expression):
        c = expression[i]
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif depth == 0 and expression.startswith(" AND ", i):
            parts.append(expression[start:i])
            start = i + 5
            i += 5
            continue
        i += 1
    parts.append(expression[start:])
    return [p for p in parts if p]


def expression_from_names(names: Iterable[str]) -> str:
    """Distinct license expressions (already SPDX) → one ``AND`` expression, sorted."""
    distinct = sorted({n for n in names if n})
    if not distinct:
        return ""
    if len(distinct) == 1:
        return distinct[0]
    wrapped = [f"({n})" if (" OR " in n or " AND " in n) else n for n in distinct]
    return " AND ".join(wrapped)


def dep5_license_names(text: str) -> list[str]:
    """The first line of every ``License:`` field in a DEP-5 file (raw Debian names)."""
    names = []
    for line in text.splitlines():
        if line[:8].lower() == "license:":
            value = line[8:].strip()
            if value:
                names.append(value)
    return names


def parse_dep5(data: bytes | None) -> str:
    """A ``/usr/share/doc/PKG/copyright`` file → SPDX expression, ``""`` when none found.

    Only machine-readable files are parsed (a ``Format:`` header naming the copyright format);
    free-text copyright files yield ``""`` (NOASSERTION) rather than a guess. A ``License:``
    value whose names contain spaces is prose, not DEP-5 short names, and is skipped.
    """
    if not data:
        return ""
    text = data[: 4 * 1024 * 1024].decode("utf-8", errors="replace")
    if not _DEP5_FORMAT.search(text[:4096]):
        return ""  # free text: a "License:" line there is prose, not a short name
    parts = {part for n in dep5_license_names(text) for part in _and_parts(_field_expression(n))}
    return expression_from_names(parts)


def license_refs(expression: str) -> list[str]:
    """Every ``LicenseRef-…`` in an expression (for SPDX hasExtractedLicensingInfos)."""
    return sorted(set(re.findall(r"LicenseRef-[A-Za-z0-9.\-]+", expression)))


def free_text_expression(value: str) -> str:
    """A license string from Python/npm/apk metadata → SPDX expression (best effort).

    Already-valid simple expressions (``MIT``, ``MIT OR Apache-2.0``) keep their structure; a
    free-form string that is not one becomes a single ``LicenseRef-…``.
    """
    value = value.strip()
    if not value or value.upper() in ("UNKNOWN", "NOASSERTION", "NONE"):
        return ""
    if len(value) > 200 or "\n" in value:
        return license_ref(value.splitlines()[0][:60])
    tokens = re.split(r"\s+(OR|AND|WITH)\s+", value.strip("()"))
    if len(tokens) > 1 and "(" not in value.strip("()"):
        out = []
        for i, tok in enumerate(tokens):
            if i % 2 == 1:
                out.append(tok)
            elif tokens[i - 1] == "WITH" if i else False:
                key = tok.lower()
                if key not in _EXCEPTIONS:
                    return license_ref(value)
                out.append(_EXCEPTIONS[key])
            else:
                out.append(normalize_license(tok))
        if any(o.startswith("LicenseRef-") for o in out) and "WITH" in out:
            return license_ref(value)
        return " ".join(out)
    return normalize_license(value)
