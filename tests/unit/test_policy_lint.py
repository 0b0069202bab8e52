"""``assay policy lint`` findings: pitfalls and unsupported settings."""

from __future__ import annotations

from pathlib import Path

from assay.policy import load_policies
from assay.policy.lint import lint_policies

KEY = (
    "-----BEGIN PUBLIC KEY-----\n"
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEZxAfzrQG1EbWyCI8LiSB7YgSFXoI\n"
    "FNGTyQGKHFc6/H8TQumT9VLS78pUwtv3w7EfKoyFZoP32KrO7nzUy2q6Cw==\n"
    "-----END PUBLIC KEY-----\n"
)


def _lint(tmp: Path, text: str) -> dict[str, str]:
    path = tmp / "p.yaml"
    path.write_text(text)
    return {
        f.field: f"{f.level}: {f.message}" for f in lint_policies(load_policies([path]).policies)
    }


def _key_block(indent: int) -> str:
    return "".join(" " * indent + line + "\n" for line in KEY.splitlines())


def test_pitfalls(tmp_path: Path) -> None:
    text = (
        "apiVersion: assay.dev/v1alpha1\nkind: ImagePolicy\nmetadata: {name: kev}\n"
        "spec:\n  mode: warn\n  images:\n"
        "  - glob: ghcr.io/acme/app:1.2\n  - glob: ghcr.io/acme/**\n"
        "  authorities:\n  - key:\n      data: |\n"
        + _key_block(8)
        + "    attestations:\n    - name: sbom\n      predicateType: cyclonedx\n"
        "  require:\n    vulnerabilities: {noKEV: true}\n"
    )
    found = _lint(tmp_path, text)
    assert found["spec.images[0].glob"].startswith(
        "warning: 'ghcr.io/acme/app:1.2' ends in a literal tag"
    )
    assert "spec.images[1].glob" not in found
    assert found["spec.authorities[0].ctlog"].startswith("warning: key authority without ctlog")
    assert "deprecated" in found["spec.authorities[0].attestations[0].predicateType"]
    assert found["spec.mode"].startswith("warning: mode: warn on a policy that forbids KEV")


def test_live_scan_and_reproducible_pitfalls(tmp_path: Path) -> None:
    head = (
        "apiVersion: assay.dev/v1alpha1\nkind: ImagePolicy\nmetadata: {name: files}\n"
        "spec:\n  images:\n  - glob: ghcr.io/acme/**\n"
        "  authorities:\n  - key:\n      data: |\n" + _key_block(8) + "    ctlog: {url: x}\n"
    )
    found = _lint(
        tmp_path, head + "  require:\n    vulnerabilities: {source: live}\n    reproducible: true\n"
    )
    assert found["spec.require.vulnerabilities.maxDbAgeDays"].startswith(
        "warning: source: live scans with the local advisory DB; without maxDbAgeDays"
    )
    assert found["spec.require.reproducible"].startswith(
        "warning: with one authority the image's own signer can attest its reproducibility"
    )
    second = "  - name: rebuilder\n    key:\n      data: |\n" + _key_block(8)
    fixed = (
        head
        + second
        + "    ctlog: {url: x}\n"
        + (
            "  require:\n    vulnerabilities: {source: either, maxDbAgeDays: 2}\n"
            "    reproducible: {rebuilderId: urn:acme:rebuilder}\n"
        )
    )
    found = _lint(tmp_path, fixed)
    assert "spec.require.vulnerabilities.maxDbAgeDays" not in found
    assert "spec.require.reproducible" not in found


def test_clean_policy_has_no_findings(tmp_path: Path) -> None:
    text = (
        "apiVersion: policy.sigstore.dev/v1beta1\nkind: ClusterImagePolicy\nmetadata: {name: ok}\n"
        "spec:\n  images: [{glob: 'ghcr.io/acme/**'}]\n  authorities:\n  - key:\n      data: |\n"
        + _key_block(8)
        + "    ctlog: {url: 'https://rekor.sigstore.dev'}\n"
        "    attestations:\n    - name: prov\n      predicateType: https://slsa.dev/provenance/v1\n"
        "      policy:\n        type: rego\n        data: |\n          package sigstore\n"
        "          isCompliant := true\n"
    )
    assert _lint(tmp_path, text) == {}
