"""Hostile evidence pushed next to valid evidence on a real registry (127.0.0.1): deeply nested
referrer manifests and bundles, wrong JSON types, a malformed .att layer. Each is skipped with a
warning; the valid attestation still verifies; with only hostile evidence, verification fails."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from assay.attest import bundle as _bundle
from assay.attest import keys, remote
from assay.attest.simplesigning import cosign_tag
from assay.errors import VerificationError
from assay.oci.registry import NotFoundError, RegistryClient
from fixtures.assets import INTEROP

LAYOUT = INTEROP / "skopeo-1.13.3-signed-oci"
IMAGE_DIGEST = "sha256:fad65fdb808f280a8c7dad07c8c94112c5620f8991b1a42af64760a820b0c178"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _blob(digest: str) -> bytes:
    return (LAYOUT / "blobs" / "sha256" / digest.split(":", 1)[1]).read_bytes()


def _push_image(client: RegistryClient, repo: str) -> None:
    manifest = _blob(IMAGE_DIGEST)
    doc = json.loads(manifest)
    for desc in [doc["config"], *doc["layers"]]:
        data = _blob(desc["digest"])
        client.upload_blob(repo, desc["digest"], len(data), data)
    client.put_manifest(repo, "v1", manifest, MANIFEST)


def _deep(n: int) -> str:
    return "[" * n + "]" * n


CREATED = "2024-01-01T00:00:00Z"


def _hostile_referrer(
    client: RegistryClient, repo: str, bundle_bytes: bytes, *, extra: str = ""
) -> None:
    """A bundle referrer of the image whose bundle (or manifest, via ``extra``) is hostile."""
    client.upload_blob(repo, _sha(bundle_bytes), len(bundle_bytes), bundle_bytes)
    empty = _bundle.EMPTY_CONFIG
    client.upload_blob(repo, _sha(empty), len(empty), empty)
    size = len(_blob(IMAGE_DIGEST))
    manifest = _bundle.bundle_referrer_manifest(
        bundle_bytes,
        MANIFEST,
        IMAGE_DIGEST,
        size,
        predicate_type=None,
        created="2024-01-01T00:00:00Z",
    )
    if extra:  # an unknown member the registry ignores but every JSON reader must parse
        manifest = manifest[:-1] + b',"x-hostile":' + extra.encode() + b"}"
    client.put_manifest(repo, _sha(manifest), manifest, MANIFEST)
    if extra:
        # assay's client will not index a manifest it cannot parse; an attacker writes the
        # referrers fallback tag (sha256-HEX) directly.
        tag = IMAGE_DIGEST.replace(":", "-")
        index = client.get_manifest(repo, tag).json()
        index["manifests"].append(
            {
                "mediaType": MANIFEST,
                "digest": _sha(manifest),
                "size": len(manifest),
                "artifactType": BUNDLE_TYPE,
            }
        )
        raw = json.dumps(index).encode()
        client.put_manifest(repo, tag, raw, "application/vnd.oci.image.index.v1+json")


BUNDLE_TYPE = _bundle.BUNDLE_MEDIA_TYPE
HOSTILE_BUNDLES = [
    b'{"mediaType":"' + BUNDLE_TYPE.encode() + b'","x":' + _deep(600).encode() + b"}",
    json.dumps({"mediaType": BUNDLE_TYPE, "verificationMaterial": 5}).encode(),
    json.dumps(
        {"mediaType": BUNDLE_TYPE, "verificationMaterial": {"publicKey": 5}, "dsseEnvelope": "x"}
    ).encode(),
    json.dumps(
        {
            "mediaType": BUNDLE_TYPE,
            "verificationMaterial": {"publicKey": {"hint": []}},
            "dsseEnvelope": {"payload": 5, "payloadType": [], "signatures": "x"},
        }
    ).encode(),
    json.dumps(
        {
            "mediaType": BUNDLE_TYPE,
            "verificationMaterial": {"publicKey": {}},
            "dsseEnvelope": {"payload": "e30=", "payloadType": "x", "signatures": [{"sig": 5}]},
        }
    ).encode(),
    b'{"mediaType":"' + BUNDLE_TYPE.encode() + b'","n":' + b"9" * 5000 + b"}",
]


@pytest.fixture(scope="module")
def signer() -> keys.SigningKey:
    pem, _ = keys.generate_keypair(b"")
    return keys.load_private_key(pem, b"")


def _poison(client: RegistryClient, repo: str) -> None:
    for i, raw in enumerate(HOSTILE_BUNDLES):
        _hostile_referrer(client, repo, raw, extra=_deep(600) if i == 1 else "")
    # and hostile layers appended to the .att and .sig manifests, next to the valid ones
    for kind in ("att", "sig"):
        _poison_tag(client, repo, cosign_tag(IMAGE_DIGEST, kind))


def _poison_tag(client: RegistryClient, repo: str, tag: str) -> None:
    try:
        doc = client.get_manifest(repo, tag).json()
    except NotFoundError:
        return
    for blob in (_deep(600).encode(), b'{"payload": 5, "payloadType": [], "signatures": "x"}'):
        client.upload_blob(repo, _sha(blob), len(blob), blob)
        doc["layers"].append(
            {
                "mediaType": "application/vnd.dsse.envelope.v1+json",
                "digest": _sha(blob),
                "size": len(blob),
                "annotations": {"dev.cosignproject.cosign/signature": ""},
            }
        )
    raw = json.dumps(doc).encode()
    client.put_manifest(repo, tag, raw, MANIFEST)


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["assay", *args], capture_output=True, text=True, cwd=cwd, env=dict(os.environ), timeout=300
    )


def test_hostile_referrers_are_skipped_and_valid_attestation_verifies(
    registry: Any, client: RegistryClient, signer: keys.SigningKey, tmp_path: Path
) -> None:
    repo = "hostile/" + uuid.uuid4().hex[:10]
    _push_image(client, repo)
    target = remote.parse_image_ref(f"{registry.host}/{repo}:v1")
    predicate = json.dumps({"buildDefinition": {"buildType": "x"}, "runDetails": {}}).encode()
    remote.attest_image(client, target, signer, "slsaprovenance1", predicate)
    remote.sign_image(client, target, signer)
    _poison(client, repo)
    assert len(client.referrers(repo, IMAGE_DIGEST)) == 2 + len(HOSTILE_BUNDLES)

    _, atts = remote.verify_image_attestations(client, target, signer.public, None)
    # the same statement from the .att tag and the bundle referrer (one de-duplicated result)
    assert sorted(src for a in atts for src in a.source.split("+")) == [
        "cosign-att",
        "referrer-bundle",
    ]
    _, sigs = remote.verify_image(client, target, signer.public)
    assert len(sigs) == 1

    (tmp_path / "cosign.pub").write_bytes(signer.public.pem())
    proc = _cli(
        "verify-attestation", f"{registry.host}/{repo}:v1", "--key", "cosign.pub", cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "skipping" in proc.stderr  # each hostile candidate is named in a warning


def test_only_hostile_evidence_fails_closed(
    registry: Any, client: RegistryClient, signer: keys.SigningKey, tmp_path: Path
) -> None:
    repo = "hostile/" + uuid.uuid4().hex[:10]
    _push_image(client, repo)
    target = remote.parse_image_ref(f"{registry.host}/{repo}:v1")
    _poison(client, repo)
    with pytest.raises(VerificationError, match="no valid attestation"):
        remote.verify_image_attestations(client, target, signer.public, None)
    with pytest.raises(VerificationError):
        remote.verify_image(client, target, signer.public)

    (tmp_path / "cosign.pub").write_bytes(signer.public.pem())
    for cmd in ("verify-attestation", "verify"):
        proc = _cli(cmd, f"{registry.host}/{repo}:v1", "--key", "cosign.pub", cwd=tmp_path)
        assert proc.returncode == 1, proc.stderr
        errors = [line for line in proc.stderr.splitlines() if line.startswith("assay: error")]
        assert len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr
