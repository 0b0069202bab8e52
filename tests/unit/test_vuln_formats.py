"""Output formats: SARIF validates against the SARIF 2.1.0 schema, CycloneDX VEX against
CycloneDX 1.6, JSON round-trips, the table groups by severity."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import jsonschema
import pytest

from assay.sbom.model import Distro, Inventory, Package
from assay.vuln.db import AdvisoryDB
from assay.vuln.formats import FORMATTERS, OutputFormat
from assay.vuln.formats.json_format import result_from_json
from assay.vuln.model import ScanResult, Severity
from assay.vuln.scanner import ScanOptions, run_scan
from assay.vuln.vex import create_document
from fixtures.vulnfeeds import import_feeds

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "vuln"
DIGEST = "sha256:" + "ab" * 32


def _pkgs() -> tuple[Package, ...]:
    def deb(name: str, version: str, src: str) -> Package:
        return Package(
            name=name,
            version=version,
            ecosystem="deb",
            architecture="amd64",
            purl=f"pkg:deb/debian/{name}@{version}?arch=amd64&distro=debian-12",
            source_name=src,
            locations=(f"/var/lib/dpkg/status.d/{name}",),
        )

    return (
        deb("libssl3", "3.0.8-1", "openssl"),
        deb("libc6", "2.36-9+deb12u4", "glibc"),
        Package(name="lodash", version="4.17.20", ecosystem="npm", purl="pkg:npm/lodash@4.17.20"),
        Package(name="Jinja2", version="3.1.2", ecosystem="pypi", purl="pkg:pypi/jinja2@3.1.2"),
    )


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> ScanResult:
    d = AdvisoryDB(tmp_path_factory.mktemp("db") / "vuln.db")
    import_feeds(d)
    inv = Inventory(
        subject_name="localhost:5000/base/python",
        subject_digest=DIGEST,
        architecture="amd64",
        distro=Distro("debian", "12", "bookworm"),
        packages=_pkgs(),
    )
    vex = create_document(
        products=[f"pkg:oci/python@{DIGEST}"],
        vulns=["CVE-2021-23337"],
        status="not_affected",
        justification="vulnerable_code_not_present",
        author="t",
        timestamp="2025-01-01T00:00:00Z",
    )
    res = run_scan(d, inv, ScanOptions(vex=[vex], today=dt.date(2025, 1, 1), show_negligible=True))
    d.close()
    return res


def test_sarif_validates_against_the_2_1_0_schema(result: ScanResult) -> None:
    schema = json.loads((ASSETS / "sarif-schema-2.1.0.json").read_text())
    doc = json.loads(FORMATTERS[OutputFormat.SARIF].render(result))
    jsonschema.validate(doc, schema, cls=jsonschema.Draft4Validator)
    run = doc["runs"][0]
    rule_ids = [r["id"] for r in run["tool"]["driver"]["rules"]]
    assert rule_ids == sorted(set(f.id for f in result.findings))
    by_id = {r["ruleId"]: r for r in run["results"]}
    lo = by_id["CVE-2021-23337"]
    assert lo["level"] == "error" and lo["properties"]["security-severity"] == "7.2"
    assert lo["suppressions"][0]["kind"] == "external"  # suppressed but still present
    assert by_id["CVE-2024-22195"]["level"] == "warning"
    assert by_id["CVE-2010-4756"]["level"] == "note"
    assert by_id["CVE-2023-0464"]["locations"][0]["physicalLocation"]["artifactLocation"][
        "uri"
    ] == ("var/lib/dpkg/status.d/libssl3")
    rule = next(r for r in run["tool"]["driver"]["rules"] if r["id"] == "CVE-2024-22195")
    assert float(rule["properties"]["security-severity"]) == pytest.approx(5.4)


def test_sarif_schema_rejects_a_broken_document() -> None:
    schema = json.loads((ASSETS / "sarif-schema-2.1.0.json").read_text())
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(
            {"version": "2.1.0", "runs": [{"results": []}]}, schema, cls=jsonschema.Draft4Validator
        )


def test_cyclonedx_vex_validates_against_1_6(result: ScanResult) -> None:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    text = FORMATTERS[OutputFormat.CYCLONEDX].render(result)
    err = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    assert err is None, str(err)
    doc = json.loads(text)
    vulns = {v["id"]: v for v in doc["vulnerabilities"]}
    assert vulns["CVE-2021-23337"]["analysis"]["state"] == "not_affected"
    assert vulns["CVE-2021-23337"]["analysis"]["justification"] == "code_not_present"
    assert vulns["CVE-2024-2511"]["analysis"]["response"] == ["will_not_fix"]
    assert vulns["CVE-2023-0464"]["affects"] == [
        {"ref": "pkg:deb/debian/libssl3@3.0.8-1?arch=amd64&distro=debian-12"}
    ]
    # deterministic
    assert FORMATTERS[OutputFormat.CYCLONEDX].render(result) == text


def test_json_keeps_suppressed_findings_and_round_trips(result: ScanResult) -> None:
    text = FORMATTERS[OutputFormat.JSON].render(result)
    doc = json.loads(text)
    sup = [f for f in doc["findings"] if f["suppressed"]]
    assert [f["id"] for f in sup] == ["CVE-2021-23337"]
    assert sup[0]["suppressed_by"]["justification"] == "vulnerable_code_not_present"
    assert doc["summary"]["suppressed"] == 1
    ssl = next(f for f in doc["findings"] if f["id"] == "CVE-2023-0464")
    assert ssl["kev"] == {"listed": True, "due_date": "2024-01-23"}
    assert ssl["package"]["source"] == {"name": "openssl", "version": "3.0.8-1"}
    back = result_from_json(doc)
    assert [(f.id, f.purl, f.severity, f.suppressed) for f in back.findings] == [
        (f.id, f.purl, f.severity, f.suppressed) for f in result.findings
    ]


def test_table_groups_by_severity_with_fixed_in(result: ScanResult) -> None:
    text = FORMATTERS[OutputFormat.TABLE].render(result)
    order = [
        line.split(" (")[0]
        for line in text.splitlines()
        if line.split(" (")[0] in {s.value.upper() for s in Severity}
    ]
    assert order == ["HIGH", "MEDIUM", "LOW", "UNKNOWN", "NEGLIGIBLE"]
    assert "3.0.9-1" in text and "wont-fix (postponed; Minor issue)" in text
    assert "HIGH (0 open, 1 suppressed)" in text
