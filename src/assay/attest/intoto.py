"""in-toto Statement v1 and cosign's predicate type aliases."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from assay._json import load_evidence_object, load_json, load_json_object
from assay.attest._gojson import go_json
from assay.errors import InputError, UsageError, VerificationError

__all__ = [
    "PREDICATE_TYPES",
    "SIGN_PREDICATE_TYPE",
    "STATEMENT_TYPE",
    "STATEMENT_TYPES_ACCEPTED",
    "Predicate",
    "Statement",
    "build_statement",
    "parse_statement",
    "predicate_from_file",
    "resolve_predicate_type",
]

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
# cosign still writes v0.1 statements; both are read.
STATEMENT_TYPES_ACCEPTED = frozenset({STATEMENT_TYPE, "https://in-toto.io/Statement/v0.1"})

CUSTOM_PREDICATE_TYPE = "https://cosign.sigstore.dev/attestation/v1"
# cosign v3 writes an image signature as a DSSE statement of this type in a bundle referrer.
SIGN_PREDICATE_TYPE = "https://sigstore.dev/cosign/sign/v1"

# cosign's --type aliases (cmd/cosign/cli/options/predicate.go, pkg/cosign/attestation).
PREDICATE_TYPES: dict[str, str] = {
    "custom": CUSTOM_PREDICATE_TYPE,
    "cyclonedx": "https://cyclonedx.org/bom",
    "link": "https://in-toto.io/Link/v1",
    "openvex": "https://openvex.dev/ns",
    "slsaprovenance": "https://slsa.dev/provenance/v0.2",
    "slsaprovenance02": "https://slsa.dev/provenance/v0.2",
    "slsaprovenance1": "https://slsa.dev/provenance/v1",
    "spdx": "https://spdx.dev/Document",
    "spdxjson": "https://spdx.dev/Document",
    "vuln": "https://cosign.sigstore.dev/attestation/vuln/v1",
    # assay's own (assay.attest.reproducible)
    "reproducible": "https://assay.dev/attestations/reproducible/v1",
}

MAX_STATEMENT = 16 << 20
ASSAY_SCAN_SCHEMA = "https://assay.dev/schemas/scan/v1"  # what `assay scan -o json` writes


def resolve_predicate_type(alias_or_uri: str) -> str:
    """A cosign alias (``slsaprovenance1``…) or an absolute URI → the predicate type URI."""
    if alias_or_uri in PREDICATE_TYPES:
        return PREDICATE_TYPES[alias_or_uri]
    parsed = urlparse(alias_or_uri)
    if parsed.scheme and (parsed.netloc or parsed.path):
        return alias_or_uri
    raise UsageError(
        f"unknown predicate type {alias_or_uri!r}: use one of "
        f"{', '.join(sorted(PREDICATE_TYPES))} or a URI"
    )


@dataclass(frozen=True)
class Statement:
    """A parsed in-toto statement."""

    type: str
    subjects: tuple[tuple[str, str], ...]  # (name, sha256 hex)
    predicate_type: str
    predicate: Any
    raw: bytes

    def to_json(self) -> dict[str, Any]:
        return load_json_object(self.raw, what="in-toto statement", max_size=MAX_STATEMENT)


def build_statement(
    subject_name: str,
    sha256_hex: str,
    predicate_type: str,
    predicate_bytes: bytes,
    *,
    timestamp: str,
) -> bytes:
    """Statement bytes for one subject. ``predicate_type`` may be an alias.

    As cosign does, the ``custom`` type wraps the raw predicate file as
    ``{"Data": <file text>, "Timestamp": <RFC 3339>}``; other types must be JSON documents.
    """
    uri = resolve_predicate_type(predicate_type)
    predicate: Any
    if uri == CUSTOM_PREDICATE_TYPE:
        try:
            text = predicate_bytes.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UsageError("custom predicate file is not UTF-8 text") from exc
        predicate = {"Data": text, "Timestamp": timestamp}
    else:
        try:
            predicate = load_json(predicate_bytes, what=f"predicate for type {uri}")
        except InputError as exc:
            raise UsageError(str(exc)) from None
        if not isinstance(predicate, dict):
            raise UsageError(f"predicate for type {uri} must be a JSON object")
    statement = {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": subject_name, "digest": {"sha256": sha256_hex}}],
        "predicateType": uri,
        "predicate": predicate,
    }
    return go_json(statement)


def parse_statement(raw: bytes) -> Statement:
    """Parse a statement; raise VerificationError naming what is wrong."""
    if len(raw) > MAX_STATEMENT:
        raise VerificationError("in-toto statement is larger than 16 MiB; refusing it")
    doc = load_evidence_object(raw, what="in-toto statement", max_size=MAX_STATEMENT)
    stype = doc.get("_type")
    if not isinstance(stype, str) or stype not in STATEMENT_TYPES_ACCEPTED:
        raise VerificationError(
            f"in-toto statement _type is {str(stype)[:100]!r}, not an in-toto Statement"
        )
    ptype = doc.get("predicateType")
    if not isinstance(ptype, str):
        raise VerificationError("in-toto statement has no predicateType")
    subjects = doc.get("subject")
    if not isinstance(subjects, list) or not subjects:
        raise VerificationError("in-toto statement has no subject")
    parsed: list[tuple[str, str]] = []
    for subject in subjects:
        if not isinstance(subject, dict) or not isinstance(subject.get("digest"), dict):
            raise VerificationError("in-toto statement subject has no digest")
        sha = subject["digest"].get("sha256")
        name = subject.get("name", "")
        if isinstance(sha, str) and isinstance(name, str):
            parsed.append((name, sha.lower()))
    return Statement(str(stype), tuple(parsed), ptype, doc.get("predicate"), raw)


@dataclass(frozen=True)
class Predicate:
    """What to attest: the predicate bytes and its type (alias or URI).

    ``from_statement`` is the predicate type of the in-toto Statement the bytes were taken from
    (None when the file was a bare predicate).
    """

    data: bytes
    predicate_type: str
    from_statement: str | None = None


def predicate_from_file(data: bytes, predicate_type: str | None, what: str) -> Predicate:
    """The predicate to attest from a ``--predicate`` file and the ``--type`` given (or None).

    A bare predicate is taken as it is (type ``custom`` when none is given). A whole in-toto
    Statement (such as the provenance ``build`` writes) is unwrapped to its predicate, so the
    attestation is never a Statement inside a Statement; its predicateType is used, and a
    ``--type`` that names another type is refused.
    """
    doc: Any = None
    if data.lstrip()[:1] == b"{":
        try:
            doc = load_json(data, what=what)
        except InputError:
            doc = None  # not (acceptable) JSON: a custom predicate, as cosign takes it
    stype = doc.get("_type") if isinstance(doc, dict) else None
    if not (isinstance(stype, str) and stype.startswith("https://in-toto.io/Statement/")):
        if (
            isinstance(doc, dict)
            and doc.get("schema") == ASSAY_SCAN_SCHEMA
            and predicate_type is not None
            and resolve_predicate_type(predicate_type) == PREDICATE_TYPES["vuln"]
        ):
            raise InputError(
                f"{what} is assay's scan JSON, not a cosign vuln predicate (no scanner, no scan "
                "times): write the predicate with `assay scan IMAGE -o cosign-vuln --file F`"
            )
        return Predicate(data, predicate_type or "custom")
    if stype not in STATEMENT_TYPES_ACCEPTED:
        raise InputError(
            f"{what} is an in-toto Statement of unknown version {stype!r}; "
            "pass its predicate instead"
        )
    ptype = doc.get("predicateType")
    predicate = doc.get("predicate")
    if not isinstance(ptype, str) or not ptype or not isinstance(predicate, dict):
        raise InputError(
            f"{what} is an in-toto Statement without a predicateType and predicate object; "
            "pass the bare predicate instead"
        )
    if predicate_type is not None and resolve_predicate_type(predicate_type) != ptype:
        raise InputError(
            f"{what} is an in-toto Statement of type {ptype}, not "
            f"{resolve_predicate_type(predicate_type)}: omit --type (or give --type {ptype}) "
            "to attest its predicate"
        )
    if ptype == CUSTOM_PREDICATE_TYPE:  # cosign's wrapper around a raw file: attest the file
        text = predicate.get("Data")
        if not isinstance(text, str):
            raise InputError(f"{what}: custom predicate has no Data text")
        return Predicate(text.encode("utf-8"), ptype, ptype)
    return Predicate(go_json(predicate), ptype, ptype)
