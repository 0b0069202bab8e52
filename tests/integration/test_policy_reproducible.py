"""``assay rebuild --attest`` and ``require.reproducible`` end to end: an image built from the
signed fixture Debian repository, pushed and signed by its builder, rebuilt from its provenance
by a rebuilder with its own key, admitted only with a verified reproducibility attestation."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from assay.attest.reproducible import REPRODUCIBLE_PREDICATE_TYPE, reproducible_predicate
from assay.oci.registry import RegistryClient
from assay.policy import Engine, load_policies
from fixtures.debrepo import TestKey, test_key
from integration.policy_helpers import attest, new_key
from integration.test_build_hermetic import _spec, repo_url
from integration.test_policy_cli import SRC

__all__ = ["repo_url", "test_key"]  # pytest fixtures used here

REBUILDER = "urn:test:rebuilder:independent"


def run(*args: str, env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess[str]:
    """The installed console script, as users type it."""
    exe = shutil.which("assay")
    assert exe is not None, "the assay console script is not installed (pip install -e .)"
    full = {k: v for k, v in os.environ.items() if k != "SOURCE_DATE_EPOCH"}
    full.update(env, PYTHONPATH=str(SRC))
    proc = subprocess.run(
        [exe, *args], env=full, capture_output=True, text=True, timeout=600, check=False
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"assay {' '.join(args)} exited {proc.returncode}: {proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def rebuilt(
    repo_url: tuple[str, TestKey], registry: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    url, key = repo_url
    tmp = tmp_path_factory.mktemp("repro")
    env = {"ASSAY_CACHE_DIR": str(tmp / "c"), "ASSAY_PASSWORD": "pw"}
    run("keygen", "--output-key-prefix", str(tmp / "builder"), env=env)
    run("keygen", "--output-key-prefix", str(tmp / "rebuilder"), env=env)
    (tmp / "w").mkdir()
    spec = _spec(tmp / "w", url, key)
    ref = f"{registry.host}/repro/hello:1"
    built = json.loads(
        run(
            "build", str(spec), "--push", ref, "--sign-key", str(tmp / "builder.key"),
            "-o", "json", "-q", env=env,
        ).stdout
    )  # fmt: skip
    # nothing is attested without a signing key, or for a provenance-only rebuild
    bad = run("rebuild", ref, "--key", str(tmp / "builder.pub"), "--attest", env=env, check=False)
    assert bad.returncode == 2 and "--attest needs --sign-key" in bad.stderr
    proc = run(
        "rebuild", ref, "--key", str(tmp / "builder.pub"), "--attest",
        "--sign-key", str(tmp / "rebuilder.key"), "--rebuilder-id", REBUILDER, "-o", "json",
        env={"ASSAY_CACHE_DIR": str(tmp / "fresh"), "ASSAY_PASSWORD": "pw"},
    )  # fmt: skip
    yield {
        "tmp": tmp,
        "ref": ref,
        "built": built,
        "results": json.loads(proc.stdout),
        "builder": (tmp / "builder.pub").read_text(),
        "rebuilder": (tmp / "rebuilder.pub").read_text(),
        "stderr": proc.stderr,
    }


def _policy(tmp: Path, name: str, pubs: list[str], require: str) -> Path:
    auths = ""
    for i, pub in enumerate(pubs):
        pem = "".join(f"        {line}\n" for line in pub.strip().splitlines())
        auths += f"  - name: key{i}\n    key:\n      data: |\n{pem}"
    path = tmp / f"{name}.yaml"
    path.write_text(
        "apiVersion: assay.dev/v1alpha1\nkind: ImagePolicy\n"
        f"metadata:\n  name: {name}\nspec:\n  images:\n  - glob: '**'\n"
        f"  authorities:\n{auths}  require:\n{require}"
    )
    return path


def _check(policy: Path, ref: str) -> tuple[bool, Any]:
    with Engine(load_policies([policy])) as engine:
        decision = engine.decide([ref])
    checks = decision.images[0].policies[0].checks
    assert [c.name for c in checks] == ["reproducible"], decision.images[0].message
    return decision.allowed, checks[0]


def test_rebuild_attests_each_reproduced_platform(rebuilt: dict[str, Any]) -> None:
    results = rebuilt["results"]
    digests = {i["digest"] for i in rebuilt["built"]["images"]}
    assert {r["actual"] for r in results} == digests and all(r["identical"] for r in results)
    assert all(r["attested"] for r in results)
    assert rebuilt["stderr"].count("attested reproducibility of sha256:") == len(digests)
    # the attestations verify with the rebuilder's key, as users check them
    for digest in digests:
        pinned = rebuilt["ref"].split(":1")[0] + f"@{digest}"
        out = run(
            "verify-attestation", pinned, "--key", str(rebuilt["tmp"] / "rebuilder.pub"),
            "--type", "reproducible", "-o", "json", env={},
        ).stdout  # fmt: skip
        statements = [
            s for s in json.loads(out) if s["predicateType"] == REPRODUCIBLE_PREDICATE_TYPE
        ]
        assert statements and statements[0]["predicate"]["rebuild"]["rebuiltDigest"] == digest
        assert statements[0]["predicate"]["rebuilder"]["id"] == REBUILDER


def test_policy_admits_only_with_the_rebuilders_verified_attestation(
    rebuilt: dict[str, Any],
) -> None:
    tmp, ref = rebuilt["tmp"], rebuilt["ref"]
    both = [rebuilt["builder"], rebuilt["rebuilder"]]
    ok, check = _check(_policy(tmp, "repro", both, "    reproducible: true\n"), ref)
    assert ok and check.status == "pass"
    assert check.reason == "an independent rebuild reproduced the digest of 2 platform image(s)"
    assert len(check.evidence) == 2 and check.controls == ("SSDF:PS.2.1",)
    named = f"    reproducible: {{rebuilderId: [{REBUILDER}]}}\n"
    assert _check(_policy(tmp, "named", both, named), ref)[0]
    # the builder's key alone cannot verify the rebuilder's statements: not reproduced
    ok, check = _check(_policy(tmp, "builder-only", both[:1], "    reproducible: true\n"), ref)
    assert not ok and check.status == "fail"
    assert check.reason == (
        "no verified reproducibility attestation for linux/amd64, linux/arm64/v8"
    )
    other = "    reproducible: {rebuilderId: urn:test:someone-else}\n"
    ok, check = _check(_policy(tmp, "other", both, other), ref)
    assert not ok
    assert f"rebuilt by '{REBUILDER}', not one of ['urn:test:someone-else']" in check.reason


def test_claim_about_another_digest_does_not_count(
    rebuilt: dict[str, Any], registry: Any, tmp_path: Path
) -> None:
    key, pub = new_key()
    ref, images = rebuilt["ref"], rebuilt["built"]["images"]
    with RegistryClient(registry.host) as client:
        for image in images:
            pinned = ref.split(":1")[0] + f"@{image['digest']}"
            lie = reproducible_predicate(
                rebuilder_id=REBUILDER,
                platform="linux/amd64",
                expected=image["digest"],
                rebuilt="sha256:" + "2" * 64,  # the rebuild gave something else
                builder_id="b",
                build_type="t",
                rebuilt_on="2026-11-18T00:00:00Z",
            )
            attest(client, pinned, key, "reproducible", lie)
    policy = _policy(tmp_path, "liar", [rebuilt["builder"], pub], "    reproducible: true\n")
    ok, check = _check(policy, ref)
    assert not ok
    assert f"the rebuild gave sha256:{'2' * 64}, not " in check.reason


def test_layer_checks_read_every_platform_of_an_index(
    rebuilt: dict[str, Any], tmp_path: Path
) -> None:
    """The built image is an index: setuid and a live scan read each platform's layers."""
    from assay.vuln.db import AdvisoryDB
    from assay.vuln.feeds import FEEDS

    db = tmp_path / "vuln.db"
    with AdvisoryDB(db) as adb:
        FEEDS["debian-tracker"].import_path(
            adb, Path(__file__).resolve().parents[1] / "assets" / "vuln" / "tracker.json"
        )
    require = (
        "    setuid: {allow: []}\n"
        "    vulnerabilities: {source: live, maxSeverity: critical, maxDbAgeDays: 3650}\n"
    )
    policy = _policy(tmp_path, "files", [rebuilt["builder"]], require)
    with Engine(load_policies([policy]), vuln_db=db) as engine:
        decision = engine.decide([rebuilt["ref"]])
    checks = {c.name: c for c in decision.images[0].policies[0].checks}
    assert decision.allowed, decision.images[0].message
    repo = rebuilt["ref"].split("/", 1)[1].split(":")[0]
    with RegistryClient(rebuilt["ref"].split("/", 1)[0]) as client:
        layers = {
            layer["digest"]
            for image in rebuilt["built"]["images"]
            for layer in client.get_manifest(repo, image["digest"]).json()["layers"]
        }
    setuid = checks["setuid"]
    assert setuid.status == "pass" and setuid.reason.startswith("no setuid/setgid file among ")
    assert set(setuid.evidence) == layers and len(setuid.evidence) == len(layers)
    scan = checks["vulnerabilities.scan"]
    assert "(linux/amd64, linux/arm64/v8)" in scan.reason
    assert scan.evidence == setuid.evidence  # the same downloaded layers
