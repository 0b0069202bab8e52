"""``assay report`` end to end: an image on the real registry, signed and attested (SPDX SBOM,
SLSA provenance, a vulnerability scan with a KEV finding) by assay, reported through the
installed console script as HTML, JSON, OSCAL assessment-results and POA&M.

The HTML parses with html5lib in strict mode and renders in headless Chromium (screenshot and
DOM text); the OSCAL documents validate against the NIST 1.1.3 schemas and compliance-trestle.
"""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest

from assay.oci.registry import RegistryClient
from assay.vuln.formats.json_format import result_to_json
from assay.vuln.model import Finding, ScanResult, Severity, State, VulnId
from fixtures.chromium import render
from fixtures.cli import run_inprocess, run_script
from integration.policy_helpers import attest, new_key, push_image, sign
from unit.test_compliance import _validator

NOW = "2026-11-20"


def _finding(cve: str, sev: Severity, *, kev_due: str = "", first_seen: str = "") -> Finding:
    return Finding(
        id=VulnId(cve),
        aliases=(),
        package="libssl3",
        version="3.0.8-1",
        purl="pkg:deb/debian/libssl3@3.0.8-1",
        ecosystem="deb",
        state=State.AFFECTED,
        severity=sev,
        source="debian-tracker",
        fixed_in="3.0.9-1",
        kev=bool(kev_due),
        kev_due=kev_due,
        first_seen=first_seen,
    )


def _scan_predicate() -> dict[str, Any]:
    result = result_to_json(
        ScanResult(
            "app",
            "",
            "",
            "debian 12 (bookworm)",
            (
                _finding(
                    "CVE-2023-0464", Severity.HIGH, kev_due="2024-01-23", first_seen="2026-11-10"
                ),
                _finding("CVE-2026-0001", Severity.MEDIUM, first_seen="2026-11-01"),
            ),
            db_built={"debian-tracker": "2026-11-18T00:00:00Z", "kev": "2026-11-18T00:00:00Z"},
        )
    )
    return {
        "invocation": {"uri": "", "event_id": "", "builder.id": ""},
        "scanner": {"uri": "pkg:generic/assay", "version": "0.1.0", "result": result},
        "metadata": {
            "scanStartedOn": "2026-11-18T10:00:00Z",
            "scanFinishedOn": "2026-11-18T10:00:05Z",
        },
    }


SPDX = {
    "spdxVersion": "SPDX-2.3",
    "SPDXID": "SPDXRef-DOCUMENT",
    "name": "app",
    "creationInfo": {"created": "2026-11-01T00:00:00Z", "creators": ["Tool: assay-0.1.0"]},
    "packages": [{"name": "libssl3", "SPDXID": "SPDXRef-p1", "versionInfo": "3.0.8-1"}],
}
PROVENANCE = {
    "buildDefinition": {
        "buildType": "https://assay.dev/build/v1",
        "externalParameters": {},
        "resolvedDependencies": [],
    },
    "runDetails": {
        "builder": {"id": "urn:assay:builder:ci:v1"},
        "metadata": {"finishedOn": "2026-11-01T00:00:00Z"},
    },
}


@pytest.fixture(scope="module")
def image(registry: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("report")
    key, pub = new_key()
    (tmp / "cosign.pub").write_text(pub)
    repo = f"compliance/{uuid.uuid4().hex[:8]}/app"
    with RegistryClient(registry.host) as client:
        digest = push_image(client, repo, "1.4")
        ref = f"{registry.host}/{repo}:1.4"
        sign(client, ref, key)
        attest(client, ref, key, "spdxjson", SPDX)
        attest(client, ref, key, "slsaprovenance1", PROVENANCE)
        attest(client, ref, key, "vuln", _scan_predicate())
    policy = tmp / "policy.yaml"
    policy.write_text(
        "apiVersion: assay.dev/v1alpha1\nkind: ImagePolicy\nmetadata:\n  name: release\n"
        "spec:\n  images:\n  - glob: '**'\n  authorities:\n  - name: release-key\n    key:\n"
        "      data: |\n"
        + "".join(f"        {line}\n" for line in pub.strip().splitlines())
        + "  require:\n    runAsNonRoot: true\n    noShell: true\n"
        "    vulnerabilities:\n      noKEV: true\n"
    )
    return {"ref": ref, "digest": digest, "pub": tmp / "cosign.pub", "policy": policy, "tmp": tmp}


def _report(image: dict[str, Any], fmt: str, *extra: str) -> Path:
    out = image["tmp"] / f"report.{fmt}"
    ran = run_script(
        "report",
        image["ref"],
        "--key",
        str(image["pub"]),
        "-o",
        fmt,
        "--file",
        str(out),
        "--now",
        NOW,
        *extra,
        env={"PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")},
    )
    assert ran.returncode == 0, ran.stderr
    return out


def test_json_report_states_each_control_from_verified_evidence(image: dict[str, Any]) -> None:
    doc = json.loads(_report(image, "json", "--policy", str(image["policy"])).read_text())
    assert doc["image"]["digest"] == image["digest"]
    results = {
        (c["framework"], c["control"]): c for fw in doc["frameworks"] for c in fw["controls"]
    }
    assert results[("cis-docker", "4.5")]["result"] == "satisfied"
    assert results[("cis-docker", "4.1")]["result"] == "satisfied"  # User 65532
    kev = results[("fedramp-containers", "kev-due-date")]
    assert kev["result"] == "not-satisfied" and "CVE-2023-0464" in kev["reason"]
    nokev = results[("eu-cra", "Part I (2)(a)")]
    assert nokev["result"] == "not-satisfied" and "noKEV" in nokev["reason"]
    assert results[("slsa-1.0", "Build-L2")]["result"] == "satisfied"
    assert results[("fedramp-containers", "scan-before-deploy")]["result"] == "satisfied"
    kinds = {e["kind"] for e in doc["evidence"]}
    assert {"signature", "sbom", "provenance", "scan", "config", "decision"} <= kinds
    scan = next(e for e in doc["evidence"] if e["kind"] == "scan")
    assert scan["date"] == "2026-11-18T10:00:05Z" and scan["tool"] == "pkg:generic/assay 0.1.0"


def test_report_with_another_key_satisfies_nothing_signed(
    image: dict[str, Any], tmp_path: Path
) -> None:
    _, other = new_key()
    (tmp_path / "other.pub").write_text(other)
    ran = run_inprocess(
        "report",
        image["ref"],
        "--key",
        str(tmp_path / "other.pub"),
        "-o",
        "json",
        "--now",
        NOW,
        env={},
    )
    assert ran.returncode == 0, ran.stderr
    doc = json.loads(ran.stdout)
    results = {
        (c["framework"], c["control"]): c["result"]
        for fw in doc["frameworks"]
        for c in fw["controls"]
    }
    assert results[("cis-docker", "4.5")] == "not-satisfied"
    assert results[("ntia-sbom", "data-fields")] == "not-satisfied"
    assert "no valid signature" in ran.stderr


def test_oscal_and_poam_validate_and_carry_kev(image: dict[str, Any]) -> None:
    from trestle.oscal.assessment_results import AssessmentResults
    from trestle.oscal.poam import PlanOfActionAndMilestones

    ar = json.loads(_report(image, "oscal").read_text())
    assert not list(_validator("oscal_assessment-results_schema.json").iter_errors(ar))
    AssessmentResults.parse_obj(ar["assessment-results"])
    doc = json.loads(_report(image, "poam").read_text())
    assert not list(_validator("oscal_poam_schema.json").iter_errors(doc))
    model = PlanOfActionAndMilestones.parse_obj(doc["plan-of-action-and-milestones"])
    risk = next(r for r in model.risks if r.title == "CVE-2023-0464 in libssl3")
    props = {p.name: (str(p.ns), p.value) for p in risk.props}
    assert props["kev-catalog"] == ("https://fedramp.gov/ns/oscal", "yes")
    assert props["kev-due-date"] == ("https://fedramp.gov/ns/oscal", "2024-01-23")
    assert risk.deadline.date().isoformat() == "2024-01-23"
    medium = next(r for r in model.risks if r.title == "CVE-2026-0001 in libssl3")
    assert medium.deadline.date().isoformat() == "2027-01-30"  # first seen + 90 days
    # deterministic: same inputs, same bytes
    assert (
        _report(image, "poam").read_text() == json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    )


def test_html_report_parses_strictly_and_renders_in_chromium(image: dict[str, Any]) -> None:
    import html5lib

    page = _report(image, "html", "--policy", str(image["policy"]))
    html5lib.HTMLParser(strict=True).parse(page.read_bytes())
    shot = image["tmp"] / "report.png"
    dom = render(page, shot)
    shutil.copy(shot, image["tmp"].parent / "last-compliance-report.png")
    doc = json.loads(_report(image, "json", "--policy", str(image["policy"])).read_text())
    assert len(doc["frameworks"]) == 8
    for fw in doc["frameworks"]:
        assert f'{fw["title"]}: <span class="{fw["result"]}">{fw["result"]}</span>' in dom
    assert 'FedRAMP Vulnerability Scanning Requirements for Containers: <span class="not-sat' in dom
    assert "CVE-2023-0464" in dom and "2024-01-23" in dom and "<svg" in dom


def test_evidence_bundle_cli_round_trip_and_tamper(image: dict[str, Any], tmp_path: Path) -> None:
    import io
    import tarfile

    from assay.attest import keys

    pem, pub = keys.generate_keypair(b"")
    (tmp_path / "auditor.key").write_bytes(pem)
    (tmp_path / "auditor.pub").write_bytes(pub)
    store = f"sqlite:///{tmp_path / 'store.db'}"
    env = {"PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src"), "ASSAY_PASSWORD": ""}
    outs = []
    for name in ("a.tar", "b.tar"):
        ran = run_script(
            "evidence",
            "bundle",
            image["ref"],
            "--key",
            str(image["pub"]),
            "--policy",
            str(image["policy"]),
            "--sign-key",
            str(tmp_path / "auditor.key"),
            "--file",
            str(tmp_path / name),
            "--now",
            NOW,
            "--store",
            store,
            env=env,
        )
        assert ran.returncode == 0, ran.stderr
        outs.append((tmp_path / name).read_bytes())
    assert outs[0] == outs[1]  # deterministic bytes
    ran = run_script(
        "evidence",
        "verify",
        str(tmp_path / "a.tar"),
        "--key",
        str(tmp_path / "auditor.pub"),
        "-o",
        "json",
        env=env,
    )
    assert ran.returncode == 0, ran.stderr
    doc = json.loads(ran.stdout)
    paths = {f["path"] for f in doc["files"]}
    assert doc["image"]["digest"] == image["digest"]
    assert {"image/config.json", "scan/scan.json", "policy/decision.json"} <= paths
    assert {"report/report.json", "report/report.html"} <= paths
    assert any(p.startswith("signatures/") for p in paths)
    assert {p.split("/")[1].split("-")[0] for p in paths if p.startswith("attestations/")} == {
        "sbom",
        "provenance",
        "scan",
    }
    # the DSSE envelopes as fetched, and the signature with its annotations
    envelopes = {p.split("/")[1].split("-")[0] for p in paths if p.endswith(".dsse.json")}
    assert envelopes == {"sbom", "provenance", "scan"}
    cosign = [p for p in paths if p.endswith(".cosign.json")]
    assert cosign
    sig_doc = json.loads(_member(outs[0], cosign[0]))
    assert "dev.cosignproject.cosign/signature" in sig_doc["annotations"]
    envelope = json.loads(_member(outs[0], next(p for p in paths if p.endswith(".dsse.json"))))
    assert envelope["payloadType"] == "application/vnd.in-toto+json"
    scan = json.loads(_member(outs[0], "scan/scan.json"))
    assert scan["metadata"]["scanFinishedOn"] == "2026-11-18T10:00:05Z"
    assert scan["scanner"]["result"]["database"]["kev"] == "2026-11-18T00:00:00Z"
    from assay.store import open_store

    with open_store(store) as s, s.engine.connect() as conn:
        from sqlalchemy import select

        from assay.store import schema

        rows = list(conn.execute(select(schema.bundles.c.image_digest, schema.bundles.c.size)))
    assert rows == [(image["digest"], len(outs[0]))]
    # tampered: one byte of the HTML report changed, same size
    with tarfile.open(fileobj=io.BytesIO(outs[0])) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]
    members["report/report.html"] = members["report/report.html"].replace(b"<h1>", b"<h2>", 1)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    (tmp_path / "bad.tar").write_bytes(buf.getvalue())
    ran = run_script(
        "evidence",
        "verify",
        str(tmp_path / "bad.tar"),
        "--key",
        str(tmp_path / "auditor.pub"),
        env=env,
    )
    assert ran.returncode == 1
    assert "report/report.html does not match its manifest digest" in ran.stderr


def _member(data: bytes, name: str) -> bytes:
    import io
    import tarfile

    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        f = tar.extractfile(name)
        assert f is not None
        return f.read()


def test_report_scans_now_against_fixture_feeds_with_kev(registry: Any, tmp_path: Path) -> None:
    """--db: the image's dpkg database is catalogued and matched against the fixture tracker
    and KEV feeds (openssl CVE-2023-0464 is KEV-listed, due 2024-01-23)."""
    from fixtures.assets import ASSETS

    key, pub = new_key()
    (tmp_path / "cosign.pub").write_text(pub)
    files = {
        "etc/os-release": (b'ID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n', 0o644),
        "var/lib/dpkg/status": (
            b"Package: libssl3\nStatus: install ok installed\nArchitecture: amd64\n"
            b"Source: openssl\nVersion: 3.0.8-1\n\n",
            0o644,
        ),
    }
    repo = f"compliance/{uuid.uuid4().hex[:8]}/deb"
    with RegistryClient(registry.host) as client:
        push_image(client, repo, "1", files=files)
        ref = f"{registry.host}/{repo}:1"
        sign(client, ref, key)
    env = {"PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    db = tmp_path / "vuln.db"
    vuln = ASSETS / "vuln"
    ran = run_script(
        "db",
        "import",
        "--db",
        str(db),
        "--debian-tracker",
        str(vuln / "tracker.json"),
        "--kev",
        str(vuln / "kev.json"),
        env=env,
    )
    assert ran.returncode == 0, ran.stderr
    out = tmp_path / "poam.json"
    report_args = ["report", ref, "--key", str(tmp_path / "cosign.pub"), "--db", str(db)]
    report_args += ["--now", NOW]
    ran = run_script(*report_args, "-o", "poam", "--file", str(out), env=env)
    assert ran.returncode == 0, ran.stderr
    doc = json.loads(out.read_text())
    assert not list(_validator("oscal_poam_schema.json").iter_errors(doc))
    risks = doc["plan-of-action-and-milestones"]["risks"]
    kev = next(r for r in risks if r["title"] == "CVE-2023-0464 in libssl3")
    props = {
        p["name"]: p["value"] for p in kev["props"] if p.get("ns") == "https://fedramp.gov/ns/oscal"
    }
    assert props == {"kev-catalog": "yes", "kev-due-date": "2024-01-23"}
    assert kev["deadline"].startswith("2024-01-23")
    ran = run_script(*report_args, "-o", "json", env=env)
    report = json.loads(ran.stdout)
    scan = next(e for e in report["evidence"] if e["kind"] == "scan")
    assert scan["date"] == NOW and "advisory DB" in scan["detail"]
