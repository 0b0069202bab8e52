"""Debian release numbers and codenames, for os-release files and distro names like ``debian:12``.

Only stable releases have a number; ``sid`` (unstable) never gets one.
"""

from __future__ import annotations

__all__ = ["CODENAMES", "codename_for", "version_for"]

# major version -> codename, as base-files writes them into /usr/lib/os-release
CODENAMES: dict[str, str] = {
    "8": "jessie",
    "9": "stretch",
    "10": "buster",
    "11": "bullseye",
    "12": "bookworm",
    "13": "trixie",
    "14": "forky",
    "15": "duke",
}
_VERSIONS = {name: number for number, name in CODENAMES.items()}


def codename_for(version: str) -> str:
    """The codename of a Debian version ("12", "12.8" -> "bookworm"); "" when unknown."""
    return CODENAMES.get(version.strip().split(".", 1)[0], "")


def version_for(codename: str) -> str:
    """The major version of a Debian codename ("bookworm" -> "12"); "" when unknown."""
    return _VERSIONS.get(codename.strip().lower(), "")
