"""Values the compliance report is made of: evidence references, findings, control results.

All frozen, all with ``to_dict()`` giving JSON-ready, sorted, deterministic data.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Any, Literal

from assay.policy import Decision

__all__ = [
    "REMEDIATION_DAYS",
    "ControlResult",
    "EvidenceRef",
    "FrameworkResult",
    "ImageEvidence",
    "Report",
    "ReportFinding",
    "Result",
]

Result = Literal["satisfied", "not-satisfied", "not-applicable", "not-assessed"]

#: FedRAMP remediation time by severity, in days from first detection.
REMEDIATION_DAYS = {"critical": 30, "high": 30, "medium": 90, "low": 180}


@dataclass(frozen=True)
class EvidenceRef:
    """One piece of verified evidence: what it is, its digest, when and by what it was made."""

    kind: str  # signature | sbom | provenance | scan | vex | config | decision | findings
    digest: str
    date: str = ""
    tool: str = ""
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "digest": self.digest,
            "date": self.date or None,
            "tool": self.tool or None,
            "detail": self.detail or None,
        }


@dataclass(frozen=True)
class ReportFinding:
    """An open vulnerability finding with its remediation deadline."""

    vuln: str
    package: str
    version: str
    severity: str
    fixed_in: str = ""
    kev: bool = False
    kev_due: str = ""  # YYYY-MM-DD, CISA's due date
    first_seen: str = ""  # YYYY-MM-DD
    due_date: str = ""  # YYYY-MM-DD: the earlier of the severity deadline and the KEV due date
    source: str = "scan"  # scan | store

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.vuln, self.package, self.version)

    def overdue(self, today: _dt.date) -> bool:
        return bool(self.due_date) and _dt.date.fromisoformat(self.due_date) < today

    def age_days(self, today: _dt.date) -> int | None:
        if not self.first_seen:
            return None
        return (today - _dt.date.fromisoformat(self.first_seen)).days

    def to_dict(self) -> dict[str, Any]:
        return {
            "vuln": self.vuln,
            "package": self.package,
            "version": self.version,
            "severity": self.severity,
            "fixed_in": self.fixed_in or None,
            "kev": self.kev,
            "kev_due": self.kev_due or None,
            "first_seen": self.first_seen or None,
            "due_date": self.due_date or None,
            "source": self.source,
        }


@dataclass(frozen=True)
class ImageEvidence:
    """Everything verified about one image digest that the evaluation may use."""

    reference: str
    digest: str
    items: tuple[EvidenceRef, ...] = ()
    config: dict[str, Any] | None = field(default=None, hash=False, compare=False)
    scan_date: str = ""  # RFC 3339: when the verified scan finished
    findings: tuple[ReportFinding, ...] = ()
    decision: Decision | None = field(default=None, hash=False, compare=False)
    policy_digest: str = ""
    problems: tuple[str, ...] = ()
    #: the verified documents themselves, for the evidence bundle: (bundle path, bytes)
    documents: tuple[tuple[str, bytes], ...] = field(default=(), hash=False, compare=False)

    def of_kind(self, kind: str) -> tuple[EvidenceRef, ...]:
        return tuple(i for i in self.items if i.kind == kind)


@dataclass(frozen=True)
class ControlResult:
    framework: str
    control: str
    title: str
    result: Result
    reason: str
    evidence: tuple[EvidenceRef, ...] = ()
    findings: tuple[ReportFinding, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "framework": self.framework,
            "control": self.control,
            "title": self.title,
            "result": self.result,
            "reason": self.reason,
            "evidence": [e.to_dict() for e in self.evidence],
            "findings": [f.to_dict() for f in self.findings],
        }


@dataclass(frozen=True)
class FrameworkResult:
    id: str
    title: str
    source: str
    controls: tuple[ControlResult, ...]

    @property
    def result(self) -> Result:
        """not-satisfied if any control is; not-assessed if any is and none failed."""
        results = {c.result for c in self.controls}
        for r in ("not-satisfied", "not-assessed", "satisfied"):
            if r in results:
                return r
        return "not-applicable"

    def counts(self) -> dict[str, int]:
        out = {"satisfied": 0, "not-satisfied": 0, "not-applicable": 0, "not-assessed": 0}
        for c in self.controls:
            out[c.result] += 1
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "source": self.source,
            "result": self.result,
            "counts": self.counts(),
            "controls": [c.to_dict() for c in self.controls],
        }


@dataclass(frozen=True)
class Report:
    """An image evaluated against the catalog on ``date``."""

    reference: str
    digest: str
    date: str  # YYYY-MM-DD the evaluation is as of
    catalog_version: int
    frameworks: tuple[FrameworkResult, ...]
    evidence: tuple[EvidenceRef, ...]
    findings: tuple[ReportFinding, ...]
    problems: tuple[str, ...] = ()
    decision: dict[str, Any] | None = field(default=None, hash=False, compare=False)

    @property
    def today(self) -> _dt.date:
        return _dt.date.fromisoformat(self.date)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": "https://assay.dev/schemas/compliance-report/v1",
            "image": {"reference": self.reference, "digest": self.digest},
            "date": self.date,
            "catalog_version": self.catalog_version,
            "summary": {f.id: f.result for f in self.frameworks},
            "frameworks": [f.to_dict() for f in self.frameworks],
            "evidence": [e.to_dict() for e in self.evidence],
            "findings": [f.to_dict() for f in self.findings],
            "problems": list(self.problems),
            "decision": self.decision,
        }
