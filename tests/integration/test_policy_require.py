"""assay ImagePolicy ``require:`` end to end: real registry, evidence signed and attested by assay.

Each scenario's JSON decision is compared with tests/assets/policy/expected/NAME.json after
normalising what changes per run (registry port, repository names, digests). Set
ASSAY_UPDATE_EXPECTED=1 to rewrite the files after a deliberate change (and review the diff).
"""

from __future__ import annotations

import json
import os
import re
import uuid
from pathlib import Path
from typing import Any

import pytest

from assay.oci.registry import RegistryClient
from assay.policy import Decision, Engine, load_policies
from assay.vuln.formats.json_format import result_to_json
from assay.vuln.model import Finding, ScanResult, Severity, State, VulnId
from fixtures.assets import ASSETS
from integration.policy_helpers import attest, new_key, push_image, sign

EXPECTED = ASSETS / "policy" / "expected"
NOW = 1_795_000_000.0  # 2026-11-18T…Z: the engine's clock in these tests
DAY = 86400


def _iso(epoch: float) -> str:
    import time

    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


@pytest.fixture(scope="module")
def keys3() -> list[tuple[Any, str]]:
    return [new_key() for _ in range(3)]


def _finding(cve: str, sev: Severity, *, kev: bool = False, package: str = "openssl") -> Finding:
    return Finding(
        id=VulnId(cve),
        aliases=(),
        package=package,
        version="3.0.0-1",
        purl=f"pkg:deb/debian/{package}@3.0.0-1",
        ecosystem="debian",
        state=State.AFFECTED,
        severity=sev,
        source="debian-tracker",
        kev=kev,
    )


def _scan(findings: list[Finding], *, finished: float, db: float) -> dict[str, Any]:
    """A cosign vuln predicate whose result is assay's own scan JSON."""
    result = result_to_json(
        ScanResult(
            "img",
            "",
            "",
            "debian 12 (bookworm)",
            tuple(findings),
            db_built={"debian-tracker": _iso(db)},
        )
    )
    return {
        "invocation": {"uri": "", "event_id": "", "builder.id": ""},
        "scanner": {"uri": "pkg:generic/assay", "version": "0.1.0", "result": result},
        "metadata": {"scanStartedOn": _iso(finished), "scanFinishedOn": _iso(finished)},
    }


def _vex(cve: str, digest: str) -> dict[str, Any]:
    return {
        "@context": "https://openvex.dev/ns/v0.2.0",
        "@id": "https://example.test/vex/1",
        "author": "test",
        "timestamp": _iso(NOW - DAY),
        "version": 1,
        "statements": [
            {
                "vulnerability": {"name": cve},
                "products": [{"@id": digest}],  # this image: VEX for others is ignored
                "status": "not_affected",
                "justification": "vulnerable_code_not_in_execute_path",
            }
        ],
    }


def _spdx(packages: list[str]) -> dict[str, Any]:
    return {
        "spdxVersion": "SPDX-2.3",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": "app",
        "dataLicense": "CC0-1.0",
        "documentNamespace": "https://example.test/spdx/app",
        "creationInfo": {"created": _iso(NOW - DAY), "creators": ["Tool: assay"]},
        "packages": [
            {
                "SPDXID": f"SPDXRef-{n}",
                "name": n,
                "versionInfo": "1",
                "downloadLocation": "NOASSERTION",
            }
            for n in packages
        ],
    }


def _provenance(builder: str) -> dict[str, Any]:
    return {
        "buildDefinition": {
            "buildType": "https://assay.dev/build/v1",
            "externalParameters": {"source": {"uri": "git+https://example.test/acme/app"}},
            "resolvedDependencies": [],
        },
        "runDetails": {"builder": {"id": builder}},
    }


def _pem_block(pem: str, indent: int) -> str:
    pad = " " * indent
    return "".join(f"{pad}{line}\n" for line in pem.strip().splitlines())


def _policy(tmp: Path, name: str, signer_pub: str, require: str, extra: str = "") -> Path:
    text = (
        "apiVersion: assay.dev/v1alpha1\nkind: ImagePolicy\n"
        f"metadata:\n  name: {name}\nspec:\n  images:\n  - glob: '**'\n{extra}"
        "  authorities:\n  - name: release-key\n    key:\n      data: |\n"
        + _pem_block(signer_pub, 8)
        + "    ctlog:\n      url: https://rekor.example.test\n"
        + "  require:\n"
        + require
    )
    path = tmp / f"{name}.yaml"
    path.write_text(text)
    return path


def _normalise(decision: Decision, registry: Any, repos: dict[str, str]) -> dict[str, Any]:
    text = json.dumps(decision.to_dict(), indent=2, sort_keys=True)
    text = text.replace(registry.host, "REGISTRY")
    for repo, label in repos.items():
        text = text.replace(repo, label)
    text = re.sub(r"sha256:[0-9a-f]{64}", "sha256:DIGEST", text)
    return json.loads(text)


def _compare(name: str, got: dict[str, Any]) -> None:
    path = EXPECTED / f"{name}.json"
    if os.environ.get("ASSAY_UPDATE_EXPECTED") == "1":
        path.write_text(json.dumps(got, indent=2, sort_keys=True) + "\n")
    assert path.exists(), f"{path} missing; run with ASSAY_UPDATE_EXPECTED=1 once and review it"
    assert got == json.loads(path.read_text())


FULL = """\
    runAsNonRoot: true
    noShell: true
    noPackageManager: true
    sbom: {formats: [spdx, cyclonedx]}
    vulnerabilities:
      maxSeverity: medium
      noKEV: true
      vexApplied: true
      maxScanAgeDays: 7
      maxDbAgeDays: 2
    provenance:
      builderId: urn:assay:builder:ci:v1
    maxImageAgeDays: 30
    setuid: {allow: []}
"""


def _evidence(
    client: RegistryClient,
    ref: str,
    key: Any,
    *,
    scan: dict[str, Any],
    vex: str | None,
    builder: str = "urn:assay:builder:ci:v1",
    packages: tuple[str, ...] = ("libc6", "app"),
    vex_for: str = "",
) -> None:
    sign(client, ref, key)
    attest(client, ref, key, "spdxjson", _spdx(list(packages)))
    attest(client, ref, key, "vuln", scan)
    attest(client, ref, key, "slsaprovenance1", _provenance(builder))
    if vex:
        attest(client, ref, key, "openvex", _vex(vex, vex_for))


def test_image_policy_scenarios(
    registry: Any, client: RegistryClient, tmp_path: Path, keys3: list[tuple[Any, str]]
) -> None:
    key, pub = keys3[0]
    kev = _finding("CVE-2024-3094", Severity.CRITICAL, kev=True, package="xz-utils")
    low = _finding("CVE-2023-0001", Severity.LOW)
    fresh = _scan([kev, low], finished=NOW - DAY, db=NOW - DAY - 3600)
    stale = _scan([low], finished=NOW - 20 * DAY, db=NOW - 25 * DAY)
    created = _iso(NOW - 5 * DAY)
    scenarios: dict[str, dict[str, Any]] = {
        # KEV critical finding, VEX says not_affected → admitted
        "vexed-kev": {"user": "65532", "scan": fresh, "vex": "CVE-2024-3094"},
        # same finding without VEX → denied (critical above medium, KEV, no VEX)
        "kev-open": {"user": "65532", "scan": fresh, "vex": None},
        # VEX attested on this image but about another image → still denied
        "vex-other-image": {"user": "65532", "scan": fresh, "vex": "CVE-2024-3094"},
        # scan 20 days old, DB 5 days old at scan time → denied
        "stale-scan": {"user": "65532", "scan": stale, "vex": "CVE-2024-3094"},
        # runs as root and ships bash + dpkg → denied, says which
        "root-shell": {
            "user": "",
            "scan": fresh,
            "vex": "CVE-2024-3094",
            "packages": ("bash", "dpkg", "libc6"),
        },
        # provenance from another builder → denied
        "wrong-builder": {
            "user": "65532",
            "scan": fresh,
            "vex": "CVE-2024-3094",
            "builder": "urn:assay:builder:laptop:v1",
        },
    }
    repos: dict[str, str] = {}
    refs: dict[str, str] = {}
    for name, sc in scenarios.items():
        repo = f"require/{uuid.uuid4().hex[:8]}/{name}"
        repos[repo] = f"REPO/{name}"
        digest = push_image(client, repo, "v1", user=sc["user"], created=created, label=name)
        ref = f"{registry.host}/{repo}:v1"
        refs[name] = ref
        _evidence(
            client,
            ref,
            key,
            scan=sc["scan"],
            vex=sc["vex"],
            builder=sc.get("builder", "urn:assay:builder:ci:v1"),
            packages=sc.get("packages", ("libc6", "app")),
            # "vex-other-image": a VEX statement about another image must not count
            vex_for=("sha256:" + "0" * 64) if name == "vex-other-image" else digest,
        )
    policy = _policy(tmp_path, "regulated", pub, FULL)
    with Engine(load_policies([policy]), clock=lambda: NOW) as engine:
        for name, ref in refs.items():
            decision = engine.decide([ref])
            _compare(f"require-{name}", _normalise(decision, registry, repos))
            assert decision.allowed is (name == "vexed-kev"), decision.images[0].message
    checks = {
        name: {
            c["name"]: c["status"]
            for c in json.loads((EXPECTED / f"require-{name}.json").read_text())["images"][0][
                "policies"
            ][0]["checks"]
        }
        for name in scenarios
    }
    assert checks["vexed-kev"]["setuid"] == "pass"
    assert checks["kev-open"]["vulnerabilities.noKEV"] == "fail"
    assert checks["kev-open"]["vulnerabilities.vexApplied"] == "fail"
    assert checks["vex-other-image"]["vulnerabilities.noKEV"] == "fail"
    assert checks["stale-scan"]["vulnerabilities.maxScanAgeDays"] == "fail"
    assert checks["stale-scan"]["vulnerabilities.maxDbAgeDays"] == "fail"
    assert checks["root-shell"]["runAsNonRoot"] == "fail"
    assert checks["root-shell"]["noShell"] == "fail"
    assert checks["root-shell"]["noPackageManager"] == "fail"
    assert checks["wrong-builder"]["provenance"] == "fail"


def test_k_of_n_keys(
    registry: Any, client: RegistryClient, tmp_path: Path, keys3: list[tuple[Any, str]]
) -> None:
    (k1, p1), (k2, p2), (_k3, p3) = keys3
    repo = f"require/{uuid.uuid4().hex[:8]}/kofn"
    push_image(client, repo, "v1", label="kofn")
    ref = f"{registry.host}/{repo}:v1"
    keys = "".join(f"      - |\n{_pem_block(p, 8)}" for p in (p1, p2, p3))
    require = f"    signatures:\n      minKeys: 2\n      keys:\n{keys}"
    policy = _policy(tmp_path, "two-of-three", p1, require)
    with Engine(load_policies([policy]), clock=lambda: NOW) as engine:
        sign(client, ref, k1)
        one = engine.decide([ref])
        assert not one.allowed
        assert "signed by 1 of 3 keys (need 2)" in one.images[0].message
        sign(client, ref, k2)
        two = engine.decide([ref])
        assert two.allowed, two.images[0].message
    check = two.images[0].policies[0].checks[0]
    assert check.name == "signatures" and len(check.evidence) >= 2
    assert "CIS-Docker:4.5" in check.controls


def test_warn_mode_require(
    registry: Any, client: RegistryClient, tmp_path: Path, keys3: list[tuple[Any, str]]
) -> None:
    key, pub = keys3[0]
    repo = f"require/{uuid.uuid4().hex[:8]}/root"
    push_image(client, repo, "v1", user="0", label="root")
    ref = f"{registry.host}/{repo}:v1"
    sign(client, ref, key)
    policy = _policy(tmp_path, "nonroot-warn", pub, "    runAsNonRoot: true\n", "  mode: warn\n")
    with Engine(load_policies([policy]), clock=lambda: NOW) as engine:
        d = engine.decide([ref])
    assert d.allowed and d.images[0].status == "warn"
    assert d.warnings[0].startswith(
        "failed policy: nonroot-warn: runAsNonRoot: linux/amd64 runs as root"
    )


REGO_ATT = """\
    attestations:
    - name: custom-match-predicate
      predicateType: https://cosign.sigstore.dev/attestation/v1
      policy:
        type: rego
        data: |
          package sigstore
          isCompliant[response] {
            ok := input.predicate.Data == "foobar e2e test"
            response := {"result": ok, "error": "wrong data", "warning": "checked by rego"}
          }
"""


def test_cip_decisions_match_expected_files(
    registry: Any, client: RegistryClient, tmp_path: Path, keys3: list[tuple[Any, str]]
) -> None:
    from integration.policy_helpers import cip, key_authority

    key, pub = keys3[0]
    repos: dict[str, str] = {}
    refs: dict[str, str] = {}
    for name in ("rego-pass", "rego-fail", "warn-unsigned", "no-match"):
        repo = f"cipdec/{uuid.uuid4().hex[:8]}/{name}"
        repos[repo] = f"REPO/{name}"
        push_image(client, repo, "v1", label=name)
        refs[name] = f"{registry.host}/{repo}:v1"
    sign(client, refs["rego-pass"], key)
    attest(client, refs["rego-pass"], key, "custom", b"foobar e2e test")
    attest(client, refs["rego-fail"], key, "custom", b"something else")
    rego = cip("rego", "**/rego-*", key_authority(pub, extra=REGO_ATT, name="att"))
    warn = cip("warn", "**/warn-*", key_authority(pub), extra="  mode: warn\n")
    paths = []
    for i, doc in enumerate((rego, warn)):
        paths.append(tmp_path / f"cip{i}.yaml")
        paths[-1].write_text(doc)
    with Engine(load_policies(paths), no_match="warn", clock=lambda: NOW) as engine:
        decision = engine.decide(
            [refs[n] for n in ("rego-pass", "rego-fail", "warn-unsigned", "no-match")]
        )
    _compare("cip-decisions", _normalise(decision, registry, repos))
    by_name = {i.reference.rsplit("/", 1)[1]: i for i in decision.images}
    assert by_name["rego-pass:v1"].result == "allow"
    assert by_name["rego-pass:v1"].warnings == ("checked by rego",)
    assert by_name["rego-fail:v1"].result == "deny"
    assert "with errors: wrong data" in by_name["rego-fail:v1"].message
    assert by_name["warn-unsigned:v1"].result == "allow"
    assert by_name["no-match:v1"].status == "warn"
    assert not decision.allowed


def _cyclonedx() -> dict[str, Any]:
    return {
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "metadata": {"timestamp": _iso(NOW - DAY), "tools": {"components": [{"name": "assay"}]}},
        "components": [
            {
                "type": "library",
                "bom-ref": "pkg:deb/debian/libc6@2.36",
                "name": "libc6",
                "version": "2.36",
                "supplier": {"name": "Debian"},
            }
        ],
        "dependencies": [{"ref": "pkg:deb/debian/libc6@2.36", "dependsOn": []}],
    }


def test_sbom_ntia_elements(
    registry: Any, client: RegistryClient, tmp_path: Path, keys3: list[tuple[Any, str]]
) -> None:
    key, pub = keys3[0]
    refs = {}
    for name in ("thin", "complete"):
        repo = f"require/{uuid.uuid4().hex[:8]}/{name}"
        push_image(client, repo, "v1", label=name)
        refs[name] = f"{registry.host}/{repo}:v1"
        sign(client, refs[name], key)
    attest(client, refs["thin"], key, "spdxjson", _spdx(["libc6"]))
    attest(client, refs["complete"], key, "cyclonedx", _cyclonedx())
    # a second SBOM of the same packages (another scan time): the reason counts packages, not rows
    later = _cyclonedx()
    later["metadata"]["timestamp"] = _iso(NOW)
    attest(client, refs["complete"], key, "cyclonedx", later)
    policy = _policy(tmp_path, "ntia", pub, "    sbom: {formats: [spdx, cyclonedx], ntia: true}\n")
    with Engine(load_policies([policy]), clock=lambda: NOW) as engine:
        thin = engine.decide([refs["thin"]])
        complete = engine.decide([refs["complete"]])
    assert not thin.allowed
    assert "lacks NTIA minimum elements" in thin.images[0].message
    assert "1 of 1 packages have no supplier" in thin.images[0].message
    assert "no dependency relationships" in thin.images[0].message
    assert complete.allowed, complete.images[0].message
    check = complete.images[0].policies[0].checks[0]
    assert check.reason == "verified cyclonedx SBOM with the NTIA minimum elements (1 packages)"
    assert check.controls == ("SSDF:PS.3.2",)
