"""``assay update``: relock a spec, and say what changed and which CVEs the change fixes.

The relock is exactly ``assay lock``'s (``build.lock.resolve_spec`` + ``make_lock``); the
rebuild, push and signing are the caller's, through ``build.builder`` and ``build.publish``
as ``assay build`` uses them. This module compares two locks and names the fixed CVEs from
two sources: the advisory DB (both package sets scanned with ``vuln.matcher.scan_inventory``)
and the ``changelog.Debian`` entries between the old and new versions (``vuln.updates``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assay.build.lock import Lock, LockedPackage, make_lock, resolve_spec
from assay.build.spec import ImageSpec
from assay.debian.model import PackageRecord, ReleaseInfo, RepoSource
from assay.errors import InputError
from assay.sbom.model import Distro, Inventory

__all__ = [
    "CveChange",
    "PackageChange",
    "UpdatePlan",
    "changelog_fixes",
    "db_delta",
    "inventory_of_lock",
    "is_security_suite",
    "plan_update",
]


def is_security_suite(suite: str) -> bool:
    """A security suite: ``bookworm-security``, ``stable-security``, ``…/updates`` (old style)."""
    s = suite.lower()
    return s.endswith("-security") or s.endswith("/updates")


@dataclass(frozen=True)
class PackageChange:
    arch: str
    name: str
    old: str | None  # None: added
    new: str | None  # None: removed
    suite: str = ""  # where the new version comes from

    @property
    def kind(self) -> str:
        if self.old is None:
            return "added"
        if self.new is None:
            return "removed"
        return "upgraded"

    def to_dict(self) -> dict[str, Any]:
        return {
            "arch": self.arch,
            "name": self.name,
            "change": self.kind,
            "old": self.old,
            "new": self.new,
            "suite": self.suite,
        }


@dataclass(frozen=True)
class CveChange:
    id: str
    package: str
    source: str  # "db" | "changelog"
    severity: str = ""
    kev: bool = False
    kev_due: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "package": self.package,
            "source": self.source,
            "severity": self.severity,
            "kev": self.kev,
            "kevDue": self.kev_due,
        }


@dataclass(frozen=True)
class UpdatePlan:
    spec_path: Path
    old_lock: Lock | None
    new_lock: Lock
    changes: tuple[PackageChange, ...]
    notes: tuple[str, ...] = field(default=())

    @property
    def changed(self) -> bool:
        return bool(self.changes) or self.old_lock is None


class _FilteredIndex:
    """A loaded index that offers, per package, only security-suite versions or the pinned one."""

    def __init__(self, inner: Any, pinned: Mapping[str, set[tuple[str, str]]]) -> None:
        self._inner = inner
        self._pinned = pinned

    @property
    def releases(self) -> tuple[ReleaseInfo, ...]:
        releases: tuple[ReleaseInfo, ...] = self._inner.releases
        return releases

    @property
    def packages(self) -> dict[str, tuple[PackageRecord, ...]]:
        out: dict[str, tuple[PackageRecord, ...]] = {}
        for arch, recs in self._inner.packages.items():
            pinned = self._pinned.get(arch, set())
            names = {n for n, _v in pinned}
            out[arch] = tuple(
                r
                for r in recs
                if r.name not in names
                or (r.name, r.version) in pinned
                or is_security_suite(r.repo.suite)
            )
        return out


class _SecurityOnlyClient:
    def __init__(self, inner: Any, old: Lock) -> None:
        self._inner = inner
        self._pinned = {
            arch: {(p.name, p.version) for p in pkgs} for arch, pkgs in old.packages.items()
        }

    def load(self, sources: Sequence[RepoSource], archs: Sequence[str]) -> _FilteredIndex:
        return _FilteredIndex(self._inner.load(sources, archs), self._pinned)


def lock_changes(old: Lock | None, new: Lock) -> tuple[PackageChange, ...]:
    """Packages upgraded (or downgraded), added and removed, per architecture, sorted."""
    out: list[PackageChange] = []
    for arch, pkgs in sorted(new.packages.items()):
        before = {p.name: p for p in (old.packages.get(arch, []) if old else [])}
        after = {p.name: p for p in pkgs}
        for name in sorted(set(before) | set(after)):
            b, a = before.get(name), after.get(name)
            if b is not None and a is not None and b.version == a.version and b.sha256 == a.sha256:
                continue
            out.append(
                PackageChange(
                    arch,
                    name,
                    b.version if b else None,
                    a.version if a else None,
                    a.suite if a else "",
                )
            )
    return tuple(out)


def plan_update(
    spec_path: Path,
    spec_bytes: bytes,
    old: Lock | None,
    client: Any,
    *,
    security_only: bool = False,
) -> UpdatePlan:
    """Resolve ``spec_path`` again (as ``assay lock`` does) and compare with ``old``."""
    spec = ImageSpec.from_yaml(spec_bytes, str(spec_path))
    notes: list[str] = []
    if security_only:
        if old is None:
            raise InputError(
                f"--security-only needs an existing lock for {spec_path}; run `assay lock` first"
            )
        client = _SecurityOnlyClient(client, old)
    archs = list(spec.archs)
    sources, index, resolutions = resolve_spec(spec, client, archs)
    new = make_lock(
        spec_path, spec_bytes, spec.package_requests(), sources, index.releases, resolutions
    )
    if spec.python is not None:  # wheels are pinned by the requirements file, not re-resolved
        from assay.build.lock import with_python
        from assay.build.pylock import python_problems

        spec_dir = Path(spec_path).parent
        kept = old.python if old is not None else None
        if kept is not None and not python_problems(kept, spec, spec_dir, new.packages):
            new = new.model_copy(update={"python": kept})
        else:
            new = with_python(new, spec, spec_dir)
    changes = lock_changes(old, new)
    if old is not None and not changes and old.to_json() != new.to_json():
        notes.append("the package set is unchanged; only the lock's metadata (releases) moved")
    return UpdatePlan(Path(spec_path), old, new, changes, tuple(notes))


def changelog_fixes(
    plan: UpdatePlan, fetch: Callable[[LockedPackage], Path]
) -> tuple[list[CveChange], list[str]]:
    """CVE ids named by changelog entries newer than the old source version, per upgrade.

    ``fetch`` returns a hash-verified local copy of the new package's ``.deb``. Returns the
    CVEs and the notes on packages whose changelog could not be read.
    """
    from assay.vuln.updates import changelog_cves, read_changelog

    if plan.old_lock is None:
        return [], []
    out: dict[tuple[str, str], CveChange] = {}
    notes: list[str] = []
    done: set[tuple[str, str]] = set()
    for ch in plan.changes:
        if ch.kind != "upgraded" or (ch.name, ch.new or "") in done:
            continue
        done.add((ch.name, ch.new or ""))
        old_pkg = next(p for p in plan.old_lock.packages[ch.arch] if p.name == ch.name)
        new_pkg = next(p for p in plan.new_lock.packages[ch.arch] if p.name == ch.name)
        try:
            text = read_changelog(fetch(new_pkg), new_pkg.name)
        except InputError as exc:
            notes.append(f"{ch.name} {ch.new}: changelog unreadable: {exc}")
            continue
        if text is None:
            notes.append(f"{ch.name} {ch.new}: no changelog.Debian.gz in the package")
            continue
        cves, _entries = changelog_cves(text, old_pkg.source_version or old_pkg.version)
        for cve in cves:
            out.setdefault((cve, ch.name), CveChange(cve, ch.name, "changelog"))
    return [out[k] for k in sorted(out)], notes


def _distro_of(lock: Lock) -> Distro:
    codename = next((r.codename for r in lock.releases if r.codename), "")
    version = next((r.version.split(".")[0] for r in lock.releases if r.version), "")
    return Distro("debian", version, codename.split("-")[0])


def inventory_of_lock(lock: Lock, arch: str, name: str, digest: str = "") -> Inventory:
    """The package inventory a lock describes (no files), for matching against the DB."""
    from assay.sbom.build import inventory_from_build

    return inventory_from_build(
        lock.packages.get(arch, []), {}, name, digest, arch, _distro_of(lock), 0, {}
    )


def db_delta(
    db: Any, old: Lock, new: Lock, name: str, *, today: dt.date | None = None
) -> tuple[list[CveChange], list[CveChange]]:
    """(fixed, introduced): open DB findings of the old package set absent from the new one."""
    from assay.vuln.matcher import scan_inventory

    def open_ids(lock: Lock) -> dict[tuple[str, str], CveChange]:
        found: dict[tuple[str, str], CveChange] = {}
        for arch in sorted(lock.packages):
            inv = inventory_of_lock(lock, arch, name)
            result = scan_inventory(db, inv, today=today, record_first_seen=False)
            for f in result.findings:
                if str(f.state) in ("fixed", "not_affected"):
                    continue
                key = (str(f.id), f.package)
                found.setdefault(
                    key,
                    CveChange(str(f.id), f.package, "db", str(f.severity), f.kev, f.kev_due),
                )
        return found

    before, after = open_ids(old), open_ids(new)
    fixed = [before[k] for k in sorted(set(before) - set(after))]
    introduced = [after[k] for k in sorted(set(after) - set(before))]
    return fixed, introduced
