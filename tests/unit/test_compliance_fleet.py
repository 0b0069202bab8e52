"""``assay report --fleet`` over a real store (SQLite), and store dates winning over the scan's."""

from __future__ import annotations

import json
from pathlib import Path

import html5lib

from assay.compliance.collect import _store_findings, findings_from_scan
from assay.store import open_store, rescan, sync_advisories
from assay.vuln.db import AdvisoryDB
from assay.vuln.feeds import FEEDS
from assay.vuln.model import Finding, ScanResult, Severity, State, VulnId
from fixtures.cli import run_inprocess
from unit.test_store import ASSETS, D1, inventories


def _store(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    with AdvisoryDB(tmp_path / "vuln.db") as db:
        FEEDS["debian-tracker"].import_path(db, ASSETS / "tracker.json")
        with open_store(url) as s:
            for inv in inventories():
                s.record_image(inv, now="2024-12-31T00:00:00Z")
            sync_advisories(s, db)
            rescan(s, now="2025-01-01T00:00:00Z")
    return url


def test_fleet_report_json_and_html(tmp_path: Path) -> None:
    url = _store(tmp_path)
    ran = run_inprocess(
        "report", "--fleet", "--store", url, "-o", "json", "--now", "2025-03-01", env={}
    )
    assert ran.returncode == 0, ran.stderr
    doc = json.loads(ran.stdout)
    assert doc["totals"]["images"] == 3 and doc["totals"]["open"] > 0
    assert doc["generated"].startswith("2025-03-01")
    out = tmp_path / "fleet.html"
    ran = run_inprocess(
        "report", "--fleet", "--store", url, "-o", "html", "--file", str(out), env={}
    )
    assert ran.returncode == 0, ran.stderr
    page = out.read_text()
    html5lib.HTMLParser(strict=True).parse(page)
    assert "acme/a" in page and D1 in page


def test_fleet_report_usage_errors(tmp_path: Path) -> None:
    url = _store(tmp_path)
    ran = run_inprocess("report", "--fleet", "--store", url, "-o", "poam", env={})
    assert ran.returncode == 2 and "fleet report is html or json" in ran.stderr
    ran = run_inprocess("report", "--fleet", env={"ASSAY_STORE": ""})
    assert ran.returncode == 2
    ran = run_inprocess("report", "127.0.0.1:1/x:1", env={})
    assert ran.returncode == 2 and "--key" in ran.stderr


def test_store_dates_win_over_the_scan(tmp_path: Path) -> None:
    url = _store(tmp_path)
    rows = _store_findings(url, D1)
    assert rows, "the rescan found nothing for image a"
    (vuln, package), dates = sorted(rows.items())[0]
    assert dates["first_seen"].startswith("2025-01-01")
    finding = Finding(
        id=VulnId(vuln),
        aliases=(),
        package=package,
        version="1",
        purl=f"pkg:deb/debian/{package}@1",
        ecosystem="deb",
        state=State.AFFECTED,
        severity=Severity.HIGH,
        source="debian-tracker",
        first_seen="2025-02-20",
    )
    scan = ScanResult("a", D1, "", "debian 12", (finding,))
    (got,) = findings_from_scan(scan, "2025-02-25", rows)
    assert got.source == "store" and got.first_seen == dates["first_seen"][:10]
    (alone,) = findings_from_scan(scan, "2025-02-25", {})
    assert alone.source == "scan" and alone.first_seen == "2025-02-20"
    assert alone.due_date == "2025-03-22"
