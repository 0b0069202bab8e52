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
JOIN fleet_packages AS p
  ON p.release = i.release AND p.source = ip.source_name AND p.source_version = ip.source_version
JOIN package_matches AS m ON m.version_id = p.id
WHERE ip.ecosystem = 'deb' AND (m.resolved_at IS NULL OR m.resolved_at > i.first_recorded)
"""


_IMAGE_ROWS = """
SELECT ip.image_id AS image_id, i.release AS release, ip.source_name AS source,
  ip.source_version AS source_version, ip.source_key AS source_key, count(*) AS n
FROM inventory AS ip JOIN images AS i ON i.id = ip.image_id
WHERE ip.ecosystem = 'deb' AND i.release <> ''
GROUP BY ip.image_id, i.release, ip.source_name, ip.source_version, ip.source_key
"""

_FLEET_PACKAGES = """
INSERT INTO fleet_packages (release, source, source_version, source_key, uses, images, pending)
SELECT release, source, source_version, source_key, SUM(n), count(*), 1
FROM assay_image_rows GROUP BY release, source, source_version, source_key
"""

_IMAGE_VERSIONS = """
INSERT INTO image_versions (image_id, version_id, n)
SELECT r.image_id, p.id, r.n FROM assay_image_rows AS r
JOIN fleet_packages AS p
  ON p.release = r.release AND p.source = r.source AND p.source_version = r.source_version
"""

_OLD_FINDINGS = """
INSERT INTO package_matches (version_id, vuln, state, severity, fixed_in, reason, kev_due,
  first_seen, changed_at, resolved_at)
SELECT p.id, f.vuln, MAX(f.state), MAX(f.severity), MAX(f.fixed_in), MAX(f.reason),
  MAX(f.kev_due), MIN(f.first_seen), MAX(f.changed_at),
  CASE WHEN SUM(CASE WHEN f.resolved_at IS NULL THEN 1 ELSE 0 END) > 0 THEN NULL
       ELSE MAX(f.resolved_at) END
FROM findings AS f
JOIN images AS i ON i.id = f.image_id
JOIN inventory AS ip ON ip.image_id = f.image_id AND ip.name = f.package
JOIN fleet_packages AS p
  ON p.release = i.release AND p.source = ip.source_name AND p.source_version = ip.source_version
WHERE ip.ecosystem = 'deb'
GROUP BY p.id, f.vuln
"""


def _package_matches_v3(conn: Connection) -> None:
    """Findings per matched source version (``package_matches``) and a ``findings`` view.

    The fleet's source versions are gathered from the inventories and all marked pending, so
    the next rescan re-derives every match; first-seen dates of an existing ``findings`` table
    carry over as each source version's earliest."""
    tables = (
        schema.fleet_packages,
        schema.image_versions,
        schema.package_matches,
        schema.advisory_sync,
    )
    for table in tables:
        table.create(conn, checkfirst=True)
    conn.execute(text("DROP INDEX IF EXISTS inventory_source"))  # the per-image join's, unused
    if "packages" not in {c["name"] for c in inspect(conn).get_columns("images")}:
        conn.execute(text("ALTER TABLE images ADD COLUMN packages INTEGER NOT NULL DEFAULT 0"))
    conn.execute(
        text(
            "UPDATE images SET packages = "
            "(SELECT count(*) FROM inventory AS ip WHERE ip.image_id = images.id)"
        )
    )
    conn.execute(text(f"CREATE TEMPORARY TABLE assay_image_rows AS {_IMAGE_ROWS}"))
    conn.execute(text(_FLEET_PACKAGES))
    conn.execute(text(_IMAGE_VERSIONS))
    conn.execute(text("DROP TABLE assay_image_rows"))
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
