"""Debian changelogs (``usr/share/doc/<pkg>/changelog.Debian.gz``) and the CVE ids they mention.

A scanner uses these to tell which CVEs a package version says it fixed (Debian maintainers name
them in the changelog entry of the upload that fixed them). Parsing follows the format in the
Debian Policy Manual §4.4: a header line ``source (version) dists; urgency=U``, change lines
indented by two spaces, and a trailer `` -- Name <email>  Date``.
"""

from __future__ import annotations

import email.utils
import io
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

from assay.debian.debfile import MAX_DATA_TAR, open_deb, read_data_member
from assay.errors import InputError
from assay.oci.entry import EntryType
from assay.oci.layer import read_tar

__all__ = [
    "ChangelogEntry",
    "cves_by_version",
    "parse_changelog",
    "read_changelog",
]

MAX_CHANGELOG = 32 << 20  # uncompressed bytes
MAX_ENTRIES = 20000

_HEADER = re.compile(
    r"^(?P<source>[a-z0-9][a-z0-9+.-]*) \((?P<version>[^ ()]+)\)(?P<dists>[^;]*);(?P<kv>.*)$"
)
_TRAILER = re.compile(r"^ -- (?P<maint>.*?) ?<(?P<email>[^>]*)>  ?(?P<date>.+?)\s*$")
_CVE = re.compile(r"\bCVE-\d{4}-\d{4,}\b", re.IGNORECASE)


@dataclass(frozen=True)
class ChangelogEntry:
    source: str
    version: str
    distributions: tuple[str, ...]
    urgency: str
    maintainer: str  # "Name <email>"
    date: str  # verbatim
    date_epoch: int | None
    changes: str  # the change lines, dedented by two spaces
    cves: tuple[str, ...]  # CVE ids mentioned in this entry, upper-case, sorted, unique


def parse_changelog(text: str) -> list[ChangelogEntry]:
    """Parse a changelog, newest entry first. Lines outside any entry are ignored."""
    entries: list[ChangelogEntry] = []
    head: re.Match[str] | None = None
    body: list[str] = []
    for line in text.splitlines():
        m = _HEADER.match(line)
        if m:
            head, body = m, []
            continue
        if head is None:
            continue
        t = _TRAILER.match(line)
        if t:
            changes = "\n".join(b[2:] if b.startswith("  ") else b for b in body).strip("\n")
            kv = dict(item.strip().split("=", 1) for item in head["kv"].split(",") if "=" in item)
            try:
                epoch: int | None = int(email.utils.parsedate_to_datetime(t["date"]).timestamp())
            except (TypeError, ValueError, IndexError):
                epoch = None
            entries.append(
                ChangelogEntry(
                    source=head["source"],
                    version=head["version"],
                    distributions=tuple(head["dists"].split()),
                    urgency=kv.get("urgency", "").strip().lower(),
                    maintainer=f"{t['maint'].strip()} <{t['email']}>",
                    date=t["date"],
                    date_epoch=epoch,
                    changes=changes,
                    cves=tuple(sorted({c.upper() for c in _CVE.findall(changes)})),
                )
            )
            if len(entries) >= MAX_ENTRIES:
                break
            head = None
            continue
        body.append(line)
    return entries


def cves_by_version(entries: list[ChangelogEntry]) -> dict[str, tuple[str, ...]]:
    """Version -> CVE ids its changelog entry mentions (entries without CVEs left out)."""
    return {e.version: e.cves for e in entries if e.cves}


def _gunzip(raw: bytes, where: str) -> bytes:
    dec = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = dec.decompress(raw, MAX_CHANGELOG + 1)
    except zlib.error as exc:
        raise InputError(f"{where}: corrupt gzip: {exc}") from None
    if len(out) > MAX_CHANGELOG:
        raise InputError(f"{where}: changelog larger than {MAX_CHANGELOG >> 20} MiB")
    return out


def read_changelog(path: Path, *, package: str) -> list[ChangelogEntry]:
    """The changelog entries shipped in the ``.deb`` at ``path``; ``[]`` when it has none.

    Looks for ``usr/share/doc/<package>/changelog.Debian.gz`` and, for native packages,
    ``changelog.gz``. A doc directory that is a symlink to another package's (common for
    binaries of one source) yields ``[]``: read that package's changelog instead.
    """
    deb = open_deb(Path(path), package_hint=package)
    data = read_data_member(Path(path), package=package, deb=deb)
    wanted = {
        f"usr/share/doc/{package}/changelog.Debian.gz": 0,
        f"usr/share/doc/{package}/changelog.gz": 1,
    }
    found: dict[int, bytes] = {}
    for e in read_tar(
        io.BytesIO(data),
        what=f"package {package} data.tar",
        allow_absolute=False,
        devices="refuse",
        whiteouts=False,
        want_data=wanted.__contains__,
        max_member_size=MAX_DATA_TAR,
        max_total_size=MAX_DATA_TAR,
    ):
        if e.type is EntryType.FILE and e.path in wanted:
            found[wanted[e.path]] = e.data
    if not found:
        return []
    raw = found[min(found)]
    text = _gunzip(raw, f"package {package} changelog").decode("utf-8", "replace")
    return parse_changelog(text)
