"""Compliance catalog, evaluation and renderings from hand-made verified evidence.

The OSCAL documents are validated against the official NIST 1.1.3 JSON schemas (their
``\\p{..}`` patterns need the ``regex`` engine) and parsed with compliance-trestle's models;
the HTML parses with html5lib in strict mode.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from assay.compliance import (
    EvidenceRef,
    ImageEvidence,
    ReportFinding,
    ReportFormat,
    deadline,
    evaluate,
    load_catalog,
    render,
)
from assay.compliance.catalog import parse_catalog
from assay.compliance.oscal import FEDRAMP_NS, assessment_results, poam
from assay.errors import InputError
from assay.policy import CheckResult, Decision, ImageDecision, PolicyResult
from fixtures.assets import INTEROP

DIGEST = "sha256:" + "ab" * 32
TODAY = dt.date(2025, 3, 1)
SCHEMAS = INTEROP / "oscal-1.1.3" / "nist-1.1.3-schemas"

KEV = ReportFinding(
    vuln="CVE-2023-0464",
    package="libssl3",
    version="3.0.8-1",
    severity="high",
    fixed_in="3.0.9-1",
    kev=True,
    kev_due="2024-01-23",
    first_seen="2025-02-20",
    due_date=deadline("high", "2025-02-20", "2024-01-23"),
)
LOW = ReportFinding(
    vuln="CVE-2024-1111",
    package="zlib1g",
    version="1.2.13",
    severity="low",
    first_seen="2025-02-01",
    due_date=deadline("low", "2025-02-01"),
)


def _evidence(**kw: Any) -> ImageEvidence:
    base: dict[str, Any] = {
        "reference": "127.0.0.1:5000/acme/app:1.4",
        "digest": DIGEST,
        "items": (
            EvidenceRef("signature", "sha256:" + "01" * 32, detail="cosign signature"),
            EvidenceRef("sbom", "sha256:" + "02" * 32, date="2025-02-20T00:00:00Z"),
            EvidenceRef("provenance", "sha256:" + "03" * 32, tool="urn:assay:builder:ci:v1"),
            EvidenceRef("scan", "sha256:" + "04" * 32, date="2025-02-25T10:00:00Z"),
            EvidenceRef("config", "sha256:" + "05" * 32),
        ),
        "config": {"config": {"User": "65532"}},
        "scan_date": "2025-02-25T10:00:00Z",
        "findings": (KEV, LOW),
    }
    base.update(kw)
    return ImageEvidence(**base)


def _result(report: Any, framework: str, control: str) -> Any:
    for fw in report.frameworks:
        for c in fw.controls:
            if (fw.id, c.control) == (framework, control):
                return c
    raise AssertionError(f"{framework} {control} missing")


# -- catalog -------------------------------------------------------------------------------
def test_catalog_has_every_framework_with_published_ids() -> None:
    cat = load_catalog()
    assert cat.version == 1
    ids = {fw.id: {c.id for c in fw.controls} for fw in cat.frameworks}
    assert {"6.3.2", "6.3.3", "11.3.1"} <= ids["pci-dss-4.0"]
    assert {"4.1.1", "4.1.2", "4.1.3", "4.1.4", "4.1.5"} == ids["nist-sp-800-190"]
    assert {"PS.2", "PS.3", "PW.4", "RV.1"} == ids["nist-ssdf"]
    assert {"Build-L1", "Build-L2", "Build-L3"} == ids["slsa-1.0"]
    assert {"4.1", "4.2", "4.3", "4.5", "4.8"} <= ids["cis-docker"]
    assert {"Part I (2)(a)", "Part II (1)"} == ids["eu-cra"]
    assert "kev-due-date" in ids["fedramp-containers"]
    assert "data-fields" in ids["ntia-sbom"]


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ([], "must be a mapping"),
        ({"version": 2, "frameworks": []}, "version"),
        ({"version": True, "frameworks": []}, "version"),
        ({"version": 1, "frameworks": [], "x": 1}, "unknown field"),
        (
            {
                "version": 1,
                "frameworks": [
                    {
                        "id": "a",
                        "title": "t",
                        "source": "s",
                        "controls": [{"id": "1", "title": "t", "evidence": ["telepathy"]}],
                    }
                ],
            },
            "unknown evidence kind",
        ),
        (
            {
                "version": 1,
                "frameworks": [
                    {
                        "id": "a",
                        "title": "t",
                        "source": "s",
                        "controls": [{"id": "1", "title": "t", "rule": {"name": "scan-age"}}],
                    }
                ],
            },
            "needs days",
        ),
        (
            {
                "version": 1,
                "frameworks": [
                    {
                        "id": "a",
                        "title": "t",
                        "source": "s",
                        "controls": [
                            {"id": "1", "title": "t", "rule": {"name": "scan-age", "days": 10**9}}
                        ],
                    }
                ],
            },
            "days",
        ),
        (
            {
                "version": 1,
                "frameworks": [
                    {
                        "id": "a",
                        "title": "t",
                        "source": "s",
                        "controls": [{"id": "1", "title": "t", "rule": {"name": "exec"}}],
                    }
                ],
            },
            "unknown rule",
        ),
        (
            {
                "version": 1,
                "frameworks": [{"id": "../x", "title": "t", "source": "s", "controls": []}],
            },
            "short identifier",
        ),
        (
            {
                "version": 1,
                "frameworks": [
                    {
                        "id": "a",
                        "title": "t",
                        "source": "s",
                        "controls": [{"id": "1", "title": "t"}],
                    }
                ],
            },
            "needs evidence",
        ),
        (
            {
                "version": 1,
                "frameworks": [
                    {
                        "id": "a",
                        "title": "x" * 5000,
                        "source": "s",
                        "controls": [{"id": "1", "title": "t", "evidence": ["sbom"]}],
                    }
                ],
            },
            "longer than",
        ),
    ],
)
def test_catalog_refuses_bad_documents(doc: Any, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_catalog(doc)


def test_catalog_refuses_oversized_and_invalid_yaml() -> None:
    from assay.compliance.catalog import load_catalog as load

    with pytest.raises(InputError, match="larger than"):
        load(b"#" * (2 << 20))
    with pytest.raises(InputError, match="not valid YAML"):
        load(b"version: [1\n")


# -- evaluation ------------------------------------------------------------------------------
def test_deadline_is_severity_window_or_kev_due_whichever_first() -> None:
    assert deadline("high", "2025-01-01") == "2025-01-31"
    assert deadline("medium", "2025-01-01") == "2025-04-01"
    assert deadline("low", "2025-01-01") == "2025-06-30"
    assert deadline("high", "2025-01-01", "2025-01-10") == "2025-01-10"
    assert deadline("negligible", "2025-01-01") == ""


def test_evaluation_states_results_with_reasons_and_evidence() -> None:
    report = evaluate(load_catalog(), _evidence(), TODAY)
    kev = _result(report, "fedramp-containers", "kev-due-date")
    assert kev.result == "not-satisfied"
    assert "CVE-2023-0464" in kev.reason and kev.findings == (KEV,)
    assert _result(report, "eu-cra", "Part I (2)(a)").result == "not-satisfied"
    low = _result(report, "fedramp-containers", "remediate-low")
    assert low.result == "satisfied" and "none past the deadline" in low.reason
    scan_age = _result(report, "fedramp-containers", "scan-before-deploy")
    assert scan_age.result == "satisfied" and "4 days ago" in scan_age.reason
    assert _result(report, "cis-docker", "4.1").result == "satisfied"
    assert _result(report, "nist-sp-800-190", "4.1.3").result == "not-assessed"
    # checks no policy ran are not assessed, never satisfied
    assert _result(report, "cis-docker", "4.3").result == "not-assessed"
    assert _result(report, "cis-docker", "4.8").result == "not-assessed"
    sig = _result(report, "cis-docker", "4.5")
    assert sig.result == "satisfied" and sig.evidence[0].kind == "signature"
    assert {fw.id: fw.result for fw in report.frameworks}["eu-cra"] == "not-satisfied"


def test_missing_evidence_fails_closed() -> None:
    ev = _evidence(items=(), config=None, findings=(), scan_date="")
    report = evaluate(load_catalog(), ev, TODAY)
    assert _result(report, "cis-docker", "4.5").result == "not-satisfied"
    assert _result(report, "nist-ssdf", "PS.3").reason == (
        "no verified SBOM attestation and no SLSA provenance attestation"
    )
    assert _result(report, "fedramp-containers", "kev-due-date").result == "not-satisfied"
    assert _result(report, "cis-docker", "4.1").result == "not-satisfied"


def test_old_scan_and_root_user_are_not_satisfied() -> None:
    ev = _evidence(scan_date="2024-12-01T00:00:00Z", config={"config": {"User": "0:0"}})
    report = evaluate(load_catalog(), ev, TODAY)
    age = _result(report, "fedramp-containers", "scan-before-deploy")
    assert age.result == "not-satisfied" and "90 days old (limit 30)" in age.reason
    assert _result(report, "pci-dss-4.0", "11.3.1").result == "satisfied"
    assert "runs as 0:0" in _result(report, "cis-docker", "4.1").reason


def _decision(checks: tuple[CheckResult, ...]) -> Decision:
    policy = PolicyResult("p", "ImagePolicy", "enforce", "fail", "x", checks=checks)
    image = ImageDecision("ref", DIGEST, "deny", "fail", "failed policy: p", policies=(policy,))
    return Decision(images=(image,), allowed=False)


def test_policy_checks_decide_controls() -> None:
    checks = (
        CheckResult("noShell", "check", "fail", "image contains bash", ("sha256:" + "0a" * 32,)),
        CheckResult("noPackageManager", "check", "pass", "none"),
        CheckResult("setuid", "check", "skipped", "no file list in the SBOM"),
        CheckResult("runAsNonRoot", "check", "pass", "User 65532"),
    )
    report = evaluate(
        load_catalog(),
        _evidence(decision=_decision(checks), policy_digest="sha256:" + "0f" * 32),
        TODAY,
    )
    c43 = _result(report, "cis-docker", "4.3")
    assert c43.result == "not-satisfied" and "image contains bash" in c43.reason
    assert any(e.digest == "sha256:" + "0a" * 32 for e in c43.evidence)
    assert _result(report, "cis-docker", "4.8").result == "not-applicable"
    assert _result(report, "cis-docker", "4.1").result == "satisfied"


# -- renderings -------------------------------------------------------------------------------
def _validator(name: str) -> Any:
    import jsonschema
    import regex

    def pattern(validator: Any, patrn: str, instance: Any, schema: Any) -> Any:
        if isinstance(instance, str) and not regex.search(patrn, instance):
            yield jsonschema.ValidationError(f"{instance!r} does not match {patrn!r}")

    schema = json.loads((SCHEMAS / name).read_text())
    cls = jsonschema.validators.extend(jsonschema.Draft7Validator, {"pattern": pattern})
    return cls(schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)


def test_validator_rejects_bad_tokens() -> None:
    """The schema check can fail: a target-id with a space is not an OSCAL token."""
    doc = assessment_results(evaluate(load_catalog(), _evidence(), TODAY))
    doc["assessment-results"]["results"][0]["findings"][0]["target"]["target-id"] = "a b"
    assert list(_validator("oscal_assessment-results_schema.json").iter_errors(doc))


def test_oscal_assessment_results_validate_and_parse() -> None:
    from trestle.oscal.assessment_results import AssessmentResults

    report = evaluate(load_catalog(), _evidence(), TODAY)
    doc = assessment_results(report)
    errors = list(_validator("oscal_assessment-results_schema.json").iter_errors(doc))
    assert not errors, errors[:3]
    model = AssessmentResults.parse_obj(doc["assessment-results"])
    result = model.results[0]
    assert len(result.findings) == sum(len(fw.controls) for fw in report.frameworks)
    assert {r.title for r in result.risks} == {
        "CVE-2023-0464 in libssl3",
        "CVE-2024-1111 in zlib1g",
    }
    assert doc == assessment_results(evaluate(load_catalog(), _evidence(), TODAY))


def test_poam_carries_fedramp_kev_properties_and_deadline() -> None:
    from trestle.oscal.poam import PlanOfActionAndMilestones

    doc = poam(evaluate(load_catalog(), _evidence(), TODAY))
    errors = list(_validator("oscal_poam_schema.json").iter_errors(doc))
    assert not errors, errors[:3]
    model = PlanOfActionAndMilestones.parse_obj(doc["plan-of-action-and-milestones"])
    kev_risk = next(r for r in model.risks if r.title.startswith("CVE-2023-0464"))
    props = {(p.name, str(p.ns), p.value) for p in kev_risk.props}
    assert ("kev-catalog", FEDRAMP_NS, "yes") in props
    assert ("kev-due-date", FEDRAMP_NS, "2024-01-23") in props
    assert kev_risk.deadline.date() == dt.date(2024, 1, 23)
    low_risk = next(r for r in model.risks if r.title.startswith("CVE-2024-1111"))
    assert not any(p.name.startswith("kev") for p in low_risk.props)
    assert low_risk.deadline.date() == dt.date(2025, 7, 31)
    assert any(i.title == "Remediate CVE-2023-0464 in libssl3" for i in model.poam_items)


def test_poam_with_nothing_to_plan_is_an_error() -> None:
    cat = parse_catalog(
        {
            "version": 1,
            "frameworks": [
                {
                    "id": "a",
                    "title": "t",
                    "source": "s",
                    "controls": [{"id": "1", "title": "t", "evidence": ["sbom"]}],
                }
            ],
        }
    )
    with pytest.raises(InputError, match="nothing to put in a POA&M"):
        poam(evaluate(cat, _evidence(findings=()), TODAY))


def test_json_is_deterministic() -> None:
    a = render(evaluate(load_catalog(), _evidence(), TODAY), ReportFormat.JSON)
    b = render(evaluate(load_catalog(), _evidence(), TODAY), ReportFormat.JSON)
    assert a == b
    doc = json.loads(a)
    assert doc["summary"]["fedramp-containers"] == "not-satisfied"
    assert doc["image"]["digest"] == DIGEST


def test_html_parses_strictly_is_self_contained_and_escapes() -> None:
    import html5lib

    hostile = "127.0.0.1:5000/acme/<script>alert(1)</script>:1"
    report = evaluate(load_catalog(), _evidence(reference=hostile), TODAY)
    page = render(report, ReportFormat.HTML)
    html5lib.HTMLParser(strict=True).parse(page)
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in page and "<link" not in page
    assert "<svg" in page and "@media print" in page
    for fw in report.frameworks:
        assert f'{fw.title}: <span class="{fw.result}">{fw.result}</span>' in page
