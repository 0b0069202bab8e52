"""Byte-level formats: simple-signing payload, cosign manifests, DSSE, in-toto, bundles."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest

from assay.attest import bundle, dsse, intoto, keys, simplesigning
from assay.errors import InputError, UsageError, VerificationError
from fixtures.assets import INTEROP

LAYOUT = INTEROP / "skopeo-1.13.3-signed-oci"
IMAGE_DIGEST = "sha256:fad65fdb808f280a8c7dad07c8c94112c5620f8991b1a42af64760a820b0c178"
SIG_MANIFEST = "sha256:72222d17ce07d2aa0a9d2a18d294da3a48c6a76fb1ca8f089bb7f07112f88572"


def _blob(digest: str) -> bytes:
    path = LAYOUT / "blobs" / "sha256" / digest.split(":", 1)[1]
    if not path.exists():
        pytest.fail(f"interop vector {path} is missing")
    return path.read_bytes()


def test_payload_bytes_match_containers_image() -> None:
    layers = simplesigning.parse_signature_manifest(_blob(SIG_MANIFEST))
    assert len(layers) == 1
    skopeo_payload = _blob(layers[0].digest)
    parsed = simplesigning.parse_payload(skopeo_payload)
    ours = simplesigning.build_payload(
        parsed.docker_reference, parsed.manifest_digest, parsed.optional
    )
    assert ours == skopeo_payload


def test_payload_field_order_and_names() -> None:
    raw = simplesigning.build_payload(
        "localhost:5000/a/b", IMAGE_DIGEST, {"timestamp": 5, "creator": "assay"}
    )
    assert raw == (
        b'{"critical":{"identity":{"docker-reference":"localhost:5000/a/b"},'
        b'"image":{"docker-manifest-digest":"' + IMAGE_DIGEST.encode() + b'"},'
        b'"type":"cosign container image signature"},'
        b'"optional":{"creator":"assay","timestamp":5}}'
    )
    # cosign writes "optional":null when there are no annotations
    assert simplesigning.build_payload("r", IMAGE_DIGEST).endswith(b'"optional":null}')


def test_skopeo_signature_verifies_with_its_key() -> None:
    public = keys.load_public_key((INTEROP / "skopeo-1.13.3-cosign.pub").read_bytes())
    layer = simplesigning.parse_signature_manifest(_blob(SIG_MANIFEST))[0]
    assert layer.media_type == simplesigning.SIMPLESIGNING_MEDIA_TYPE
    sig = simplesigning.decode_signature_b64(layer.annotations[simplesigning.SIGNATURE_ANNOTATION])
    payload = _blob(layer.digest)
    public.verify(sig, payload)
    with pytest.raises(VerificationError, match="does not verify"):
        public.verify(sig, payload.replace(b"5.26.2", b"5.26.3"))


@pytest.mark.parametrize("value", ["%%%notbase64", "MEYCIQ", ""])
def test_bad_signature_annotation(value: str) -> None:
    with pytest.raises(VerificationError):
        simplesigning.decode_signature_b64(value)


def test_signature_manifest_shape() -> None:
    layer = simplesigning.SignedLayer(
        simplesigning.SIMPLESIGNING_MEDIA_TYPE,
        "sha256:" + "a" * 64,
        10,
        {simplesigning.SIGNATURE_ANNOTATION: "c2ln"},
    )
    manifest, config = simplesigning.signature_manifest([layer])
    doc = json.loads(manifest)
    assert doc["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert doc["config"]["mediaType"] == "application/vnd.oci.image.config.v1+json"
    assert doc["config"]["digest"] == "sha256:" + hashlib.sha256(config).hexdigest()
    assert json.loads(config)["rootfs"] == {"type": "layers", "diff_ids": [layer.digest]}
    assert doc["layers"][0]["annotations"] == {"dev.cosignproject.cosign/signature": "c2ln"}
    second = simplesigning.SignedLayer(layer.media_type, "sha256:" + "b" * 64, 3, {})
    assert simplesigning.append_layer([layer], second) == [layer, second]
    assert simplesigning.append_layer([layer], layer) == [layer]
    assert simplesigning.cosign_tag(IMAGE_DIGEST, "sig") == (
        "sha256-fad65fdb808f280a8c7dad07c8c94112c5620f8991b1a42af64760a820b0c178.sig"
    )


def test_pae_matches_the_spec_example() -> None:
    # DSSE spec protocol.md: PAE("http://example.com/HelloWorld", "hello world")
    assert dsse.pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


def test_envelope_round_trip_and_type_check() -> None:
    signing = keys.load_private_key(keys.generate_keypair(b"")[0], b"")
    env = dsse.sign_envelope(signing, b'{"a":1}')
    raw = env.to_json()
    assert raw.startswith(b'{"payloadType":"application/vnd.in-toto+json","payload":"')
    assert b'"signatures":[{"keyid":"","sig":"' in raw
    back = dsse.Envelope.from_json(raw)
    assert back.verify(signing.public) == b'{"a":1}'
    changed = dsse.Envelope("application/json", back.payload, back.signatures)
    with pytest.raises(VerificationError, match="DSSE payload type is 'application/json'"):
        changed.verify(signing.public)
    tampered = dsse.Envelope(back.payload_type, b'{"a":2}', back.signatures)
    with pytest.raises(VerificationError, match="does not verify"):
        tampered.verify(signing.public)


def test_predicate_aliases() -> None:
    assert intoto.resolve_predicate_type("slsaprovenance1") == "https://slsa.dev/provenance/v1"
    assert intoto.resolve_predicate_type("spdxjson") == "https://spdx.dev/Document"
    assert intoto.resolve_predicate_type("cyclonedx") == "https://cyclonedx.org/bom"
    assert intoto.resolve_predicate_type("openvex") == "https://openvex.dev/ns"
    assert (
        intoto.resolve_predicate_type("vuln") == "https://cosign.sigstore.dev/attestation/vuln/v1"
    )
    assert intoto.resolve_predicate_type("custom") == "https://cosign.sigstore.dev/attestation/v1"
    assert intoto.resolve_predicate_type("https://example.com/p/v1") == "https://example.com/p/v1"
    with pytest.raises(UsageError):
        intoto.resolve_predicate_type("nonsense")


def test_statement_shape() -> None:
    raw = intoto.build_statement(
        "localhost:5000/a", "ab" * 32, "slsaprovenance1", b'{"b":1,"a":2}', timestamp="T"
    )
    doc = json.loads(raw)
    assert list(doc) == ["_type", "subject", "predicateType", "predicate"]
    assert doc["_type"] == "https://in-toto.io/Statement/v1"
    assert doc["subject"] == [{"name": "localhost:5000/a", "digest": {"sha256": "ab" * 32}}]
    st = intoto.parse_statement(raw)
    assert st.subjects == (("localhost:5000/a", "ab" * 32),)
    custom = json.loads(intoto.build_statement("n", "ab" * 32, "custom", b"text", timestamp="T"))
    assert custom["predicate"] == {"Data": "text", "Timestamp": "T"}
    with pytest.raises(VerificationError, match="_type"):
        intoto.parse_statement(b'{"_type":"x","subject":[],"predicateType":"p"}')


def test_key_bundle_and_referrer_manifest() -> None:
    signing = keys.load_private_key(keys.generate_keypair(b"")[0], b"")
    env = dsse.sign_envelope(signing, b"{}")
    raw = bundle.build_key_bundle(env, signing.public)
    doc = bundle.parse_bundle(raw)
    assert doc["mediaType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"
    hint = base64.b64encode(hashlib.sha256(signing.public.der()).digest()).decode()
    assert doc["verificationMaterial"]["publicKey"] == {"hint": hint}
    assert bundle.verify_bundle_with_key(doc, signing.public).payload == b"{}"
    manifest = json.loads(
        bundle.bundle_referrer_manifest(
            raw,
            "application/vnd.oci.image.manifest.v1+json",
            IMAGE_DIGEST,
            345,
            predicate_type="https://slsa.dev/provenance/v1",
            created="2026-01-01T00:00:00Z",
        )
    )
    assert manifest["artifactType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"
    assert manifest["config"] == {
        "mediaType": "application/vnd.oci.empty.v1+json",
        "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
        "size": 2,
    }
    assert manifest["subject"]["digest"] == IMAGE_DIGEST
    assert manifest["layers"][0]["mediaType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"
    assert manifest["annotations"]["dev.sigstore.bundle.content"] == "dsse-envelope"
    assert manifest["annotations"]["dev.sigstore.bundle.predicateType"] == (
        "https://slsa.dev/provenance/v1"
    )


def test_go_json_escapes_like_go() -> None:
    from assay.attest._gojson import go_json

    assert go_json({"b": "<&>", "a": "é\u2028"}) == (
        b'{"b":"\\u003c\\u0026\\u003e","a":"\xc3\xa9\\u2028"}'
    )
    assert go_json({"b": 1, "a": 2}, sort_keys=True) == b'{"a":2,"b":1}'


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"not json", "not valid JSON"),
        (b"[]", "not a JSON object"),
        (b'{"payloadType":"t","payload":"e30=","signatures":[]}', "no signatures"),
        (b'{"payload":"e30=","signatures":[{"sig":"AA=="}]}', "no payloadType"),
        (b'{"payloadType":"t","payload":"%%","signatures":[{"sig":"AA=="}]}', "payload is not"),
        (b'{"payloadType":"t","payload":"e30=","signatures":[{"sig":7}]}', "signature is missing"),
        (
            b'{"payloadType":"t","payload":"e30=","signatures":['
            + b",".join([b'{"sig":"AA=="}'] * 65)
            + b"]}",
            "refusing over 64",
        ),
    ],
)
def test_hostile_envelopes_refused(raw: bytes, message: str) -> None:
    with pytest.raises(VerificationError, match=message):
        dsse.Envelope.from_json(raw)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"{", "not valid JSON"),
        (b'{"critical":{"type":"other"}}', "payload type is 'other'"),
        (
            b'{"critical":{"type":"cosign container image signature","identity":'
            b'{"docker-reference":"r"},"image":{"docker-manifest-digest":"sha256:AB"}}}',
            "docker-manifest-digest",
        ),
        (b"x" * (1 << 21), "refusing over 1 MiB"),
    ],
)
def test_hostile_payloads_refused(raw: bytes, message: str) -> None:
    with pytest.raises(VerificationError, match=message):
        simplesigning.parse_payload(raw)


def test_hostile_signature_manifests_refused() -> None:
    layer = {"mediaType": "m", "digest": "sha256:" + "a" * 64, "size": 1}
    too_many = json.dumps({"layers": [layer] * 1001}).encode()
    with pytest.raises(VerificationError, match="refusing over 1000"):
        simplesigning.parse_signature_manifest(too_many)
    # A malformed layer is skipped (with a warning); the well-formed ones still count.
    bad_digest = json.dumps({"layers": [{**layer, "digest": "sha256:../../x"}, layer]}).encode()
    assert [x.digest for x in simplesigning.parse_signature_manifest(bad_digest)] == [
        layer["digest"]
    ]
    with pytest.raises(VerificationError, match="no 'layers'"):
        simplesigning.parse_signature_manifest(b"{}")


def test_bundle_media_type_and_material_checked() -> None:
    with pytest.raises(VerificationError, match="unsupported mediaType"):
        bundle.parse_bundle(b'{"mediaType":"application/json","verificationMaterial":{}}')
    with pytest.raises(VerificationError, match="no verificationMaterial"):
        bundle.parse_bundle(b'{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}')
    signing = keys.load_private_key(keys.generate_keypair(b"")[0], b"")
    keyless_doc = {
        "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "verificationMaterial": {"certificate": {"rawBytes": ""}},
        "dsseEnvelope": {},
    }
    with pytest.raises(VerificationError, match="keyless"):
        bundle.verify_bundle_with_key(keyless_doc, signing.public)


# ----------------------------------------------------------------------------- --predicate files


def test_predicate_from_a_whole_statement_is_its_predicate() -> None:
    from assay.attest.intoto import predicate_from_file

    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "index", "digest": {"sha256": "ab" * 32}}],
        "predicateType": "https://slsa.dev/provenance/v1",
        "predicate": {"buildDefinition": {"buildType": "x"}, "runDetails": {}},
    }
    raw = json.dumps(statement).encode()
    got = predicate_from_file(raw, None, "p.json")
    assert got.from_statement == "https://slsa.dev/provenance/v1"
    assert got.predicate_type == "https://slsa.dev/provenance/v1"
    assert json.loads(got.data) == statement["predicate"]
    assert predicate_from_file(raw, "slsaprovenance1", "p.json").data == got.data
    with pytest.raises(InputError, match=r"Statement of type https://slsa\.dev/provenance/v1"):
        predicate_from_file(raw, "spdxjson", "p.json")
    v01 = dict(statement, _type="https://in-toto.io/Statement/v0.1")
    assert predicate_from_file(json.dumps(v01).encode(), None, "p").data == got.data
    with pytest.raises(InputError, match="unknown version"):
        predicate_from_file(
            json.dumps(dict(statement, _type="https://in-toto.io/Statement/v9")).encode(), None, "p"
        )
    with pytest.raises(InputError, match="without a predicateType"):
        predicate_from_file(json.dumps(dict(statement, predicate=[1])).encode(), None, "p")
    custom = dict(
        statement,
        predicateType="https://cosign.sigstore.dev/attestation/v1",
        predicate={"Data": "hello\n", "Timestamp": "2024-01-01T00:00:00Z"},
    )
    assert predicate_from_file(json.dumps(custom).encode(), None, "p").data == b"hello\n"


def test_bare_predicates_are_taken_as_they_are() -> None:
    from assay.attest.intoto import predicate_from_file

    for raw in (b'{"@context": "https://openvex.dev/ns/v0.2.0"}', b"not json {", b"{broken"):
        got = predicate_from_file(raw, None, "p")
        assert (got.data, got.predicate_type, got.from_statement) == (raw, "custom", None)
    assert predicate_from_file(b"{}", "openvex", "p").predicate_type == "openvex"


def test_attestations_found_twice_are_counted_once() -> None:
    from assay.attest.remote import dedupe_attestations
    from assay.attest.verify import VerifiedAttestation

    a = VerifiedAttestation("sha256:" + "1" * 64, "t", "cosign-att", {"x": 1}, "sha256:aa")
    b = VerifiedAttestation("sha256:" + "1" * 64, "t", "referrer-bundle", {"x": 1}, "sha256:aa")
    c = VerifiedAttestation("sha256:" + "1" * 64, "t", "referrer-bundle", {"x": 2}, "sha256:bb")
    out = dedupe_attestations([a, b, c, b])
    assert [(x.source, x.payload_digest) for x in out] == [
        ("cosign-att+referrer-bundle", "sha256:aa"),
        ("referrer-bundle", "sha256:bb"),
    ]
