"""CISA's Known Exploited Vulnerabilities catalog (JSON: ``{"vulnerabilities": [{cveID, …}]}``)."""

from __future__ import annotations

from pathlib import Path

from assay.errors import InputError
from assay.vuln.db import AdvisoryDB
from assay.vuln.feeds._interface import feed_date, file_date, load_json, read_bounded

__all__ = ["KevFeed"]


class KevFeed:
    name = "kev"
    env_var = "ASSAY_FEED_KEV"
    default_url = (
        "https://www.cisa.gov/sites/default/files/feeds/known_exploited_vulnerabilities.json"
    )

    def import_path(self, db: AdvisoryDB, path: Path, origin: str = "", date_hint: str = "") -> int:
        doc = load_json(read_bounded(path, 256 << 20), f"KEV file {path}")
        vulns = doc.get("vulnerabilities") if isinstance(doc, dict) else None
        if not isinstance(vulns, list):
            raise InputError(f"KEV file {path} has no 'vulnerabilities' list; is it the KEV JSON?")
        rows = []
        for i, v in enumerate(vulns):
            if not isinstance(v, dict) or not isinstance(v.get("cveID"), str):
                raise InputError(f"KEV file {path}: entry {i} has no cveID")
            rows.append(
                (
                    v["cveID"],
                    str(v.get("dateAdded", "")),
                    str(v.get("dueDate", "")),
                    str(v.get("knownRansomwareCampaignUse", "")),
                    str(v.get("vendorProject", "")),
                    str(v.get("product", "")),
                    str(v.get("vulnerabilityName", "")),
                )
            )
        version = str(doc.get("catalogVersion", ""))
        released = feed_date(doc.get("dateReleased"), f"KEV file {path}: dateReleased")
        with db.transaction() as conn:
            conn.execute("DELETE FROM kev")
            conn.executemany("INSERT OR REPLACE INTO kev VALUES (?,?,?,?,?,?,?)", rows)
            db.record_source(
                conn,
                self.name,
                origin or str(path),
                len(rows),
                f"catalog {version}",
                released or date_hint or file_date(path),
            )
        return len(rows)
