"""Decisions as data: frozen, JSON-ready, deterministic.

Statuses: ``pass`` (satisfied), ``fail`` (evidence missing or wrong), ``warn`` (failed under
``mode: warn``, or passed with a warning), ``error`` (could not be decided: registry down,
timeout, unsupported setting), ``skipped`` (not applicable, with a reason).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["CheckResult", "Decision", "ImageDecision", "PolicyResult", "Status"]

Status = Literal["pass", "fail", "warn", "error", "skipped"]


@dataclass(frozen=True)
class CheckResult:
    """One authority, attestation or built-in check."""

    name: str
    kind: str  # "authority" | "attestation" | "check" | "policy"
    status: Status
    reason: str = ""
    evidence: tuple[str, ...] = ()
    controls: tuple[str, ...] = ()
    children: tuple[CheckResult, ...] = ()
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "status": self.status,
            "reason": self.reason,
            "evidence": sorted(set(self.evidence)),
        }
        if self.controls:
            out["controls"] = sorted(self.controls)
        if self.children:
            out["children"] = [c.to_dict() for c in self.children]
        if self.warnings:
            out["warnings"] = list(self.warnings)
        return out


@dataclass(frozen=True)
class PolicyResult:
    """One matching policy's outcome for one image."""

    name: str
    kind: str
    mode: str
    status: Status
    reason: str
    authorities: tuple[CheckResult, ...] = ()
    checks: tuple[CheckResult, ...] = ()
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "mode": self.mode,
            "status": self.status,
            "reason": self.reason,
            "authorities": [a.to_dict() for a in self.authorities],
            "checks": [c.to_dict() for c in self.checks],
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True)
class ImageDecision:
    reference: str
    digest: str | None
    result: Literal["allow", "deny"]
    status: Literal["pass", "fail", "warn", "error"]
    message: str
    warnings: tuple[str, ...] = ()
    policies: tuple[PolicyResult, ...] = ()
    evidence: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "digest": self.digest,
            "result": self.result,
            "status": self.status,
            "message": self.message,
            "warnings": list(self.warnings),
            "policies": [p.to_dict() for p in self.policies],
            "evidence": sorted(set(self.evidence)),
        }


@dataclass(frozen=True)
class Decision:
    images: tuple[ImageDecision, ...]
    allowed: bool
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "allowed": self.allowed,
            "warnings": list(self.warnings),
            "images": [i.to_dict() for i in self.images],
        }
