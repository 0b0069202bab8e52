"""Match an inventory against the advisory DB.

Debian packages match the Debian security tracker on their **source** package and the release
codename; everything else (and Debian packages when no tracker data exists for the release)
matches OSV records through ECOSYSTEM/SEMVER ranges and explicit ``versions``. Ids that are
aliases of each other (CVE, DSA, DLA, GHSA, PYSEC…) become one finding per package.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from packageurl import PackageURL

from assay.debian.codenames import version_for
from assay.sbom.model import Inventory, Package
from assay.vuln.db import AdvisoryDB, release_of
from assay.vuln.ecosystems import normalize_name, osv_ecosystem, sort_key_for
from assay.vuln.model import Finding, ScanResult, Severity, State, VulnId, preferred_id
from assay.vuln.severity import (
    cvss_score,
    due_date,
    nvd_preference,
    severity_from_score,
    severity_from_urgency,
)
from assay.vuln.vkey import deb_sort_key

__all__ = ["image_purl", "osv_range_affected", "scan_inventory", "source_of"]

log = logging.getLogger(__name__)

_BINNMU = re.compile(r"\+b\d+$")


def source_of(pkg: Package) -> tuple[str, str]:
    """(source package, source version) of a Debian binary package.

    A binNMU suffix (``+b1``) is dropped: binNMUs rebuild the same source, so the tracker's
    source versions do not carry it.
    """
    name = pkg.source_name or pkg.name
    # Debian source versions never carry "+bN" (reserved for binNMUs), so a cataloger that
    # copied the binary version into source_version is corrected here too.
    version = _BINNMU.sub("", pkg.source_version or pkg.version)
    return name, version


def image_purl(inventory: Inventory) -> str:
    """``pkg:oci/NAME@sha256:…`` for the inventory's subject ("" without a digest)."""
    if not inventory.subject_digest.startswith("sha256:"):
        return ""
    name = inventory.subject_name.rsplit("/", 1)[-1].split(":", 1)[0].split("@", 1)[0].lower()
    return str(PackageURL(type="oci", name=name or "image", version=inventory.subject_digest))


def osv_range_affected(
    version: str, events: list[dict[str, str]], key: Callable[[str], Any]
) -> bool:
    """OSV range evaluation: walk the events in version order (introduced "0" first)."""
    keyed: list[tuple[Any, int, str, str]] = []
    order = {"introduced": 0, "fixed": 1, "last_affected": 2, "limit": 3}
    for ev in events:
        for kind, value in ev.items():
            if kind not in order:
                continue
            if kind == "introduced" and value == "0":
                keyed.append(((), 0, kind, value))  # sorts before every real version key
            else:
                keyed.append(((1, key(value)), order[kind], kind, value))
    keyed.sort(key=lambda t: (t[0], t[1]))
    v = (1, key(version))
    affected = False
    for k, _, kind, _value in keyed:
        if kind == "introduced":
            if k == () or v >= k:
                affected = True
        elif kind == "fixed":
            if v >= k:
                affected = False
        elif kind == "last_affected" and v > k:
            affected = False
    return affected


@dataclass
class _Raw:
    """A match before aliases are merged and enrichment is added."""

    vuln: str
    source: str
    state: State
    fixed_in: str = ""
    urgency: str = ""
    reason: str = ""


@dataclass
class _Ctx:
    db: AdvisoryDB
    skipped: list[tuple[str, str]] = field(default_factory=list)


def _debian_matches(ctx: _Ctx, release: str, pkgs: list[Package]) -> dict[str, list[_Raw]]:
    """Raw tracker matches per package purl."""
    by_source: dict[str, list[Package]] = {}
    for p in pkgs:
        by_source.setdefault(source_of(p)[0], []).append(p)
    out: dict[str, list[_Raw]] = {}
    names = sorted(by_source)
    rows: list[tuple[str, str, str, str, str, str, str, bytes | None]] = []
    for i in range(0, len(names), 500):
        chunk = names[i : i + 500]
        marks = ",".join("?" * len(chunk))
        rows.extend(
            ctx.db.conn.execute(
                "SELECT source, vuln, status, fixed_version, urgency, nodsa, nodsa_reason, "
                f"fixed_key FROM debian WHERE release=? AND source IN ({marks})",
                (release, *chunk),
            )
        )
    keys: dict[str, tuple[str, bytes | None]] = {}
    for p in pkgs:
        installed = source_of(p)[1]
        keys[p.purl] = (installed, deb_sort_key(installed))
    for source, vuln, status, fixed, urgency, nodsa, nodsa_reason, fixed_key in rows:
        u = urgency.strip().rstrip("*").strip().lower()
        for p in by_source[source]:
            installed, installed_key = keys[p.purl]
            if status == "resolved" and fixed not in ("", "0", "<not-affected>"):
                if installed_key is None or fixed_key is None:
                    ctx.skipped.append(
                        (p.purl, f"{vuln}: cannot compare {installed!r} with fixed {fixed!r}")
                    )
                    continue
                if installed_key >= fixed_key:
                    continue  # fixed at or below the installed source version
            raw = _debian_state(p, installed, vuln, status, fixed, u, nodsa, nodsa_reason, ctx)
            if raw is not None:
                raw.urgency = urgency
                out.setdefault(p.purl, []).append(raw)
    return out


def _debian_state(
    p: Package,
    installed: str,
    vuln: str,
    status: str,
    fixed: str,
    urgency: str,
    nodsa: str,
    nodsa_reason: str,
    ctx: _Ctx,
) -> _Raw | None:
    if fixed in ("0", "<not-affected>"):
        return None  # the tracker says this release never had the bug
    if status == "resolved":
        # the caller compared versions: only fixes newer than the installed source get here
        if not fixed:
            return None
        return _Raw(vuln, "debian-tracker", State.AFFECTED, fixed_in=fixed)
    if urgency == "end-of-life":
        return _Raw(vuln, "debian-tracker", State.END_OF_LIFE, reason="end-of-life in this release")
    if status == "undetermined":
        return _Raw(vuln, "debian-tracker", State.UNDETERMINED)
    if status == "open":
        if nodsa or nodsa_reason in ("postponed", "ignored"):
            reason = "; ".join(x for x in (nodsa_reason, nodsa) if x) or "no DSA"
            return _Raw(vuln, "debian-tracker", State.WONT_FIX, reason=reason)
        return _Raw(vuln, "debian-tracker", State.AFFECTED)
    ctx.skipped.append((p.purl, f"{vuln}: unknown Debian tracker status {status!r}"))
    return None


def _osv_matches(ctx: _Ctx, pkgs: list[Package], releases: dict[str, str]) -> dict[str, list[_Raw]]:
    """OSV matches; ``releases`` maps a distro ecosystem ("Debian", "Alpine") to the
    inventory's release ("12", "v3.19") so records for other releases are ignored."""
    out: dict[str, list[_Raw]] = {}
    for p in pkgs:
        eco = osv_ecosystem(p.ecosystem)
        name, version = source_of(p) if p.ecosystem == "deb" else (p.name, p.version)
        rows = ctx.db.conn.execute(
            "SELECT a.vuln, a.eco_release, a.ranges, a.versions, o.withdrawn "
            "FROM osv_affected a JOIN osv o ON o.id = a.vuln "
            "WHERE a.ecosystem=? AND a.name=?",
            (eco, normalize_name(eco, name)),
        ).fetchall()
        for vuln, eco_release, ranges_json, versions_json, withdrawn in rows:
            if withdrawn:
                continue
            if eco in ("Debian", "Alpine") and eco_release and eco_release != releases.get(eco):
                continue
            try:
                hit, fixed = _osv_affected(eco, version, json.loads(ranges_json))
            except ValueError as exc:
                ctx.skipped.append((p.purl, f"{vuln}: {exc}"))
                continue
            if not hit and version in json.loads(versions_json):
                hit = True
            if hit:
                out.setdefault(p.purl, []).append(_Raw(vuln, "osv", State.AFFECTED, fixed_in=fixed))
    return out


def _osv_affected(eco: str, version: str, ranges: list[dict[str, Any]]) -> tuple[bool, str]:
    for r in ranges:
        events = r.get("events") or []
        key = sort_key_for(eco, str(r.get("type")))
        if osv_range_affected(version, events, key):
            fixes = sorted(
                (ev["fixed"] for ev in events if "fixed" in ev),
                key=key,
            )
            later = [f for f in fixes if key(f) > key(version)]
            return True, (later[0] if later else "")
    return False, ""


def _dpkg_owned(inventory: Inventory) -> dict[str, str]:
    """Files (and cataloger locations) owned by dpkg packages -> owning package name."""
    owned: dict[str, str] = {}
    for p in inventory.packages:
        if p.ecosystem == "deb":
            for f in p.files:
                owned[f] = p.name
    return owned


def _embedded(inventory: Inventory) -> dict[str, str]:
    """Language-package purls that an OS package declares it embeds -> owning package name."""
    out: dict[str, str] = {}
    for p in inventory.packages:
        if p.ecosystem == "deb":
            for purl in getattr(p, "embedded", ()):
                out[purl] = p.name
    return out


def _owner(p: Package, owned: dict[str, str]) -> str:
    for path in (*p.locations, *p.files):
        path = "/" + path.lstrip("/")
        if path in owned:
            return owned[path]
        # a Python package's metadata dir (…/foo-1.0.dist-info/METADATA) is owned when its
        # directory is listed by the dpkg package
        parent = path.rsplit("/", 1)[0]
        if parent in owned:
            return owned[parent]
    return ""


def _alias_groups(conn: Any, ids: set[str]) -> tuple[list[set[str]], dict[str, set[str]]]:
    """Union-find over matched ids linked through the aliases table (two hops)."""
    neighbours: dict[str, set[str]] = {i: set() for i in ids}
    frontier = set(ids)
    for _ in range(2):
        if not frontier:
            break
        found: set[str] = set()
        items = sorted(frontier)
        for i in range(0, len(items), 500):
            chunk = items[i : i + 500]
            marks = ",".join("?" * len(chunk))
            for a, b in conn.execute(f"SELECT id, alias FROM aliases WHERE id IN ({marks})", chunk):
                neighbours.setdefault(a, set()).add(b)
                neighbours.setdefault(b, set()).add(a)
                found.add(b)
        frontier = found - set(neighbours.keys() & frontier)
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, bs in neighbours.items():
        for b in bs:
            ra, rb = find(a), find(b)
            if ra != rb:
                parent[ra] = rb
    groups: dict[str, set[str]] = {}
    for x in neighbours:
        groups.setdefault(find(x), set()).add(x)
    closure = {x: groups[find(x)] for x in neighbours}
    return list(groups.values()), closure


_STATE_ORDER = [State.AFFECTED, State.WONT_FIX, State.UNDETERMINED, State.END_OF_LIFE]


def _lookup(conn: Any, sql: str, keys: Iterable[str]) -> dict[str, list[tuple[Any, ...]]]:
    items = sorted(set(keys))
    out: dict[str, list[tuple[Any, ...]]] = {}
    for i in range(0, len(items), 500):
        chunk = items[i : i + 500]
        marks = ",".join("?" * len(chunk))
        for row in conn.execute(sql.format(marks=marks), chunk):
            out.setdefault(row[0], []).append(tuple(row[1:]))
    return out


def scan_inventory(
    db: AdvisoryDB,
    inventory: Inventory,
    *,
    today: dt.date | None = None,
    record_first_seen: bool = True,
) -> ScanResult:
    """All findings for ``inventory`` (none hidden; filtering is the caller's choice)."""
    today = today or dt.datetime.now(dt.UTC).date()
    ctx = _Ctx(db)
    release = release_of(inventory)
    distro = ""
    if inventory.distro is not None:
        d = inventory.distro
        distro = f"{d.id} {d.version_id}" + (f" ({release})" if release else "")
    debs = [p for p in inventory.packages if p.ecosystem == "deb"]
    owned = _dpkg_owned(inventory)
    embedded = _embedded(inventory)
    others: list[Package] = []
    for p in inventory.packages:
        if p.ecosystem == "deb":
            continue
        owner = embedded.get(p.purl) or _owner(p, owned)
        if owner:
            ctx.skipped.append((p.purl, f"owned by dpkg package {owner}; matched as that package"))
            continue
        others.append(p)

    raw: dict[str, list[_Raw]] = {}
    blind: list[str] = []
    if debs:
        raw.update(_match_debian(ctx, inventory, release, debs, blind))
    alpine = ""
    if inventory.distro is not None and inventory.distro.id.lower() == "alpine":
        alpine = "v" + ".".join(inventory.distro.version_id.split(".")[:2])
    for purl, hits in _osv_matches(ctx, others, {"Alpine": alpine}).items():
        raw.setdefault(purl, []).extend(hits)

    all_ids = {r.vuln for hits in raw.values() for r in hits}
    _, closure = _alias_groups(db.conn, all_ids)
    every = set().union(*closure.values()) if closure else set()
    conn = db.conn
    descriptions = _lookup(
        conn, "SELECT vuln, description FROM descriptions WHERE vuln IN ({marks})", every
    )
    summaries = _lookup(
        conn, "SELECT id, summary, db_severity FROM osv WHERE id IN ({marks})", every
    )
    vectors = _lookup(conn, "SELECT vuln, vector FROM cvss WHERE vuln IN ({marks})", every)
    nvd = _lookup(
        conn,
        "SELECT cve, version, source, type, vector, score FROM nvd WHERE cve IN ({marks})",
        every,
    )
    kev = _lookup(conn, "SELECT cve, due_date FROM kev WHERE cve IN ({marks})", every)
    epss = _lookup(conn, "SELECT cve, score, percentile FROM epss WHERE cve IN ({marks})", every)

    pkg_by_purl = {p.purl: p for p in inventory.packages}
    pending: list[tuple[Package, frozenset[str], list[_Raw]]] = []
    for purl, hits in raw.items():
        groups: dict[frozenset[str], list[_Raw]] = {}
        for h in hits:
            groups.setdefault(frozenset(closure.get(h.vuln, {h.vuln})), []).append(h)
        for ids, members in groups.items():
            pending.append((pkg_by_purl[purl], ids, members))

    subject = inventory.subject_digest or inventory.subject_name
    primary_ids = [preferred_id({h.vuln for h in m} | ids) for _, ids, m in pending]
    seen = db.first_seen(subject, primary_ids, today.isoformat()) if record_first_seen else {}

    findings: list[Finding] = []
    for (pkg, ids, members), vid in zip(pending, primary_ids, strict=True):
        members.sort(key=lambda r: (_STATE_ORDER.index(r.state), r.source != "debian-tracker"))
        best = members[0]
        fixed = next((m.fixed_in for m in members if m.fixed_in and m.state == best.state), "")
        urgency = next((m.urgency for m in members if m.urgency), "")
        rating = _severity(ids, urgency, vectors, summaries, nvd, pkg.ecosystem == "deb")
        severity = rating.severity
        kev_due = min((r[0] for i in ids for r in kev.get(i, [])), default="")
        is_kev = any(i in kev for i in ids)
        ep = max((r for i in ids for r in epss.get(i, [])), default=None)
        desc = next(
            (descriptions[i][0][0] for i in sorted(ids) if i in descriptions),
            next(
                (summaries[i][0][0] for i in sorted(ids) if i in summaries and summaries[i][0][0]),
                "",
            ),
        )
        first = seen.get(vid, "")
        findings.append(
            Finding(
                id=VulnId(vid),
                aliases=tuple(sorted(ids - {vid})),
                package=pkg.name,
                version=pkg.version,
                purl=pkg.purl,
                ecosystem=pkg.ecosystem,
                state=best.state,
                severity=severity,
                source=best.source,
                source_name=source_of(pkg)[0] if pkg.ecosystem == "deb" else "",
                source_version=source_of(pkg)[1] if pkg.ecosystem == "deb" else "",
                fixed_in=fixed,
                reason=best.reason,
                urgency=urgency,
                cvss_score=rating.score,
                cvss_vector=rating.vector,
                severity_source=rating.source,
                cvss_source=rating.cvss_source,
                cvss_provider=rating.provider,
                description=desc,
                kev=is_kev,
                kev_due=kev_due,
                epss=ep[0] if ep else None,
                epss_percentile=ep[1] if ep else None,
                first_seen=first,
                due_date=due_date(severity, first, kev_due) if first or kev_due else "",
                locations=pkg.locations,
            )
        )
    findings.sort(key=lambda f: (-f.severity.rank, f.id, f.package, f.purl))
    sources = {s.name: s.dated for s in db.sources()}
    return ScanResult(
        subject_name=inventory.subject_name,
        subject_digest=inventory.subject_digest,
        subject_purl=image_purl(inventory),
        distro=distro,
        findings=tuple(findings),
        skipped=tuple(sorted(set(ctx.skipped))),
        db_built=sources,
        blind_spots=tuple(blind),
    )


def _match_debian(
    ctx: _Ctx, inventory: Inventory, release: str, debs: list[Package], blind: list[str]
) -> dict[str, list[_Raw]]:
    """Tracker (else OSV ``Debian:N``) matches; what cannot be matched goes to ``blind``."""
    d = inventory.distro
    n = f"{len(debs)} Debian package(s)"
    if d is None:
        blind.append(
            f"{n} not matched: the distro is unknown (no /etc/os-release in the image, no distro "
            "in the SBOM); give --distro debian:VERSION"
        )
        return {}
    if d.id.lower() != "debian":
        blind.append(
            f"{n} not matched: the distro is {d.id} {d.version_id}".rstrip()
            + ", which assay has no advisories for; give --distro debian:VERSION if they are "
            "Debian's"
        )
        return {}
    if not release:
        blind.append(
            f"{n} not matched: Debian {d.version_id or '?'} is not a release assay knows; "
            "give --distro debian:CODENAME"
        )
        return {}
    conn = ctx.db.conn
    if conn.execute("SELECT 1 FROM debian WHERE release=? LIMIT 1", (release,)).fetchone():
        return _debian_matches(ctx, release, debs)
    major = d.version_id.split(".", 1)[0] or version_for(release)
    if conn.execute(
        "SELECT 1 FROM osv_affected WHERE ecosystem='Debian' AND eco_release=? LIMIT 1", (major,)
    ).fetchone():
        return _osv_matches(ctx, debs, {"Debian": major})
    blind.append(
        f"{n} not matched: the database has no Debian tracker (or OSV Debian:{major}) data for "
        f"{release}; run `assay db update` (or `db import --debian-tracker`)"
    )
    return {}


_DB_SEVERITY = {
    "CRITICAL": Severity.CRITICAL,
    "HIGH": Severity.HIGH,
    "MODERATE": Severity.MEDIUM,
    "MEDIUM": Severity.MEDIUM,
    "LOW": Severity.LOW,
}


@dataclass(frozen=True)
class _Rating:
    severity: Severity
    source: str  # what the severity came from: "nvd", "osv", "debian" or ""
    score: float | None = None  # CVSS base score, kept for reference even when not used
    vector: str = ""
    cvss_source: str = ""  # "nvd" or "osv"
    provider: str = ""  # who scored it in NVD: "nvd@nist.gov" (Primary) or the CNA


def _nvd_best(ids: frozenset[str], nvd: dict[str, list[tuple[Any, ...]]]) -> _Rating | None:
    """NVD's Primary assessment over a CNA's Secondary one; then the newest CVSS version."""
    rows = [r for i in sorted(ids) for r in nvd.get(i, [])]
    if not rows:
        return None
    _version, source, _kind, vector, score = max(
        rows, key=lambda r: (*nvd_preference(str(r[2]), str(r[0])), str(r[1]), str(r[3]))
    )
    return _Rating(
        severity_from_score(float(score)), "nvd", float(score), str(vector), "nvd", str(source)
    )


def _osv_best(ids: frozenset[str], vectors: dict[str, list[tuple[Any, ...]]]) -> _Rating | None:
    scored: list[tuple[int, float, str]] = []
    for i in sorted(ids):
        for (vector,) in vectors.get(i, []):
            res = cvss_score(str(vector))
            if res is not None:
                score, kind = res
                scored.append((4 if kind == "cvss_v4" else 3, score, str(vector)))
    best = max(scored, default=None)
    if best is None:
        return None
    return _Rating(severity_from_score(best[1]), "osv", best[1], best[2], "osv")


def _severity(
    ids: frozenset[str],
    urgency: str,
    vectors: dict[str, list[tuple[Any, ...]]],
    summaries: dict[str, list[tuple[Any, ...]]],
    nvd: dict[str, list[tuple[Any, ...]]],
    debian: bool,
) -> _Rating:
    """Debian packages: NVD's CVSS, else OSV's, else Debian's urgency; others: OSV first."""
    by_nvd, by_osv = _nvd_best(ids, nvd), _osv_best(ids, vectors)
    by_db: _Rating | None = None
    for i in sorted(ids):
        for _summary, db_sev in summaries.get(i, []):
            if by_db is None and str(db_sev).upper() in _DB_SEVERITY:
                by_db = _Rating(_DB_SEVERITY[str(db_sev).upper()], "osv")
    scored = (by_nvd or by_osv) if debian else (by_osv or by_nvd)
    if urgency.strip().rstrip("*").strip().lower() == "unimportant":
        # Debian judged it irrelevant for Debian's build; keep the score for reference.
        return _Rating(
            Severity.NEGLIGIBLE,
            "debian",
            scored.score if scored else None,
            scored.vector if scored else "",
            scored.cvss_source if scored else "",
            scored.provider if scored else "",
        )
    order = (by_nvd, by_osv, by_db) if debian else (by_osv, by_db, by_nvd)
    for rating in order:
        if rating is not None:
            return rating
    if urgency:
        sev = severity_from_urgency(urgency)
        return _Rating(sev, "debian" if sev is not Severity.UNKNOWN else "")
    return _Rating(Severity.UNKNOWN, "")
