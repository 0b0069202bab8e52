"""VEX attached to a registry image as a signed ``openvex`` attestation is applied by
``assay scan IMAGE --key`` (real docker-registry on 127.0.0.1, real signatures)."""

from __future__ import annotations

import io
import json
import os
import tarfile
import uuid
from pathlib import Path
from typing import Any

import pytest

from assay.attest import keys, remote
from assay.errors import VerificationError
from assay.oci.registry import RegistryClient
from assay.vuln.db import AdvisoryDB
from assay.vuln.feeds import FEEDS
from assay.vuln.vex import create_document
from fixtures.cli import run_inprocess as run_cli
from fixtures.ociimage import push_tar_image

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "vuln"
STATUS = (
    b"Package: libssl3\nStatus: install ok installed\nArchitecture: amd64\nSource: openssl\n"
    b"Version: 3.0.8-1\nMaintainer: Debian OpenSSL Team <x@y.invalid>\nDescription: ssl\n"
)
OS_RELEASE = b'ID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n'


def _layer() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for path, data in (
            ("etc/os-release", OS_RELEASE),
            ("var/lib/dpkg/status.d/libssl3", STATUS),
        ):
            info = tarfile.TarInfo(path)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def push_image(client: RegistryClient, repo: str) -> str:
    return push_tar_image(client, repo, "v1", _layer(), {"config": {}})


@pytest.fixture()
def signer_and_pub(tmp_path: Path) -> tuple[keys.SigningKey, Path]:
    pem, pub_pem = keys.generate_keypair(b"")
    pub = tmp_path / "cosign.pub"
    pub.write_bytes(pub_pem)
    return keys.load_private_key(pem, b""), pub


def test_attested_openvex_is_verified_and_applied(
    registry: Any, tmp_path: Path, signer_and_pub: tuple[keys.SigningKey, Path]
) -> None:
    signer, pub = signer_and_pub
    repo = "vexscan/" + uuid.uuid4().hex[:8]
    target = f"{registry.host}/{repo}:v1"
    env = dict(
        os.environ, ASSAY_VULN_DB=str(tmp_path / "v.db"), ASSAY_CACHE_DIR=str(tmp_path / "c")
    )
    with AdvisoryDB(tmp_path / "v.db") as db:
        FEEDS["debian-tracker"].import_path(db, ASSETS / "tracker.json")
    with RegistryClient(registry.host) as client:
        digest = push_image(client, repo)
        # no attestation yet: the finding is there, unsuppressed
        code, out, err = run_cli("scan", target, "--key", str(pub), "-o", "json", env=env)
        assert code == 0, err
        f = next(f for f in json.loads(out)["findings"] if f["id"] == "CVE-2023-0464")
        assert not f["suppressed"]
        vex = create_document(
            products=[f"pkg:oci/{repo.rsplit('/', 1)[-1]}@{digest}"],
            vulns=["CVE-2023-0464"],
            status="not_affected",
            justification="vulnerable_code_not_in_execute_path",
            author="t",
        )
        remote.attest_image(
            client, remote.parse_image_ref(target), signer, "openvex", vex.dumps().encode()
        )
    code, out, err = run_cli("scan", target, "--key", str(pub), "-o", "json", env=env)
    assert code == 0, err
    doc = json.loads(out)
    assert doc["subject"]["digest"] == digest
    f = next(f for f in doc["findings"] if f["id"] == "CVE-2023-0464")
    assert (
        f["suppressed"]
        and f["suppressed_by"]["justification"] == "vulnerable_code_not_in_execute_path"
    )
    # without --key the attestation is not used
    code, out, _ = run_cli("scan", target, "-o", "json", env=env)
    assert not next(f for f in json.loads(out)["findings"] if f["id"] == "CVE-2023-0464")[
        "suppressed"
    ]


def test_attestation_signed_by_another_key_fails_closed(
    registry: Any, tmp_path: Path, signer_and_pub: tuple[keys.SigningKey, Path]
) -> None:
    from assay.cli.cmd_scan import attested_vex

    signer, _ = signer_and_pub
    _, other_pub = keys.generate_keypair(b"")
    wrong = tmp_path / "other.pub"
    wrong.write_bytes(other_pub)
    repo = "vexscan/" + uuid.uuid4().hex[:8]
    target = f"{registry.host}/{repo}:v1"
    with RegistryClient(registry.host) as client:
        digest = push_image(client, repo)
        vex = create_document(products=[digest], vulns=["CVE-1"], status="fixed", author="t")
        remote.attest_image(
            client, remote.parse_image_ref(target), signer, "openvex", vex.dumps().encode()
        )
    with pytest.raises(VerificationError):
        attested_vex(target, wrong, insecure=False)
