"""Verification of cosign signatures and attestations, at the level of bytes already fetched.

Every check fails closed: a layer counts as verified only when all of these hold —
the layer has the expected media type; its signature decodes; the signature verifies with the
key over the exact payload bytes; the payload (or in-toto statement) names the image's digest.
The registry side (``assay.attest.remote``) fetches bytes and calls these functions.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from assay._json import load_json_object
from assay.attest.dsse import INTOTO_PAYLOAD_TYPE, Envelope
from assay.attest.intoto import MAX_STATEMENT, Statement, parse_statement
from assay.attest.keys import PublicKey
from assay.attest.simplesigning import (
    ATTESTATION_LAYER_MEDIA_TYPE,
    SIGNATURE_ANNOTATION,
    SIMPLESIGNING_MEDIA_TYPE,
    SignedLayer,
    decode_signature_b64,
    parse_payload,
)
from assay.errors import VerificationError

__all__ = [
    "VerifiedAttestation",
    "VerifiedSignature",
    "check_attestation_envelope",
    "check_signature_layer",
    "check_statement_subject",
    "summarise_failures",
]


@dataclass(frozen=True)
class VerifiedSignature:
    """A simple-signing signature that verified for ``image_digest``."""

    image_digest: str
    docker_reference: str
    layer_digest: str
    payload: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "critical": self.payload.get("critical"),
            "optional": self.payload.get("optional"),
        }


@dataclass(frozen=True)
class VerifiedAttestation:
    """An in-toto statement whose DSSE signature verified and whose subject is the image."""

    image_digest: str
    predicate_type: str
    source: str  # "cosign-att" (sha256-….att tag) or "referrer-bundle" (OCI 1.1 referrer)
    statement: dict[str, Any]
    # sha256 of the signed statement bytes: the same attestation found in both places (the
    # .att tag and a bundle referrer) has the same payload digest and is counted once
    payload_digest: str = ""

    def to_json(self) -> dict[str, Any]:
        return self.statement


def check_signature_layer(
    layer: SignedLayer, payload: bytes, image_digest: str, key: PublicKey
) -> VerifiedSignature:
    """Verify one ``.sig`` layer whose blob is ``payload`` (already digest-checked)."""
    if layer.media_type != SIMPLESIGNING_MEDIA_TYPE:
        raise VerificationError(
            f"layer media type is {layer.media_type!r}, not {SIMPLESIGNING_MEDIA_TYPE!r}"
        )
    signature = decode_signature_b64(layer.annotations.get(SIGNATURE_ANNOTATION))
    key.verify(signature, payload)
    parsed = parse_payload(payload)
    if parsed.manifest_digest != image_digest:
        raise VerificationError(
            f"signature is valid but was made for {parsed.manifest_digest}, not for this image "
            f"({image_digest}); it was copied from another image"
        )
    return VerifiedSignature(image_digest, parsed.docker_reference, layer.digest, parsed.to_json())


def check_statement_subject(statement: Statement, image_digest: str) -> None:
    """The statement must name the image's sha256 digest among its subjects."""
    want = image_digest.split(":", 1)[1]
    if not any(sha == want for _name, sha in statement.subjects):
        named = ", ".join(f"sha256:{sha}" for _n, sha in statement.subjects) or "nothing"
        raise VerificationError(
            f"attestation is signed but its subject is {named}, not this image ({image_digest})"
        )


def check_attestation_envelope(
    envelope: Envelope,
    image_digest: str,
    key: PublicKey,
    source: str,
    known: Mapping[str, VerifiedAttestation] | None = None,
) -> VerifiedAttestation:
    """Verify a DSSE envelope holding an in-toto statement about ``image_digest``.

    ``known``: attestations already verified for this image, by payload digest. The same
    statement found again (the ``.att`` tag and the bundle referrer hold the same one) is not
    parsed a second time: a 10 MB statement costs ~350 MB parsed, and two copies alive at once
    went over the 512 MB bound.
    """
    if envelope.payload_type != INTOTO_PAYLOAD_TYPE:
        raise VerificationError(
            f"DSSE payload type is {envelope.payload_type!r}, expected {INTOTO_PAYLOAD_TYPE!r}"
        )
    payload = envelope.verify(key)
    digest = "sha256:" + hashlib.sha256(payload).hexdigest()
    same = (known or {}).get(digest)
    if same is not None and same.image_digest == image_digest:
        return dataclasses.replace(same, source=source)
    statement = parse_statement(payload)
    check_statement_subject(statement, image_digest)
    predicate_type = statement.predicate_type
    del statement  # its parsed predicate: one parsed copy of the statement at a time
    doc = load_json_object(payload, what="in-toto statement", max_size=MAX_STATEMENT)
    return VerifiedAttestation(image_digest, predicate_type, source, doc, digest)


def check_attestation_layer(
    layer: SignedLayer,
    blob: bytes,
    image_digest: str,
    key: PublicKey,
    known: Mapping[str, VerifiedAttestation] | None = None,
) -> VerifiedAttestation:
    """Verify one ``.att`` layer (a DSSE envelope blob); ``known`` as for
    :func:`check_attestation_envelope`."""
    if layer.media_type != ATTESTATION_LAYER_MEDIA_TYPE:
        raise VerificationError(
            f"layer media type is {layer.media_type!r}, not {ATTESTATION_LAYER_MEDIA_TYPE!r}"
        )
    envelope = Envelope.from_json(blob)
    return check_attestation_envelope(envelope, image_digest, key, "cosign-att", known)


def summarise_failures(what: str, failures: list[str]) -> str:
    """One message listing why each candidate failed (deduplicated, in order)."""
    unique = list(dict.fromkeys(failures))
    if not unique:
        return what
    return what + ": " + "; ".join(unique)


def dumps_results(items: list[VerifiedSignature] | list[VerifiedAttestation]) -> str:
    """The verified payloads as JSON (what ``-o json`` prints)."""
    return json.dumps([item.to_json() for item in items], indent=2, sort_keys=False) + "\n"
