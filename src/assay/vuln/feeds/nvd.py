"""NVD CVE API 2.0 JSON: CVSS v3.x/v4.0 base scores and vectors per CVE.

A file is one API response (or one of NVD's yearly ``nvdcve-2.0-YYYY.json`` feed files, which
have the same shape)::

    {"resultsPerPage": …, "startIndex": …, "totalResults": …, "format": "NVD_CVE",
     "version": "2.0", "timestamp": "2024-07-01T12:00:00.000",
     "vulnerabilities": [{"cve": {"id": "CVE-…", "lastModified": "…", "vulnStatus": "…",
        "metrics": {"cvssMetricV40": [{"source": "…", "type": "Primary"|"Secondary",
                                       "cvssData": {"version": "4.0", "vectorString": "CVSS:4.0/…",
                                                    "baseScore": 9.3, "baseSeverity": …}}],
                    "cvssMetricV31": […], "cvssMetricV30": […]}}}]}

Imports are upserts per CVE (files are pages or years, never the whole NVD at once); a CVE whose
``vulnStatus`` is ``Rejected`` is removed. The score stored is the one the ``cvss`` library
computes from the vector (a vector it cannot parse is skipped), so a file cannot claim a score
its vector does not give. The data is dated by the response's ``timestamp`` (the oldest of the
files of one import).

``db update`` pages through the API (``startIndex``/``resultsPerPage``); once the database holds
NVD data younger than the API's 120-day window it asks only for CVEs modified since
(``lastModStartDate``/``lastModEndDate``).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import closing
from pathlib import Path
from typing import Any

from assay.errors import InputError, NetworkError
from assay.vuln.db import AdvisoryDB
from assay.vuln.feeds._interface import (
    feed_date,
    file_date,
    iter_feed_json,
)
from assay.vuln.severity import cvss_score

__all__ = ["NVD_API", "NvdFeed", "nvd_rows"]

log = logging.getLogger(__name__)

NVD_API = "https://services.nvd.nist.gov/rest/json/cves/2.0"
PAGE_SIZE = 2000  # the API's maximum for /cves/2.0
MAX_PAGES = 2000
INCREMENTAL_DAYS = 119  # lastModStartDate..lastModEndDate may span at most 120 days
_CVE = re.compile(r"^CVE-\d{4}-\d{4,12}$")
_METRICS = {"cvssMetricV40": "4.0", "cvssMetricV31": "3.1", "cvssMetricV30": "3.0"}

_Row = tuple[str, str, str, str, str, float, str]  # cve, version, source, type, vector, score, mod


def _cve_rows(cve: Any, where: str) -> tuple[str, str, list[_Row]]:
    """(id, vulnStatus, metric rows) of one ``cve`` object."""
    if not isinstance(cve, dict) or not isinstance(cve.get("id"), str):
        raise InputError(f"{where}: a vulnerability has no cve.id; is it NVD CVE API 2.0 JSON?")
    cid: str = cve["id"]
    if not _CVE.match(cid):
        raise InputError(f"{where}: {cid[:40]!r} is not a CVE id")
    status = cve.get("vulnStatus", "")
    if not isinstance(status, str):
        raise InputError(f"{where}: {cid} vulnStatus is not text")
    modified = feed_date(cve.get("lastModified"), f"{where}: {cid} lastModified")
    metrics = cve.get("metrics", {})
    if not isinstance(metrics, dict):
        raise InputError(f"{where}: {cid} metrics is not an object")
    rows: list[_Row] = []
    for key, version in _METRICS.items():
        entries = metrics.get(key, [])
        if not isinstance(entries, list):
            raise InputError(f"{where}: {cid} metrics.{key} is not a list")
        for m in entries:
            data = m.get("cvssData") if isinstance(m, dict) else None
            if not isinstance(data, dict):
                raise InputError(f"{where}: {cid} metrics.{key} entry has no cvssData object")
            vector, source, kind = data.get("vectorString"), m.get("source", ""), m.get("type")
            if not isinstance(vector, str) or len(vector) > 256:
                raise InputError(f"{where}: {cid} {key} vectorString is not a CVSS vector")
            if not isinstance(source, str) or len(source) > 256:
                raise InputError(f"{where}: {cid} {key} source is not text")
            if kind not in ("Primary", "Secondary"):
                raise InputError(f"{where}: {cid} {key} type must be Primary or Secondary")
            scored = cvss_score(vector)
            if scored is None or not vector.startswith(f"CVSS:{version}/"):
                log.debug("%s: skipping unusable %s vector %r", cid, key, vector)
                continue
            rows.append((cid, version, source, kind, vector, scored[0], modified))
    return cid, status, rows


def nvd_rows(doc: Any, where: str) -> tuple[dict[str, list[_Row]], set[str], str]:
    """Metric rows per CVE, rejected CVE ids, and the document's ``timestamp`` ("" if none)."""
    if not isinstance(doc, dict) or not isinstance(doc.get("vulnerabilities"), list):
        raise InputError(f"{where} has no 'vulnerabilities' list; is it NVD CVE API 2.0 JSON?")
    fmt = doc.get("format", "NVD_CVE")
    if fmt != "NVD_CVE":
        raise InputError(f"{where}: format {str(fmt)[:40]!r} is not NVD_CVE")
    stamp = feed_date(doc.get("timestamp"), f"{where}: timestamp")
    per_cve: dict[str, list[_Row]] = {}
    rejected: set[str] = set()
    for item in doc["vulnerabilities"]:
        _add(per_cve, rejected, item, where)
    return per_cve, rejected, stamp


def _add(per_cve: dict[str, list[_Row]], rejected: set[str], item: Any, where: str) -> None:
    cve = item.get("cve") if isinstance(item, dict) else None
    cid, status, rows = _cve_rows(cve, where)
    if status == "Rejected":
        rejected.add(cid)
        per_cve.pop(cid, None)
    else:
        rejected.discard(cid)
        per_cve[cid] = rows


def _stream_file(conn: sqlite3.Connection, path: Path, where: str) -> tuple[int, str]:
    """Import one NVD file one vulnerability at a time (a yearly file is hundreds of MB of
    JSON); (CVEs stored, the file's ``timestamp``)."""
    top: dict[str, Any] = {}
    per_cve: dict[str, list[_Row]] = {}
    rejected: set[str] = set()
    listed = False
    n = 0
    pieces = iter_feed_json(path, where, split=("vulnerabilities",))
    with closing(pieces):
        for key, value in pieces:
            if len(key) == 2 and key[0] == "vulnerabilities":
                listed = True
                _add(per_cve, rejected, value, where)
                if len(per_cve) + len(rejected) >= _BATCH:
                    n += len(per_cve)
                    _store(conn, per_cve, rejected)
                    per_cve, rejected = {}, set()
            elif len(key) == 1 and isinstance(key[0], str):
                if key[0] in ("format", "timestamp", "vulnerabilities"):
                    top[key[0]] = value
                listed = listed or (key[0] == "vulnerabilities" and value == [])
            else:
                raise InputError(f"{where} is not a JSON object; is it NVD CVE API 2.0 JSON?")
    if not listed:
        raise InputError(f"{where} has no 'vulnerabilities' list; is it NVD CVE API 2.0 JSON?")
    fmt = top.get("format", "NVD_CVE")
    if fmt != "NVD_CVE":
        raise InputError(f"{where}: format {str(fmt)[:40]!r} is not NVD_CVE")
    n += len(per_cve)
    _store(conn, per_cve, rejected)
    return n, feed_date(top.get("timestamp"), f"{where}: timestamp")


_BATCH = 5000


def _store(conn: sqlite3.Connection, per_cve: dict[str, list[_Row]], rejected: set[str]) -> None:
    ids = sorted(set(per_cve) | rejected)
    conn.executemany("DELETE FROM nvd WHERE cve=?", [(c,) for c in ids])
    conn.executemany(
        "INSERT OR REPLACE INTO nvd VALUES (?,?,?,?,?,?,?)",
        [r for c in sorted(per_cve) for r in per_cve[c]],
    )


class NvdFeed:
    name = "nvd"
    env_var = "ASSAY_FEED_NVD"
    default_url = NVD_API

    def import_path(self, db: AdvisoryDB, path: Path, origin: str = "", date_hint: str = "") -> int:
        return self.import_paths(db, [path], origin, date_hint)

    def import_paths(
        self, db: AdvisoryDB, paths: Sequence[Path], origin: str = "", date_hint: str = ""
    ) -> int:
        """Import NVD JSON files (``.json``/``.json.gz``, or directories of them) atomically."""
        files = list(_expand(paths))
        if not files:
            raise InputError(f"no NVD JSON files in {', '.join(map(str, paths))}")
        dates: list[str] = []
        n = 0
        with db.transaction() as conn:
            for f in files:
                stored, stamp = _stream_file(conn, f, f"NVD file {f}")
                n += stored
                dates.append(stamp or date_hint or file_date(f))
            total = conn.execute("SELECT count(DISTINCT cve) FROM nvd").fetchone()[0]
            db.record_source(
                conn,
                self.name,
                origin or ", ".join(map(str, paths)),
                total,
                f"last import: {n} CVEs from {len(files)} file(s)",
                min(dates),
            )
        log.info("imported %d NVD CVEs from %d file(s)", n, len(files))
        return n


def _expand(paths: Iterable[Path]) -> Iterable[Path]:
    for p in paths:
        if p.is_dir():
            for f in sorted(p.iterdir()):
                if f.name.endswith((".json", ".json.gz")) and f.is_file() and not f.is_symlink():
                    yield f
        else:
            yield p


def _page_counts(page: Path, what: str) -> tuple[Any, int | None]:
    """(``totalResults``, number of ``vulnerabilities`` or None) of an API page, streamed."""
    total: Any = None
    got: int | None = None
    pieces = iter_feed_json(page, what, split=("vulnerabilities",))
    with closing(pieces):
        for key, value in pieces:
            if key == ("totalResults",):
                total = value
            elif key[:1] == ("vulnerabilities",):
                if len(key) == 2:
                    got = (got or 0) + 1
                elif isinstance(value, list):
                    got = len(value)
    return total, got


def _api_time(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000+00:00")


def fetch_pages(
    get: Callable[[dict[str, str], Path], None],
    dest: Path,
    *,
    since: str = "",
    now: dt.datetime | None = None,
    delay: float = 0.0,
    progress: Callable[[str], None] | None = None,
) -> list[Path]:
    """Download every page of the CVE list into ``dest``; ``get(params, file)`` fetches one.

    ``since`` (RFC 3339): only CVEs modified since then, when that is within the API's window.
    """
    now = now or dt.datetime.now(dt.UTC)
    base: dict[str, str] = {"resultsPerPage": str(PAGE_SIZE)}
    if since:
        start = dt.datetime.fromisoformat(since.replace("Z", "+00:00"))
        if now - start < dt.timedelta(days=INCREMENTAL_DAYS):
            base["lastModStartDate"] = _api_time(start - dt.timedelta(hours=1))
            base["lastModEndDate"] = _api_time(now)
    pages: list[Path] = []
    index, total = 0, None
    while total is None or index < total:
        if len(pages) >= MAX_PAGES:
            raise NetworkError(f"the NVD API announced more than {MAX_PAGES} pages; refusing")
        if pages and delay:
            time.sleep(delay)  # NVD's public rate limit (5 requests / 30 s without a key)
        page = dest / f"nvd-{len(pages):05d}.json"
        get({**base, "startIndex": str(index)}, page)
        announced, got = _page_counts(page, f"NVD API page {len(pages)}")
        if not isinstance(announced, int) or announced < 0 or got is None:
            raise InputError("the NVD API answer has no totalResults/vulnerabilities")
        pages.append(page)
        total = announced if total is None else total
        if not got and index < total:
            raise NetworkError(f"the NVD API returned an empty page at startIndex {index}")
        index += got
        if progress:
            progress(f"nvd: {min(index, total)}/{total} CVEs")
    return pages
