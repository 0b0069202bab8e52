"""Issue 4/5 acceptance on the real python example: build → push → sign → attest → verify →
verify-attestation, with the CLI commands a user runs, against a real docker-registry; and
``build --push --sign-key`` attaching SBOMs and provenance as verifiable attestations."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fixtures.examples import assay, build_example, mirror_or_skip

pytestmark = [pytest.mark.network, pytest.mark.slow]

ENV = {"ASSAY_PASSWORD": "round-trip"}


def test_python_round_trip(registry: Any, tmp_path: Path) -> None:
    mirror_or_skip()
    built = build_example("python", tmp_path / "src", tmp_path / "cache")
    assay("keygen", "--output-key-prefix", str(tmp_path / "cosign"), env=ENV)
    key, pub = str(tmp_path / "cosign.key"), str(tmp_path / "cosign.pub")
    ref = f"{registry.host}/base/python:3.11"

    pushed = assay("push", built.ref, ref).stdout.strip()
    assert pushed == built.index
    # the index and every platform manifest (skopeo and podman check the one they pull)
    assay(
        "sign", f"{registry.host}/base/python@{built.index}", "--key", key, "--recursive", env=ENV
    )
    predicate = tmp_path / "p.json"
    statement = json.loads(built.evidence("amd64", "provenance").read_text())
    predicate.write_text(json.dumps(statement["predicate"]))
    assay(
        "attest",
        f"{registry.host}/base/python@{built.index}",
        "--key",
        key,
        "--type",
        "slsaprovenance1",
        "--predicate",
        str(predicate),
        env=ENV,
    )
    verified = assay("verify", ref, "--key", pub, "-o", "json")
    payloads = json.loads(verified.stdout)
    assert payloads[0]["critical"]["image"]["docker-manifest-digest"] == built.index
    att = assay("verify-attestation", ref, "--key", pub, "--type", "slsaprovenance1", "-o", "json")
    statements = json.loads(att.stdout)
    assert statements[0]["subject"][0]["digest"]["sha256"] == built.index.split(":")[1]
    assert statements[0]["predicate"]["buildDefinition"]["resolvedDependencies"]
    # another key fails
    assay("keygen", "--output-key-prefix", str(tmp_path / "other"), env=ENV)
    bad = assay("verify", ref, "--key", str(tmp_path / "other.pub"), check=False)
    assert bad.returncode == 1


def test_build_push_sign_attaches_sboms(registry: Any, tmp_path: Path) -> None:
    mirror_or_skip()
    assay("keygen", "--output-key-prefix", str(tmp_path / "cosign"), env=ENV)
    ref = f"{registry.host}/base/python-signed:1"
    built = build_example(
        "python",
        tmp_path / "src",
        tmp_path / "cache",
        extra=("--push", ref, "--sign-key", str(tmp_path / "cosign.key")),
        env=ENV,
    )
    pub = str(tmp_path / "cosign.pub")
    assay("verify", ref, "--key", pub)  # the index is signed
    for arch in ("amd64", "arm64"):
        pinned = f"{registry.host}/base/python-signed@{built.digest(arch)}"
        assay("verify", pinned, "--key", pub)  # and every platform manifest
        spdx = json.loads(
            assay(
                "verify-attestation", pinned, "--key", pub, "--type", "spdxjson", "-o", "json"
            ).stdout
        )
        local = json.loads(built.evidence(arch, "spdx").read_text())
        assert spdx[0]["predicate"] == local
        cdx = json.loads(
            assay(
                "verify-attestation", pinned, "--key", pub, "--type", "cyclonedx", "-o", "json"
            ).stdout
        )
        assert cdx[0]["predicate"]["bomFormat"] == "CycloneDX"
