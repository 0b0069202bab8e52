"""Fleet rescans and fleet reports as SQL run by the store's database.

``sync_advisories`` copies the advisory DB's Debian tracker rows and the KEV catalog into the
store. ``rescan`` then matches every stored inventory in three statements — an upsert of the
current matches (first-seen dates kept), the FedRAMP due dates, and marking findings no longer
matched as resolved — so 10,000 images are matched by PostgreSQL (or SQLite), not by a Python
loop. The states are the same as a single ``assay scan`` gives (see ``assay.vuln.fleet``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, text

from assay.store import schema
from assay.store._store import Store, _now, bulk_insert

__all__ = [
    "FleetImageRow",
    "FleetReport",
    "RescanSummary",
    "fleet_report",
    "rescan",
    "sync_advisories",
]

# FedRAMP continuous monitoring: High (and Critical) 30 days, Moderate 90, Low 180; KEV by its due
# date when that is earlier (BOD 22-01).
_DAYS = (("critical", 30), ("high", 30), ("medium", 90), ("low", 180))

_MATCH = """
SELECT i.id AS image_id, ip.name AS package, d.vuln AS vuln,
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
FROM inventory AS ip
JOIN images AS i ON i.id = ip.image_id
JOIN advisories AS d ON d.release = i.release AND d.source = ip.source_name
LEFT JOIN kev AS k ON k.cve = d.vuln
WHERE ip.ecosystem = 'deb' AND i.release <> ''
  AND d.fixed_version NOT IN ('0', '<not-affected>')
  AND d.status IN ('resolved', 'open', 'undetermined')
  AND (d.status <> 'resolved' OR ip.source_key < d.fixed_key)
"""


def _add_days(dialect: str, date_sql: str, days: int) -> str:
    if dialect == "postgresql":
        return f"to_char(CAST(substr({date_sql}, 1, 10) AS date) + {days}, 'YYYY-MM-DD')"
    return f"date(substr({date_sql}, 1, 10), '+{days} days')"


def _due(dialect: str, first_seen: str, severity: str, kev_due: str) -> str:
    """SQL for the FedRAMP due date: first seen + days by severity, or the KEV due date if
    earlier; '' when neither applies."""
    whens = " ".join(
        f"WHEN '{sev}' THEN {_add_days(dialect, first_seen, days)}" for sev, days in _DAYS
    )
    base = f"(CASE {severity} {whens} ELSE NULL END)"
    return (
        f"(CASE WHEN {kev_due} <> '' AND ({base} IS NULL OR {kev_due} < {base}) THEN {kev_due} "
        f"ELSE COALESCE({base}, '') END)"
    )


def _upsert(dialect: str) -> str:
    """Insert new matches (first seen now); rewrite a known one only when it changed or had
    been resolved, so a steady-state rescan writes little."""
    changed = " OR ".join(
        f"findings.{c} <> excluded.{c}"
        for c in ("state", "severity", "fixed_in", "reason", "kev_due")
    )
    return f"""
INSERT INTO findings (image_id, package, vuln, state, severity, fixed_in, reason, kev_due,
                      first_seen, changed_at, due_date)
SELECT image_id, package, vuln, state, severity, fixed_in, reason, kev_due,
       CAST(:now AS VARCHAR(32)), CAST(:now AS VARCHAR(32)),
       {_due(dialect, "CAST(:now AS VARCHAR(32))", "severity", "kev_due")}
FROM assay_current WHERE true  -- SQLite needs a WHERE before ON CONFLICT
ON CONFLICT (image_id, package, vuln) DO UPDATE SET
  state = excluded.state, severity = excluded.severity, fixed_in = excluded.fixed_in,
  reason = excluded.reason, kev_due = excluded.kev_due, changed_at = excluded.changed_at,
  resolved_at = NULL,
  due_date = {_due(dialect, "findings.first_seen", "excluded.severity", "excluded.kev_due")}
WHERE findings.resolved_at IS NOT NULL OR {changed}
"""


_RESOLVE = """
UPDATE findings SET resolved_at = :now, changed_at = :now
WHERE resolved_at IS NULL AND NOT EXISTS (
  SELECT 1 FROM assay_current AS c
  WHERE c.image_id = findings.image_id AND c.package = findings.package AND c.vuln = findings.vuln
)
"""


@dataclass(frozen=True)
class RescanSummary:
    when: str
    open: int  # findings matched now
    new: int  # of those, first seen in this rescan
    resolved: int  # findings matched before and no longer


def sync_advisories(store: Store, db: Any) -> int:
    """Copy the advisory DB's (``assay.vuln.db.AdvisoryDB``) Debian rows and KEV into the store.

    Severity as ``assay scan`` rates Debian findings: NVD's CVSS, else OSV's, else the urgency.
    """
    from assay.vuln.model import Severity
    from assay.vuln.severity import (
        cvss_score,
        nvd_preference,
        severity_from_score,
        severity_from_urgency,
    )

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

    cols = (
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

    def rows() -> Iterator[tuple[Any, ...]]:
        q = f"SELECT {', '.join(cols[:-1])} FROM debian"
        for row in db.conn.execute(q):
            sev = best.get(row[2]) or severity_from_urgency(row[6])
            yield (*row, sev.value)

    counted = 0

    def counting() -> Iterator[tuple[Any, ...]]:
        nonlocal counted
        for r in rows():
            counted += 1
            yield r

    kev_rows = list(db.conn.execute("SELECT cve, date_added, due_date FROM kev"))
    with store.engine.begin() as conn:
        conn.execute(delete(schema.advisories))
        conn.execute(delete(schema.kev))
        bulk_insert(conn, store.dialect, "advisories", cols, counting())
        bulk_insert(conn, store.dialect, "kev", ("cve", "date_added", "due_date"), kev_rows)
    return counted


def _count(conn: Connection, sql: str, **params: Any) -> int:
    return int(conn.execute(text(sql), params).scalar_one())


def rescan(store: Store, *, now: str = "") -> RescanSummary:
    """Match every stored inventory against the synced advisories, in the database.

    The current matches go to a temporary table; new ones are inserted (first seen now),
    changed ones rewritten, and open findings no longer matched are marked resolved.
    """
    when = now or _now()
    with store.engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS assay_current"))
        conn.execute(text(f"CREATE TEMPORARY TABLE assay_current AS {_MATCH}"))
        if store.dialect == "postgresql":
            conn.execute(text("ANALYZE assay_current"))
        conn.execute(text("CREATE INDEX assay_current_key ON assay_current (image_id, vuln)"))
        open_now = _count(conn, "SELECT count(*) FROM assay_current")
        conn.execute(text(_upsert(store.dialect)), {"now": when})
        resolved = conn.execute(text(_RESOLVE), {"now": when}).rowcount
        new = _count(conn, "SELECT count(*) FROM findings WHERE first_seen = :now", now=when)
        conn.execute(text("DROP TABLE assay_current"))
    return RescanSummary(when, open_now, new, int(resolved or 0))


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


_REPORT = """
WITH pk AS (SELECT image_id, count(*) AS n FROM inventory GROUP BY image_id),
f AS (
  SELECT image_id,
    count(*) AS open,
    SUM(CASE WHEN severity = 'critical' THEN 1 ELSE 0 END) AS critical,
    SUM(CASE WHEN severity = 'high' THEN 1 ELSE 0 END) AS high,
    SUM(CASE WHEN severity = 'medium' THEN 1 ELSE 0 END) AS medium,
    SUM(CASE WHEN severity = 'low' THEN 1 ELSE 0 END) AS low,
    SUM(CASE WHEN kev_due <> '' THEN 1 ELSE 0 END) AS kev,
    SUM(CASE WHEN due_date <> '' AND due_date < :today THEN 1 ELSE 0 END) AS overdue,
    MIN(substr(first_seen, 1, 10)) AS oldest,
    MIN(CASE WHEN due_date <> '' THEN due_date ELSE NULL END) AS next_due
  FROM findings WHERE resolved_at IS NULL AND state <> 'end-of-life'
  GROUP BY image_id
)
SELECT i.digest, i.name, i.release, COALESCE(pk.n, 0),
  COALESCE(f.open, 0), COALESCE(f.critical, 0), COALESCE(f.high, 0), COALESCE(f.medium, 0),
  COALESCE(f.low, 0), COALESCE(f.kev, 0), COALESCE(f.overdue, 0), COALESCE(f.oldest, ''),
  COALESCE(f.next_due, '')
FROM images AS i LEFT JOIN pk ON pk.image_id = i.id LEFT JOIN f ON f.image_id = i.id
ORDER BY COALESCE(f.overdue, 0) DESC, COALESCE(f.kev, 0) DESC, i.name, i.digest
"""

_TOP = """
SELECT vuln, MAX(severity), count(DISTINCT image_id) AS n, MAX(kev_due)
FROM findings WHERE resolved_at IS NULL AND state <> 'end-of-life'
GROUP BY vuln ORDER BY n DESC, vuln LIMIT :limit
"""


def _row(r: tuple[Any, ...]) -> FleetImageRow:
    n = [int(v) for v in r[3:11]]
    return FleetImageRow(
        str(r[0]),
        str(r[1]),
        str(r[2]),
        n[0],
        n[1],
        n[2],
        n[3],
        n[4],
        n[5],
        n[6],
        n[7],
        str(r[11]),
        str(r[12]),
    )


def fleet_report(store: Store, *, today: str = "", top: int = 50) -> FleetReport:
    """Per-image open findings by severity, KEV, overdue against FedRAMP deadlines; top CVEs."""
    day = today or dt.date.today().isoformat()
    with store.engine.connect() as conn:
        rows = tuple(_row(tuple(r)) for r in conn.execute(text(_REPORT), {"today": day}))
        tops = tuple(
            (str(v), str(s), int(n), str(k))
            for v, s, n, k in conn.execute(text(_TOP), {"limit": top})
        )
    return FleetReport(day, rows, tops)
