"""``scan --updates``: newer versions in the configured suites, and the CVEs their changelogs name.

For every installed Debian package, the newest candidate with the same name and architecture
in the given suites is found; if it is newer than what is installed, its ``.deb`` is fetched
(hash-checked by the .deb cache) and ``usr/share/doc/<pkg>/changelog.Debian.gz`` is read from
its data.tar. The CVE ids named by changelog entries newer than the installed source version
are a fixed-vulnerability signal straight from the maintainers, even without any feed.
"""

from __future__ import annotations

import logging
import re
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from assay.debian.model import PackageRecord, RepoSource
from assay.debian.version import version_key
from assay.errors import InputError
from assay.sbom.model import Inventory, Package
from assay.vuln.matcher import source_of

__all__ = [
    "MAX_CHANGELOG_BYTES",
    "UpdateInfo",
    "changelog_cves",
    "check_updates",
    "find_updates",
    "read_changelog",
]

log = logging.getLogger(__name__)

MAX_CHANGELOG_BYTES = 32 << 20
_HEADER = re.compile(r"^(\S+) \(([^()\s]+)\) [^;]*;.*$")
_CVE = re.compile(r"\bCVE-\d{4}-\d{4,}\b")


@dataclass(frozen=True)
class UpdateInfo:
    package: str
    installed: str
    candidate: str
    suite: str
    cves: tuple[str, ...]  # sorted, unique
    entries: int  # changelog entries between installed and candidate
    note: str = ""  # why CVEs could not be read, when they could not


def changelog_cves(text: str, installed: str) -> tuple[tuple[str, ...], int]:
    """CVE ids named by changelog entries whose version is newer than ``installed``."""
    installed_key = version_key(installed)
    cves: set[str] = set()
    entries = 0
    current_newer = False
    for line in text.splitlines():
        m = _HEADER.match(line)
        if m:
            try:
                current_newer = version_key(m.group(2)) > installed_key
            except InputError:
                current_newer = False
            if not current_newer:
                break  # entries are newest first: everything below is installed already
            entries += 1
            continue
        if current_newer:
            cves.update(_CVE.findall(line))
    return tuple(sorted(cves)), entries


def read_changelog(deb_path: Path, package: str) -> str | None:
    """The text of ``usr/share/doc/<package>/changelog.Debian.gz`` in a .deb, or None."""
    from assay.debian.debfile import iter_data

    wanted = f"usr/share/doc/{package}/changelog.Debian.gz"
    for entry in iter_data(deb_path, package=package):
        if entry.path != wanted:
            continue
        if not entry.data:
            return None  # a symlink or hardlink: the changelog lives in another package
        d = zlib.decompressobj(wbits=31)
        try:
            raw = d.decompress(entry.data, MAX_CHANGELOG_BYTES + 1)
        except zlib.error as exc:
            raise InputError(f"{deb_path.name}: {wanted} is not valid gzip: {exc}") from None
        if len(raw) > MAX_CHANGELOG_BYTES or d.unconsumed_tail:
            raise InputError(f"{deb_path.name}: {wanted} expands past {MAX_CHANGELOG_BYTES} bytes")
        return raw.decode("utf-8", errors="replace")
    return None


def _newest(records: Sequence[PackageRecord]) -> dict[tuple[str, str], PackageRecord]:
    best: dict[tuple[str, str], PackageRecord] = {}
    for r in records:
        k = (r.name, r.architecture)
        cur = best.get(k)
        if cur is None or version_key(r.version) > version_key(cur.version):
            best[k] = r
    return best


def find_updates(
    inventory: Inventory,
    records: Sequence[PackageRecord],
    fetch: Callable[[PackageRecord], Path],
) -> list[UpdateInfo]:
    """Updates for each installed deb package; ``fetch`` returns a verified local .deb."""
    newest = _newest(records)
    out: list[UpdateInfo] = []
    for p in sorted(inventory.packages, key=lambda p: (p.name, p.architecture)):
        if p.ecosystem != "deb":
            continue
        cand = newest.get((p.name, p.architecture or inventory.architecture)) or newest.get(
            (p.name, "all")
        )
        if cand is None:
            continue
        try:
            if version_key(cand.version) <= version_key(p.version):
                continue
        except InputError as exc:
            log.debug("skipping %s: %s", p.name, exc)
            continue
        out.append(_update_for(p, cand, fetch))
    return out


def _update_for(
    p: Package, cand: PackageRecord, fetch: Callable[[PackageRecord], Path]
) -> UpdateInfo:
    installed_src = source_of(p)[1]
    suite = cand.repo.suite
    try:
        text = read_changelog(fetch(cand), cand.name)
    except InputError as exc:
        return UpdateInfo(
            p.name, p.version, cand.version, suite, (), 0, f"changelog unreadable: {exc}"
        )
    if text is None:
        return UpdateInfo(
            p.name,
            p.version,
            cand.version,
            suite,
            (),
            0,
            f"no usr/share/doc/{cand.name}/changelog.Debian.gz in the package",
        )
    cves, entries = changelog_cves(text, installed_src)
    return UpdateInfo(p.name, p.version, cand.version, suite, cves, entries)


def check_updates(
    inventory: Inventory,
    sources: Sequence[RepoSource],
    *,
    cache_dir: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[UpdateInfo]:
    """Load ``sources`` (signature- and hash-verified) and run :func:`find_updates`."""
    from assay.debian.fetch import DebCache
    from assay.debian.repo import RepoClient

    arch = inventory.architecture or next(
        (p.architecture for p in inventory.packages if p.architecture not in ("", "all")), "amd64"
    )
    with RepoClient(cache_dir=cache_dir, progress=progress) as client:
        index = client.load(list(sources), [arch])
    records = index.packages.get(arch, ())
    with DebCache(cache_dir=cache_dir) as cache:

        def fetch(rec: PackageRecord) -> Path:
            if progress:
                progress(f"fetching {rec.name} {rec.version} for its changelog")
            return cache.fetch_all([(rec.url, rec.sha256, rec.size)])[rec.sha256]

        return find_updates(inventory, records, fetch)
