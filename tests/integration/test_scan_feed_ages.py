"""Feed ages come from the feeds' own dates, not the import: ``db status``, ``--max-db-age``.

A KEV catalog released years ago but imported today must fail ``scan --max-db-age 7``; an
air-gapped site importing old files must not pass the staleness gate.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import sqlite3
from pathlib import Path

import pytest

from assay.vuln.db import AdvisoryDB
from assay.vuln.feeds import FEEDS
from fixtures.cli import run_script

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "vuln"
SBOM = {
    "bomFormat": "CycloneDX",
    "specVersion": "1.6",
    "metadata": {"component": {"type": "container", "name": "img"}},
    "components": [
        {"type": "operating-system", "name": "debian", "version": "12"},
        {
            "type": "library",
            "name": "libssl3",
            "version": "3.0.8-1",
            "purl": "pkg:deb/debian/libssl3@3.0.8-1?arch=amd64&upstream=openssl&distro=debian-12",
        },
    ],
}


def _now(days_ago: float = 0) -> str:
    when = dt.datetime.now(dt.UTC) - dt.timedelta(days=days_ago)
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _kev(path: Path, released: str) -> Path:
    doc = json.loads((ASSETS / "kev.json").read_text())
    doc["dateReleased"] = released
    path.write_text(json.dumps(doc))
    return path


def _sbom(path: Path) -> Path:
    path.write_text(json.dumps(SBOM))
    return path


def test_old_kev_imported_today_fails_max_db_age(tmp_path: Path) -> None:
    env = {"ASSAY_VULN_DB": str(tmp_path / "v.db")}
    old = _kev(tmp_path / "kev.json", "2021-11-03T00:00:00.0000Z")
    r = run_script("db", "import", "--kev", str(old), env=env)
    assert r.returncode == 0, r.stderr
    sbom = _sbom(tmp_path / "s.cdx.json")
    r = run_script("scan", str(sbom), "--max-db-age", "7", env=env)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "--max-db-age 7" in r.stderr and "kev (data from 2021-11-03" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    st = run_script("db", "status", "-o", "json", env=env)
    (kev,) = json.loads(st.stdout)["sources"]
    assert kev["data_date"] == "2021-11-03T00:00:00Z" and kev["data_date_from"] == "feed"
    assert kev["age_days"] > 365 and kev["stale"]
    assert kev["imported_at"][:10] == dt.datetime.now(dt.UTC).date().isoformat()
    assert "2021-11-03T00:00:00Z" in run_script("db", "status", env=env).stdout
    # a fresh catalog passes the same gate
    r = run_script("db", "import", "--kev", str(_kev(old, _now(1))), env=env)
    assert r.returncode == 0, r.stderr
    r = run_script("scan", str(sbom), "--max-db-age", "7", env=env)
    assert r.returncode == 0, r.stderr


def test_each_feed_is_dated_by_its_own_date(tmp_path: Path) -> None:
    epss = tmp_path / "epss.csv.gz"
    text = (ASSETS / "epss.csv").read_text()
    assert text.startswith("#model_version:v2025.03.14,score_date:2025-04-08T00:00:00Z\n")
    epss.write_bytes(gzip.compress(text.encode()))
    tracker = tmp_path / "tracker.json"
    tracker.write_bytes((ASSETS / "tracker.json").read_bytes())
    when = dt.datetime(2023, 5, 6, 7, 8, 9, tzinfo=dt.UTC).timestamp()
    os.utime(tracker, (when, when))  # the tracker JSON has no date: its file time counts
    env = {"ASSAY_VULN_DB": str(tmp_path / "v.db")}
    r = run_script(
        "db",
        "import",
        "--epss",
        str(epss),
        "--debian-tracker",
        str(tracker),
        "--osv",
        str(ASSETS / "osv"),
        "--kev",
        str(ASSETS / "kev.json"),
        env=env,
    )
    assert r.returncode == 0, r.stderr
    doc = json.loads(run_script("db", "status", "-o", "json", env=env).stdout)
    dates = {s["source"]: s["data_date"] for s in doc["sources"]}
    assert dates == {
        "debian-tracker": "2023-05-06T07:08:09Z",
        "epss": "2025-04-08T00:00:00Z",
        "kev": "2025-01-10T16:01:27Z",  # dateReleased
        # OSV: the oldest of each ecosystem's newest record (PyPI 2024-05-01, npm 2024-03-14)
        "osv": _osv_expected(),
    }
    r = run_script("scan", str(_sbom(tmp_path / "s.json")), "--max-db-age", "400000", env=env)
    assert r.returncode == 0, r.stderr


def _osv_expected() -> str:
    newest: dict[str, str] = {}
    for f in (ASSETS / "osv").glob("*.json"):
        rec = json.loads(f.read_text())
        for aff in rec.get("affected", []):
            eco = aff["package"]["ecosystem"].split(":")[0]
            newest[eco] = max(newest.get(eco, ""), rec["modified"])
    return min(newest.values())


def test_future_dates_are_clamped_to_now(tmp_path: Path) -> None:
    with AdvisoryDB(tmp_path / "v.db") as db:
        FEEDS["kev"].import_path(db, _kev(tmp_path / "k.json", "2999-01-01T00:00:00Z"))
        (kev,) = db.sources()
        assert kev.data_date <= kev.imported_at  # a feed cannot claim to be from the future
        assert kev.age_days() < 0.01


def test_bad_feed_date_is_refused(tmp_path: Path) -> None:
    env = {"ASSAY_VULN_DB": str(tmp_path / "v.db")}
    r = run_script("db", "import", "--kev", str(_kev(tmp_path / "k.json", "last tuesday")), env=env)
    assert r.returncode == 2 and "dateReleased" in r.stderr, r.stderr


def test_schema_2_database_is_migrated(tmp_path: Path) -> None:
    p = tmp_path / "v.db"
    with sqlite3.connect(p) as c:
        c.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        c.execute("INSERT INTO meta VALUES ('schema', '2')")
        c.execute(
            "CREATE TABLE sources (name TEXT PRIMARY KEY, imported_at TEXT NOT NULL, "
            "origin TEXT NOT NULL, records INTEGER NOT NULL, detail TEXT NOT NULL DEFAULT '')"
        )
        c.execute("INSERT INTO sources VALUES ('kev', '2020-01-01T00:00:00Z', 'x', 2, '')")
    with AdvisoryDB(p) as db:
        (kev,) = db.sources()
        assert kev.data_date == "" and kev.dated == "2020-01-01T00:00:00Z"  # import time
        FEEDS["kev"].import_path(db, ASSETS / "kev.json")
        assert db.sources()[0].data_date == "2025-01-10T16:01:27Z"


@pytest.mark.parametrize("modified", ["Sat, 06 May 2023 07:08:09 GMT", None])
def test_db_update_dates_the_tracker_by_last_modified(tmp_path: Path, modified: str | None) -> None:
    import http.server

    from fixtures.httpserve import serving

    body = (ASSETS / "tracker.json").read_bytes()

    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            if modified:
                self.send_header("Last-Modified", modified)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a: object) -> None:
            pass

    env = {"ASSAY_VULN_DB": str(tmp_path / "v.db")}
    with serving(http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)) as base:
        url = base + "/json"
        r = run_script(
            "db", "update", "--only", "debian-tracker", "--debian-tracker-url", url, env=env
        )
    assert r.returncode == 0, r.stderr
    (src,) = json.loads(run_script("db", "status", "-o", "json", env=env).stdout)["sources"]
    if modified:
        assert src["data_date"] == "2023-05-06T07:08:09Z"
    else:  # no Last-Modified: dated by the download
        assert src["age_days"] < 0.1
