"""Fleet rescans and fleet reports as SQL run by the store's database.

An image digest's inventory never changes, so the fleet is matched per distinct Debian source
version, not per image: ``record_images`` keeps the fleet's source versions
(``fleet_packages``), ``sync_advisories`` copies the advisory DB's Debian tracker rows and the
KEV catalog into the store and marks the source versions whose advisories changed, and
``rescan`` matches only the pending ones (new to the fleet, or with changed advisories) into
``package_matches``, each match with its own first-seen and resolved dates. Per-image findings
are the ``findings`` view joining inventories with those matches (see
``assay.store.migrations.findings_view``). The states are the same as a single ``assay scan``
gives.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, select, text

from assay.store import schema
from assay.store._due import fedramp_days
from assay.store._store import Store, _now, bulk_insert

__all__ = [
    "FleetImageRow",
    "FleetReport",
    "RescanSummary",
    "fleet_report",
    "rescan",
    "sync_advisories",
]

_ADVISORY_COLUMNS = (
    "release",
    "source",
    "vuln",
    "status",
    "fixed_version",
    "fixed_key",
    "urgency",
    "nodsa",
    "nodsa_reason",
    "severity",
)

# The pending source versions matched against the advisories, classified as ``assay scan``
# classifies a Debian tracker entry.
_MATCH = """
SELECT p.version_id AS version_id, d.vuln AS vuln,
  CASE
    WHEN d.status = 'resolved' THEN 'affected'
    WHEN d.urgency LIKE 'end-of-life%' THEN 'end-of-life'
    WHEN d.status = 'undetermined' THEN 'undetermined'
    WHEN d.status = 'open' AND (d.nodsa <> '' OR d.nodsa_reason IN ('postponed', 'ignored'))
      THEN 'wont-fix'
    ELSE 'affected'
  END AS state,
  d.severity AS severity,
  CASE WHEN d.status = 'resolved' THEN d.fixed_version ELSE '' END AS fixed_in,
  CASE
    WHEN d.urgency LIKE 'end-of-life%' THEN 'end-of-life in this release'
    WHEN d.status = 'open' AND (d.nodsa <> '' OR d.nodsa_reason IN ('postponed', 'ignored'))
      THEN CASE WHEN d.nodsa_reason <> '' AND d.nodsa <> '' THEN d.nodsa_reason || '; ' || d.nodsa
                WHEN d.nodsa_reason <> '' THEN d.nodsa_reason
                WHEN d.nodsa <> '' THEN d.nodsa ELSE 'no DSA' END
    ELSE ''
  END AS reason,
  COALESCE(k.due_date, '') AS kev_due
FROM assay_scope AS p
JOIN advisories AS d ON d.release = p.release AND d.source = p.source
LEFT JOIN kev AS k ON k.cve = d.vuln
WHERE d.fixed_version NOT IN ('0', '<not-affected>')
  AND d.status IN ('resolved', 'open', 'undetermined')
  AND (d.status <> 'resolved' OR p.source_key < d.fixed_key)
"""

_MATCH_KEY = ("version_id", "vuln")
_MATCH_VALUES = ("state", "severity", "fixed_in", "reason", "kev_due")

# New matches are first seen now; a known one is rewritten only when it changed or had been
# resolved, so a rescan writes little.
_UPSERT = f"""
INSERT INTO package_matches ({", ".join(_MATCH_KEY + _MATCH_VALUES)},
                             first_seen, changed_at)
SELECT {", ".join(_MATCH_KEY + _MATCH_VALUES)},
       CAST(:now AS VARCHAR(32)), CAST(:now AS VARCHAR(32))
FROM assay_current WHERE true  -- SQLite needs a WHERE before ON CONFLICT
ON CONFLICT ({", ".join(_MATCH_KEY)}) DO UPDATE SET
  {", ".join(f"{c} = excluded.{c}" for c in _MATCH_VALUES)},
  changed_at = excluded.changed_at, resolved_at = NULL
WHERE package_matches.resolved_at IS NOT NULL OR
  {" OR ".join(f"package_matches.{c} <> excluded.{c}" for c in _MATCH_VALUES)}
"""

_SAME_MATCH = " AND ".join(f"c.{c} = package_matches.{c}" for c in _MATCH_KEY)
_SAME_SCOPE = "p.version_id = package_matches.version_id"
_RESOLVE = f"""
UPDATE package_matches SET resolved_at = :now, changed_at = :now
WHERE resolved_at IS NULL
  AND EXISTS (SELECT 1 FROM assay_scope AS p WHERE {_SAME_SCOPE})
  AND NOT EXISTS (SELECT 1 FROM assay_current AS c WHERE {_SAME_MATCH})
"""

# Findings (image x package x vulnerability) behind matches: each match counts its source
# version's inventory rows.
_WEIGHTED = """
SELECT
  COALESCE(SUM(CASE WHEN m.resolved_at IS NULL THEN p.uses ELSE 0 END), 0),
  COALESCE(SUM(CASE WHEN m.resolved_at IS NULL AND m.first_seen = :now THEN p.uses ELSE 0 END), 0),
  COALESCE(SUM(CASE WHEN m.resolved_at = :now THEN p.uses ELSE 0 END), 0)
FROM package_matches AS m JOIN fleet_packages AS p ON p.id = m.version_id
"""


@dataclass(frozen=True)
class RescanSummary:
    when: str
    open: int  # open findings (image x package x vulnerability) after the rescan
    new: int  # of those, on matches first seen in this rescan
    resolved: int  # findings on matches this rescan no longer found
    checked: int = 0  # source versions matched (new to the fleet or with changed advisories)


def _severities(db: Any) -> dict[str, str]:
    """Severity as ``assay scan`` rates Debian findings: NVD's CVSS, else OSV's."""
    from assay.vuln.model import Severity
    from assay.vuln.severity import cvss_score, nvd_preference, severity_from_score

    best: dict[str, Severity] = {}
    for vuln, vector in db.conn.execute("SELECT vuln, vector FROM cvss"):
        scored = cvss_score(vector)
        if scored is not None:
            sev = severity_from_score(scored[0])
            if vuln not in best or sev.rank > best[vuln].rank:
                best[vuln] = sev
    nvd: dict[str, tuple[tuple[bool, int], float]] = {}
    for cve, version, kind, score in db.conn.execute(
        "SELECT cve, version, type, score FROM nvd ORDER BY cve, source"
    ):
        key = nvd_preference(kind, version)
        if cve not in nvd or key >= nvd[cve][0]:  # ties: the last source, as scan picks
            nvd[cve] = (key, float(score))
    best.update({cve: severity_from_score(score) for cve, (_, score) in nvd.items()})
    return {v: s.value for v, s in best.items()}


_ADVISORY_DIFF = """
INSERT INTO assay_changed (release, source)
SELECT n.release, n.source FROM assay_advisories AS n
LEFT JOIN advisories AS o ON o.release = n.release AND o.source = n.source AND o.vuln = n.vuln
WHERE o.vuln IS NULL OR o.status <> n.status OR o.fixed_version <> n.fixed_version
  OR o.urgency <> n.urgency OR o.nodsa <> n.nodsa OR o.nodsa_reason <> n.nodsa_reason
  OR o.severity <> n.severity
UNION
SELECT o.release, o.source FROM advisories AS o
LEFT JOIN assay_advisories AS n
  ON n.release = o.release AND n.source = o.source AND n.vuln = o.vuln
WHERE n.vuln IS NULL
UNION
SELECT d.release, d.source FROM assay_advisories AS d
WHERE d.vuln IN (
  SELECT n.cve FROM assay_kev AS n LEFT JOIN kev AS o ON o.cve = n.cve
  WHERE o.cve IS NULL OR o.due_date <> n.due_date
  UNION
  SELECT o.cve FROM kev AS o LEFT JOIN assay_kev AS n ON n.cve = o.cve WHERE n.cve IS NULL
)
"""

_IN_CHANGED = (
    "EXISTS (SELECT 1 FROM assay_changed AS c WHERE c.release = {t}.release AND "
    "c.source = {t}.source)"
)


def sync_advisories(store: Store, db: Any) -> int:
    """Bring the store's copy of the advisory DB's (``assay.vuln.db.AdvisoryDB``) Debian rows
    and KEV up to date; return the number of Debian rows.

    Only what changed is rewritten (nothing when the rows' digest equals the last sync's),
    and the fleet's source versions whose advisories (or their KEV entries) changed are
    marked for the next ``rescan``. Severity as ``assay scan`` rates
    Debian findings: NVD's CVSS, else OSV's, else the urgency.
    """
    from assay.vuln.severity import severity_from_urgency

    best = _severities(db)
    by_urgency: dict[str, str] = {}
    counted = 0

    def rows() -> Iterator[tuple[Any, ...]]:
        nonlocal counted
        q = f"SELECT {', '.join(_ADVISORY_COLUMNS[:-1])} FROM debian"
        for row in db.conn.execute(q):
            counted += 1
            sev = best.get(row[2])
            if sev is None:
                sev = by_urgency.get(row[6])
                if sev is None:
                    sev = by_urgency[row[6]] = severity_from_urgency(row[6]).value
            yield (*row, sev)

    kev_rows = list(db.conn.execute("SELECT cve, date_added, due_date FROM kev ORDER BY cve"))
    digest = hashlib.sha256(repr(kev_rows).encode())
    for row in rows():
        digest.update(repr(row).encode())
    fingerprint = digest.hexdigest()
    t = schema.advisory_sync
    with store.engine.connect() as conn:
        last = conn.execute(select(t.c.fingerprint, t.c.rows)).first()
    if last is not None and last[0] == fingerprint:
        return int(last[1])  # nothing changed since the last sync
    blob = "BYTEA" if store.dialect == "postgresql" else "BLOB"
    counted = 0
    with store.engine.begin() as conn:
        for name in ("assay_advisories", "assay_kev", "assay_changed"):
            conn.execute(text(f"DROP TABLE IF EXISTS {name}"))
        conn.execute(
            text(
                "CREATE TEMPORARY TABLE assay_advisories (release VARCHAR(40), source TEXT, "
                f"vuln VARCHAR(64), status VARCHAR(20), fixed_version TEXT, fixed_key {blob}, "
                "urgency VARCHAR(40), nodsa TEXT, nodsa_reason TEXT, severity VARCHAR(16), "
                "PRIMARY KEY (release, source, vuln))"
            )
        )
        conn.execute(
            text(
                "CREATE TEMPORARY TABLE assay_kev (cve VARCHAR(64) PRIMARY KEY, "
                "date_added VARCHAR(32), due_date VARCHAR(32))"
            )
        )
        conn.execute(
            text(
                "CREATE TEMPORARY TABLE assay_changed (release VARCHAR(40), source TEXT, "
                "PRIMARY KEY (release, source))"
            )
        )
        bulk_insert(conn, store.dialect, "assay_advisories", _ADVISORY_COLUMNS, rows())
        bulk_insert(conn, store.dialect, "assay_kev", ("cve", "date_added", "due_date"), kev_rows)
        if store.dialect == "postgresql":
            conn.execute(text("ANALYZE assay_advisories"))
            conn.execute(text("ANALYZE assay_kev"))
        conn.execute(text(_ADVISORY_DIFF))
        cols = ", ".join(_ADVISORY_COLUMNS)
        conn.execute(text(f"DELETE FROM advisories WHERE {_IN_CHANGED.format(t='advisories')}"))
        conn.execute(
            text(
                f"INSERT INTO advisories ({cols}) SELECT {cols} FROM assay_advisories "
                f"WHERE {_IN_CHANGED.format(t='assay_advisories')}"
            )
        )
        conn.execute(text("DELETE FROM kev"))
        conn.execute(text("INSERT INTO kev SELECT cve, date_added, due_date FROM assay_kev"))
        conn.execute(
            text(
                "UPDATE fleet_packages SET pending = 1 "
                f"WHERE pending = 0 AND {_IN_CHANGED.format(t='fleet_packages')}"
            )
        )
        for name in ("assay_advisories", "assay_kev", "assay_changed"):
            conn.execute(text(f"DROP TABLE {name}"))
        conn.execute(delete(t))
        conn.execute(
            t.insert().values(id=1, fingerprint=fingerprint, rows=counted, synced_at=_now())
        )
    return counted


def _count(conn: Connection, sql: str, **params: Any) -> int:
    return int(conn.execute(text(sql), params).scalar_one())


def rescan(store: Store, *, now: str = "") -> RescanSummary:
    """Match the pending source versions of the fleet against the synced advisories.

    Pending are the source versions new to the fleet since the last rescan and those whose
    advisories changed in a sync since. Their current matches go to a temporary table; new
    ones are inserted (first seen now), changed ones rewritten, and open matches of those
    versions no longer found are marked resolved. Every other match stands as it was, so a
    rescan costs what changed, not the size of the fleet.
    """
    when = now or _now()
    with store.engine.begin() as conn:
        if store.dialect == "postgresql":  # one rescan at a time; records and syncs wait
            conn.execute(text("LOCK TABLE fleet_packages IN SHARE ROW EXCLUSIVE MODE"))
        for name in ("assay_scope", "assay_current"):
            conn.execute(text(f"DROP TABLE IF EXISTS {name}"))
        conn.execute(
            text(
                "CREATE TEMPORARY TABLE assay_scope AS SELECT id AS version_id, release, source, "
                "source_key FROM fleet_packages WHERE pending = 1"
            )
        )
        checked = _count(conn, "SELECT count(*) FROM assay_scope")
        if checked:
            conn.execute(text("CREATE INDEX assay_scope_key ON assay_scope (version_id)"))
            if store.dialect == "postgresql":
                conn.execute(text("ANALYZE assay_scope"))
            conn.execute(text(f"CREATE TEMPORARY TABLE assay_current AS {_MATCH}"))
            conn.execute(text("CREATE INDEX assay_current_key ON assay_current (version_id, vuln)"))
            if store.dialect == "postgresql":
                conn.execute(text("ANALYZE assay_current"))
            conn.execute(text(_UPSERT), {"now": when})
            conn.execute(text(_RESOLVE), {"now": when})
            conn.execute(
                text(
                    "UPDATE fleet_packages SET pending = 0 WHERE pending = 1 AND id IN "
                    "(SELECT version_id FROM assay_scope)"
                )
            )
            conn.execute(text("DROP TABLE assay_current"))
        conn.execute(text("DROP TABLE assay_scope"))
        open_now, new, resolved = conn.execute(text(_WEIGHTED), {"now": when}).one()
    return RescanSummary(when, int(open_now), int(new), int(resolved), checked)


@dataclass(frozen=True)
class FleetImageRow:
    digest: str
    name: str
    release: str
    packages: int
    open: int
    critical: int
    high: int
    medium: int
    low: int
    kev: int
    overdue: int
    oldest_open: str  # first-seen date of the oldest open finding ("" = none)
    next_due: str  # earliest due date of an open finding ("" = none)
    unknown: int = 0  # open findings of unknown severity (the rest of open is negligible)

    def at_or_above(self, severity: str) -> int:
        """Open findings rated ``severity`` or worse (negligible < unknown < low < … <
        critical, as ``assay scan --fail-on`` ranks them)."""
        from assay.vuln.model import Severity

        threshold = Severity.parse(severity)
        counts = {
            Severity.CRITICAL: self.critical,
            Severity.HIGH: self.high,
            Severity.MEDIUM: self.medium,
            Severity.LOW: self.low,
            Severity.UNKNOWN: self.unknown,
        }
        counts[Severity.NEGLIGIBLE] = self.open - sum(counts.values())
        return sum(n for sev, n in counts.items() if sev.rank >= threshold.rank)


@dataclass(frozen=True)
class FleetReport:
    generated: str
    images: tuple[FleetImageRow, ...]
    top: tuple[tuple[str, str, int, str], ...]  # (vuln, severity, images affected, KEV due)

    @property
    def totals(self) -> dict[str, int]:
        keys = ("packages", "open", "critical", "high", "medium", "low", "kev", "overdue")
        out = {k: sum(int(getattr(r, k)) for r in self.images) for k in keys}
        out["images"] = len(self.images)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "generated": self.generated,
            "totals": self.totals,
            "images": [r.__dict__ for r in self.images],
            "top": [
                {"vuln": v, "severity": s, "images": n, "kev_due": k} for v, s, n, k in self.top
            ],
        }


def _report_sql() -> str:
    """Per-image counts: open non-end-of-life matches are aggregated per source version, then
    summed over the versions each image carries (``image_versions``) — never one row per
    finding. A finding is first seen at the later of the image's recording and the match's
    first rescan, so it is overdue exactly when its KEV due date has passed, or when both
    dates are before today minus its severity's days; the per-image earliest dates follow
    from the per-version ones (see ``_row``)."""
    days = fedramp_days()
    kev_late = "(m.kev_due <> '' AND m.kev_due < :today)"
    per_version = ",\n    ".join(
        [
            *(f"SUM(CASE WHEN m.severity = '{sev}' THEN 1 ELSE 0 END) AS n_{sev}" for sev in _SEVS),
            f"SUM(CASE WHEN {kev_late} THEN 1 ELSE 0 END) AS late_kev",
            *(
                f"SUM(CASE WHEN NOT {kev_late} AND m.severity = '{sev}' AND "
                f"substr(m.first_seen, 1, 10) < :cut_{sev} THEN 1 ELSE 0 END) AS late_{sev}"
                for sev, _ in days
            ),
            *(
                f"MIN(CASE WHEN m.severity = '{sev}' THEN substr(m.first_seen, 1, 10) END) "
                f"AS first_{sev}"
                for sev, _ in days
            ),
        ]
    )
    per_image = ",\n    ".join(
        [
            *(f"SUM(iv.n * v.n_{sev}) AS n_{sev}" for sev in _SEVS),
            "SUM(iv.n * v.late_kev) AS late_kev",
            *(f"SUM(iv.n * v.late_{sev}) AS late_{sev}" for sev, _ in days),
            *(f"MIN(v.first_{sev}) AS first_{sev}" for sev, _ in days),
        ]
    )
    out = ", ".join(
        [
            *(f"COALESCE(f.n_{sev}, 0)" for sev in _SEVS),
            "COALESCE(f.late_kev, 0)",
            *(f"COALESCE(f.late_{sev}, 0)" for sev, _ in days),
            *(f"f.first_{sev}" for sev, _ in days),
        ]
    )
    return f"""
WITH v AS (
  SELECT m.version_id,
    count(*) AS n,
    SUM(CASE WHEN m.kev_due <> '' THEN 1 ELSE 0 END) AS kev,
    MIN(substr(m.first_seen, 1, 10)) AS oldest,
    MIN(CASE WHEN m.kev_due <> '' THEN m.kev_due END) AS first_kev,
    {per_version}
  FROM package_matches AS m
  WHERE m.resolved_at IS NULL AND m.state <> 'end-of-life'
  GROUP BY m.version_id
),
f AS (
  SELECT iv.image_id,
    SUM(iv.n * v.n) AS open,
    SUM(iv.n * v.kev) AS kev,
    MIN(v.oldest) AS oldest,
    MIN(v.first_kev) AS first_kev,
    {per_image}
  FROM image_versions AS iv JOIN v ON v.version_id = iv.version_id
  GROUP BY iv.image_id
)
SELECT i.digest, i.name, i.release, i.packages, substr(i.first_recorded, 1, 10),
  COALESCE(f.open, 0), COALESCE(f.kev, 0), f.oldest, f.first_kev, {out}
FROM images AS i LEFT JOIN f ON f.image_id = i.id
"""


_SEVS = ("critical", "high", "medium", "low", "unknown")

# Top vulnerabilities: an upper bound of the images each affects (the images of each affected
# source version, summed), then the exact count of distinct images for the candidates.
_TOP_BOUND = """
SELECT m.vuln, MAX(m.severity), SUM(p.images), MAX(m.kev_due)
FROM package_matches AS m JOIN fleet_packages AS p ON p.id = m.version_id
WHERE m.resolved_at IS NULL AND m.state <> 'end-of-life' AND p.images > 0
GROUP BY m.vuln
"""

_TOP_EXACT = """
WITH c AS (
  SELECT m.version_id, m.vuln FROM package_matches AS m
  WHERE m.resolved_at IS NULL AND m.state <> 'end-of-life' AND m.vuln IN ({marks})
)
SELECT c.vuln, count(DISTINCT iv.image_id)
FROM c CROSS JOIN image_versions AS iv  -- CROSS: SQLite keeps the few matches outermost
WHERE iv.version_id = c.version_id
GROUP BY c.vuln
"""


def _top(conn: Connection, limit: int) -> tuple[tuple[str, str, int, str], ...]:
    bound = {
        str(v): (str(sev), int(n), str(k or "")) for v, sev, n, k in conn.execute(text(_TOP_BOUND))
    }
    exact: dict[str, int] = {}

    def count(vulns: list[str]) -> None:
        for i in range(0, len(vulns), 500):
            chunk = vulns[i : i + 500]
            marks = ", ".join(f":v{j}" for j in range(len(chunk)))
            sql = _TOP_EXACT.format(marks=marks)
            params = {f"v{j}": v for j, v in enumerate(chunk)}
            exact.update({str(v): int(n) for v, n in conn.execute(text(sql), params)})

    ranked = sorted(bound, key=lambda v: (-bound[v][1], v))
    count(ranked[:limit])
    if len(exact) >= limit > 0:  # every vulnerability that could still rank: bound >= the last
        floor = sorted(exact.values(), reverse=True)[limit - 1]
        count([v for v in ranked[limit:] if bound[v][1] >= floor])
    best = sorted(exact, key=lambda v: (-exact[v], v))[:limit]
    return tuple((v, bound[v][0], exact[v], bound[v][2]) for v in best)


def _row(r: tuple[Any, ...], cuts: dict[str, str]) -> FleetImageRow:
    """One image's report row from the per-image sums of ``_report_sql``."""
    days = fedramp_days()
    digest, name, release, packages, recorded, open_, kev, oldest, first_kev = r[:9]
    end = 9 + len(_SEVS)
    counts = dict(zip(_SEVS, (int(x) for x in r[9:end]), strict=True))
    late_kev = int(r[end])
    names = [sev for sev, _ in days]
    late = dict(zip(names, (int(x) for x in r[end + 1 : end + 1 + len(days)]), strict=True))
    firsts = dict(zip(names, r[end + 1 + len(days) :], strict=True))
    seen = str(recorded)
    overdue = late_kev + sum(n for sev, n in late.items() if seen < cuts[sev])
    due = [str(first_kev)] if first_kev else []
    for sev, n_days in days:
        if firsts[sev]:
            start = dt.date.fromisoformat(max(seen, str(firsts[sev])))
            due.append((start + dt.timedelta(days=n_days)).isoformat())
    return FleetImageRow(
        str(digest),
        str(name),
        str(release),
        int(packages),
        int(open_),
        counts["critical"],
        counts["high"],
        counts["medium"],
        counts["low"],
        int(kev),
        overdue,
        max(seen, str(oldest)) if oldest else "",
        min(due, default=""),
        counts["unknown"],
    )


def fleet_report(store: Store, *, today: str = "", top: int = 50) -> FleetReport:
    """Per-image open findings by severity, KEV, overdue against FedRAMP deadlines; top CVEs."""
    day = today or dt.date.today().isoformat()
    cuts = {
        sev: (dt.date.fromisoformat(day) - dt.timedelta(days=days)).isoformat()
        for sev, days in fedramp_days()
    }
    params = {"today": day, **{f"cut_{sev}": cut for sev, cut in cuts.items()}}
    with store.engine.connect() as conn:
        rows = [_row(tuple(r), cuts) for r in conn.execute(text(_report_sql()), params)]
        tops = _top(conn, top)
    rows.sort(key=lambda r: (-r.overdue, -r.kev, r.name, r.digest))
    return FleetReport(day, tuple(rows), tops)
