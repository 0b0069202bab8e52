"""``assay db update|import|status|rescan``: the local vulnerability database, and the fleet
rescan of the evidence store against it."""

from __future__ import annotations

import json
import sqlite3
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from assay.cli import _console, _options
from assay.errors import UsageError

if TYPE_CHECKING:
    from assay.vuln.db import AdvisoryDB

__all__ = ["register"]

db_app = typer.Typer(
    name="db",
    help="Manage the local vulnerability database (Debian tracker, OSV, NVD, CISA KEV, EPSS).",
    no_args_is_help=True,
)

_DB_OPTION = _options.vuln_db_option(
    "Database file (default: ASSAY_VULN_DB, else CACHE_DIR/vuln.db)."
)


class StatusOutput(str, Enum):  # noqa: UP042 - typer choices
    text = "text"
    json = "json"


_OUTPUT_OPTION = typer.Option(
    StatusOutput.text, "--output", "-o", envvar="ASSAY_DB_OUTPUT", help="text or json."
)


def _open(db: Path | None, create: bool = True) -> AdvisoryDB:
    from assay.vuln.db import AdvisoryDB, default_db_path

    return AdvisoryDB(db or default_db_path(), create=create)


@db_app.command("update")
def update_command(
    db: Path | None = _DB_OPTION,
    debian_tracker_url: str = typer.Option(
        "",
        "--debian-tracker-url",
        envvar="ASSAY_FEED_DEBIAN_TRACKER",
        help="Debian security tracker JSON URL (default: the tracker's official JSON).",
    ),
    osv_url: str = typer.Option(
        "",
        "--osv-url",
        envvar="ASSAY_FEED_OSV",
        help="OSV archive URL; '{ecosystem}' is replaced by each --osv-ecosystem.",
    ),
    osv_ecosystem: list[str] = typer.Option(
        [],
        "--osv-ecosystem",
        envvar="ASSAY_OSV_ECOSYSTEMS",
        help="OSV ecosystem to fetch (repeatable; default: PyPI, npm, Go).",
    ),
    kev_url: str = typer.Option(
        "", "--kev-url", envvar="ASSAY_FEED_KEV", help="CISA KEV JSON URL."
    ),
    epss_url: str = typer.Option(
        "", "--epss-url", envvar="ASSAY_FEED_EPSS", help="FIRST EPSS CSV URL."
    ),
    nvd_url: str = typer.Option(
        "",
        "--nvd-url",
        envvar="ASSAY_FEED_NVD",
        help="NVD CVE API 2.0 URL (default: NVD's; an API key in ASSAY_NVD_API_KEY raises "
        "NVD's rate limit).",
    ),
    only: list[str] = typer.Option(
        [],
        "--only",
        help="Update only this feed (debian-tracker, osv, kev, epss, nvd; repeatable).",
    ),
) -> None:
    """Download the feeds from their official (or configured) URLs and import them.

    NVD is paged through its CVE API; after the first (long: NVD allows 5 requests per 30 s
    without an API key) update, only CVEs modified since the last one are fetched.

    Exit codes: 0 ok; 1 a download failed (earlier feeds stay imported); 2 a feed was malformed.
    """
    from assay.vuln.update import DEFAULT_OSV_ECOSYSTEMS, feed_urls, update_feeds

    overrides = {
        k: v
        for k, v in {
            "debian-tracker": debian_tracker_url,
            "osv": osv_url,
            "kev": kev_url,
            "epss": epss_url,
            "nvd": nvd_url,
        }.items()
        if v
    }
    ecos: list[str] = []
    for e in osv_ecosystem:
        ecos.extend(x.strip() for x in e.split(",") if x.strip())
    urls = feed_urls(overrides, ecos or DEFAULT_OSV_ECOSYSTEMS)
    if only:
        unknown = set(only) - {u.feed for u in urls}
        if unknown:
            raise UsageError(f"unknown feed(s) {', '.join(sorted(unknown))}")
        urls = [u for u in urls if u.feed in only]
    with _open(db) as adb:
        counts = update_feeds(adb, urls, progress=_console.info)
    for name, n in sorted(counts.items()):
        _console.info(f"{name}: {n} records")


@db_app.command("import")
def import_command(
    db: Path | None = _DB_OPTION,
    debian_tracker: Path | None = typer.Option(
        None, "--debian-tracker", help="Debian security tracker JSON file (may be .gz)."
    ),
    osv: list[Path] = typer.Option(
        [], "--osv", help="OSV record file, directory of records, or all.zip (repeatable)."
    ),
    kev: Path | None = typer.Option(None, "--kev", help="CISA KEV JSON file."),
    epss: Path | None = typer.Option(None, "--epss", help="FIRST EPSS CSV (may be .gz)."),
    nvd: list[Path] = typer.Option(
        [],
        "--nvd",
        help="NVD CVE API 2.0 JSON: an API response or a yearly nvdcve-2.0-YYYY.json[.gz] "
        "feed file, or a directory of them (repeatable; CVEs are updated, others kept).",
    ),
) -> None:
    """Import feed files offline (air-gapped machines). Each feed is imported atomically.

    Exit codes: 0 ok; 2 a file is missing or malformed (that feed keeps its previous data).
    """
    from assay.vuln.feeds import FEEDS, NvdFeed

    jobs: list[tuple[str, Path]] = []
    if debian_tracker:
        jobs.append(("debian-tracker", debian_tracker))
    jobs.extend(("osv", p) for p in osv)
    if kev:
        jobs.append(("kev", kev))
    if epss:
        jobs.append(("epss", epss))
    if not jobs and not nvd:
        raise UsageError(
            "nothing to import: give --debian-tracker, --osv, --kev, --epss and/or --nvd"
        )
    for path in [p for _, p in jobs] + nvd:
        if not path.exists():
            raise UsageError(f"{path}: no such file or directory")
    with _open(db) as adb:
        for name, path in jobs:
            n = FEEDS[name].import_path(adb, path)
            _console.info(f"{name}: imported {n} records from {path}")
        if nvd:
            n = NvdFeed().import_paths(adb, nvd)
            _console.info(f"nvd: imported {n} CVEs from {len(nvd)} path(s)")


@db_app.command("status")
def status_command(
    db: Path | None = _DB_OPTION,
    max_age: float = typer.Option(
        7.0, "--max-age", envvar="ASSAY_DB_MAX_AGE", help="Warn about sources older than DAYS."
    ),
    output: StatusOutput = _OUTPUT_OPTION,
) -> None:
    """Show each source's data date and age, origin and record count; warn when one is stale.

    A source's age is the age of its data (KEV dateReleased, EPSS score_date, OSV modified,
    NVD timestamp, the tracker's Last-Modified or file time), not of its import.
    Exit codes: 0 ok (also when stale: that is a warning); 2 no database.
    """
    with _open(db, create=False) as adb:
        sources = adb.sources()
        counts = adb.counts()
        path = adb.path
    rows = [
        {
            "source": s.name,
            "data_date": s.dated,
            "data_date_from": "feed" if s.data_date else "import",
            "imported_at": s.imported_at,
            "age_days": round(s.age_days(), 2),
            "records": s.records,
            "origin": s.origin,
            "detail": s.detail,
            "stale": s.age_days() > max_age,
        }
        for s in sources
    ]
    if output is StatusOutput.json:
        doc = {"database": str(path), "sources": rows, "tables": counts}
        _console.emit(json.dumps(doc, indent=2) + "\n")
    else:
        lines = [f"database: {path}"]
        if not rows:
            lines.append("no sources imported yet: run `assay db update` or `assay db import`")
        for r in rows:
            lines.append(
                f"{r['source']:<15} {r['records']:>9} records  data {r['data_date']}  "
                f"age {r['age_days']:>6.1f} d  imported {r['imported_at']}  from {r['origin']}"
                + (f"  ({r['detail']})" if r["detail"] else "")
            )
        _console.emit("\n".join(lines) + "\n")
    for r in rows:
        if r["stale"]:
            _console.warn(
                f"source {r['source']}: its data is {r['age_days']:.1f} days old (from "
                f"{r['data_date']}, more than {max_age:g}); "
                "run `assay db update`"
            )


@db_app.command("rescan")
def rescan_command(
    db: Path | None = _DB_OPTION,
    store: str | None = _options.store_option(
        "Evidence store URL: sqlite:///PATH or postgresql://USER@HOST/DB "
        "(default: CACHE_DIR/store.db)."
    ),
    output: StatusOutput = _OUTPUT_OPTION,
) -> None:
    """Re-match the evidence store's images (recorded by `assay scan --store`) against this
    database, in the store's own SQL engine.

    The database's Debian tracker rows and KEV catalog are synced into the store, severities
    rated as `assay scan` rates them (NVD CVSS, then OSV, then the tracker's urgency). Only
    source versions new to the fleet and those whose advisories changed are matched again;
    findings keep their first-seen dates. `assay report --fleet` reports the result.
    Exit codes: 0 ok; 1 the store cannot be reached; 2 no database.
    """
    from assay.store import open_store, rescan, sync_advisories

    with _open(db, create=False) as adb:
        if not adb.sources():
            raise UsageError(
                f"the vulnerability database {adb.path} is empty; run `assay db update` "
                "(or `assay db import …`)"
            )
        legacy = _legacy_inventories(adb)
        with open_store(store) as st:
            rows = sync_advisories(st, adb)
            summary = rescan(st)
            images = len(st.images())
            where = st.where
    if legacy:
        _console.warn(
            f"{adb.path} still holds {legacy} inventories stored by an older `scan --store`; "
            "they are no longer read: scan those images again with --store to record them "
            "in the evidence store"
        )
    doc = {
        "store": where,
        "images": images,
        "advisories": rows,
        "rescanned_at": summary.when,
        "source_versions_matched": summary.checked,
        "open": summary.open,
        "new": summary.new,
        "resolved": summary.resolved,
    }
    if output is StatusOutput.json:
        _console.emit(json.dumps(doc, indent=2) + "\n")
        return
    _console.emit(
        f"{where}: {images} images; {summary.checked} source versions matched against "
        f"{rows} advisories; {summary.open} open findings ({summary.new} new, "
        f"{summary.resolved} resolved)\n"
    )
    if not images:
        _console.info("no images in the store: record them with `assay scan IMAGE --store`")


def _legacy_inventories(adb: AdvisoryDB) -> int:
    """Inventories an older assay kept in the advisory DB (no longer used)."""
    try:
        row = adb.conn.execute("SELECT count(*) FROM inventories").fetchone()
    except sqlite3.Error:
        return 0
    return int(row[0]) if row else 0


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
