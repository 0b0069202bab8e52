"""DSSE envelopes (Dead Simple Signing Envelope, v1.0).

Signatures cover the pre-authentication encoding
``PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body``, with lengths as ASCII
decimal byte counts. The envelope JSON is written as go-securesystemslib writes it:
``{"payloadType":…,"payload":…,"signatures":[{"keyid":…,"sig":…}]}``.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

from assay._json import load_evidence_json
from assay.attest._gojson import go_json
from assay.attest.keys import PublicKey, SigningKey
from assay.errors import VerificationError

__all__ = ["INTOTO_PAYLOAD_TYPE", "Envelope", "pae", "sign_envelope"]

INTOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
MAX_ENVELOPE = 16 << 20
MAX_SIGNATURES = 64


def pae(payload_type: str, payload: bytes) -> bytes:
    """The DSSE v1 pre-authentication encoding of ``payload``."""
    ptype = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(ptype), ptype, len(payload), payload)


@dataclass(frozen=True)
class Envelope:
    """A DSSE envelope: payload type, payload bytes and (keyid, signature) pairs."""

    payload_type: str
    payload: bytes
    signatures: tuple[tuple[str, bytes], ...]

    def to_json(self) -> bytes:
        """Envelope bytes in go-securesystemslib's field order."""
        return go_json(self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        return {
            "payloadType": self.payload_type,
            "payload": base64.b64encode(self.payload).decode("ascii"),
            "signatures": [
                {"keyid": keyid, "sig": base64.b64encode(sig).decode("ascii")}
                for keyid, sig in self.signatures
            ],
        }

    def to_bundle_dict(self) -> dict[str, Any]:
        """The envelope as protojson writes it inside a Sigstore bundle (empty keyid omitted)."""
        sigs: list[dict[str, str]] = []
        for keyid, sig in self.signatures:
            entry = {"sig": base64.b64encode(sig).decode("ascii")}
            if keyid:
                entry["keyid"] = keyid
            sigs.append(entry)
        return {
            "payload": base64.b64encode(self.payload).decode("ascii"),
            "payloadType": self.payload_type,
            "signatures": sigs,
        }

    @classmethod
    def from_json(cls, raw: bytes) -> Envelope:
        if len(raw) > MAX_ENVELOPE:
            raise VerificationError("DSSE envelope is larger than 16 MiB; refusing it")
        return cls.from_dict(load_evidence_json(raw, what="DSSE envelope", max_size=MAX_ENVELOPE))

    @classmethod
    def from_dict(cls, doc: object) -> Envelope:
        if not isinstance(doc, dict):
            raise VerificationError("DSSE envelope is not a JSON object")
        ptype, payload, sigs = doc.get("payloadType"), doc.get("payload"), doc.get("signatures")
        if not isinstance(ptype, str):
            raise VerificationError("DSSE envelope has no payloadType")
        if not isinstance(sigs, list) or not sigs:
            raise VerificationError("DSSE envelope has no signatures")
        if len(sigs) > MAX_SIGNATURES:
            raise VerificationError(f"DSSE envelope has {len(sigs)} signatures; refusing over 64")
        parsed: list[tuple[str, bytes]] = []
        for sig in sigs:
            if not isinstance(sig, dict):
                raise VerificationError("DSSE signature entry is not an object")
            keyid = sig.get("keyid") or ""
            if not isinstance(keyid, str):
                raise VerificationError("DSSE signature keyid is not a string")
            parsed.append((keyid, _unb64(sig.get("sig"), "DSSE signature")))
        return cls(ptype, _unb64(payload, "DSSE payload"), tuple(parsed))

    def verify(self, key: PublicKey, expected_type: str = INTOTO_PAYLOAD_TYPE) -> bytes:
        """Return the payload if its type is ``expected_type`` and one signature verifies."""
        if self.payload_type != expected_type:
            raise VerificationError(
                f"DSSE payload type is {self.payload_type!r}, expected {expected_type!r}"
            )
        message = pae(self.payload_type, self.payload)
        errors: list[str] = []
        for _keyid, sig in self.signatures:
            try:
                key.verify(sig, message)
            except VerificationError as exc:
                errors.append(str(exc))
            else:
                return self.payload
        raise VerificationError("DSSE envelope: " + "; ".join(dict.fromkeys(errors)))


def sign_envelope(
    key: SigningKey, payload: bytes, payload_type: str = INTOTO_PAYLOAD_TYPE
) -> Envelope:
    """Sign ``payload`` (PAE) and wrap it in an envelope with an empty keyid, as cosign does."""
    return Envelope(payload_type, payload, (("", key.sign(pae(payload_type, payload))),))


def _unb64(value: object, what: str) -> bytes:
    if not isinstance(value, str):
        raise VerificationError(f"{what} is missing or not a string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise VerificationError(f"{what} is not valid base64 ({exc})") from exc
