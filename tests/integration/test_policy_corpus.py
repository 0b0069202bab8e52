"""policy-controller's own example and test policies (tests/assets/interop/policy-controller).

INDEX.md there names each file's upstream source and documented outcome. Every file is listed
in CORPUS below with what is reproduced here:

* ``reproduce`` — the documented admission outcome, on a real registry, with images signed by
  assay. Where upstream injected its e2e key (``yq``), ours is injected the same way
  (``key=ours``); keyless signing needs Fulcio/Rekor, which are not reachable offline, so for
  keyless authorities only the unsigned outcomes are reproduced.
* ``unsupported`` — parsed, and ``assay policy lint`` names why assay cannot evaluate it.
* ``invalid`` — rejected at load with the documented field.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from assay.errors import UsageError
from assay.oci.registry import RegistryClient
from assay.policy import Engine, MatchContext, load_policies
from assay.policy.lint import lint_policies
from fixtures.assets import INTEROP
from integration.policy_helpers import attest, new_key, push_image, sign

PC = INTEROP / "policy-controller"

# file -> (what is checked, expected; see the docstring)
CORPUS: dict[str, tuple[str, str]] = {
    "01-keyless-regexp-identities.yaml": ("reproduce", "unsigned blocked: no signatures found"),
    "02-static-fail.yaml": ("reproduce", "blocked: disallowed by static policy, even with 03"),
    "03-static-pass.yaml": ("reproduce", "admitted"),
    "04-key-inline-data-ctlog.yaml": (
        "reproduce",
        "key=ours: unsigned blocked; signed admitted; other key blocked: no matching "
        "signatures; source.oci: signature elsewhere admitted only with source",
    ),
    "05-key-secretref.yaml": ("unsupported", "key.secretRef"),
    "06-key-or-keyless.yaml": ("reproduce", "key=ours: key-signed admitted, unsigned blocked"),
    "07-keyless-identities-mismatch.yaml": (
        "reproduce",
        "unsigned blocked; identity mismatch message in tests/unit/test_policy_keyless.py",
    ),
    "08-keyless-mode-warn.yaml": (
        "reproduce",
        "unsigned admitted with warning 'failed policy: image-policy-keyless-warn'; "
        "no-match deny/warn/allow",
    ),
    "09-keyless-attestation-cue.yaml": ("unsupported", "attestations[0].policy.type"),
    "10-keyless-attestation-rego.yaml": (
        "reproduce",
        "no attestation: no matching attestations; keyless→key(ours): wrong data not "
        "compliant, correct attestation added admitted",
    ),
    "11-two-sigs-two-atts-cip-level-cue.yaml": ("unsupported", "spec.policy.type"),
    "12-match-pods-label-selector.yaml": (
        "reproduce",
        "key=ours, no-match allow: match=match unsigned blocked; test=staging admitted; "
        "signed admitted",
    ),
    "13-source-oci.yaml": (
        "reproduce",
        "source.oci→our registry: no signatures there: no signatures found",
    ),
    "14-source-tagprefix-attestation.yaml": ("unsupported", "attestations[0].policy.type"),
    "15-key-hashalgorithm-sha512.yaml": ("unsupported", "key.hashAlgorithm"),
    "16-key-attestation-no-rekor.yaml": ("unsupported", "attestations[0].policy.type"),
    "17-key-rfc3161-tsa.yaml": ("unsupported", "rfc3161timestamp"),
    "18-keyless-trustrootref-attestation.yaml": ("unsupported", "attestations[0].policy.type"),
    "19-cip-level-fetchconfigfile-cue.yaml": ("unsupported", "spec.policy.type"),
    "20-cip-level-remote-url-sha256.yaml": ("unsupported", "spec.policy.type"),
    "21-kms-aws.yaml": ("unsupported", "key.kms"),
    "22-keyless-exact-issuer-subject-spdx-attestation.yaml": (
        "unsupported",
        "attestations[0].policy.type",
    ),
    "23-source-signaturepullsecrets-ca-cert.yaml": ("unsupported", "keyless.ca-cert"),
    "24-match-deployments-mixed-authorities-hashivault.yaml": ("unsupported", "key.kms"),
    "25-signatureformat-bundle-github-helm.yaml": ("invalid", "not valid YAML"),
    "26-attestation-rego-response-object-vuln.yaml": (
        "reproduce",
        "key=ours: HIGH/CRITICAL findings blocked with the policy's message; clean admitted",
    ),
    "27-cip-level-rego-fetchconfig-warn-max-age.yaml": ("unsupported", "spec.policy.data"),
    "28-cip-level-rego-warning-only.yaml": (
        "reproduce",
        "glob→our registry: admitted with the policy's deprecation warning",
    ),
    "29-invalid-glob.yaml": ("invalid", "spec.images[0].glob: invalid value: ["),
    "30-oci11-referrers-slsa-provenance.yaml": ("unsupported", "attestations[0].policy.type"),
}


def test_corpus_table_covers_every_file() -> None:
    assert sorted(p.name for p in PC.glob("*.yaml")) == sorted(CORPUS)


@pytest.mark.parametrize(
    "name", sorted(n for n, (kind, _) in CORPUS.items() if kind == "unsupported")
)
def test_unsupported_are_named_by_lint(name: str) -> None:
    policies = load_policies([PC / name]).policies
    findings = [f for f in lint_policies(policies) if f.level == "unsupported"]
    assert any(f.field.endswith(CORPUS[name][1]) for f in findings), findings
    assert all(f.message for f in findings)


@pytest.mark.parametrize("name", sorted(n for n, (kind, _) in CORPUS.items() if kind == "invalid"))
def test_invalid_are_rejected(name: str) -> None:
    with pytest.raises(UsageError, match=_re(CORPUS[name][1])):
        load_policies([PC / name])


def _re(text: str) -> str:
    import re

    return re.escape(text)


# ---------------------------------------------------------------- reproduced outcomes
@pytest.fixture()
def demo(registry: Any, client: RegistryClient) -> tuple[str, str]:
    """A fresh unsigned image whose name matches ``**demo**``: (repo, reference)."""
    repo = f"corpus/{uuid.uuid4().hex[:8]}/demo"
    push_image(client, repo, "v1", label=repo)
    return repo, f"{registry.host}/{repo}:v1"


@pytest.fixture(scope="module")
def ours() -> tuple[Any, str]:
    return new_key()


def _doc(name: str) -> dict[str, Any]:
    docs = [d for d in yaml.safe_load_all((PC / name).read_text()) if d]
    assert len(docs) == 1
    return dict(docs[0])


def _engine(tmp: Path, docs: list[dict[str, Any]], **kw: Any) -> Engine:
    paths = []
    for i, doc in enumerate(docs):
        path = tmp / f"{i}-{doc['metadata']['name']}.yaml"
        path.write_text(yaml.safe_dump(doc))
        paths.append(path)
    return Engine(load_policies(paths), **kw)


def _inject_key(doc: dict[str, Any], pub: str) -> dict[str, Any]:
    for auth in doc["spec"]["authorities"]:
        if "key" in auth:
            auth["key"] = {"data": pub}
    return doc


def test_01_07_keyless_unsigned_blocked(tmp_path: Path, demo: tuple[str, str]) -> None:
    for name in ("01-keyless-regexp-identities.yaml", "07-keyless-identities-mismatch.yaml"):
        doc = _doc(name)
        with _engine(tmp_path, [doc]) as e:
            d = e.decide([demo[1]])
        assert not d.allowed
        assert (
            d.images[0].message == f"failed policy: {doc['metadata']['name']}: no signatures found"
        )


def test_02_03_static(tmp_path: Path, demo: tuple[str, str]) -> None:
    fail, ok = _doc("02-static-fail.yaml"), _doc("03-static-pass.yaml")
    with _engine(tmp_path, [fail, ok]) as e:
        d = e.decide([demo[1]])
    assert not d.allowed
    assert (
        "failed policy: image-policy-static-fail: disallowed by static policy"
        in d.images[0].message
    )
    with _engine(tmp_path, [ok]) as e:
        assert e.decide([demo[1]]).allowed


def test_04_key_and_source(
    registry: Any, client: RegistryClient, tmp_path: Path, demo: tuple[str, str], ours: Any
) -> None:
    key, pub = ours
    other, _ = new_key()
    ref = demo[1]
    doc = _inject_key(_doc("04-key-inline-data-ctlog.yaml"), pub)
    with _engine(tmp_path, [doc]) as e:
        assert e.decide([ref]).images[0].message.endswith("no signatures found")
        sign(client, ref, other)
        d = e.decide([ref])
        assert "no matching signatures" in d.images[0].message
        sign(client, ref, key)
        assert e.decide([ref]).allowed
    # signatures kept in another repository: only found through source.oci
    elsewhere = f"corpus/{uuid.uuid4().hex[:8]}/demo-sigs"
    repo2 = f"corpus/{uuid.uuid4().hex[:8]}/demo"
    digest = push_image(client, repo2, "v1", label="src")
    push_image(client, elsewhere, "v1", label="src")  # same bytes → same digest
    sign(client, f"{registry.host}/{elsewhere}@{digest}", key)
    with _engine(tmp_path, [doc]) as e:
        assert not e.decide([f"{registry.host}/{repo2}:v1"]).allowed
    doc["spec"]["authorities"][0]["source"] = [{"oci": f"{registry.host}/{elsewhere}"}]
    with _engine(tmp_path, [doc]) as e:
        assert e.decide([f"{registry.host}/{repo2}:v1"]).allowed


def test_06_key_or_keyless(
    client: RegistryClient, tmp_path: Path, demo: tuple[str, str], ours: Any
) -> None:
    key, pub = ours
    doc = _inject_key(_doc("06-key-or-keyless.yaml"), pub)
    with _engine(tmp_path, [doc]) as e:
        assert not e.decide([demo[1]]).allowed
        sign(client, demo[1], key)
        d = e.decide([demo[1]])
    assert d.allowed
    assert [a.status for a in d.images[0].policies[0].authorities] == ["pass", "fail"]


def test_08_warn_and_no_match(
    registry: Any, client: RegistryClient, tmp_path: Path, demo: tuple[str, str]
) -> None:
    doc = _doc("08-keyless-mode-warn.yaml")
    with _engine(tmp_path, [doc]) as e:
        d = e.decide([demo[1]])
    assert d.allowed
    assert d.warnings[0].startswith("failed policy: image-policy-keyless-warn")
    other_repo = f"corpus/{uuid.uuid4().hex[:8]}/other"
    push_image(client, other_repo, "v1", label="o")
    other = f"{registry.host}/{other_repo}:v1"
    expected = {"deny": False, "warn": True, "allow": True}
    for setting, allowed in expected.items():
        with _engine(tmp_path, [doc], no_match=setting) as e:
            d = e.decide([other])
        assert d.allowed is allowed
        assert bool(d.warnings) is (setting == "warn")


def test_10_rego_attestations(
    client: RegistryClient, tmp_path: Path, demo: tuple[str, str], ours: Any
) -> None:
    key, pub = ours
    doc = _doc("10-keyless-attestation-rego.yaml")
    with _engine(tmp_path, [doc]) as e:
        d = e.decide([demo[1]])
    assert d.images[0].message.endswith("no matching attestations")
    auth = doc["spec"]["authorities"][0]
    del auth["keyless"]
    auth["key"] = {"data": pub}
    with _engine(tmp_path, [doc]) as e:
        attest(client, demo[1], key, "custom", b"wrong e2e data")
        d = e.decide([demo[1]])
        assert not d.allowed
        assert (
            "failed evaluating rego policy for type custom-match-predicate: policy is not "
            "compliant for query" in d.images[0].message
        )
        attest(client, demo[1], key, "custom", b"foobar e2e test")
        assert e.decide([demo[1]]).allowed


def test_12_match_labels(
    client: RegistryClient, tmp_path: Path, demo: tuple[str, str], ours: Any
) -> None:
    key, pub = ours
    doc = _inject_key(_doc("12-match-pods-label-selector.yaml"), pub)
    with _engine(tmp_path, [doc], no_match="allow") as e:
        assert not e.decide([demo[1]], context=MatchContext(labels={"match": "match"})).allowed
        assert e.decide([demo[1]], context=MatchContext(labels={"test": "staging"})).allowed
        sign(client, demo[1], key)
        assert e.decide([demo[1]], context=MatchContext(labels={"match": "match"})).allowed


def test_13_source_without_signatures(
    registry: Any, client: RegistryClient, tmp_path: Path, demo: tuple[str, str]
) -> None:
    doc = _doc("13-source-oci.yaml")
    empty = f"corpus/{uuid.uuid4().hex[:8]}/nosigs"
    doc["spec"]["authorities"][0]["source"] = [{"oci": f"{registry.host}/{empty}"}]
    with _engine(tmp_path, [doc]) as e:
        d = e.decide([demo[1]])
    assert d.images[0].message.endswith("no signatures found")


def _trivy(high: int, critical: int) -> dict[str, Any]:
    vulns = [{"VulnerabilityID": f"CVE-2024-{i}", "Severity": "HIGH"} for i in range(high)]
    vulns += [{"VulnerabilityID": f"CVE-2023-{i}", "Severity": "CRITICAL"} for i in range(critical)]
    return {
        "invocation": {"uri": "", "event_id": "", "builder.id": ""},
        "scanner": {
            "uri": "pkg:github/aquasecurity/trivy",
            "version": "0.50.0",
            "result": {"Results": [{"Vulnerabilities": vulns}]},
        },
        "metadata": {
            "scanStartedOn": "2026-11-01T00:00:00Z",
            "scanFinishedOn": "2026-11-01T00:00:00Z",
        },
    }


def test_26_rego_response_object(
    registry: Any, client: RegistryClient, tmp_path: Path, ours: Any
) -> None:
    key, pub = ours
    doc = _inject_key(_doc("26-attestation-rego-response-object-vuln.yaml"), pub)
    bad_repo, good_repo = (f"corpus/{uuid.uuid4().hex[:8]}/{n}" for n in ("harbor", "trivy"))
    push_image(client, bad_repo, "latest", label="bad")
    push_image(client, good_repo, "latest", label="good")
    bad, good = f"{registry.host}/{bad_repo}:latest", f"{registry.host}/{good_repo}:latest"
    attest(client, bad, key, "vuln", _trivy(9, 1))
    attest(client, good, key, "vuln", _trivy(0, 0))
    with _engine(tmp_path, [doc]) as e:
        d = e.decide([bad, good])
    by_ref = {i.reference: i for i in d.images}
    assert "Found HIGH '9' and CRITICAL '1' vulnerabilities" in by_ref[bad].message
    assert by_ref[good].result == "allow"


def test_28_warning_only(tmp_path: Path, demo: tuple[str, str]) -> None:
    doc = _doc("28-cip-level-rego-warning-only.yaml")
    doc["spec"]["images"] = [{"glob": "**"}]
    with _engine(tmp_path, [doc]) as e:
        d = e.decide([demo[1]])
    assert d.allowed
    assert d.warnings == (
        "This repo has been deprecated: "
        "https://kubernetes.io/blog/2023/02/06/k8s-gcr-io-freeze-announcement/",
    )
