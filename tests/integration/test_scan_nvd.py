"""The NVD feed: CVSS v3.1/v4.0 per CVE rates Debian findings, so ``--fail-on critical`` works.

Debian's urgency has no "critical" (and "not yet assigned" ranked below low), so before the NVD
feed a Debian image could never fail ``--fail-on critical``. NVD's Primary assessment wins over a
CNA's Secondary one; Debian's "unimportant" still makes a finding negligible (score kept).
"""

from __future__ import annotations

import copy
import datetime as dt
import http.server
import json
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from assay.errors import InputError
from assay.vuln.db import AdvisoryDB
from assay.vuln.feeds import NvdFeed
from fixtures.cli import run_script
from fixtures.httpserve import serving

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "vuln"
NVD = ASSETS / "nvd" / "cves-page.json"


def _purl(name: str, version: str, source: str) -> str:
    return f"pkg:deb/debian/{name}@{version}?arch=amd64&upstream={source}&distro=debian-12"


SBOM = {
    "bomFormat": "CycloneDX",
    "specVersion": "1.6",
    "metadata": {"component": {"type": "container", "name": "img"}},
    "components": [
        {"type": "operating-system", "name": "debian", "version": "12"},
        *(
            {"type": "library", "name": n, "version": v, "purl": _purl(n, v, s)}
            for n, v, s in (
                ("libssl3", "3.0.8-1", "openssl"),
                ("libc6", "2.36-9+deb12u4", "glibc"),
                ("zlib1g", "1:1.2.13.dfsg-1", "zlib"),
            )
        ),
    ],
}


@pytest.fixture(scope="module")
def dbs(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], dict[str, str]]:
    """(tracker only, tracker + NVD) databases."""
    d = tmp_path_factory.mktemp("nvd")
    plain = {"ASSAY_VULN_DB": str(d / "plain.db")}
    nvd = {"ASSAY_VULN_DB": str(d / "nvd.db")}
    for env in (plain, nvd):
        r = run_script("db", "import", "--debian-tracker", str(ASSETS / "tracker.json"), env=env)
        assert r.returncode == 0, r.stderr
    r = run_script("db", "import", "--nvd", str(NVD), env=nvd)
    assert r.returncode == 0 and "nvd: imported 6 CVEs" in r.stderr, r.stderr
    return plain, nvd


@pytest.fixture
def sbom(tmp_path: Path) -> str:
    p = tmp_path / "img.cdx.json"
    p.write_text(json.dumps(SBOM))
    return str(p)


def _findings(sbom: str, env: dict[str, str], *extra: str) -> dict[str, dict[str, Any]]:
    r = run_script("scan", sbom, "-o", "json", *extra, env=env)
    assert r.returncode == 0, r.stderr
    return {f["id"]: f for f in json.loads(r.stdout)["findings"]}


def test_fail_on_critical_works_on_debian_packages_with_nvd(
    dbs: tuple[dict[str, str], dict[str, str]], sbom: str
) -> None:
    plain, nvd = dbs
    r = run_script("scan", sbom, "--fail-on", "critical", env=plain)
    assert r.returncode == 0, r.stderr  # Debian urgency alone: nothing is ever "critical"
    r = run_script("scan", sbom, "--fail-on", "critical", env=nvd)
    assert r.returncode == 1 and "at or above critical" in r.stderr, r.stderr
    assert "nvd 9.8" in r.stdout  # the table says where the rating comes from


def test_severity_source_and_primary_over_secondary(
    dbs: tuple[dict[str, str], dict[str, str]], sbom: str
) -> None:
    _, nvd = dbs
    f = _findings(sbom, nvd, "--show-negligible")
    glibc = f["CVE-2019-1010022"]
    assert (glibc["severity"], glibc["severity_source"]) == ("critical", "nvd")
    assert glibc["cvss"] == {
        "score": 9.8,
        "vector": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
        "source": "nvd",
        "provider": "nvd@nist.gov",
    }
    assert glibc["debian_urgency"] == "low"  # still shown, no longer the rating
    assert (f["CVE-2023-0464"]["severity"], f["CVE-2023-0464"]["cvss"]["score"]) == ("high", 7.5)
    # NVD's Primary v3.1 (5.3) wins over a CNA's Secondary v4.0 (8.7)
    five = f["CVE-2023-5678"]
    assert five["severity"] == "medium" and five["cvss"]["vector"].startswith("CVSS:3.1/")
    # only a Secondary assessment: used, and its provider named
    assert f["CVE-2024-2511"]["cvss"]["provider"] == "134c704f-9b21-4f2e-91b3-4a467353bcc0"
    # no NVD data: Debian's urgency ("not yet assigned" is unknown)
    assert (f["CVE-2024-0727"]["severity"], f["CVE-2024-0727"]["severity_source"]) == (
        "unknown",
        None,
    )
    # Debian says unimportant: negligible, NVD's 9.8 kept for reference
    zlib = f["CVE-2023-45853"]
    assert (zlib["severity"], zlib["severity_source"], zlib["cvss"]["score"]) == (
        "negligible",
        "debian",
        9.8,
    )


def test_sarif_carries_the_nvd_score(dbs: tuple[dict[str, str], dict[str, str]], sbom: str) -> None:
    r = run_script("scan", sbom, "-o", "sarif", env=dbs[1])
    assert r.returncode == 0, r.stderr
    results = json.loads(r.stdout)["runs"][0]["results"]
    glibc = next(x for x in results if x["ruleId"] == "CVE-2019-1010022")
    assert glibc["level"] == "error"
    assert glibc["properties"]["security-severity"] == "9.8"
    assert glibc["properties"]["severitySource"] == "nvd"


def test_db_status_shows_nvd_with_its_timestamp(dbs: tuple[dict[str, str], dict[str, str]]) -> None:
    doc = json.loads(run_script("db", "status", "-o", "json", env=dbs[1]).stdout)
    nvd = next(s for s in doc["sources"] if s["source"] == "nvd")
    assert nvd["records"] == 6 and nvd["data_date"] == "2025-01-15T08:30:00Z"
    assert doc["tables"]["nvd"] == 8


def _doc() -> dict[str, Any]:
    return json.loads(NVD.read_text())  # type: ignore[no-any-return]


def test_rejected_cve_is_removed_and_scores_come_from_vectors(tmp_path: Path) -> None:
    doc = _doc()
    glibc = next(v for v in doc["vulnerabilities"] if v["cve"]["id"] == "CVE-2019-1010022")
    glibc["cve"]["metrics"]["cvssMetricV31"][0]["cvssData"]["baseScore"] = 1.0  # a lie
    (tmp_path / "a.json").write_text(json.dumps(doc))
    with AdvisoryDB(tmp_path / "v.db") as db:
        NvdFeed().import_path(db, tmp_path / "a.json")
        (score,) = db.conn.execute("SELECT score FROM nvd WHERE cve='CVE-2019-1010022'").fetchone()
        assert score == 9.8  # what the vector gives, not what the file claims
        later = {**doc, "vulnerabilities": [copy.deepcopy(glibc)]}
        later["vulnerabilities"][0]["cve"]["vulnStatus"] = "Rejected"
        (tmp_path / "b.json").write_text(json.dumps(later))
        NvdFeed().import_path(db, tmp_path / "b.json")
        assert db.conn.execute("SELECT 1 FROM nvd WHERE cve='CVE-2019-1010022'").fetchone() is None
        assert db.conn.execute("SELECT count(DISTINCT cve) FROM nvd").fetchone()[0] == 5


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(vulnerabilities={}), "vulnerabilities"),
        (lambda d: d.update(format="CPE"), "NVD_CVE"),
        (lambda d: d["vulnerabilities"][0]["cve"].update(id="../etc"), "not a CVE id"),
        (lambda d: d["vulnerabilities"][0]["cve"].update(metrics=[]), "metrics"),
        (
            lambda d: d["vulnerabilities"][0]["cve"]["metrics"]["cvssMetricV31"][0].update(
                type="Tertiary"
            ),
            "Primary or Secondary",
        ),
        (
            lambda d: d["vulnerabilities"][0]["cve"]["metrics"]["cvssMetricV31"][0][
                "cvssData"
            ].update(vectorString=["x"]),
            "vectorString",
        ),
        (lambda d: d.update(timestamp="yesterday"), "timestamp"),
    ],
)
def test_malformed_nvd_is_refused(tmp_path: Path, mutate: Any, message: str) -> None:
    doc = _doc()
    mutate(doc)
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(doc))
    with AdvisoryDB(tmp_path / "v.db") as db:
        with pytest.raises(InputError, match=message):
            NvdFeed().import_path(db, p)
        assert db.counts()["nvd"] == 0 and db.sources() == []  # nothing half-imported


def test_malformed_nvd_through_the_cli_is_exit_2(tmp_path: Path) -> None:
    p = tmp_path / "bad.json"
    p.write_text('{"vulnerabilities": [{"cve": {"id": 7}}]}')
    r = run_script("db", "import", "--nvd", str(p), env={"ASSAY_VULN_DB": str(tmp_path / "v.db")})
    assert r.returncode == 2 and "cve.id" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


class _Api:
    """A small NVD CVE API on 127.0.0.1: pages of 3, the answer dated now."""

    def __init__(self) -> None:
        self.queries: list[dict[str, str]] = []
        self.faults: list[int] = []  # statuses answered (one per request) before real pages
        vulns = _doc()["vulnerabilities"]

        api = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query))
                api.queries.append(q)
                if api.faults:
                    self.send_error(api.faults.pop(0), "injected fault")
                    return
                start = int(q.get("startIndex", "0"))
                page = vulns[start : start + 3]
                now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000")
                body = json.dumps(
                    {
                        "resultsPerPage": len(page),
                        "startIndex": start,
                        "totalResults": len(vulns),
                        "format": "NVD_CVE",
                        "version": "2.0",
                        "timestamp": now,
                        "vulnerabilities": page,
                    }
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/rest/json/cves/2.0"


@pytest.fixture
def api() -> Iterator[_Api]:
    a = _Api()
    with serving(a.server):
        yield a


def test_db_update_pages_then_asks_for_changes_only(api: _Api, tmp_path: Path) -> None:
    env = {"ASSAY_VULN_DB": str(tmp_path / "v.db"), "ASSAY_FEED_NVD": api.url}
    r = run_script("db", "update", "--only", "nvd", env=env)
    assert r.returncode == 0, r.stderr
    assert [q["startIndex"] for q in api.queries] == ["0", "3", "6"]
    assert all(q["resultsPerPage"] == "2000" and "lastModStartDate" not in q for q in api.queries)
    with AdvisoryDB(tmp_path / "v.db") as db:
        assert db.conn.execute("SELECT count(DISTINCT cve) FROM nvd").fetchone()[0] == 6
    api.queries.clear()
    r = run_script("db", "update", "--only", "nvd", env=env)
    assert r.returncode == 0, r.stderr
    first = api.queries[0]
    start = dt.datetime.fromisoformat(first["lastModStartDate"])
    end = dt.datetime.fromisoformat(first["lastModEndDate"])
    assert dt.timedelta(0) < end - start < dt.timedelta(days=1)
    doc = json.loads(run_script("db", "status", "-o", "json", env=env).stdout)
    (nvd,) = doc["sources"]
    assert nvd["age_days"] < 0.1 and nvd["origin"] == api.url


def test_db_update_retries_when_nvd_sheds_load(api: _Api, tmp_path: Path) -> None:
    env = {"ASSAY_VULN_DB": str(tmp_path / "v.db"), "ASSAY_FEED_NVD": api.url}
    api.faults = [503]
    r = run_script("db", "update", "--only", "nvd", env=env)
    assert r.returncode == 0, r.stderr
    assert "HTTP 503; retrying" in r.stderr
    assert [q["startIndex"] for q in api.queries] == ["0", "0", "3", "6"]
    api.faults = [404]  # not load shedding: an error at once, previous data kept
    r = run_script("db", "update", "--only", "nvd", env=env)
    assert r.returncode == 1 and "HTTP 404" in r.stderr
    with AdvisoryDB(tmp_path / "v.db") as db:
        assert db.conn.execute("SELECT count(DISTINCT cve) FROM nvd").fetchone()[0] == 6
