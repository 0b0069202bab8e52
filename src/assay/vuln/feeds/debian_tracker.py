"""The Debian security tracker JSON: ``{source: {CVE: {releases: {codename: {...}}}}}``.

Each release entry carries ``status`` (``resolved``, ``open``, ``undetermined``),
``fixed_version`` (``"0"`` for not affected), ``urgency`` (``unimportant``, ``low``, ``medium``,
``high``, ``not yet assigned``, ``end-of-life``, with optional ``*`` marks), and for issues the
security team will not fix through a DSA, ``nodsa`` (the note) and ``nodsa_reason``
(``postponed``, ``ignored``).
"""

from __future__ import annotations

import logging
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

from assay.errors import InputError
from assay.vuln.db import AdvisoryDB
from assay.vuln.feeds._interface import file_date, iter_feed_json
from assay.vuln.vkey import deb_sort_key

__all__ = ["DebianTrackerFeed", "parse_tracker"]

log = logging.getLogger(__name__)

_Row = tuple[str, str, str, str, str, str, str, str, bytes | None]


def _text(value: Any, what: str) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    raise InputError(f"Debian tracker JSON: {what} is a {type(value).__name__}, expected text")


def parse_tracker(doc: Any) -> tuple[list[_Row], dict[str, str]]:
    """Rows for the ``debian`` table and CVE descriptions, from a parsed tracker document."""
    if not isinstance(doc, dict):
        raise InputError("Debian tracker JSON: the top level must be an object of source packages")
    rows: list[_Row] = []
    descriptions: dict[str, str] = {}
    for source, issues in doc.items():
        rows += _source_rows(source, issues, descriptions)
    return rows, descriptions


def _source_rows(source: str, issues: Any, descriptions: dict[str, str]) -> list[_Row]:
    """Rows of one source package's entry; its first-seen CVE descriptions go to
    ``descriptions``."""
    if not isinstance(issues, dict):
        raise InputError(f"Debian tracker JSON: entry for {source!r} is not an object")
    rows: list[_Row] = []
    for vuln, info in issues.items():
        if not isinstance(info, dict):
            raise InputError(f"Debian tracker JSON: {source}/{vuln} is not an object")
        desc = _text(info.get("description"), f"{source}/{vuln} description")
        if desc and vuln not in descriptions:
            descriptions[vuln] = desc
        releases = info.get("releases") or {}
        if not isinstance(releases, dict):
            raise InputError(f"Debian tracker JSON: {source}/{vuln} releases is not an object")
        for release, r in releases.items():
            if not isinstance(r, dict):
                raise InputError(f"Debian tracker JSON: {source}/{vuln}/{release} is not an object")
            where = f"{source}/{vuln}/{release}"
            fixed = _text(r.get("fixed_version"), f"{where} fixed_version")
            rows.append(
                (
                    release,
                    source,
                    vuln,
                    _text(r.get("status"), f"{where} status"),
                    fixed,
                    _text(r.get("urgency"), f"{where} urgency"),
                    _text(r.get("nodsa"), f"{where} nodsa"),
                    _text(r.get("nodsa_reason"), f"{where} nodsa_reason"),
                    deb_sort_key(fixed) if fixed else None,
                )
            )
    return rows


class DebianTrackerFeed:
    name = "debian-tracker"
    env_var = "ASSAY_FEED_DEBIAN_TRACKER"
    default_url = "https://security-tracker.debian.org/tracker/data/json"

    def import_path(self, db: AdvisoryDB, path: Path, origin: str = "", date_hint: str = "") -> int:
        """Stream the tracker (~80 MB of JSON) one CVE entry at a time into the database, in one
        transaction: memory holds one entry and a batch of rows, never the whole document."""
        # The tracker JSON carries no date of its own: HTTP Last-Modified, else the file time.
        data_date = date_hint or file_date(path)
        what = f"Debian tracker file {path}"
        sources = rows_in = 0
        batch: list[_Row] = []
        pieces = iter_feed_json(path, what, split=("*",))
        last = ""
        with closing(pieces), db.transaction() as conn:
            conn.execute("DELETE FROM debian")
            conn.execute("DELETE FROM descriptions")  # only the tracker writes them
            # One piece per (source package, CVE): the linux entry alone is megabytes.
            for key, info in pieces:
                if not key or not isinstance(key[0], str):
                    raise InputError(
                        "Debian tracker JSON: the top level must be an object of source packages"
                    )
                source = key[0]
                if source != last or sources == 0:
                    sources += 1
                    last = source
                if len(key) == 2 and not isinstance(key[1], str):
                    raise InputError(f"Debian tracker JSON: entry for {source!r} is not an object")
                issues = {key[1]: info} if len(key) == 2 else info
                descriptions: dict[str, str] = {}
                batch += _source_rows(source, issues, descriptions)
                # the first description of a CVE wins, as in the tracker's own pages
                conn.executemany(
                    "INSERT OR IGNORE INTO descriptions VALUES (?, ?)", descriptions.items()
                )
                if len(batch) >= _BATCH:
                    rows_in += _insert(conn, batch)
                    if rows_in > MAX_ROWS:
                        raise InputError(
                            f"{what} holds more than {MAX_ROWS} release entries; refusing it"
                        )
            rows_in += _insert(conn, batch)
            vulns = conn.execute("SELECT count(*) FROM descriptions").fetchone()[0]
            db.record_source(
                conn,
                self.name,
                origin or str(path),
                rows_in,
                f"{sources} source packages, {vulns} vulnerabilities",
                data_date,
            )
        log.info("imported %d Debian tracker entries from %s", rows_in, path)
        return rows_in


_BATCH = 20_000
MAX_ROWS = 10_000_000
"""(release, source, CVE) entries an import may hold; the tracker has about a million."""


def _insert(conn: sqlite3.Connection, batch: list[_Row]) -> int:
    n = len(batch)
    conn.executemany("INSERT OR REPLACE INTO debian VALUES (?,?,?,?,?,?,?,?,?)", batch)
    batch.clear()
    return n
