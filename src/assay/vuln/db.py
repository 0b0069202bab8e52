"""The local advisory database: one SQLite file with the tables and indexes the matcher needs.

Every import runs in one transaction, so a reader sees either the old or the new data of a source,
never half of it. ``sources`` records when each feed was imported, from where, how many records
it brought, and the date of the data itself (``data_date``: the feed's own release date, see
:mod:`assay.vuln.feeds`), which ``db status`` and the staleness checks read.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from assay._closing import Closing
from assay.debian.codenames import codename_for
from assay.debian.version import version_key
from assay.errors import InputError, UsageError
from assay.sbom.model import Inventory

__all__ = ["AdvisoryDB", "SourceStatus", "default_db_path", "release_of", "utc_stamp"]

log = logging.getLogger(__name__)

SCHEMA_VERSION = "3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sources (
    name TEXT PRIMARY KEY, imported_at TEXT NOT NULL, origin TEXT NOT NULL,
    records INTEGER NOT NULL, detail TEXT NOT NULL DEFAULT '',
    data_date TEXT NOT NULL DEFAULT ''  -- RFC 3339 UTC date of the data ("" = unknown)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS debian (
    release TEXT NOT NULL, source TEXT NOT NULL, vuln TEXT NOT NULL,
    status TEXT NOT NULL, fixed_version TEXT NOT NULL, urgency TEXT NOT NULL,
    nodsa TEXT NOT NULL, nodsa_reason TEXT NOT NULL,
    fixed_key BLOB,  -- assay.vuln.vkey.deb_sort_key(fixed_version): memcmp order = dpkg order
    PRIMARY KEY (release, source, vuln)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS descriptions (
    vuln TEXT PRIMARY KEY, description TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS osv (
    id TEXT PRIMARY KEY, modified TEXT NOT NULL, summary TEXT NOT NULL,
    withdrawn TEXT NOT NULL, db_severity TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS osv_affected (
    vuln TEXT NOT NULL, ecosystem TEXT NOT NULL, eco_release TEXT NOT NULL, name TEXT NOT NULL,
    ranges TEXT NOT NULL, versions TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS osv_affected_pkg ON osv_affected (ecosystem, name);
CREATE INDEX IF NOT EXISTS osv_affected_vuln ON osv_affected (vuln);
CREATE TABLE IF NOT EXISTS cvss (
    vuln TEXT NOT NULL, vector TEXT NOT NULL, PRIMARY KEY (vuln, vector)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS aliases (
    id TEXT NOT NULL, alias TEXT NOT NULL, PRIMARY KEY (id, alias)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS kev (
    cve TEXT PRIMARY KEY, date_added TEXT NOT NULL, due_date TEXT NOT NULL,
    ransomware TEXT NOT NULL, vendor TEXT NOT NULL, product TEXT NOT NULL, name TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS nvd (
    cve TEXT NOT NULL, version TEXT NOT NULL, source TEXT NOT NULL, type TEXT NOT NULL,
    vector TEXT NOT NULL, score REAL NOT NULL, last_modified TEXT NOT NULL,
    PRIMARY KEY (cve, version, source)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS epss (
    cve TEXT PRIMARY KEY, score REAL NOT NULL, percentile REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS first_seen (
    subject TEXT NOT NULL, vuln TEXT NOT NULL, first_seen TEXT NOT NULL,
    PRIMARY KEY (subject, vuln)
) WITHOUT ROWID;
"""


def release_of(inventory: Inventory) -> str:
    """The Debian codename the tracker uses for this inventory's distro; "" if not Debian."""
    d = inventory.distro
    if d is None or d.id.lower() != "debian":
        return ""
    if d.codename:
        return d.codename.lower()
    return codename_for(d.version_id)


def default_db_path() -> Path:
    """``$ASSAY_VULN_DB``, else ``<cache dir>/vuln.db``."""
    env = os.environ.get("ASSAY_VULN_DB")
    if env:
        return Path(env)
    try:
        from assay.cachedir import cache_dir  # type: ignore[import-not-found,unused-ignore]

        base = Path(cache_dir())
    except ImportError:
        base_env = os.environ.get("ASSAY_CACHE_DIR")
        if base_env:
            base = Path(base_env)
        else:
            xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
            base = Path(xdg) / "assay"
    return base / "vuln.db"


def _deb_lt(a: str | None, b: str | None) -> int:
    """SQL function: 1 when Debian version ``a`` < ``b``; invalid versions never match."""
    if not a or not b:
        return 0
    try:
        return int(version_key(a) < version_key(b))
    except InputError:
        return 0


def utc_stamp(when: dt.datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ`` (naive datetimes are taken as UTC)."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.astimezone(dt.UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_stamp(text: str) -> dt.datetime:
    when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)


@dataclass(frozen=True)
class SourceStatus:
    name: str
    imported_at: str  # RFC 3339 UTC
    origin: str
    records: int
    detail: str
    data_date: str = ""  # RFC 3339 UTC: when the feed's publisher produced the data

    @property
    def dated(self) -> str:
        """The date the age counts from: the data's own date, else (unknown) the import."""
        return self.data_date or self.imported_at

    def age_days(self, now: dt.datetime | None = None) -> float:
        """Age of the data in days (from ``data_date``; from the import when that is unknown)."""
        now = now or dt.datetime.now(dt.UTC)
        return (now - _parse_stamp(self.dated)).total_seconds() / 86400.0


class AdvisoryDB(Closing):
    """An open advisory database. Use as a context manager or call ``close()``."""

    def __init__(self, path: Path | str, *, create: bool = True) -> None:
        self.path = Path(path)
        if not create and not self.path.exists():
            raise UsageError(
                f"no vulnerability database at {self.path}; run `assay db update` "
                "(or `assay db import …` offline) first"
            )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.conn = sqlite3.connect(str(self.path), isolation_level=None)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self.conn.create_function("deb_lt", 2, _deb_lt, deterministic=True)
            self._init_schema()
        except sqlite3.DatabaseError as exc:
            raise InputError(
                f"{self.path} is not a usable assay vulnerability database ({exc}); "
                "delete it and run `assay db update`"
            ) from None

    def _init_schema(self) -> None:
        with self.transaction():
            for stmt in _SCHEMA.split(";"):
                if stmt.strip():
                    self.conn.execute(stmt)
            row = self.conn.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
            if row is not None and row[0] == "2":
                # 2 -> 3: the data's own date per source ("" until the feed is imported again)
                self.conn.execute(
                    "ALTER TABLE sources ADD COLUMN data_date TEXT NOT NULL DEFAULT ''"
                )
                self.conn.execute("UPDATE meta SET value=? WHERE key='schema'", (SCHEMA_VERSION,))
                row = (SCHEMA_VERSION,)
            if row is None:
                self.conn.execute("INSERT INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
            elif row[0] != SCHEMA_VERSION:
                raise InputError(
                    f"{self.path} has schema {row[0]}, this assay needs {SCHEMA_VERSION}; "
                    "delete it and run `assay db update`"
                )

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    # -- sources ---------------------------------------------------------------------------

    def record_source(
        self,
        conn: sqlite3.Connection,
        name: str,
        origin: str,
        records: int,
        detail: str = "",
        data_date: str = "",
    ) -> None:
        """Note an import; ``data_date`` (RFC 3339) is the feed's own date, clamped to now."""
        now = dt.datetime.now(dt.UTC)
        stamp = ""
        if data_date:
            try:
                stamp = utc_stamp(min(_parse_stamp(data_date), now))
            except ValueError:
                raise InputError(
                    f"{name}: the feed's date {data_date!r} is not an ISO 8601 date"
                ) from None
        conn.execute(
            "INSERT OR REPLACE INTO sources VALUES (?, ?, ?, ?, ?, ?)",
            (name, utc_stamp(now), origin, records, detail, stamp),
        )

    def sources(self) -> list[SourceStatus]:
        rows = self.conn.execute(
            "SELECT name, imported_at, origin, records, detail, data_date FROM sources "
            "ORDER BY name"
        ).fetchall()
        return [SourceStatus(*r) for r in rows]

    def counts(self) -> dict[str, int]:
        tables = ("debian", "osv", "osv_affected", "aliases", "kev", "epss", "nvd")
        return {t: self.conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}

    # -- first seen --------------------------------------------------------------------------

    def first_seen(self, subject: str, vulns: Iterable[str], today: str) -> dict[str, str]:
        """Record ``today`` as first-seen for new (subject, vuln) pairs; return all dates."""
        ids = sorted(set(vulns))
        with self.transaction() as conn:
            conn.executemany(
                "INSERT OR IGNORE INTO first_seen VALUES (?, ?, ?)",
                [(subject, v, today) for v in ids],
            )
            out: dict[str, str] = {}
            for chunk in _chunks(ids, 500):
                marks = ",".join("?" * len(chunk))
                for vuln, seen in conn.execute(
                    "SELECT vuln, first_seen FROM first_seen "
                    f"WHERE subject=? AND vuln IN ({marks})",
                    (subject, *chunk),
                ):
                    out[vuln] = seen
        return out


def _chunks(items: list[str], n: int) -> Iterator[list[str]]:
    for i in range(0, len(items), n):
        yield items[i : i + n]
