"""Evaluating one authority (key, keyless, static) against an image's fetched evidence.

Follows policy-controller: an authority with ``attestations`` checks those attestations
instead of signatures; every listed attestation must have at least one verified statement of
its predicate type that passes its policy (any one suffices). Messages are policy-controller's
(``no signatures found``, ``no matching signatures``, ``no matching attestations``…) so users
can search for them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from assay._json import load_json
from assay.attest import bundle as _bundle
from assay.attest.dsse import Envelope
from assay.attest.intoto import PREDICATE_TYPES, SIGN_PREDICATE_TYPE, parse_statement
from assay.attest.keys import PublicKey, load_public_key
from assay.attest.verify import (
    VerifiedAttestation,
    check_attestation_envelope,
    check_attestation_layer,
    check_signature_layer,
    check_statement_subject,
    summarise_failures,
)
from assay.errors import AssayError
from assay.policy.decision import CheckResult
from assay.policy.evidence import ImageEvidence, SignedEvidence
from assay.policy.identity import IDENTITY_MISMATCH, IdentityPolicy
from assay.policy.model import Attestation, Authority
from assay.policy.rego import QUERY, evaluate_rego

__all__ = [
    "AuthorityOutcome",
    "VerifiedEvidence",
    "check_authority",
    "predicate_type_uri",
    "public_key",
    "verify_attestations",
    "verify_signatures",
]

NO_SIGNATURES = "no signatures found"
NO_MATCHING_SIGNATURES = "no matching signatures"
NO_MATCHING_ATTESTATIONS = "no matching attestations"


class Unsupported(Exception):
    """A valid policy setting assay cannot evaluate here (reported as ``error``)."""


@functools.lru_cache(maxsize=256)
def public_key(pem: str) -> PublicKey:
    try:
        return load_public_key(pem.encode("utf-8"))
    except AssayError as exc:
        raise Unsupported(f"key.data: {exc}") from exc


def predicate_type_uri(predicate_type: str) -> str:
    """cosign's short names (``spdxjson``, ``slsaprovenance1``…) → URI; URIs unchanged."""
    return PREDICATE_TYPES.get(predicate_type, predicate_type)


@dataclass
class VerifiedEvidence:
    """What one authority's verification established."""

    signatures: list[dict[str, Any]] = field(default_factory=list)  # authorityMatches entries
    attestations: list[VerifiedAttestation] = field(default_factory=list)
    evidence: list[str] = field(default_factory=list)  # digests of layers/referrers used
    # each verified attestation with the digest of the .att layer or referrer it came from
    pairs: list[tuple[VerifiedAttestation, str]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    seen: int = 0  # candidates looked at


Verifier = Callable[[str, bytes], tuple[dict[str, Any], str]]


def _key_verifier(auth: Authority) -> PublicKey:
    assert auth.key is not None
    if auth.key.secret_ref:
        raise Unsupported(
            f"key.secretRef {auth.key.secret_ref!r} is not supported outside the cluster; "
            "put the public key inline in key.data"
        )
    if auth.key.kms:
        raise Unsupported(f"key.kms {auth.key.kms!r} is not supported; use key.data")
    if auth.key.hash_algorithm != "sha256":
        raise Unsupported(f"key.hashAlgorithm {auth.key.hash_algorithm} is not supported")
    return public_key(auth.key.data)


def _keyless_check(auth: Authority) -> IdentityPolicy:
    assert auth.keyless is not None
    if auth.keyless.ca_cert:
        raise Unsupported(
            "keyless.ca-cert is not supported; assay verifies against Sigstore's root"
        )
    return IdentityPolicy(auth.keyless.identities)


def _bundle_doc(raw: bytes) -> dict[str, Any]:
    return _bundle.parse_bundle(raw)


def verify_signatures(
    auth: Authority, image: ImageEvidence, signed: SignedEvidence
) -> VerifiedEvidence:
    """Signatures over ``image.digest`` that this authority's key or identities verify."""
    out = VerifiedEvidence()
    key = _key_verifier(auth) if auth.key else None
    ident = _keyless_check(auth) if auth.keyless else None
    if auth.signature_format != "bundle":
        for blob in signed.signatures:
            out.seen += 1
            if blob.data is None or blob.layer is None:
                out.failures.append(blob.problem)
                continue
            if key is None:
                if blob.layer.annotations.get("dev.sigstore.cosign/certificate"):
                    out.failures.append(
                        "keyless signatures in cosign's .sig layout are not supported; "
                        "verify Sigstore bundles (signatureFormat: bundle)"
                    )
                continue
            try:
                sig = check_signature_layer(blob.layer, blob.data, image.digest, key)
                out.signatures.append({"id": blob.digest, "subject": "", "issuer": ""})
                out.evidence.append(blob.digest)
                _ = sig
            except AssayError as exc:
                out.failures.append(str(exc))
    for ref_digest, info in _bundle_statements(
        out, signed, image.digest, key, ident, SIGN_PREDICATE_TYPE
    ):
        out.signatures.append(
            {"id": ref_digest, "subject": info.get("subject", ""), "issuer": info.get("issuer", "")}
        )
        out.evidence.append(ref_digest)
    return out


def _bundle_statements(
    out: VerifiedEvidence,
    signed: SignedEvidence,
    digest: str,
    key: PublicKey | None,
    ident: IdentityPolicy | None,
    predicate_type: str | None,
    *,
    exclude_sign: bool = False,
) -> list[tuple[str, dict[str, Any]]]:
    """(referrer digest, info) for bundles whose statement verifies; fills ``out.attestations``."""
    found: list[tuple[str, dict[str, Any]]] = []
    for blob in signed.bundles:
        if blob.data is None:
            out.failures.append(blob.problem)
            continue
        try:
            doc = _bundle_doc(blob.data)
            keyed = "publicKey" in doc["verificationMaterial"]
            if (key is not None) != keyed:
                continue  # a bundle for the other kind of authority
            out.seen += 1
            info: dict[str, Any] = {}
            if key is not None:
                if "dsseEnvelope" not in doc:
                    raise AssayError("bundle holds no DSSE envelope")
                att = check_attestation_envelope(
                    Envelope.from_dict(doc["dsseEnvelope"]), digest, key, "referrer-bundle"
                )
            else:
                assert ident is not None
                if "dsseEnvelope" not in doc:
                    raise AssayError(
                        "keyless message-signature bundles on images are not supported"
                    )
                result = _bundle.verify_keyless_policy(blob.data, ident)
                assert result.payload is not None
                statement = parse_statement(result.payload)
                check_statement_subject(statement, digest)
                att = VerifiedAttestation(
                    digest,
                    statement.predicate_type,
                    "referrer-bundle",
                    load_json(result.payload, what="attestation payload", max_size=16 << 20),
                )
            if predicate_type is not None and att.predicate_type != predicate_type:
                continue
            if exclude_sign and att.predicate_type == SIGN_PREDICATE_TYPE:
                continue
            out.attestations.append(att)
            out.pairs.append((att, blob.digest))
            found.append((blob.digest, info))
        except AssayError as exc:
            text = str(exc)
            if IDENTITY_MISMATCH in text:
                text = IDENTITY_MISMATCH
            out.failures.append(text)
    return found


def verify_attestations(
    auth: Authority, image: ImageEvidence, signed: SignedEvidence
) -> VerifiedEvidence:
    """Every attestation over ``image.digest`` this authority verifies (any predicate type)."""
    out = VerifiedEvidence()
    key = _key_verifier(auth) if auth.key else None
    ident = _keyless_check(auth) if auth.keyless else None
    if auth.signature_format != "bundle" and key is not None:
        for blob in signed.attestations:
            out.seen += 1
            if blob.data is None or blob.layer is None:
                out.failures.append(blob.problem)
                continue
            try:
                att = check_attestation_layer(blob.layer, blob.data, image.digest, key)
                out.attestations.append(att)
                out.pairs.append((att, blob.digest))
                out.evidence.append(blob.digest)
            except AssayError as exc:
                out.failures.append(str(exc))
    for digest, _info in _bundle_statements(
        out, signed, image.digest, key, ident, None, exclude_sign=True
    ):
        out.evidence.append(digest)
    return out


@dataclass(frozen=True)
class AuthorityOutcome:
    result: CheckResult
    match: dict[str, Any] | None  # authorityMatches entry when it passed
    verified: tuple[VerifiedAttestation, ...] = ()


def _fail(auth: Authority, status: str, reason: str, **kw: Any) -> AuthorityOutcome:
    return AuthorityOutcome(
        CheckResult(auth.name, "authority", status, reason, **kw),  # type: ignore[arg-type]
        None,
    )


def check_authority(
    auth: Authority, image: ImageEvidence, signed: SignedEvidence | None
) -> AuthorityOutcome:
    """Evaluate ``auth``; never raises for evidence problems (they become fail/error)."""
    if auth.static is not None:
        if auth.static.action == "pass":
            return AuthorityOutcome(
                CheckResult(auth.name, "authority", "pass", "allowed by static policy"),
                {"signatures": [], "attestations": {}},
            )
        return _fail(auth, "fail", auth.static.message or "disallowed by static policy")
    assert signed is not None
    if auth.rfc3161:
        return _fail(auth, "error", "rfc3161timestamp (TSA) verification is not supported")
    if signed.error:
        return _fail(auth, "error", f"cannot fetch signatures: {signed.error}")
    try:
        if auth.attestations:
            return _check_attestations(auth, image, signed)
        found = verify_signatures(auth, image, signed)
    except Unsupported as exc:
        return _fail(auth, "error", str(exc))
    if found.signatures:
        return AuthorityOutcome(
            CheckResult(
                auth.name,
                "authority",
                "pass",
                f"{len(found.signatures)} signature(s) verified"
                + (" (ctlog inclusion not checked offline)" if auth.ctlog else ""),
                evidence=tuple(found.evidence),
            ),
            {"signatures": found.signatures, "attestations": {}},
        )
    problems = found.failures + signed.problems
    if not found.seen and not problems:
        return _fail(auth, "fail", NO_SIGNATURES)
    if IDENTITY_MISMATCH in problems:
        return _fail(auth, "fail", f"{NO_MATCHING_SIGNATURES}: {IDENTITY_MISMATCH}")
    return _fail(auth, "fail", summarise_failures(NO_MATCHING_SIGNATURES, problems))


def _check_attestations(
    auth: Authority, image: ImageEvidence, signed: SignedEvidence
) -> AuthorityOutcome:
    found = verify_attestations(auth, image, signed)
    children: list[CheckResult] = []
    matches: dict[str, list[dict[str, Any]]] = {}
    evidence: list[str] = []
    warnings: list[str] = []
    for req in auth.attestations:
        child, used, warn = _check_one_attestation(req, found)
        children.append(child)
        warnings.extend(warn)
        if child.status == "pass":
            matches[req.name] = used
            evidence.extend(child.evidence)
    statuses = {c.status for c in children}
    verified = tuple(found.attestations)
    if statuses == {"pass"}:
        return AuthorityOutcome(
            CheckResult(
                auth.name,
                "authority",
                "pass",
                f"{len(children)} attestation requirement(s) met",
                evidence=tuple(evidence),
                children=tuple(children),
                warnings=tuple(warnings),
            ),
            {"signatures": [], "attestations": matches},
            verified,
        )
    first = next(c for c in children if c.status != "pass")
    status = "error" if "error" in statuses else "fail"
    return AuthorityOutcome(
        CheckResult(
            auth.name,
            "authority",
            status,  # type: ignore[arg-type]
            first.reason,
            children=tuple(children),
            warnings=tuple(warnings),
        ),
        None,
        verified,
    )


def _check_one_attestation(
    req: Attestation, found: VerifiedEvidence
) -> tuple[CheckResult, list[dict[str, Any]], list[str]]:
    uri = predicate_type_uri(req.predicate_type)
    pairs = [(a, d) for a, d in found.pairs if a.predicate_type == uri]
    candidates = [a for a, _ in pairs]
    if not candidates:
        reason = NO_MATCHING_ATTESTATIONS
        details = [f for f in found.failures if f]
        if details:
            reason = summarise_failures(reason, details)
        return CheckResult(req.name, "attestation", "fail", reason), [], []
    if req.policy is None:
        used = [{"id": d, "predicateType": a.predicate_type} for a, d in pairs]
        return (
            CheckResult(
                req.name,
                "attestation",
                "pass",
                f"{len(candidates)} verified",
                evidence=tuple(d for _, d in pairs),
            ),
            used,
            [],
        )
    if req.policy.type != "rego":
        return (
            CheckResult(
                req.name,
                "attestation",
                "error",
                f"policy type {req.policy.type} is not supported (no CUE evaluator); "
                "rewrite the policy in Rego",
            ),
            [],
            [],
        )
    if not req.policy.data:
        return (
            CheckResult(
                req.name,
                "attestation",
                "error",
                "remote and configMapRef policies are not supported; inline the policy as data",
            ),
            [],
            [],
        )
    errors: list[str] = []
    for att, digest in pairs:
        outcome = evaluate_rego(req.policy.data, att.statement)
        if outcome.broken:
            return (
                CheckResult(
                    req.name,
                    "attestation",
                    "error",
                    f"failed evaluating rego policy for type {req.name}: {outcome.error}",
                ),
                [],
                [],
            )
        if outcome.compliant:
            warns = [outcome.warning] if outcome.warning else []
            return (
                CheckResult(
                    req.name,
                    "attestation",
                    "pass",
                    "policy is compliant",
                    evidence=(digest,),
                    warnings=tuple(warns),
                ),
                [{"id": digest, "predicateType": att.predicate_type}],
                warns,
            )
        message = f"policy is not compliant for query '{QUERY}'"
        if outcome.error:
            message += f" with errors: {outcome.error}"
        errors.append(message)
    reason = f"failed evaluating rego policy for type {req.name}: " + "; ".join(
        dict.fromkeys(errors)
    )
    return CheckResult(req.name, "attestation", "fail", reason), [], []
