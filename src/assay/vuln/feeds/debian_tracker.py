"""The Debian security tracker JSON: ``{source: {CVE: {releases: {codename: {...}}}}}``.

Each release entry carries ``status`` (``resolved``, ``open``, ``undetermined``),
``fixed_version`` (``"0"`` for not affected), ``urgency`` (``unimportant``, ``low``, ``medium``,
``high``, ``not yet assigned``, ``end-of-life``, with optional ``*`` marks), and for issues the
security team will not fix through a DSA, ``nodsa`` (the note) and ``nodsa_reason``
(``postponed``, ``ignored``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from assay.errors import InputError
from assay.vuln.db import AdvisoryDB
from assay.vuln.feeds._interface import file_date, load_json, read_bounded
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
        if not isinstance(issues, dict):
            raise InputError(f"Debian tracker JSON: entry for {source!r} is not an object")
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
                    raise InputError(
                        f"Debian tracker JSON: {source}/{vuln}/{release} is not an object"
                    )
                where = f"{source}/{vuln}/{release}"
                rows.append(
                    (
                        release,
                        source,
                        vuln,
                        _text(r.get("status"), f"{where} status"),
                        _text(r.get("fixed_version"), f"{where} fixed_version"),
                        _text(r.get("urgency"), f"{where} urgency"),
                        _text(r.get("nodsa"), f"{where} nodsa"),
                        _text(r.get("nodsa_reason"), f"{where} nodsa_reason"),
                        deb_sort_key(fixed)
                        if (fixed := _text(r.get("fixed_version"), where))
                        else None,
                    )
                )
    return rows, descriptions


class DebianTrackerFeed:
    name = "debian-tracker"
    env_var = "ASSAY_FEED_DEBIAN_TRACKER"
    default_url = "https://security-tracker.debian.org/tracker/data/json"

    def import_path(self, db: AdvisoryDB, path: Path, origin: str = "", date_hint: str = "") -> int:
        # The tracker JSON carries no date of its own: HTTP Last-Modified, else the file time.
        data_date = date_hint or file_date(path)
        doc = load_json(read_bounded(path), f"Debian tracker file {path}")
        rows, descriptions = parse_tracker(doc)
        sources = len(doc)
        with db.transaction() as conn:
            conn.execute("DELETE FROM debian")
            conn.executemany("INSERT OR REPLACE INTO debian VALUES (?,?,?,?,?,?,?,?,?)", rows)
            conn.executemany(
                "INSERT OR REPLACE INTO descriptions VALUES (?, ?)", descriptions.items()
            )
            db.record_source(
                conn,
                self.name,
                origin or str(path),
                len(rows),
                f"{sources} source packages, {len(descriptions)} vulnerabilities",
                data_date,
            )
        log.info("imported %d Debian tracker entries from %s", len(rows), path)
        return len(rows)
