"""``assay policy lint``: what assay cannot evaluate, and known policy pitfalls.

Loading already applies policy-controller's validation rules (a document that fails them never
gets here). Lint adds two kinds of findings:

* ``unsupported`` — valid settings assay reports as ``error`` at decision time (CUE, remote or
  ConfigMap policies, ``secretRef``/``kms`` keys, custom CAs, TSA timestamps, non-sha256 keys);
* ``warning`` — pitfalls: a glob with a literal tag (never matches the ``tag@digest`` reference
  the mutating webhook produces), a key authority with no transparency-log setting, ``mode: warn``
  on a policy that checks KEV, cosign's deprecated short predicate types, a live vulnerability
  scan with no limit on the advisory DB's age, a reproducibility requirement that the image's
  own signer can satisfy alone.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from assay.attest.intoto import PREDICATE_TYPES
from assay.policy.model import Authority, Policy

__all__ = ["Finding", "lint_policies"]

_LITERAL_TAG = re.compile(r":[A-Za-z0-9_][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class Finding:
    level: Literal["unsupported", "warning"]
    where: str  # FILE#DOC
    policy: str
    field: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "where": self.where,
            "policy": self.policy,
            "field": self.field,
            "message": self.message,
        }


def _rego_problem(module: str) -> str:
    """Why the Rego module cannot be evaluated at all ("" when it can)."""
    from assay.policy.rego import evaluate_rego

    outcome = evaluate_rego(module, {})
    return outcome.error if outcome.broken else ""


def _authority_findings(policy: Policy, i: int, a: Authority) -> list[Finding]:
    out: list[Finding] = []
    path = f"spec.authorities[{i}]"

    def add(level: Literal["unsupported", "warning"], field: str, message: str) -> None:
        out.append(Finding(level, policy.where, policy.name, f"{path}.{field}", message))

    if a.key is not None:
        if a.key.secret_ref:
            add("unsupported", "key.secretRef", "Secrets are not supported outside the cluster")
        if a.key.kms:
            add("unsupported", "key.kms", "KMS keys are not supported; put the PEM in key.data")
        if a.key.hash_algorithm != "sha256":
            add("unsupported", "key.hashAlgorithm", f"{a.key.hash_algorithm} is not supported")
        if a.key.data and "BEGIN PUBLIC KEY" in a.key.data:
            from assay.policy.authority import Unsupported, public_key

            try:
                public_key(a.key.data)
            except Unsupported as exc:
                add("unsupported", "key.data", str(exc))
        if not a.ctlog and a.static is None:
            add(
                "warning",
                "ctlog",
                "key authority without ctlog: signatures are accepted without a "
                "transparency-log entry (cosign --tlog-upload=false); say so explicitly",
            )
    if a.keyless is not None and a.keyless.ca_cert:
        add("unsupported", "keyless.ca-cert", "custom Fulcio CAs are not supported")
    if a.rfc3161:
        add("unsupported", "rfc3161timestamp", "TSA timestamp verification is not supported")
    for j, att in enumerate(a.attestations):
        if att.predicate_type in PREDICATE_TYPES:
            add(
                "warning",
                f"attestations[{j}].predicateType",
                f"short predicate type {att.predicate_type!r} is deprecated; use "
                f"{PREDICATE_TYPES[att.predicate_type]}",
            )
        if att.policy is not None and att.policy.type != "rego":
            add(
                "unsupported",
                f"attestations[{j}].policy.type",
                f"{att.policy.type} policies are not supported (no CUE evaluator); use rego",
            )
        elif att.policy is not None and att.policy.data:
            problem = _rego_problem(att.policy.data)
            if problem:
                add("unsupported", f"attestations[{j}].policy.data", problem)
        elif att.policy is not None and not att.policy.data:
            add(
                "unsupported",
                f"attestations[{j}].policy",
                "remote and configMapRef policies are not supported; inline the policy",
            )
    return out


def lint_policies(policies: Sequence[Policy]) -> list[Finding]:
    """Findings for every policy, in file order."""
    out: list[Finding] = []
    for policy in policies:
        for i, glob in enumerate(policy.globs):
            if _LITERAL_TAG.search(glob) and "*" not in glob.rsplit(":", 1)[1]:
                out.append(
                    Finding(
                        "warning",
                        policy.where,
                        policy.name,
                        f"spec.images[{i}].glob",
                        f"{glob!r} ends in a literal tag: at admission the image is "
                        "tag@digest and this glob never matches it; use the repository "
                        "(repo or repo**)",
                    )
                )
        for i, a in enumerate(policy.authorities):
            out.extend(_authority_findings(policy, i, a))
        code = policy.policy
        if code is not None and code.type != "rego":
            out.append(
                Finding(
                    "unsupported",
                    policy.where,
                    policy.name,
                    "spec.policy.type",
                    f"{code.type} policies are not supported (no CUE evaluator); use rego",
                )
            )
        elif code is not None and code.data and _rego_problem(code.data):
            out.append(
                Finding(
                    "unsupported",
                    policy.where,
                    policy.name,
                    "spec.policy.data",
                    _rego_problem(code.data),
                )
            )
        elif code is not None and not code.data:
            out.append(
                Finding(
                    "unsupported",
                    policy.where,
                    policy.name,
                    "spec.policy",
                    "remote and configMapRef policies are not supported; inline the policy",
                )
            )
        req = policy.require
        if req.vulnerability_source != "attestation" and req.max_db_age_days is None:
            out.append(
                Finding(
                    "warning",
                    policy.where,
                    policy.name,
                    "spec.require.vulnerabilities.maxDbAgeDays",
                    f"source: {req.vulnerability_source} scans with the local advisory DB; without "
                    "maxDbAgeDays a stale DB admits images with newer vulnerabilities",
                )
            )
        keyed = [a for a in policy.authorities if a.static is None]
        if req.reproducible and len(keyed) < 2:
            out.append(
                Finding(
                    "warning",
                    policy.where,
                    policy.name,
                    "spec.require.reproducible",
                    "with one authority the image's own signer can attest its reproducibility; "
                    "add the independent rebuilder's key as an authority and name its rebuilderId",
                )
            )
        if policy.mode == "warn" and policy.require.no_kev:
            out.append(
                Finding(
                    "warning",
                    policy.where,
                    policy.name,
                    "spec.mode",
                    "mode: warn on a policy that forbids KEV-listed vulnerabilities only warns "
                    "about actively exploited ones; use enforce",
                )
            )
    return out
