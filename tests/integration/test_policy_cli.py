"""``assay verify --policy`` and ``assay policy lint`` through the installed console script."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

import pytest

from assay.oci.registry import RegistryClient
from fixtures.assets import INTEROP
from fixtures.cli import Ran, run_inprocess, run_script
from integration.policy_helpers import cip, key_authority, new_key, push_image, sign

SRC = Path(__file__).resolve().parents[2] / "src"
PC = INTEROP / "policy-controller"


def assay(*args: str, cwd: Path) -> Ran:
    return run_script(*args, env={"PYTHONPATH": str(SRC)}, cwd=cwd, timeout=120)


@pytest.fixture()
def setup(registry: Any, client: RegistryClient, tmp_path: Path) -> dict[str, Any]:
    key, pub = new_key()
    repo = f"cli/{uuid.uuid4().hex[:8]}/app"
    push_image(client, repo, "signed", label="s")
    push_image(client, repo, "unsigned", label="u")
    signed = f"{registry.host}/{repo}:signed"
    sign(client, signed, key)
    policy = tmp_path / "policy.yaml"
    policy.write_text(cip("release", f"{registry.host}/{repo}**", key_authority(pub)))
    return {"signed": signed, "unsigned": f"{registry.host}/{repo}:unsigned", "policy": policy}


def test_verify_policy_admit_deny_exit_codes(setup: dict[str, Any], tmp_path: Path) -> None:
    ok = assay(
        "verify", setup["signed"], "--policy", str(setup["policy"]), "-o", "json", cwd=tmp_path
    )
    assert ok.returncode == 0, ok.stderr
    doc = json.loads(ok.stdout)
    assert doc["allowed"] is True and doc["images"][0]["result"] == "allow"
    bad = assay(
        "verify",
        setup["signed"],
        setup["unsigned"],
        "--policy",
        str(setup["policy"]),
        cwd=tmp_path,
    )
    assert bad.returncode == 1
    assert "DENY " in bad.stdout and "ALLOW" in bad.stdout
    assert "failed policy: release: no signatures found" in bad.stderr


def test_verify_policy_sarif(setup: dict[str, Any], tmp_path: Path) -> None:
    ran = assay(
        "verify",
        setup["unsigned"],
        "--policy",
        str(setup["policy"]),
        "-o",
        "sarif",
        cwd=tmp_path,
    )
    assert ran.returncode == 1
    sarif = json.loads(ran.stdout)
    assert sarif["version"] == "2.1.0"
    result = sarif["runs"][0]["results"][0]
    assert result["ruleId"] == "release" and result["level"] == "error"
    assert "no signatures found" in result["message"]["text"]
    uri = result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert uri == str(setup["policy"])


def test_verify_bad_policy_exits_2(setup: dict[str, Any], tmp_path: Path) -> None:
    ran = assay(
        "verify", setup["signed"], "--policy", str(PC / "29-invalid-glob.yaml"), cwd=tmp_path
    )
    assert ran.returncode == 2
    assert "spec.images[0].glob: invalid value: [" in ran.stderr
    both = assay(
        "verify",
        setup["signed"],
        "--policy",
        str(setup["policy"]),
        "--key",
        "x.pub",
        cwd=tmp_path,
    )
    assert both.returncode == 2


def test_no_match_flag(setup: dict[str, Any], registry: Any, tmp_path: Path) -> None:
    other = tmp_path / "other.yaml"
    other.write_text(cip("elsewhere", "nothing.example/**", "  - static:\n      action: pass\n"))
    deny = run_inprocess("verify", setup["signed"], "--policy", str(other), env=dict(os.environ))
    assert deny.returncode == 1 and "no matching policies" in deny.stderr
    warn = run_inprocess(
        "verify",
        setup["signed"],
        "--policy",
        str(other),
        "--no-match",
        "warn",
        env=dict(os.environ),
    )
    assert warn.returncode == 0 and "no matching policies" in warn.stderr


def test_lint(tmp_path: Path) -> None:
    ran = assay(
        "policy",
        "lint",
        str(PC / "22-keyless-exact-issuer-subject-spdx-attestation.yaml"),
        "-o",
        "json",
        cwd=tmp_path,
    )
    assert ran.returncode == 0, ran.stderr
    doc = json.loads(ran.stdout)
    messages = [f["message"] for f in doc["findings"]]
    assert any("short predicate type 'spdxjson' is deprecated" in m for m in messages)
    assert any("cue policies are not supported" in m for m in messages)
    strict = assay("policy", "lint", "--strict", str(PC / "05-key-secretref.yaml"), cwd=tmp_path)
    assert strict.returncode == 1
    assert "key.secretRef" in strict.stdout
    whole = assay("policy", "lint", str(PC), cwd=tmp_path)
    assert whole.returncode == 2  # the Helm template is not YAML
    assert "25-signatureformat-bundle-github-helm.yaml" in whole.stderr
    tagged = tmp_path / "tag.yaml"
    tagged.write_text(cip("tagged", "ghcr.io/acme/app:1.0", "  - static:\n      action: pass\n"))
    ran = assay("policy", "lint", str(tagged), cwd=tmp_path)
    assert ran.returncode == 0 and "ends in a literal tag" in ran.stdout
