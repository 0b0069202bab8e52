"""Per-ecosystem version ordering for OSV ranges, and ecosystem name mapping.

Debian versions order as dpkg does, PyPI versions as PEP 440 (``packaging``), npm and SEMVER
ranges as Semantic Versioning 2.0.0, Alpine as apk does (its common forms). Other ecosystems
fall back to a generic ordering of alternating digit and non-digit runs; a version that cannot be
ordered raises ``ValueError`` and the matcher reports the range as skipped instead of guessing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from packaging.version import InvalidVersion
from packaging.version import Version as PyPIVersion

from assay.debian.version import version_key
from assay.errors import InputError

__all__ = [
    "apk_key",
    "normalize_name",
    "osv_ecosystem",
    "semver_key",
    "sort_key_for",
]

# inventory ecosystem -> OSV ecosystem name
_OSV_ECOSYSTEMS = {
    "deb": "Debian",
    "pypi": "PyPI",
    "npm": "npm",
    "apk": "Alpine",
    "golang": "Go",
    "go": "Go",
    "cargo": "crates.io",
    "gem": "RubyGems",
    "maven": "Maven",
    "nuget": "NuGet",
    "composer": "Packagist",
}


def osv_ecosystem(ecosystem: str) -> str:
    return _OSV_ECOSYSTEMS.get(ecosystem.lower(), ecosystem)


def normalize_name(osv_eco: str, name: str) -> str:
    """Name as stored and looked up: PEP 503 for PyPI, lower case for npm, verbatim otherwise."""
    if osv_eco == "PyPI":
        return re.sub(r"[-_.]+", "-", name).lower()
    if osv_eco == "npm":
        return name.lower()
    return name


_SEMVER = re.compile(
    r"^v?(0|[1-9]\d*)(?:\.(0|[1-9]\d*))?(?:\.(0|[1-9]\d*))?"
    r"(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+[0-9A-Za-z.-]+)?$"
)


def semver_key(text: str) -> tuple[Any, ...]:
    """Semantic Versioning 2.0.0 precedence. Missing minor/patch count as 0; build is ignored."""
    m = _SEMVER.match(text.strip())
    if not m:
        raise ValueError(f"not a semantic version: {text!r}")
    major, minor, patch, pre = m.group(1), m.group(2), m.group(3), m.group(4)
    core = (int(major), int(minor or 0), int(patch or 0))
    if pre is None:
        # A release sorts after every pre-release of the same core.
        return (*core, 1, ())
    idents: list[tuple[int, int | str]] = []
    for part in pre.split("."):
        # Numeric identifiers sort before alphanumeric ones.
        idents.append((0, int(part)) if part.isdigit() else (1, part))
    return (*core, 0, tuple(idents))


def _deb_key(text: str) -> tuple[Any, ...]:
    try:
        return version_key(text)
    except InputError as exc:
        raise ValueError(str(exc)) from None


def _pypi_key(text: str) -> tuple[Any, ...]:
    try:
        return (PyPIVersion(text),)
    except InvalidVersion:
        raise ValueError(f"not a PEP 440 version: {text!r}") from None


_APK = re.compile(
    r"^(\d+(?:\.\d+)*)([a-z]?)((?:_(?:alpha|beta|pre|rc|cvs|svn|git|hg|p)\d*)*)"
    r"(?:~[0-9a-f]+)?(?:-r(\d+))?$"
)
_APK_SUFFIX = {
    "alpha": -4,
    "beta": -3,
    "pre": -2,
    "rc": -1,
    "cvs": 1,
    "svn": 2,
    "git": 3,
    "hg": 4,
    "p": 5,
}


def apk_key(text: str) -> tuple[Any, ...]:
    """Alpine apk ordering: numbers, optional letter, ``_alpha``…``_rc`` before the release and
    ``_cvs``…``_p`` after it, then ``-rN``."""
    m = _APK.match(text.strip())
    if not m:
        raise ValueError(f"not an Alpine package version: {text!r}")
    numbers = tuple(int(n) for n in m.group(1).split("."))
    suffixes = tuple(
        (_APK_SUFFIX[name], int(num or 0))
        for name, num in re.findall(r"_([a-z]+)(\d*)", m.group(3))
    )
    return (numbers, m.group(2), (*suffixes, (0, 0)), int(m.group(4) or 0))


_RUN = re.compile(r"\d+|[A-Za-z]+|[^A-Za-z\d]+")


def _generic_key(text: str) -> tuple[Any, ...]:
    out: list[tuple[int, int | str]] = []
    for run in _RUN.findall(text.strip().lstrip("v")):
        if run.isdigit():
            out.append((1, int(run)))
        elif run.isalpha():
            out.append((0, run))
    return tuple(out)


def sort_key_for(osv_eco: str, range_type: str) -> Callable[[str], tuple[Any, ...]]:
    """The version key for a range of ``range_type`` in ecosystem ``osv_eco``."""
    if range_type == "SEMVER":
        return semver_key
    base = osv_eco.split(":", 1)[0]
    if base in ("Debian", "Ubuntu"):
        return _deb_key
    if base == "PyPI":
        return _pypi_key
    if base in ("npm", "Go", "crates.io"):
        return semver_key
    if base == "Alpine":
        return apk_key
    return _generic_key
