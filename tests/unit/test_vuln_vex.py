"""OpenVEX: create/validate, merge (latest per product+vuln), and applying by vuln AND product."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assay.errors import InputError, UsageError
from assay.vuln.model import Finding, ScanResult, Severity, State, VulnId
from assay.vuln.vex import (
    VexDocument,
    apply_vex,
    create_document,
    merge_documents,
    purl_matches,
    validate_openvex,
)

DIGEST = "sha256:" + "ab" * 32
OTHER = "sha256:" + "cd" * 32
IMAGE = f"pkg:oci/python@{DIGEST}"
SSL = "pkg:deb/debian/libssl3@3.0.8-1?arch=amd64&distro=debian-12"
LODASH = "pkg:npm/lodash@4.17.20"


def finding(vid: str, purl: str, aliases: tuple[str, ...] = ()) -> Finding:
    return Finding(
        id=VulnId(vid),
        aliases=aliases,
        package=purl.split("/")[-1].split("@")[0],
        version="1",
        purl=purl,
        ecosystem="deb",
        state=State.AFFECTED,
        severity=Severity.HIGH,
        source="debian-tracker",
    )


def result(*fs: Finding, digest: str = DIGEST) -> ScanResult:
    return ScanResult(
        subject_name="localhost:5000/base/python",
        subject_digest=digest,
        subject_purl=f"pkg:oci/python@{digest}",
        distro="debian 12",
        findings=fs,
    )


def doc(
    product: str,
    vuln: str,
    status: str = "not_affected",
    ts: str = "2025-01-01T00:00:00Z",
    subs: tuple[str, ...] = (),
    **kw: str,
) -> VexDocument:
    if status == "not_affected" and "justification" not in kw and "impact_statement" not in kw:
        kw["justification"] = "vulnerable_code_not_in_execute_path"
    if status == "affected" and "action_statement" not in kw:
        kw["action_statement"] = "upgrade"
    return create_document(
        products=[product],
        vulns=[vuln],
        status=status,
        author="t",
        subcomponents=subs,
        timestamp=ts,
        **kw,
    )


def test_create_enforces_spec_rules() -> None:
    with pytest.raises(UsageError, match="justification"):
        create_document(products=[IMAGE], vulns=["CVE-1"], status="not_affected", author="a")
    with pytest.raises(UsageError, match="action-statement"):
        create_document(products=[IMAGE], vulns=["CVE-1"], status="affected", author="a")
    with pytest.raises(UsageError, match="unknown justification"):
        create_document(
            products=[IMAGE],
            vulns=["CVE-1"],
            status="not_affected",
            author="a",
            justification="because",
        )
    with pytest.raises(UsageError, match="purl"):
        create_document(products=["python:latest"], vulns=["CVE-1"], status="fixed", author="a")
    d = doc(IMAGE, "CVE-2023-0464", impact_statement="TLS is not used")
    out = d.to_json()
    assert validate_openvex(out) == []
    for key in ("@context", "@id", "author", "timestamp", "version", "statements"):
        assert key in out
    assert out["@context"] == "https://openvex.dev/ns/v0.2.0"
    st = out["statements"][0]
    assert st["status"] == "not_affected" and st["impact_statement"] == "TLS is not used"
    assert st["vulnerability"]["name"] == "CVE-2023-0464"
    # a round trip keeps the meaning
    again = VexDocument.from_json(d.dumps())
    assert again.statements[0].impact_statement == "TLS is not used"


def test_invalid_documents_are_refused_with_the_reason() -> None:
    bad = {
        "@context": "https://openvex.dev/ns/v0.2.0",
        "@id": "x",
        "author": "a",
        "timestamp": "2025-01-01T00:00:00Z",
        "version": 1,
        "statements": [
            {
                "vulnerability": {"name": "CVE-1"},
                "status": "not_affected",
                "products": [{"@id": IMAGE}],
            }
        ],
    }
    with pytest.raises(InputError, match="justification or impact_statement"):
        VexDocument.from_json(json.dumps(bad))
    bad["statements"][0]["status"] = "affected"  # type: ignore[index]
    with pytest.raises(InputError, match="action_statement"):
        VexDocument.from_json(json.dumps(bad))
    del bad["author"]
    assert any("author" in p for p in validate_openvex(bad))


def test_product_matched_by_digest_and_by_purl() -> None:
    r = result(finding("CVE-2023-0464", SSL))
    by_purl = apply_vex(r, [doc(IMAGE, "CVE-2023-0464")])
    assert by_purl.findings[0].suppressed
    by_digest = apply_vex(r, [doc(DIGEST, "CVE-2023-0464")])
    assert by_digest.findings[0].suppressed
    # url-encoded digest in the purl (as packageurl writes it) matches as well
    enc = apply_vex(r, [doc(IMAGE.replace("sha256:", "sha256%3A"), "CVE-2023-0464")])
    assert enc.findings[0].suppressed


def test_statement_for_another_product_does_not_suppress() -> None:
    r = result(finding("CVE-2023-0464", SSL))
    assert (
        not apply_vex(r, [doc(f"pkg:oci/python@{OTHER}", "CVE-2023-0464")]).findings[0].suppressed
    )
    assert not apply_vex(r, [doc(OTHER, "CVE-2023-0464")]).findings[0].suppressed
    # right product, other vulnerability
    assert not apply_vex(r, [doc(IMAGE, "CVE-2024-0727")]).findings[0].suppressed


def test_subcomponents_scope_the_statement() -> None:
    r = result(finding("CVE-2023-0464", SSL), finding("CVE-2023-0464", LODASH))
    out = apply_vex(r, [doc(IMAGE, "CVE-2023-0464", subs=("pkg:deb/debian/libssl3",))])
    assert [f.suppressed for f in out.findings] == [True, False]
    # versioned subcomponent purl must match the version
    out2 = apply_vex(r, [doc(IMAGE, "CVE-2023-0464", subs=("pkg:deb/debian/libssl3@9.9",))])
    assert [f.suppressed for f in out2.findings] == [False, False]
    # qualifier subset: arch=amd64 matches, arch=arm64 does not
    ok = apply_vex(r, [doc(IMAGE, "CVE-2023-0464", subs=("pkg:deb/debian/libssl3?arch=amd64",))])
    no = apply_vex(r, [doc(IMAGE, "CVE-2023-0464", subs=("pkg:deb/debian/libssl3?arch=arm64",))])
    assert ok.findings[0].suppressed and not no.findings[0].suppressed


def test_product_can_be_the_package_itself_and_aliases_match() -> None:
    r = result(finding("CVE-2021-23337", LODASH, aliases=("GHSA-35jh-r3h4-6jhm",)))
    out = apply_vex(r, [doc("pkg:npm/lodash", "GHSA-35jh-r3h4-6jhm")])
    assert out.findings[0].suppressed
    assert out.findings[0].suppressed_by is not None
    assert out.findings[0].suppressed_by["status"] == "not_affected"


def test_affected_and_under_investigation_do_not_suppress_and_latest_wins() -> None:
    r = result(finding("CVE-2023-0464", SSL))
    old = doc(IMAGE, "CVE-2023-0464", ts="2025-01-01T00:00:00Z")
    new = doc(IMAGE, "CVE-2023-0464", status="affected", ts="2025-02-01T00:00:00Z")
    out = apply_vex(r, [old, new])
    assert not out.findings[0].suppressed and out.findings[0].vex_status == "affected"
    out2 = apply_vex(
        r, [new, doc(IMAGE, "CVE-2023-0464", status="fixed", ts="2025-03-01T00:00:00Z")]
    )
    assert out2.findings[0].suppressed and out2.findings[0].vex_status == "fixed"


def test_merge_keeps_latest_statement_per_product_and_vuln() -> None:
    a = doc(IMAGE, "CVE-1", ts="2025-01-01T00:00:00Z")
    b = doc(IMAGE, "CVE-1", status="affected", ts="2025-02-01T00:00:00Z")
    c = doc(IMAGE, "CVE-2", status="under_investigation", ts="2024-01-01T00:00:00Z")
    d = doc(f"pkg:oci/python@{OTHER}", "CVE-1", ts="2023-01-01T00:00:00Z")
    for order in ([a, b, c, d], [b, a, d, c]):
        merged = merge_documents(order, author="m", timestamp="2025-05-05T00:00:00Z")
        assert validate_openvex(merged.to_json()) == []
        got = {(s.products[0].id, s.vulnerability): s.status for s in merged.statements}
        assert got == {
            (IMAGE, "CVE-1"): "affected",
            (IMAGE, "CVE-2"): "under_investigation",
            (f"pkg:oci/python@{OTHER}", "CVE-1"): "not_affected",
        }


def test_purl_matching_rules() -> None:
    assert purl_matches("pkg:deb/debian/libssl3", SSL)
    assert purl_matches("pkg:deb/debian/libssl3@3.0.8-1", SSL)
    assert not purl_matches("pkg:deb/debian/libssl3@3.0.9-1", SSL)
    assert not purl_matches("pkg:deb/ubuntu/libssl3", SSL)
    assert not purl_matches("pkg:npm/libssl3", SSL)
    assert not purl_matches("not a purl", SSL)


def test_vex_file_that_is_not_json(tmp_path: Path) -> None:
    from assay.vuln.vex import load_vex

    p = tmp_path / "x.json"
    p.write_text("{nope")
    with pytest.raises(InputError, match="not valid JSON"):
        load_vex(p)


def test_interop_with_an_independent_openvex_implementation() -> None:
    """vexipy (a separate OpenVEX 0.2.0 library) reads what assay writes, and vice versa."""
    import vexipy

    mine = merge_documents(
        [
            doc(IMAGE, "CVE-2023-0464", subs=("pkg:deb/debian/libssl3",)),
            doc(DIGEST, "CVE-2024-0727", status="affected", ts="2025-02-01T00:00:00Z"),
        ],
        author="assay-tests",
        timestamp="2025-03-01T00:00:00Z",
    )
    theirs = vexipy.Document.model_validate_json(mine.dumps())
    assert [s.status.value for s in theirs.statements] == ["not_affected", "affected"]
    assert theirs.statements[0].products[0].subcomponents[0].id == "pkg:deb/debian/libssl3"
    other = vexipy.Document(
        id="https://example.invalid/vex/1",
        author="someone else",
        version=1,
        statements=[
            vexipy.Statement(
                vulnerability=vexipy.Vulnerability(name="CVE-2023-0464"),
                products=[vexipy.Product(id=IMAGE)],
                status=vexipy.StatusLabel.NOT_AFFECTED,
                justification=vexipy.StatusJustification.COMPONENT_NOT_PRESENT,
            )
        ],
    )
    back = VexDocument.from_json(other.to_json(by_alias=True, exclude_none=True))
    assert apply_vex(result(finding("CVE-2023-0464", SSL)), [back]).findings[0].suppressed
