"""Sigstore bundles (v0.3): writing key-signed ones, verifying key-signed and keyless ones.

assay writes, for key-based attestations, the bundle cosign v3 attaches as an OCI 1.1 referrer::

    {"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json",
     "verificationMaterial":{"publicKey":{"hint":B64(SHA256(SPKI))},"tlogEntries":[]},
     "dsseEnvelope":{"payload":…,"payloadType":…,"signatures":[{"sig":…}]}}

Keyless bundles (Fulcio certificate + Rekor entry) are verified offline with the ``sigstore``
package's ``Verifier`` against the trust root it embeds, under an exact identity/issuer policy.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Any

from assay._json import load_evidence_object
from assay.attest._gojson import go_json
from assay.attest.dsse import Envelope
from assay.attest.keys import PublicKey, key_hint
from assay.errors import InputError, VerificationError

__all__ = [
    "BUNDLE_MEDIA_TYPE",
    "BUNDLE_MEDIA_TYPES_ACCEPTED",
    "EMPTY_CONFIG",
    "EMPTY_MEDIA_TYPE",
    "KeylessResult",
    "build_key_bundle",
    "bundle_referrer_manifest",
    "parse_bundle",
    "verify_bundle_with_key",
    "verify_keyless",
    "verify_keyless_policy",
]

_log = logging.getLogger(__name__)

BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
BUNDLE_MEDIA_TYPES_ACCEPTED = frozenset(
    {
        BUNDLE_MEDIA_TYPE,
        "application/vnd.dev.sigstore.bundle+json;version=0.3",
        "application/vnd.dev.sigstore.bundle+json;version=0.2",
        "application/vnd.dev.sigstore.bundle+json;version=0.1",
    }
)
EMPTY_MEDIA_TYPE = "application/vnd.oci.empty.v1+json"
EMPTY_CONFIG = b"{}"
MAX_BUNDLE = 16 << 20


def build_key_bundle(envelope: Envelope, public: PublicKey) -> bytes:
    """A v0.3 bundle for a DSSE envelope signed with a key (no transparency log entry)."""
    bundle = {
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": {"publicKey": {"hint": key_hint(public)}, "tlogEntries": []},
        "dsseEnvelope": envelope.to_bundle_dict(),
    }
    return go_json(bundle)


def bundle_referrer_manifest(
    bundle: bytes,
    subject_media_type: str,
    subject_digest: str,
    subject_size: int,
    *,
    predicate_type: str | None,
    created: str,
) -> bytes:
    """The OCI 1.1 artifact manifest cosign v3 writes for a bundle attached to an image."""
    bundle_digest = "sha256:" + hashlib.sha256(bundle).hexdigest()
    annotations = {"dev.sigstore.bundle.content": "dsse-envelope"}
    if predicate_type:
        annotations["dev.sigstore.bundle.predicateType"] = predicate_type
    annotations["org.opencontainers.image.created"] = created
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": BUNDLE_MEDIA_TYPE,
        "config": {
            "mediaType": EMPTY_MEDIA_TYPE,
            "digest": "sha256:" + hashlib.sha256(EMPTY_CONFIG).hexdigest(),
            "size": len(EMPTY_CONFIG),
        },
        "layers": [
            {
                "mediaType": BUNDLE_MEDIA_TYPE,
                "digest": bundle_digest,
                "size": len(bundle),
                "annotations": {
                    "org.opencontainers.image.title": bundle_digest.replace(":", "-", 1)
                    + ".sigstore.json"
                },
            }
        ],
        "subject": {
            "mediaType": subject_media_type,
            "digest": subject_digest,
            "size": subject_size,
        },
        "annotations": annotations,
    }
    return go_json(manifest)


def parse_bundle(raw: bytes) -> dict[str, Any]:
    """Parse a bundle's JSON and check its media type (bounded)."""
    if len(raw) > MAX_BUNDLE:
        raise VerificationError("Sigstore bundle is larger than 16 MiB; refusing it")
    doc = load_evidence_object(raw, what="Sigstore bundle", max_size=MAX_BUNDLE)
    media_type = doc.get("mediaType")
    if not isinstance(media_type, str) or media_type not in BUNDLE_MEDIA_TYPES_ACCEPTED:
        raise VerificationError(
            f"Sigstore bundle has unsupported mediaType {str(media_type)[:100]!r}"
        )
    if not isinstance(doc.get("verificationMaterial"), dict):
        raise VerificationError("Sigstore bundle has no verificationMaterial")
    return doc


def verify_bundle_with_key(doc: dict[str, Any], key: PublicKey) -> Envelope:
    """Verify a key-signed DSSE bundle; return its envelope. Certificates are not accepted here."""
    material = doc["verificationMaterial"]
    if "publicKey" not in material:
        raise VerificationError(
            "bundle is signed with a certificate (keyless), not a key; verify it with "
            "--certificate-identity and --certificate-oidc-issuer"
        )
    if "dsseEnvelope" not in doc:
        raise VerificationError("bundle holds no DSSE envelope")
    envelope = Envelope.from_dict(doc["dsseEnvelope"])
    envelope.verify(key)
    return envelope


@dataclass(frozen=True)
class KeylessResult:
    """What a keyless verification established."""

    identity: str
    issuer: str
    payload_type: str | None
    payload: bytes | None


def verify_keyless(
    bundle_json: bytes,
    *,
    identity: str,
    issuer: str,
    artifact: bytes | None = None,
    staging: bool = False,
    offline: bool = True,
) -> KeylessResult:
    """Verify a keyless Sigstore bundle with the ``sigstore`` package.

    ``artifact`` is the signed file for message-signature bundles; DSSE bundles carry their
    payload and need none. The certificate must name exactly ``identity`` (SAN) and ``issuer``.
    """
    if not identity or not issuer:
        raise InputError("keyless verification needs both a certificate identity and an issuer")
    try:
        from sigstore.verify.policy import Identity
    except ImportError as exc:  # pragma: no cover - dependency missing
        raise InputError(
            "keyless verification needs the 'sigstore' package (pip install sigstore)"
        ) from exc
    return _verify_keyless(
        bundle_json,
        Identity(identity=identity, issuer=issuer),
        identity,
        issuer,
        artifact=artifact,
        staging=staging,
        offline=offline,
    )


def verify_keyless_policy(
    bundle_json: bytes,
    policy: Any,
    *,
    artifact: bytes | None = None,
    staging: bool = False,
    offline: bool = True,
) -> KeylessResult:
    """Verify a keyless bundle (DSSE, or a message signature over ``artifact``) under a policy.

    ``policy`` has ``verify(certificate)`` and raises ``sigstore.errors.VerificationError``
    when the certificate does not satisfy it (e.g. policy-controller's regexp identities).
    """
    return _verify_keyless(
        bundle_json, policy, "", "", artifact=artifact, staging=staging, offline=offline
    )


def _verify_keyless(
    bundle_json: bytes,
    policy: Any,
    identity: str,
    issuer: str,
    *,
    artifact: bytes | None,
    staging: bool,
    offline: bool,
) -> KeylessResult:
    try:
        from sigstore.errors import Error as SigstoreError
        from sigstore.models import Bundle
        from sigstore.verify import Verifier
    except ImportError as exc:  # pragma: no cover - dependency missing
        raise InputError(
            "keyless verification needs the 'sigstore' package (pip install sigstore)"
        ) from exc
    parse_bundle(bundle_json)
    try:
        bundle = Bundle.from_json(bundle_json)
    except (SigstoreError, ValueError) as exc:
        raise VerificationError(f"Sigstore bundle is malformed: {exc}") from exc
    try:
        verifier = (
            Verifier.staging(offline=offline) if staging else Verifier.production(offline=offline)
        )
    except SigstoreError as exc:
        raise VerificationError(f"cannot load the Sigstore trust root: {exc}") from exc
    try:
        if artifact is not None:
            verifier.verify_artifact(artifact, bundle, policy)
            return KeylessResult(identity, issuer, None, None)
        payload_type, payload = verifier.verify_dsse(bundle, policy)
    except SigstoreError as exc:
        raise VerificationError(f"keyless verification failed: {exc}") from exc
    except ValueError as exc:
        raise VerificationError(f"keyless verification failed: {exc}") from exc
    return KeylessResult(identity, issuer, payload_type, payload)
