"""Parse the signed text of a Release file and check it (suite name, Date, Valid-Until)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from assay.debian.model import ReleaseInfo, RepoSource
from assay.errors import InputError, VerificationError

__all__ = ["IndexEntry", "Release", "parse_release"]

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_MAX_RELEASE = 32 << 20


@dataclass(frozen=True)
class IndexEntry:
    """One line of the Release file's SHA256 section."""

    path: str  # relative to dists/SUITE/
    sha256: str
    size: int


@dataclass(frozen=True)
class Release:
    """A verified Release: the public ``info`` plus what the client needs to fetch indexes."""

    info: ReleaseInfo
    files: dict[str, IndexEntry]
    acquire_by_hash: bool
    architectures: tuple[str, ...]
    components: tuple[str, ...]


def _fields(text: str, name: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    key: str | None = None
    for lineno, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            if fields:
                # A Release file is one stanza; anything after a blank line is not ours.
                if any(ln.strip() for ln in text.split("\n")[lineno:]):
                    raise InputError(f"{name}: expected one stanza, found a second one")
                break
            continue
        if line[0] in " \t":
            if key is None:
                raise InputError(f"{name}: line {lineno} continues no field")
            fields[key] += "\n" + line.strip()
            continue
        k, sep, v = line.partition(":")
        if not sep or not k or " " in k:
            raise InputError(f"{name}: line {lineno} is not 'Field: value': {line[:60]!r}")
        key = k.lower()
        if key in fields:
            raise InputError(f"{name}: field {k} appears twice")
        fields[key] = v.strip()
    return fields


def _epoch(value: str, field: str, name: str) -> int:
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        raise InputError(f"{name}: {field} {value!r} is not an RFC 2822 date") from None
    if when.tzinfo is None:
        raise InputError(f"{name}: {field} {value!r} has no time zone")
    return int(when.timestamp())


def parse_release(
    signed_text: bytes,
    source: RepoSource,
    url: str,
    inrelease_sha256: str,
    now: float,
) -> Release:
    """Parse ``signed_text`` (gpgv's output, never the raw clearsigned file) and check it.

    Checks: the suite asked for is the file's ``Suite`` or ``Codename``; ``Date`` is present;
    ``Valid-Until`` (if any) is not in the past. Raises ``VerificationError`` naming ``url``.
    """
    if len(signed_text) > _MAX_RELEASE:
        raise InputError(f"{url}: Release text larger than 32 MiB")
    try:
        text = signed_text.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{url}: Release text is not UTF-8 ({exc})") from None
    f = _fields(text, url)

    suite, codename = f.get("suite", ""), f.get("codename", "")
    wanted = source.suite.strip("/")
    if wanted not in (suite, codename):
        raise VerificationError(
            f"{url}: expected a Release for suite {wanted!r}, found Suite {suite!r} / "
            f"Codename {codename!r}; the mirror serves a different distribution under this name"
        )
    date = f.get("date")
    if not date:
        raise VerificationError(f"{url}: expected a Date field in the Release file, found none")
    date_epoch = _epoch(date, "Date", url)
    valid_until = f.get("valid-until")
    if valid_until:
        until = _epoch(valid_until, "Valid-Until", url)
        if now > until:
            now_text = datetime.fromtimestamp(now, UTC).strftime("%a, %d %b %Y %H:%M:%S UTC")
            raise VerificationError(
                f"{url}: Release file expired: expected Valid-Until ({valid_until}) to be after "
                f"the current time, found current time {now_text}; the mirror is stale or "
                "replayed - use an up-to-date mirror"
            )

    files: dict[str, IndexEntry] = {}
    for lineno, line in enumerate(f.get("sha256", "").split("\n")):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 3 or not _HEX64.match(parts[0]) or not parts[1].isdigit():
            raise InputError(f"{url}: SHA256 line {lineno} is malformed: {line[:80]!r}")
        digest, size, path = parts[0], int(parts[1]), parts[2]
        if path.startswith("/") or ".." in path.split("/"):
            raise InputError(f"{url}: SHA256 entry {path!r} is not a relative path")
        files[path] = IndexEntry(path=path, sha256=digest, size=size)
    if not files:
        raise VerificationError(
            f"{url}: expected a SHA256 section listing the indexes, found none "
            "(MD5/SHA1-only Release files are not trusted)"
        )

    info = ReleaseInfo(
        source=source,
        url=url,
        sha256=inrelease_sha256,
        date=date,
        date_epoch=date_epoch,
        valid_until=valid_until,
        codename=codename,
        suite=suite,
        origin=f.get("origin", ""),
        version=f.get("version", ""),
    )
    return Release(
        info=info,
        files=files,
        acquire_by_hash=f.get("acquire-by-hash", "no").strip().lower() == "yes",
        architectures=tuple(f.get("architectures", "").split()),
        components=tuple(f.get("components", "").split()),
    )
