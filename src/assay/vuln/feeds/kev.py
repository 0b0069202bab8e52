"""CISA's Known Exploited Vulnerabilities catalog (JSON: ``{"vulnerabilities": [{cveID, …}]}``)."""

from __future__ import annotations

from contextlib import closing
from pathlib import Path
from typing import Any

from assay.errors import InputError
from assay.vuln.db import AdvisoryDB
from assay.vuln.feeds._interface import feed_date, file_date, iter_feed_json

__all__ = ["KevFeed"]

_MAX_ENTRIES = 100_000  # the catalog lists ~1,500
_MAX_HELD = 32 << 20  # characters of kept fields over all entries


class KevFeed:
    name = "kev"
    env_var = "ASSAY_FEED_KEV"
    default_url = (
        "https://www.cisa.gov/sites/default/files/feeds/known_exploited_vulnerabilities.json"
    )

    def import_path(self, db: AdvisoryDB, path: Path, origin: str = "", date_hint: str = "") -> int:
        # Streamed one vulnerability at a time (the catalog is ~1.5 MB, a hostile one is not).
        top: dict[str, Any] = {}
        rows: list[tuple[str, ...]] = []
        held = 0
        has_list = False
        pieces = iter_feed_json(
            path,
            f"KEV file {path}",
            max_piece=64 << 10,
            split=("vulnerabilities",),
            limit=256 << 20,
        )
        with closing(pieces):
            for key, v in pieces:
                if key[:1] != ("vulnerabilities",) or len(key) != 2:
                    if len(key) == 1 and isinstance(key[0], str):
                        if key[0] in ("catalogVersion", "dateReleased", "vulnerabilities"):
                            top[key[0]] = v
                        has_list = has_list or (key[0] == "vulnerabilities" and v == [])
                        continue
                    raise InputError(
                        f"KEV file {path} is not a JSON object with a 'vulnerabilities' list; "
                        "is it the KEV JSON?"
                    )
                has_list = True
                i = key[1]
                if len(rows) >= _MAX_ENTRIES:
                    raise InputError(f"KEV file {path} lists over {_MAX_ENTRIES} entries; refusing")
                if not isinstance(v, dict) or not isinstance(v.get("cveID"), str):
                    raise InputError(f"KEV file {path}: entry {i} has no cveID")
                row = (
                    v["cveID"],
                    str(v.get("dateAdded", "")),
                    str(v.get("dueDate", "")),
                    str(v.get("knownRansomwareCampaignUse", "")),
                    str(v.get("vendorProject", "")),
                    str(v.get("product", "")),
                    str(v.get("vulnerabilityName", "")),
                )
                held += sum(map(len, row))
                if held > _MAX_HELD:
                    raise InputError(f"KEV file {path} holds over {_MAX_HELD} bytes of entries")
                rows.append(row)
        if not has_list:
            raise InputError(f"KEV file {path} has no 'vulnerabilities' list; is it the KEV JSON?")
        version = str(top.get("catalogVersion", ""))
        released = feed_date(top.get("dateReleased"), f"KEV file {path}: dateReleased")
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
