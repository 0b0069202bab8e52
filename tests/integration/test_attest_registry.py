"""Signing, attesting and verifying against a real docker-registry on 127.0.0.1.

Covers the interop vectors (skopeo-signed image), the round trip and the tamper matrix.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from typing import Any

import pytest

from assay.attest import keys, remote, simplesigning
from assay.attest.simplesigning import SIGNATURE_ANNOTATION, cosign_tag
from assay.errors import VerificationError
from assay.oci.registry import RegistryClient
from fixtures.assets import INTEROP

LAYOUT = INTEROP / "skopeo-1.13.3-signed-oci"
IMAGE_DIGEST = "sha256:fad65fdb808f280a8c7dad07c8c94112c5620f8991b1a42af64760a820b0c178"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def _interop(name: str) -> bytes:
    path = INTEROP / name
    if not path.exists():
        pytest.fail(f"interop vector {path} is missing")
    return path.read_bytes()


def _layout_blob(digest: str) -> bytes:
    return (LAYOUT / "blobs" / "sha256" / digest.split(":", 1)[1]).read_bytes()


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def push_manifest_tree(client: RegistryClient, repo: str, manifest: bytes, tag: str) -> str:
    doc = json.loads(manifest)
    for desc in [doc["config"], *doc["layers"]]:
        blob = _layout_blob(desc["digest"])
        client.upload_blob(repo, desc["digest"], len(blob), blob)
    return client.put_manifest(repo, tag, manifest, MANIFEST)


def _one_byte_more() -> bytes:
    """The skopeo image manifest with one byte more: the same image under another digest."""
    return _layout_blob(IMAGE_DIGEST).replace(b'"schemaVersion":2', b'"schemaVersion": 2')


def push_interop(client: RegistryClient, repo: str) -> None:
    """Push both manifests of the skopeo layout with their tags, exactly as they are."""
    index = json.loads((LAYOUT / "index.json").read_bytes())
    for desc in index["manifests"]:
        manifest = _layout_blob(desc["digest"])
        tag = desc["annotations"]["org.opencontainers.image.ref.name"]
        assert push_manifest_tree(client, repo, manifest, tag) == desc["digest"]


@pytest.fixture()
def repo() -> str:
    return "attest/" + uuid.uuid4().hex[:10]


@pytest.fixture(scope="module")
def skopeo_pub() -> keys.PublicKey:
    return keys.load_public_key(_interop("skopeo-1.13.3-cosign.pub"))


@pytest.fixture(scope="module")
def signer() -> keys.SigningKey:
    pem, _ = keys.generate_keypair(b"")
    return keys.load_private_key(pem, b"")


def ref(registry: Any, repo: str, suffix: str = ":v1") -> remote.ImageRef:
    return remote.parse_image_ref(f"{registry.host}/{repo}{suffix}")


# ----------------------------------------------------------------------------- interop


def test_skopeo_signed_image_verifies(
    registry: Any, client: RegistryClient, repo: str, skopeo_pub: keys.PublicKey
) -> None:
    push_interop(client, repo)
    image, sigs = remote.verify_image(client, ref(registry, repo), skopeo_pub)
    assert image.digest == IMAGE_DIGEST
    assert len(sigs) == 1
    assert sigs[0].payload["critical"]["image"]["docker-manifest-digest"] == IMAGE_DIGEST
    assert sigs[0].docker_reference == "localhost:5099/interop/hello:v1"


def test_skopeo_signed_image_fails_with_another_key(
    registry: Any, client: RegistryClient, repo: str, signer: keys.SigningKey
) -> None:
    push_interop(client, repo)
    with pytest.raises(VerificationError, match="does not verify with the given public key"):
        remote.verify_image(client, ref(registry, repo), signer.public)


def test_skopeo_key_signs_and_verifies(
    registry: Any, client: RegistryClient, repo: str, skopeo_pub: keys.PublicKey
) -> None:
    push_interop(client, repo)
    skopeo_key = keys.load_private_key(
        _interop("skopeo-1.13.3-cosign.key"), _interop("skopeo-1.13.3-cosign.password")
    )
    # sign a second, unsigned image with the decrypted skopeo key
    manifest = _one_byte_more()
    push_manifest_tree(client, repo, manifest, "v2")
    result = remote.sign_image(client, ref(registry, repo, ":v2"), skopeo_key)
    assert result.added
    image, sigs = remote.verify_image(client, ref(registry, repo, ":v2"), skopeo_pub)
    assert image.digest == _sha(manifest)
    assert sigs[0].payload["optional"]["creator"].startswith("assay ")
    # a second signer appends a layer; the skopeo signature on v1 still verifies
    other_pem, other_pub = keys.generate_keypair(b"")
    remote.sign_image(client, ref(registry, repo), keys.load_private_key(other_pem, b""))
    sig_manifest = client.get_manifest(repo, cosign_tag(IMAGE_DIGEST, "sig")).json()
    assert len(sig_manifest["layers"]) == 2
    remote.verify_image(client, ref(registry, repo), skopeo_pub)
    remote.verify_image(client, ref(registry, repo), keys.load_public_key(other_pub))
    # re-signing with a key that already signed adds nothing
    assert not remote.sign_image(client, ref(registry, repo), skopeo_key).added


@pytest.mark.parametrize("what", ["payload", "signature"])
def test_skopeo_signature_tampered_fails(
    registry: Any, client: RegistryClient, repo: str, skopeo_pub: keys.PublicKey, what: str
) -> None:
    push_interop(client, repo)

    def flip_sig(b64: str) -> str:
        raw = bytearray(base64.b64decode(b64))
        raw[-1] ^= 0x01
        return base64.b64encode(bytes(raw)).decode()

    if what == "payload":
        _rewrite_sig_layer(
            client, repo, IMAGE_DIGEST, payload=lambda b: b.replace(b"5.26.2", b"5.26.3")
        )
    else:
        _rewrite_sig_layer(client, repo, IMAGE_DIGEST, sig=flip_sig)
    with pytest.raises(VerificationError, match="does not verify with the given public key"):
        remote.verify_image(client, ref(registry, repo), skopeo_pub)


def test_sign_recursive_index_over_skopeo_signed_manifest(
    registry: Any,
    client: RegistryClient,
    repo: str,
    skopeo_pub: keys.PublicKey,
    signer: keys.SigningKey,
) -> None:
    """``sign --recursive`` of an index whose platform manifest skopeo 1.13 signed: assay's
    signature is appended beside skopeo's (which still verifies), and the index is signed."""
    push_interop(client, repo)
    manifest = _layout_blob(IMAGE_DIGEST)
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [
                {
                    "mediaType": MANIFEST,
                    "digest": IMAGE_DIGEST,
                    "size": len(manifest),
                    "platform": {"os": "linux", "architecture": "amd64"},
                }
            ],
        }
    ).encode()
    client.put_manifest(repo, "idx", index, "application/vnd.oci.image.index.v1+json")
    target = ref(registry, repo, ":idx")
    with pytest.raises(VerificationError, match="--recursive"):
        remote.verify_recursive(client, target, lambda c, r: remote.verify_image(c, r, skopeo_pub))
    results = remote.sign_image_recursive(client, target, signer)
    assert [r.image.digest for r in results] == [_sha(index), IMAGE_DIGEST]
    assert all(r.added for r in results)
    sig_manifest = client.get_manifest(repo, cosign_tag(IMAGE_DIGEST, "sig")).json()
    assert len(sig_manifest["layers"]) == 2  # skopeo's layer kept, assay's appended
    _, sigs = remote.verify_image(client, ref(registry, repo), skopeo_pub)
    assert sigs[0].docker_reference == "localhost:5099/interop/hello:v1"
    image, checked = remote.verify_recursive(
        client, target, lambda c, r: remote.verify_image(c, r, signer.public)
    )
    assert image.digest == _sha(index)
    assert [(c.subject.label, c.subject.image.digest) for c in checked] == [
        ("index", _sha(index)),
        ("linux/amd64", IMAGE_DIGEST),
    ]
    # skopeo's key signed the platform manifest only: that platform passes, the whole does not
    _, one = remote.verify_recursive(
        client,
        target,
        lambda c, r: remote.verify_image(c, r, skopeo_pub),
        platform="linux/amd64",
    )
    assert [c.subject.image.digest for c in one] == [IMAGE_DIGEST]
    with pytest.raises(VerificationError, match="index: "):
        remote.verify_recursive(client, target, lambda c, r: remote.verify_image(c, r, skopeo_pub))


# ----------------------------------------------------------------------------- round trip


def test_round_trip_sign_attest_verify(
    registry: Any, client: RegistryClient, repo: str, signer: keys.SigningKey
) -> None:
    push_manifest_tree(client, repo, _layout_blob(IMAGE_DIGEST), "v1")
    target = ref(registry, repo)
    remote.sign_image(client, target, signer)
    image, sigs = remote.verify_image(client, target, signer.public)
    assert sigs[0].payload["critical"]["identity"]["docker-reference"] == f"{registry.host}/{repo}"
    # the stored signature is cosign's layout, and the payload bytes are cosign's serialisation
    sig_doc = client.get_manifest(repo, cosign_tag(image.digest, "sig")).json()
    assert sig_doc["mediaType"] == MANIFEST
    (sig_layer,) = sig_doc["layers"]
    assert sig_layer["mediaType"] == "application/vnd.dev.cosign.simplesigning.v1+json"
    assert list(sig_layer["annotations"]) == ["dev.cosignproject.cosign/signature"]
    stored = client.get_blob(repo, sig_layer["digest"])
    assert stored == simplesigning.build_payload(
        f"{registry.host}/{repo}", image.digest, sigs[0].payload["optional"]
    )
    assert list(sigs[0].payload["optional"]) == ["creator", "timestamp"]
    assert isinstance(sigs[0].payload["optional"]["timestamp"], int)
    predicate = json.dumps({"buildDefinition": {"buildType": "x"}, "runDetails": {}}).encode()
    remote.attest_image(client, target, signer, "slsaprovenance1", predicate)
    _, atts = remote.verify_image_attestations(client, target, signer.public, "slsaprovenance1")
    # one attestation, found in both places (de-duplicated by the signed statement's digest)
    assert [a.source for a in atts] == ["cosign-att+referrer-bundle"]
    for att in atts:
        assert att.statement["subject"][0]["digest"]["sha256"] == IMAGE_DIGEST.split(":")[1]
        assert att.statement["predicate"]["buildDefinition"] == {"buildType": "x"}
    with pytest.raises(VerificationError, match="no valid attestation of type"):
        remote.verify_image_attestations(client, target, signer.public, "spdxjson")
    # the .att layout and the referrer are the formats cosign reads
    att_manifest = client.get_manifest(repo, cosign_tag(image.digest, "att")).json()
    layer = att_manifest["layers"][0]
    assert layer["mediaType"] == "application/vnd.dsse.envelope.v1+json"
    assert layer["annotations"]["predicateType"] == "https://slsa.dev/provenance/v1"
    refs = client.referrers(repo, image.digest)
    assert {r.artifact_type for r in refs} == {"application/vnd.dev.sigstore.bundle.v0.3+json"}
    predicate_types = sorted(
        (r.annotations or {})["dev.sigstore.bundle.predicateType"] for r in refs
    )
    assert predicate_types == [
        "https://sigstore.dev/cosign/sign/v1",
        "https://slsa.dev/provenance/v1",
    ]


def test_v3_bundle_signature_verifies_without_legacy_sig(
    registry: Any, client: RegistryClient, repo: str, signer: keys.SigningKey
) -> None:
    """cosign v3's layout alone (no .sig tag): the signature bundle referrer verifies."""
    push_manifest_tree(client, repo, _layout_blob(IMAGE_DIGEST), "v1")
    remote.sign_image(client, ref(registry, repo), signer)
    client.delete_manifest(repo, client.get_manifest(repo, cosign_tag(IMAGE_DIGEST, "sig")).digest)
    image, sigs = remote.verify_image(client, ref(registry, repo), signer.public)
    assert [s.payload["critical"]["type"] for s in sigs] == ["https://sigstore.dev/cosign/sign/v1"]
    assert sigs[0].payload["critical"]["image"]["docker-manifest-digest"] == image.digest
    wrong = keys.load_public_key(keys.generate_keypair(b"")[1])
    with pytest.raises(VerificationError, match="does not verify with the given public key"):
        remote.verify_image(client, ref(registry, repo), wrong)
    # an attestation bundle is not a signature
    other_repo = repo + "-att"
    push_manifest_tree(client, other_repo, _layout_blob(IMAGE_DIGEST), "v1")
    remote.attest_image(client, ref(registry, other_repo), signer, "custom", b"x")
    with pytest.raises(VerificationError, match="no cosign signatures found"):
        remote.verify_image(client, ref(registry, other_repo), signer.public)


# ----------------------------------------------------------------------------- tamper matrix


def _signed(registry: Any, client: RegistryClient, repo: str, signer: keys.SigningKey) -> None:
    """An image signed in cosign's legacy .sig layout only (no v3 bundle to fall back on)."""
    push_manifest_tree(client, repo, _layout_blob(IMAGE_DIGEST), "v1")
    remote.sign_image(client, ref(registry, repo), signer, referrer=False)


def _rewrite_sig_layer(
    client: RegistryClient, repo: str, digest: str, *, payload: Any = None, sig: Any = None
) -> None:
    """Replace the one signature layer's payload and/or signature annotation."""
    tag = cosign_tag(digest, "sig")
    doc = client.get_manifest(repo, tag).json()
    layer = doc["layers"][0]
    if payload is not None:
        old = client.get_blob(repo, layer["digest"])
        new = payload(old)
        client.upload_blob(repo, _sha(new), len(new), new)
        layer["digest"], layer["size"] = _sha(new), len(new)
    if sig is not None:
        layer["annotations"][SIGNATURE_ANNOTATION] = sig(layer["annotations"][SIGNATURE_ANNOTATION])
    client.put_manifest(repo, tag, json.dumps(doc).encode(), MANIFEST)


def test_tamper_wrong_key(
    registry: Any, client: RegistryClient, repo: str, signer: keys.SigningKey
) -> None:
    _signed(registry, client, repo, signer)
    wrong = keys.load_public_key(keys.generate_keypair(b"")[1])
    with pytest.raises(VerificationError, match="does not verify with the given public key"):
        remote.verify_image(client, ref(registry, repo), wrong)


def _flip_s_byte(b64: str) -> str:
    raw = bytearray(base64.b64decode(b64))
    raw[-3] ^= 0x01  # inside the S integer: still DER, wrong value
    return base64.b64encode(bytes(raw)).decode()


@pytest.mark.parametrize(
    ("rewrite", "message"),
    [
        pytest.param(
            {"payload": lambda b: b.replace(b"assay", b"assaz")},
            "signed payload or signature was altered",
            id="payload-byte",
        ),
        pytest.param({"sig": _flip_s_byte}, "does not verify", id="signature-byte"),
        pytest.param(
            {"sig": lambda s: base64.b64encode(base64.b64decode(s)[:40]).decode()},
            r"not a valid ASN\.1 DER ECDSA signature",
            id="truncated-signature",
        ),
        pytest.param(
            {"sig": lambda s: s[:-6] + "!!*%$#"}, "not valid base64", id="non-base64-signature"
        ),
    ],
)
def test_tamper_signature_layer(
    registry: Any,
    client: RegistryClient,
    repo: str,
    signer: keys.SigningKey,
    rewrite: dict[str, Any],
    message: str,
) -> None:
    _signed(registry, client, repo, signer)
    _rewrite_sig_layer(client, repo, IMAGE_DIGEST, **rewrite)
    with pytest.raises(VerificationError, match=message):
        remote.verify_image(client, ref(registry, repo), signer.public)


def test_tamper_image_manifest_byte(
    registry: Any, client: RegistryClient, repo: str, signer: keys.SigningKey
) -> None:
    _signed(registry, client, repo, signer)
    # one byte more in the image manifest, pushed over the signed tag
    changed = _one_byte_more()
    push_manifest_tree(client, repo, changed, "v1")
    with pytest.raises(VerificationError, match="no cosign signatures found"):
        remote.verify_image(client, ref(registry, repo), signer.public)


def test_tamper_signature_for_other_digest_copied(
    registry: Any, client: RegistryClient, repo: str, signer: keys.SigningKey
) -> None:
    _signed(registry, client, repo, signer)
    other = _one_byte_more()
    other_digest = push_manifest_tree(client, repo, other, "v2")
    sig_manifest = client.get_manifest(repo, cosign_tag(IMAGE_DIGEST, "sig")).data
    client.put_manifest(repo, cosign_tag(other_digest, "sig"), sig_manifest, MANIFEST)
    with pytest.raises(
        VerificationError, match=r"was made for sha256:fad65fdb.*copied from another"
    ):
        remote.verify_image(client, ref(registry, repo, ":v2"), signer.public)


def test_tamper_attestation_subject_other_digest(
    registry: Any, client: RegistryClient, repo: str, signer: keys.SigningKey
) -> None:
    push_manifest_tree(client, repo, _layout_blob(IMAGE_DIGEST), "v1")
    other = _one_byte_more()
    other_digest = push_manifest_tree(client, repo, other, "v2")
    remote.attest_image(client, ref(registry, repo), signer, "custom", b"hello", referrer=False)
    att_manifest = client.get_manifest(repo, cosign_tag(IMAGE_DIGEST, "att")).data
    client.put_manifest(repo, cosign_tag(other_digest, "att"), att_manifest, MANIFEST)
    with pytest.raises(VerificationError, match=r"its subject is sha256:fad65fdb.*not this image"):
        remote.verify_image_attestations(client, ref(registry, repo, ":v2"), signer.public, None)


def test_tamper_dsse_payload_type(
    registry: Any, client: RegistryClient, repo: str, signer: keys.SigningKey
) -> None:
    push_manifest_tree(client, repo, _layout_blob(IMAGE_DIGEST), "v1")
    remote.attest_image(client, ref(registry, repo), signer, "custom", b"hello", referrer=False)
    tag = cosign_tag(IMAGE_DIGEST, "att")
    doc = client.get_manifest(repo, tag).json()
    layer = doc["layers"][0]
    env = json.loads(client.get_blob(repo, layer["digest"]))
    env["payloadType"] = "application/json"
    new = json.dumps(env).encode()
    client.upload_blob(repo, _sha(new), len(new), new)
    layer["digest"], layer["size"] = _sha(new), len(new)
    client.put_manifest(repo, tag, json.dumps(doc).encode(), MANIFEST)
    with pytest.raises(VerificationError, match="DSSE payload type is 'application/json'"):
        remote.verify_image_attestations(client, ref(registry, repo), signer.public, None)


class _TamperingProxy:
    """A real HTTP proxy on 127.0.0.1 in front of the registry that alters one byte of every
    manifest it serves by digest (a registry or man-in-the-middle lying about content)."""

    def __init__(self, upstream: str) -> None:
        import contextlib
        import http.server

        import httpx

        from fixtures.httpserve import serving

        upstream_client = httpx.Client(base_url=upstream)

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _relay(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {
                    k: v
                    for k, v in self.headers.items()
                    if k.lower() not in ("host", "content-length")
                }
                resp = upstream_client.request(
                    self.command, self.path, headers=headers, content=body
                )
                data = resp.content
                if "/manifests/sha256:" in self.path and self.command == "GET":
                    data = data.replace(b'"schemaVersion":2', b'"schemaVersion":3')
                self.send_response(resp.status_code)
                for k, v in resp.headers.items():
                    if k.lower() not in ("content-length", "transfer-encoding", "connection"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = _relay

        self._serving = contextlib.ExitStack()
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = self._serving.enter_context(serving(server)).removeprefix("http://")

    def close(self) -> None:
        self._serving.close()


def test_registry_manifest_digest_mismatch_refused(
    registry: Any, client: RegistryClient, repo: str, signer: keys.SigningKey
) -> None:
    """A registry answering a request for digest D with bytes that hash to something else."""
    _signed(registry, client, repo, signer)
    proxy = _TamperingProxy(registry.url)
    try:
        with RegistryClient(proxy.host) as lying:
            target = remote.parse_image_ref(f"{proxy.host}/{repo}@{IMAGE_DIGEST}")
            with pytest.raises(VerificationError, match="does not match the requested"):
                remote.verify_image(lying, target, signer.public)
    finally:
        proxy.close()


# ----------------------------------------------------------------------------- keyless referrers

BEACON = (
    "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/"
    ".github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main"
)
GH_ISSUER = "https://token.actions.githubusercontent.com"


def _attach_keyless_bundle(client: RegistryClient, repo: str) -> None:
    from assay.attest.bundle import EMPTY_CONFIG, bundle_referrer_manifest

    raw = _interop("sigstore-python-bundles/a.dsse.staging-rekor-v2.txt.sigstore.json")
    client.upload_blob(repo, _sha(raw), len(raw), raw)
    client.upload_blob(repo, _sha(EMPTY_CONFIG), len(EMPTY_CONFIG), EMPTY_CONFIG)
    manifest = bundle_referrer_manifest(
        raw,
        MANIFEST,
        IMAGE_DIGEST,
        len(_layout_blob(IMAGE_DIGEST)),
        predicate_type="https://slsa.dev/provenance/v1",
        created="2026-01-01T00:00:00Z",
    )
    client.put_manifest(repo, _sha(manifest), manifest, MANIFEST)


def test_keyless_referrer_bundle_for_another_subject_rejected(
    registry: Any, client: RegistryClient, repo: str
) -> None:
    """A genuine keyless bundle (staging) attached to an image it does not describe."""
    push_manifest_tree(client, repo, _layout_blob(IMAGE_DIGEST), "v1")
    _attach_keyless_bundle(client, repo)
    target = ref(registry, repo)
    # the bundle itself verifies (staging root, right identity) but names a.txt, not the image
    with pytest.raises(VerificationError, match=r"its subject is sha256:a0cfc712.*not this image"):
        remote.verify_image_keyless(client, target, identity=BEACON, issuer=GH_ISSUER, staging=True)
    with pytest.raises(VerificationError, match="keyless verification failed"):
        remote.verify_image_keyless(
            client, target, identity="https://example.com/other", issuer=GH_ISSUER, staging=True
        )
    # production trust root does not accept a staging bundle
    with pytest.raises(VerificationError, match="keyless verification failed"):
        remote.verify_image_keyless(client, target, identity=BEACON, issuer=GH_ISSUER)
    # and key-based attestation verification ignores keyless bundles: nothing verified
    wrong = keys.load_public_key(keys.generate_keypair(b"")[1])
    with pytest.raises(VerificationError, match="no valid attestation"):
        remote.verify_image_attestations(client, target, wrong, None)
