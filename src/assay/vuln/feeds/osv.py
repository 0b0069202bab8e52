"""OSV records (schema 1.x): a single ``.json`` file, a directory of them, or an ``all.zip``.

Ranges are stored as the JSON the record gives (per affected package) and evaluated by the
matcher with the ecosystem's own version ordering. ``aliases`` and ``upstream`` are stored in
both directions so findings from different sources merge into one.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

from assay.errors import InputError
from assay.vuln.db import AdvisoryDB
from assay.vuln.ecosystems import normalize_name
from assay.vuln.feeds._interface import (
    feed_date,
    file_date,
    iter_feed_json,
    load_json,
    read_bounded,
)

__all__ = ["OsvFeed", "iter_osv_documents"]

log = logging.getLogger(__name__)

MAX_RECORD_BYTES = 8 << 20  # decoded, 8 MB of JSON can take ~220 MB of memory
MAX_RECORDS = 2_000_000
MAX_ZIP_TOTAL = 8 << 30


def iter_osv_documents(path: Path) -> Iterator[tuple[str, Any]]:
    """Yield (where, parsed JSON) for each OSV record in a file, a directory or a zip archive."""
    if path.exists() and not (path.is_dir() or path.is_file()):
        from assay._safefs import file_kind

        kind = file_kind(path.stat().st_mode)
        raise InputError(f"OSV input {path} is {kind}, not a file or directory; refusing it")
    if path.is_dir():
        count = 0
        for f in sorted(path.rglob("*.json")):
            if f.is_symlink() or not f.is_file():
                continue
            count += 1
            if count > MAX_RECORDS:
                raise InputError(f"{path} holds more than {MAX_RECORDS} OSV records; refusing")
            yield str(f), load_json(read_bounded(f, MAX_RECORD_BYTES), f"OSV record {f}")
    elif zipfile.is_zipfile(path):
        try:
            zf = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as exc:
            raise InputError(f"{path} is not a readable zip archive: {exc}") from None
        with zf:
            infos = [i for i in zf.infolist() if not i.is_dir() and i.filename.endswith(".json")]
            if len(infos) > MAX_RECORDS:
                raise InputError(f"{path} holds more than {MAX_RECORDS} records; refusing")
            if sum(i.file_size for i in infos) > MAX_ZIP_TOTAL:
                raise InputError(f"{path} expands past {MAX_ZIP_TOTAL} bytes; refusing")
            for info in infos:
                if info.file_size > MAX_RECORD_BYTES:
                    raise InputError(f"{path}:{info.filename} is larger than {MAX_RECORD_BYTES}")
                try:
                    with zf.open(info) as fh:
                        data = fh.read(MAX_RECORD_BYTES + 1)
                except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
                    raise InputError(f"{path}:{info.filename} is corrupt: {exc}") from None
                except (NotImplementedError, RuntimeError) as exc:  # method, encryption
                    raise InputError(f"{path}:{info.filename} cannot be read: {exc}") from None
                if len(data) > MAX_RECORD_BYTES:
                    raise InputError(f"{path}:{info.filename} is larger than its header says")
                yield f"{path}:{info.filename}", load_json(data, f"{path}:{info.filename}")
    else:
        # One record, or a list of them streamed one at a time (a list can be hundreds of MB).
        pieces = iter_feed_json(
            path,
            f"OSV file {path}",
            max_piece=MAX_RECORD_BYTES,
            split_objects=False,
            limit=512 << 20,
        )
        with closing(pieces):
            for key, rec in pieces:
                if key and isinstance(key[0], int) and key[0] >= MAX_RECORDS:
                    raise InputError(f"{path} holds more than {MAX_RECORDS} records; refusing")
                yield (f"{path}[{key[0]}]" if key else str(path)), rec


def _str_list(value: Any, what: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InputError(f"{what} must be a list of strings")
    return value


def _list(value: Any, what: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise InputError(f"{what} must be a list")
    return value


def _insert_record(conn: sqlite3.Connection, where: str, rec: Any) -> None:
    if not isinstance(rec, dict) or not isinstance(rec.get("id"), str) or not rec["id"]:
        raise InputError(f"OSV record {where} has no 'id'; is it an OSV document?")
    vid: str = rec["id"]
    aliases = _str_list(rec.get("aliases"), f"OSV {vid} aliases")
    upstream = _str_list(rec.get("upstream"), f"OSV {vid} upstream")
    db_spec = rec.get("database_specific")
    db_sev = ""
    if isinstance(db_spec, dict) and isinstance(db_spec.get("severity"), str):
        db_sev = db_spec["severity"]
    conn.execute("DELETE FROM osv_affected WHERE vuln=?", (vid,))
    conn.execute("DELETE FROM cvss WHERE vuln=?", (vid,))
    conn.execute(
        "INSERT OR REPLACE INTO osv VALUES (?,?,?,?,?)",
        (
            vid,
            feed_date(rec.get("modified"), f"OSV {vid} modified"),
            str(rec.get("summary", "") or rec.get("details", ""))[:2000],
            str(rec.get("withdrawn", "") or ""),
            db_sev,
        ),
    )
    for other in (*aliases, *upstream):
        if other != vid:
            conn.execute("INSERT OR IGNORE INTO aliases VALUES (?, ?)", (vid, other))
            conn.execute("INSERT OR IGNORE INTO aliases VALUES (?, ?)", (other, vid))
    severities: list[Any] = _list(rec.get("severity"), f"OSV {vid} severity")
    affected = rec.get("affected") or []
    if not isinstance(affected, list):
        raise InputError(f"OSV {vid}: 'affected' must be a list")
    for aff in affected:
        if not isinstance(aff, dict):
            raise InputError(f"OSV {vid}: an 'affected' entry is not an object")
        pkg = aff.get("package") or {}
        if not isinstance(pkg, dict) or not pkg.get("ecosystem") or not pkg.get("name"):
            continue  # GIT-only entries name no package; nothing to match on
        eco_full = str(pkg["ecosystem"])
        eco, _, eco_release = eco_full.partition(":")
        ranges = aff.get("ranges") or []
        versions = _str_list(aff.get("versions"), f"OSV {vid} versions")
        if not isinstance(ranges, list):
            raise InputError(f"OSV {vid}: 'ranges' must be a list")
        usable = [
            r for r in ranges if isinstance(r, dict) and r.get("type") in ("ECOSYSTEM", "SEMVER")
        ]
        severities.extend(_list(aff.get("severity"), f"OSV {vid} affected severity"))
        conn.execute(
            "INSERT INTO osv_affected VALUES (?,?,?,?,?,?)",
            (
                vid,
                eco,
                eco_release,
                normalize_name(eco, str(pkg["name"])),
                json.dumps(usable, sort_keys=True),
                json.dumps(versions),
            ),
        )
    for sev in severities:
        if isinstance(sev, dict) and sev.get("type") in ("CVSS_V3", "CVSS_V4"):
            conn.execute("INSERT OR IGNORE INTO cvss VALUES (?, ?)", (vid, str(sev.get("score"))))


def data_date(conn: sqlite3.Connection) -> str:
    """The oldest of each ecosystem's newest ``modified``: a stale ecosystem ages the feed."""
    newest = conn.execute(
        "SELECT a.ecosystem, max(o.modified) FROM osv o JOIN osv_affected a ON a.vuln = o.id "
        "WHERE o.modified != '' GROUP BY a.ecosystem"
    ).fetchall()
    dates = []
    for eco, modified in newest:
        try:
            dates.append(feed_date(modified, f"OSV {eco} modified"))
        except InputError:
            log.debug("ignoring unparsable OSV modified date %r", modified)
    return min((d for d in dates if d), default="")


class OsvFeed:
    name = "osv"
    env_var = "ASSAY_FEED_OSV"
    # ``{ecosystem}`` is replaced by each configured ecosystem (``--osv-ecosystem``).
    default_url = "https://osv-vulnerabilities.storage.googleapis.com/{ecosystem}/all.zip"

    def import_path(self, db: AdvisoryDB, path: Path, origin: str = "", date_hint: str = "") -> int:
        n = 0
        with db.transaction() as conn:
            for where, rec in iter_osv_documents(path):
                _insert_record(conn, where, rec)
                n += 1
            total = conn.execute("SELECT count(*) FROM osv").fetchone()[0]
            db.record_source(
                conn,
                self.name,
                origin or str(path),
                total,
                f"last import: {n} records",
                data_date(conn) or date_hint or file_date(path),
            )
        log.info("imported %d OSV records from %s", n, path)
        return n
