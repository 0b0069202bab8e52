"""The fleet through the installed console script, on SQLite and on a real PostgreSQL server:
`scan --store` records into the evidence store (the one inventory store), `db rescan` re-matches
it there, `report --fleet --fail-on` gates on it."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text

from assay.store import open_store
from fixtures.cli import Ran, run_script
from fixtures.postgres import store_url
from fixtures.vulnfeeds import import_args
from integration.test_scan_cli import DIGEST, _cdx

PASSWD = "pkg:deb/debian/passwd@1%3A4.13%2Bdfsg1-1?arch=amd64&upstream=shadow&distro=debian-12"

__all__ = ["store_url"]  # the fixture: sqlite and postgresql

SRC = str(Path(__file__).resolve().parents[2] / "src")


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    e = {
        "PYTHONPATH": SRC,
        "ASSAY_VULN_DB": str(tmp_path / "vuln.db"),
        "ASSAY_CACHE_DIR": str(tmp_path / "cache"),
        "ASSAY_STORE": "",
        "ASSAY_FAIL_ON": "",
    }
    r = run_script("db", "import", *import_args("debian-tracker", "osv", "kev"), env=e)
    assert r.returncode == 0, r.stderr
    return e


def _report(url: str, env: dict[str, str], *extra: str) -> Ran:
    return run_script("report", "--fleet", "--store", url, "-o", "json", *extra, env=env)


def test_scan_store_rescan_and_fleet_gate(
    store_url: str, env: dict[str, str], tmp_path: Path
) -> None:
    sbom = _cdx(tmp_path / "s.cdx.json")
    doc = json.loads(sbom.read_text())
    doc["components"].append(
        {"type": "library", "name": "passwd", "version": "1:4.13+dfsg1-1", "purl": PASSWD}
    )  # shadow: a CVE the tracker rates low, beside openssl's unknown ones
    sbom.write_text(json.dumps(doc))
    single = run_script(
        "scan", str(sbom), "--store", "--store-url", store_url, "--show-negligible", "-o",
        "json", env=env,
    )  # fmt: skip
    assert single.returncode == 0, single.stderr
    assert "recorded " + DIGEST in single.stderr
    ran = run_script("db", "rescan", "--store", store_url, "-o", "json", env=env)
    assert ran.returncode == 0, ran.stderr
    doc = json.loads(ran.stdout)
    deb = {
        (f["package"]["name"], f["id"], f["state"])
        for f in json.loads(single.stdout)["findings"]
        if f["data_source"] == "debian-tracker"
    }
    assert deb and doc["images"] == 1 and doc["open"] == len(deb) == doc["new"]
    with open_store(store_url) as s, s.engine.connect() as conn:
        stored = set(
            conn.execute(
                text(
                    "SELECT f.package, f.vuln, f.state FROM findings f "
                    "JOIN images i ON i.id = f.image_id WHERE i.digest = :d"
                ),
                {"d": DIGEST},
            ).all()
        )
    assert stored == deb  # the fleet matches as the single scan did
    again = run_script("db", "rescan", "--store", store_url, env=env)
    assert again.returncode == 0 and "0 source versions matched" in again.stdout

    report = _report(store_url, env)
    assert report.returncode == 0, report.stderr
    (row,) = json.loads(report.stdout)["images"]
    assert row["digest"] == DIGEST and row["open"] == len(deb)
    # the fixture rates findings low or unknown (no NVD data): low fails, medium passes
    assert row["low"] > 0 and row["unknown"] > 0
    assert row["medium"] == row["high"] == row["critical"] == 0
    gate = _report(store_url, env, "--fail-on", "low")
    assert gate.returncode == 1, gate.stderr
    assert "at or above low (--fail-on)" in gate.stderr and DIGEST[:19] in gate.stderr
    assert json.loads(gate.stdout)["images"][0]["digest"] == DIGEST  # still written
    assert _report(store_url, env, "--fail-on", "medium").returncode == 0
    via_env = _report(store_url, dict(env, ASSAY_REPORT_FAIL_ON="unknown"))
    assert via_env.returncode == 1
    bad = _report(store_url, env, "--fail-on", "severe")
    assert bad.returncode == 2 and "unknown severity" in bad.stderr


def test_fail_on_needs_the_fleet_and_scan_store_needs_a_digest(
    env: dict[str, str], tmp_path: Path
) -> None:
    ran = run_script("report", "reg.example/a:1", "--key", "k.pub", "--fail-on", "high", env=env)
    assert ran.returncode == 2 and "--fail-on applies to the fleet report" in ran.stderr
    sbom = tmp_path / "nodigest.cdx.json"
    sbom.write_text(
        json.dumps(
            {
                "bomFormat": "CycloneDX",
                "specVersion": "1.6",
                "components": [{"type": "operating-system", "name": "debian", "version": "12"}],
            }
        )
    )
    url = f"sqlite:///{tmp_path / 's.db'}"
    ran = run_script("scan", str(sbom), "--store", "--store-url", url, env=env)
    assert ran.returncode == 2 and "--store needs an image digest" in ran.stderr


def test_db_rescan_names_inventories_left_in_the_advisory_db(
    env: dict[str, str], tmp_path: Path
) -> None:
    with sqlite3.connect(env["ASSAY_VULN_DB"]) as conn:  # what an older `scan --store` kept
        conn.execute("CREATE TABLE inventories (subject TEXT PRIMARY KEY, name TEXT)")
        conn.execute("INSERT INTO inventories VALUES ('sha256:00', 'old')")
    url = f"sqlite:///{tmp_path / 's.db'}"
    ran = run_script("db", "rescan", "--store", url, env=env)
    assert ran.returncode == 0, ran.stderr
    assert "1 inventories stored by an older `scan --store`" in ran.stderr
    assert "no images in the store" in ran.stderr
    os.remove(tmp_path / "s.db")
