"""cosign's signature layout: the simple-signing payload and the ``.sig``/``.att`` manifests.

The payload is the JSON cosign and containers/image sign (Go struct field order; ``optional`` is
a Go map, so its keys are sorted)::

    {"critical":{"identity":{"docker-reference":REF},
                 "image":{"docker-manifest-digest":DIGEST},
                 "type":"cosign container image signature"},
     "optional":{"creator":...,"timestamp":INT}}

It is stored as a layer of media type ``application/vnd.dev.cosign.simplesigning.v1+json`` whose
annotation ``dev.cosignproject.cosign/signature`` holds the base64 ASN.1 DER ECDSA signature, in
an OCI image manifest tagged ``sha256-<hex>.sig``. Attestations use the same scheme with the tag
suffix ``.att``, layer media type ``application/vnd.dsse.envelope.v1+json`` and the annotation
``predicateType``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import re
from dataclasses import dataclass
from typing import Any

from assay._json import load_evidence_json, load_json_object
from assay.attest._gojson import go_json
from assay.errors import InputError, VerificationError

_log = logging.getLogger(__name__)

__all__ = [
    "ATTESTATION_LAYER_MEDIA_TYPE",
    "OCI_CONFIG_MEDIA_TYPE",
    "OCI_MANIFEST_MEDIA_TYPE",
    "PREDICATE_TYPE_ANNOTATION",
    "SIGNATURE_ANNOTATION",
    "SIGNATURE_TYPE",
    "SIMPLESIGNING_MEDIA_TYPE",
    "SignedLayer",
    "SimpleSigningPayload",
    "append_layer",
    "build_payload",
    "cosign_tag",
    "decode_signature_b64",
    "parse_payload",
    "parse_signature_manifest",
    "signature_config",
    "signature_manifest",
]

SIMPLESIGNING_MEDIA_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json"
ATTESTATION_LAYER_MEDIA_TYPE = "application/vnd.dsse.envelope.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
PREDICATE_TYPE_ANNOTATION = "predicateType"
SIGNATURE_TYPE = "cosign container image signature"
OCI_MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG_MEDIA_TYPE = "application/vnd.oci.image.config.v1+json"

MAX_PAYLOAD = 1 << 20
MAX_SIGNATURE_MANIFEST = 4 << 20
MAX_LAYERS = 1000
_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
# Go's zero time.Time, which go-containerregistry writes into cosign's signature image config.
_GO_ZERO_TIME = "0001-01-01T00:00:00Z"


def cosign_tag(digest: str, suffix: str) -> str:
    """``sha256:<hex>`` → ``sha256-<hex>.<suffix>`` (``sig``, ``att``)."""
    if not _DIGEST_RE.match(digest):
        raise InputError(f"not a sha256 digest: {digest!r}")
    return digest.replace(":", "-", 1) + "." + suffix


def build_payload(
    docker_reference: str, manifest_digest: str, optional: dict[str, Any] | None = None
) -> bytes:
    """The simple-signing payload bytes, exactly as cosign marshals them."""
    if not _DIGEST_RE.match(manifest_digest):
        raise InputError(f"not a sha256 digest: {manifest_digest!r}")
    critical = {
        "identity": {"docker-reference": docker_reference},
        "image": {"docker-manifest-digest": manifest_digest},
        "type": SIGNATURE_TYPE,
    }
    # ``critical`` is a Go struct (fixed order); ``optional`` a Go map (sorted keys).
    head = go_json({"critical": critical})[:-1]
    return head + b',"optional":' + go_json(optional, sort_keys=True) + b"}"


@dataclass(frozen=True)
class SimpleSigningPayload:
    """The parts of a payload verification relies on."""

    docker_reference: str
    manifest_digest: str
    optional: dict[str, Any] | None
    raw: bytes

    def to_json(self) -> dict[str, Any]:
        return load_json_object(self.raw, what="signature payload", max_size=MAX_PAYLOAD)


def parse_payload(raw: bytes) -> SimpleSigningPayload:
    """Parse a simple-signing payload; raise VerificationError naming what is wrong."""
    if len(raw) > MAX_PAYLOAD:
        raise VerificationError(f"signature payload is {len(raw)} bytes; refusing over 1 MiB")
    doc = load_evidence_json(raw, what="signature payload", max_size=MAX_PAYLOAD)
    if not isinstance(doc, dict) or not isinstance(doc.get("critical"), dict):
        raise VerificationError("signature payload has no 'critical' object")
    critical = doc["critical"]
    if critical.get("type") != SIGNATURE_TYPE:
        raise VerificationError(
            f"signature payload type is {critical.get('type')!r}, expected {SIGNATURE_TYPE!r}"
        )
    image = critical.get("image")
    identity = critical.get("identity")
    digest = image.get("docker-manifest-digest") if isinstance(image, dict) else None
    ref = identity.get("docker-reference") if isinstance(identity, dict) else None
    if not isinstance(digest, str) or not _DIGEST_RE.match(digest):
        raise VerificationError(
            "signature payload has no valid critical.image.docker-manifest-digest"
        )
    if not isinstance(ref, str):
        raise VerificationError("signature payload has no critical.identity.docker-reference")
    optional = doc.get("optional")
    if optional is not None and not isinstance(optional, dict):
        raise VerificationError("signature payload 'optional' is not an object")
    return SimpleSigningPayload(ref, digest, optional, raw)


def decode_signature_b64(value: object) -> bytes:
    """Strictly decode the base64 signature annotation."""
    if not isinstance(value, str) or not value:
        raise VerificationError(f"layer has no {SIGNATURE_ANNOTATION} annotation")
    if len(value) > 1024:
        raise VerificationError("signature annotation is too long to be an ECDSA signature")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise VerificationError(
            f"signature annotation is not valid base64 ({exc}); the signature was corrupted"
        ) from exc


@dataclass(frozen=True)
class SignedLayer:
    """One layer of a ``.sig``/``.att`` manifest."""

    media_type: str
    digest: str
    size: int
    annotations: dict[str, str]

    def descriptor(self) -> dict[str, Any]:
        return {
            "mediaType": self.media_type,
            "size": self.size,
            "digest": self.digest,
            "annotations": dict(self.annotations),
        }


def parse_signature_manifest(raw: bytes) -> list[SignedLayer]:
    """The layers of a cosign signature/attestation manifest (bounded, validated)."""
    if len(raw) > MAX_SIGNATURE_MANIFEST:
        raise VerificationError("signature manifest is larger than 4 MiB; refusing it")
    doc = load_evidence_json(raw, what="signature manifest", max_size=MAX_SIGNATURE_MANIFEST)
    layers = doc.get("layers") if isinstance(doc, dict) else None
    if not isinstance(layers, list):
        raise VerificationError("signature manifest has no 'layers' list")
    if len(layers) > MAX_LAYERS:
        raise VerificationError(f"signature manifest has {len(layers)} layers; refusing over 1000")
    out: list[SignedLayer] = []
    for i, layer in enumerate(layers):
        try:
            out.append(_signed_layer(layer))
        except VerificationError as exc:
            # One malformed layer cannot add evidence; skip it so the others still count.
            _log.warning("skipping signature manifest layer %d: %s", i, exc)
    return out


def _signed_layer(layer: object) -> SignedLayer:
    if not isinstance(layer, dict):
        raise VerificationError("signature manifest layer is not an object")
    digest, size, media_type = layer.get("digest"), layer.get("size"), layer.get("mediaType")
    annotations = layer.get("annotations") or {}
    if not isinstance(digest, str) or not _DIGEST_RE.match(digest):
        raise VerificationError("signature manifest layer has no valid sha256 digest")
    if type(size) is not int or size < 0:
        raise VerificationError("signature manifest layer has no valid size")
    if not isinstance(media_type, str) or not isinstance(annotations, dict):
        raise VerificationError("signature manifest layer has a malformed mediaType/annotations")
    clean = {str(k): str(v) for k, v in annotations.items() if isinstance(v, str)}
    return SignedLayer(media_type, digest, size, clean)


def signature_config(layer_digests: list[str]) -> bytes:
    """The image config go-containerregistry writes for a cosign signature image."""
    config = {
        "architecture": "",
        "created": _GO_ZERO_TIME,
        "history": [{"created": _GO_ZERO_TIME} for _ in layer_digests],
        "os": "",
        "rootfs": {"type": "layers", "diff_ids": list(layer_digests)},
        "config": {},
    }
    return go_json(config)


def signature_manifest(layers: list[SignedLayer]) -> tuple[bytes, bytes]:
    """(manifest bytes, config bytes) of a cosign signature image holding ``layers``."""
    config = signature_config([layer.digest for layer in layers])
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST_MEDIA_TYPE,
        "config": {
            "mediaType": OCI_CONFIG_MEDIA_TYPE,
            "size": len(config),
            "digest": "sha256:" + hashlib.sha256(config).hexdigest(),
        },
        "layers": [layer.descriptor() for layer in layers],
    }
    return go_json(manifest), config


def append_layer(existing: list[SignedLayer], new: SignedLayer) -> list[SignedLayer]:
    """Layers after adding ``new``: appended, unless an identical layer is already there."""
    if any(
        layer.digest == new.digest and layer.annotations == new.annotations for layer in existing
    ):
        return list(existing)
    return [*existing, new]
