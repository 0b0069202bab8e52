"""Schema migrations: an ordered list of steps, each applied once and recorded.

A store written by a newer assay (a version above the last step here) is refused rather than
guessed at. Step 1 creates the tables of ``schema``; later steps add to it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from sqlalchemy import Connection, Engine, inspect, select

from assay.errors import UsageError
from assay.store import schema

__all__ = ["LATEST", "migrate"]


def _create_v1(conn: Connection) -> None:
    schema.metadata.create_all(conn)


def _remediation_v2(conn: Connection) -> None:
    """The remediation record (``assay update``, ``assay remediation status``)."""
    schema.remediation.create(conn, checkfirst=True)


STEPS: tuple[Callable[[Connection], None], ...] = (_create_v1, _remediation_v2)
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
