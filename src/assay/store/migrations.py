"""Schema migrations: an ordered list of steps, each applied once and recorded.

A store written by a newer assay (a version above the last step here) is refused rather than
guessed at. Step 1 creates the tables of ``schema``; later steps add to it. Step 3 replaces the
per-image ``findings`` table by ``package_matches`` (one row per matched source version) and a
``findings`` view over it, carrying the first-seen history over.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from sqlalchemy import Connection, Engine, inspect, select, text

from assay.errors import UsageError
from assay.store import schema
from assay.store._due import due_sql

__all__ = ["LATEST", "migrate"]


def _create_v1(conn: Connection) -> None:
    schema.metadata.create_all(conn)


def _remediation_v2(conn: Connection) -> None:
    """The remediation record (``assay update``, ``assay remediation status``)."""
    schema.remediation.create(conn, checkfirst=True)


def findings_view(dialect: str) -> str:
    """The ``findings`` view: each image's inventory joined with its source versions' matches.

    First seen is the later of the image's first recording and the match's first rescan, exact
    because an image digest's inventory never changes; a match resolved before the image was
    recorded is not one of its findings."""
    first = (
        "(CASE WHEN i.first_recorded > m.first_seen THEN i.first_recorded ELSE m.first_seen END)"
    )
    return f"""
CREATE VIEW findings AS
SELECT ip.image_id AS image_id, ip.name AS package, m.vuln AS vuln, m.state AS state,
  m.severity AS severity, m.fixed_in AS fixed_in, m.reason AS reason, m.kev_due AS kev_due,
  {first} AS first_seen, m.changed_at AS changed_at,
  {due_sql(dialect, first, "m.severity", "m.kev_due")} AS due_date,
  m.resolved_at AS resolved_at
FROM inventory AS ip
JOIN images AS i ON i.id = ip.image_id
JOIN package_matches AS m
  ON m.release = i.release AND m.source = ip.source_name AND m.source_version = ip.source_version
WHERE ip.ecosystem = 'deb' AND (m.resolved_at IS NULL OR m.resolved_at > i.first_recorded)
"""


_FLEET_PACKAGES = """
INSERT INTO fleet_packages (release, source, source_version, source_key, uses, pending)
SELECT i.release, ip.source_name, ip.source_version, ip.source_key, count(*), 1
FROM inventory AS ip JOIN images AS i ON i.id = ip.image_id
WHERE ip.ecosystem = 'deb' AND i.release <> ''
GROUP BY i.release, ip.source_name, ip.source_version, ip.source_key
"""

_OLD_FINDINGS = """
INSERT INTO package_matches (release, source, source_version, vuln, state, severity, fixed_in,
  reason, kev_due, first_seen, changed_at, resolved_at)
SELECT i.release, ip.source_name, ip.source_version, f.vuln, MAX(f.state), MAX(f.severity),
  MAX(f.fixed_in), MAX(f.reason), MAX(f.kev_due), MIN(f.first_seen), MAX(f.changed_at),
  CASE WHEN SUM(CASE WHEN f.resolved_at IS NULL THEN 1 ELSE 0 END) > 0 THEN NULL
       ELSE MAX(f.resolved_at) END
FROM findings AS f
JOIN images AS i ON i.id = f.image_id
JOIN inventory AS ip ON ip.image_id = f.image_id AND ip.name = f.package
WHERE ip.ecosystem = 'deb' AND i.release <> ''
GROUP BY i.release, ip.source_name, ip.source_version, f.vuln
"""


def _package_matches_v3(conn: Connection) -> None:
    """Findings per matched source version (``package_matches``) and a ``findings`` view.

    The fleet's source versions are gathered from the inventories and all marked pending, so
    the next rescan re-derives every match; first-seen dates of an existing ``findings`` table
    carry over as each source version's earliest."""
    schema.fleet_packages.create(conn, checkfirst=True)
    schema.package_matches.create(conn, checkfirst=True)
    conn.execute(text(_FLEET_PACKAGES))
    if "findings" in inspect(conn).get_table_names():
        conn.execute(text(_OLD_FINDINGS))
        conn.execute(text("DROP TABLE findings"))
    conn.execute(text(findings_view(conn.dialect.name)))


STEPS: tuple[Callable[[Connection], None], ...] = (
    _create_v1,
    _remediation_v2,
    _package_matches_v3,
)
LATEST = len(STEPS)


def _now() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def migrate(engine: Engine, where: str) -> int:
    """Bring the store up to ``LATEST``; return the version found before."""
    with engine.begin() as conn:
        if not inspect(conn).has_table(schema.schema_version.name):
            schema.schema_version.create(conn)
        found = conn.execute(select(schema.schema_version.c.version)).scalars().all()
        current = max(found, default=0)
        if current > LATEST:
            raise UsageError(
                f"the store at {where} has schema version {current}, newer than this assay "
                f"understands ({LATEST}); upgrade assay"
            )
        for version in range(current + 1, LATEST + 1):
            STEPS[version - 1](conn)
            conn.execute(schema.schema_version.insert().values(version=version, applied_at=_now()))
    return current
