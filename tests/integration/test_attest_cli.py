"""The attest commands through the real ``assay`` entry point (exit codes, output)."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from assay.oci.registry import RegistryClient

sys.path.insert(0, str(Path(__file__).parent))
from test_attest_registry import IMAGE_DIGEST, _layout_blob, push_manifest_tree

from fixtures.assets import INTEROP
from fixtures.cli import Ran, run_script

BUNDLES = INTEROP / "sigstore-python-bundles"
GH_IDENTITY = (
    "https://github.com/trailofbits/rfc8785.py/.github/workflows/release.yml@refs/tags/v0.1.2"
)
GH_ISSUER = "https://token.actions.githubusercontent.com"


def assay(*args: str, cwd: Path, password: str | None = "pw") -> Ran:
    """Run the installed ``assay`` console script in a subprocess."""
    return run_script(
        *args,
        env=None if password is None else {"ASSAY_PASSWORD": password},
        drop=("ASSAY_PASSWORD", "COSIGN_PASSWORD"),
        cwd=cwd,
        timeout=120,
    )


@pytest.fixture()
def run_cli(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> Callable[..., subprocess.CompletedProcess[str]]:
    """The same entry point (``assay.cli.main.run``) in-process: exit code, stdout, stderr.

    Saves the interpreter start-up per call; one test below still goes through a subprocess.
    """
    from assay.cli.main import run

    def call(
        *args: str, cwd: Path, password: str | None = "pw"
    ) -> subprocess.CompletedProcess[str]:
        with monkeypatch.context() as m:
            m.delenv("ASSAY_PASSWORD", raising=False)
            m.delenv("COSIGN_PASSWORD", raising=False)
            if password is not None:
                m.setenv("ASSAY_PASSWORD", password)
            m.chdir(cwd)
            m.setattr(sys, "argv", ["assay", *args])
            capfd.readouterr()
            try:
                run()
                code = 0
            except SystemExit as exc:
                code = int(exc.code or 0)
            out, err = capfd.readouterr()
        return subprocess.CompletedProcess(list(args), code, out, err)

    return call


def test_keygen_sign_verify_attest(
    registry: Any, tmp_path: Path, run_cli: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    assay = run_cli
    repo = "cli/" + uuid.uuid4().hex[:10]
    with RegistryClient(registry.host) as client:
        push_manifest_tree(client, repo, _layout_blob(IMAGE_DIGEST), "v1")
    image = f"{registry.host}/{repo}:v1"

    r = assay("keygen", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (
        (tmp_path / "cosign.key")
        .read_bytes()
        .startswith(b"-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----")
    )
    assert (tmp_path / "cosign.key").stat().st_mode & 0o077 == 0
    r = assay("keygen", cwd=tmp_path)
    assert r.returncode == 2 and "already exists" in r.stderr

    r = assay("verify", image, "--key", "cosign.pub", cwd=tmp_path)
    assert r.returncode == 1 and "no cosign signatures found" in r.stderr

    r = assay("sign", image, "--key", "cosign.key", cwd=tmp_path, password="wrong")
    assert r.returncode == 1 and "wrong passphrase" in r.stderr

    r = assay("sign", image, "--key", "cosign.key", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"{registry.host}/{repo}@{IMAGE_DIGEST}"

    r = assay("verify", image, "--key", "cosign.pub", "-o", "json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    payloads = json.loads(r.stdout)
    assert payloads[0]["critical"]["image"]["docker-manifest-digest"] == IMAGE_DIGEST

    other = tmp_path / "other"
    other.mkdir()
    assert assay("keygen", cwd=other).returncode == 0
    r = assay("verify", image, "--key", str(other / "cosign.pub"), cwd=tmp_path)
    assert r.returncode == 1 and "does not verify" in r.stderr
    assert r.stdout == ""  # nothing printed as verified

    (tmp_path / "p.json").write_text('{"buildDefinition": {"buildType": "t"}, "runDetails": {}}')
    r = assay(
        "attest",
        image,
        "--key",
        "cosign.key",
        "--type",
        "slsaprovenance1",
        "--predicate",
        "p.json",
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    r = assay(
        "verify-attestation",
        image,
        "--key",
        "cosign.pub",
        "--type",
        "slsaprovenance1",
        "-o",
        "json",
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    statements = json.loads(r.stdout)
    assert {s["predicateType"] for s in statements} == {"https://slsa.dev/provenance/v1"}
    r = assay(
        "verify-attestation", image, "--key", "cosign.pub", "--type", "spdxjson", cwd=tmp_path
    )
    assert r.returncode == 1
    r = assay("verify-attestation", image, "--key", "cosign.pub", "--type", "bogus", cwd=tmp_path)
    assert r.returncode == 2


def test_verify_usage_errors(
    tmp_path: Path, run_cli: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    assay = run_cli
    r = assay("verify", "127.0.0.1:1/x:y", cwd=tmp_path)
    assert r.returncode == 2
    r = assay("verify", "127.0.0.1:1/x:y", "--certificate-identity", "a", cwd=tmp_path)
    assert r.returncode == 2


@pytest.mark.parametrize(
    ("identity", "code"),
    [(GH_IDENTITY, 0), ("https://github.com/other/repo/.github/workflows/r.yml@refs/heads/x", 1)],
)
def test_keyless_blob_bundle(
    tmp_path: Path,
    identity: str,
    code: int,
    run_cli: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    assay = run_cli
    r = assay(
        "verify",
        str(BUNDLES / "bundle_v3_github.whl"),
        "--bundle",
        str(BUNDLES / "bundle_v3_github.whl.sigstore"),
        "--certificate-identity",
        identity,
        "--certificate-oidc-issuer",
        GH_ISSUER,
        cwd=tmp_path,
    )
    assert r.returncode == code, r.stderr


def test_keyless_cve_2022_36056_rejected(
    tmp_path: Path, run_cli: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    assay = run_cli
    for extra in ([], ["--staging"]):
        r = assay(
            "verify",
            str(BUNDLES / "bundle_cve_2022_36056.txt"),
            "--bundle",
            str(BUNDLES / "bundle_cve_2022_36056.txt.sigstore"),
            "--certificate-identity",
            "william@yossarian.net",
            "--certificate-oidc-issuer",
            "https://github.com/login/oauth",
            *extra,
            cwd=tmp_path,
        )
        assert r.returncode == 1, r.stderr


def test_push_sign_attest_verify_round_trip(
    registry: Any, tmp_path: Path, run_cli: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    """assay push (an OCI layout) → sign → attest → verify → verify-attestation, all via the CLI
    (the verify step in a real subprocess)."""
    layout = INTEROP / "skopeo-1.13.3-signed-oci"
    image = f"{registry.host}/roundtrip/{uuid.uuid4().hex[:8]}:1"
    r = run_cli("push", f"oci:{layout}:v1", image, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert run_cli("keygen", cwd=tmp_path, password="").returncode == 0
    r = run_cli("sign", image, "--key", "cosign.key", cwd=tmp_path, password="")
    assert r.returncode == 0, r.stderr
    pinned = r.stdout.strip()
    assert pinned.endswith("@" + IMAGE_DIGEST)
    (tmp_path / "vex.json").write_text('{"@context": "https://openvex.dev/ns/v0.2.0"}')
    r = run_cli(
        "attest",
        pinned,
        "--key",
        "cosign.key",
        "--type",
        "openvex",
        "--predicate",
        "vex.json",
        cwd=tmp_path,
        password="",
    )
    assert r.returncode == 0, r.stderr
    r = assay("verify", image, "--key", "cosign.pub", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == pinned
    r = run_cli(
        "verify-attestation",
        image,
        "--key",
        "cosign.pub",
        "--type",
        "openvex",
        "-o",
        "json",
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    statements = json.loads(r.stdout)
    # the .att layer and the bundle referrer hold the same signed statement: counted once
    assert len(statements) == 1
    assert all(s["predicate"]["@context"] == "https://openvex.dev/ns/v0.2.0" for s in statements)
