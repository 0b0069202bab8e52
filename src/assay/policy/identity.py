"""policy-controller's keyless ``identities``: exact or regular-expression issuer and subject.

A certificate satisfies the authority when any listed identity matches: ``issuer``/``subject``
compare exactly, ``issuerRegExp``/``subjectRegExp`` search (Go ``regexp.MatchString``: not
anchored unless the expression says so). The subject is any SAN value (email, URI, or Sigstore's
otherName); the issuer is Fulcio's OIDC issuer extension (v2, falling back to v1).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from assay.policy.model import Identity

__all__ = ["IDENTITY_MISMATCH", "IdentityPolicy", "certificate_identity"]

IDENTITY_MISMATCH = "none of the expected identities matched what was in the certificate"

_ISSUER_V1 = "1.3.6.1.4.1.57264.1.1"
_ISSUER_V2 = "1.3.6.1.4.1.57264.1.8"
_OTHERNAME = "1.3.6.1.4.1.57264.1.7"


def _der_utf8(value: bytes) -> str:
    # DER UTF8String: tag 0x0c, short or long length, then the text.
    if len(value) >= 2 and value[0] == 0x0C:
        length, offset = value[1], 2
        if length & 0x80:
            n = length & 0x7F
            length, offset = int.from_bytes(value[2 : 2 + n], "big"), 2 + n
        return value[offset : offset + length].decode("utf-8", "replace")
    return value.decode("utf-8", "replace")


def certificate_identity(cert: Any) -> tuple[str, list[str]]:
    """(issuer, SAN values) of a Fulcio certificate (``cryptography`` x509)."""
    from cryptography import x509
    from cryptography.x509.oid import ObjectIdentifier

    issuer = ""
    for oid, der in ((_ISSUER_V2, True), (_ISSUER_V1, False)):
        try:
            ext = cert.extensions.get_extension_for_oid(ObjectIdentifier(oid)).value
        except x509.ExtensionNotFound:
            continue
        raw = ext.value
        issuer = _der_utf8(raw) if der else raw.decode("utf-8", "replace")
        break
    sans: list[str] = []
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return issuer, sans
    sans.extend(san.get_values_for_type(x509.RFC822Name))
    sans.extend(san.get_values_for_type(x509.UniformResourceIdentifier))
    for other in san.get_values_for_type(x509.OtherName):
        if other.type_id.dotted_string == _OTHERNAME:
            sans.append(_der_utf8(other.value))
    return issuer, sans


def _matches(identity: Identity, issuer: str, sans: Sequence[str]) -> bool:
    if identity.issuer and identity.issuer != issuer:
        return False
    if identity.issuer_regexp and not re.search(identity.issuer_regexp, issuer):
        return False
    if identity.subject:
        return identity.subject in sans
    if identity.subject_regexp:
        return any(re.search(identity.subject_regexp, s) for s in sans)
    return True


class IdentityPolicy:
    """A ``sigstore`` verification policy: any of ``identities`` must match the certificate."""

    def __init__(self, identities: Sequence[Identity]) -> None:
        self.identities = tuple(identities)

    def verify(self, cert: Any) -> None:
        from sigstore.errors import VerificationError as SigstoreVerificationError

        issuer, sans = certificate_identity(cert)
        if not any(_matches(i, issuer, sans) for i in self.identities):
            raise SigstoreVerificationError(
                f"{IDENTITY_MISMATCH} (issuer {issuer!r}, subjects {sorted(sans)!r})"
            )
