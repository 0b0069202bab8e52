"""Plain values the feeds, the matcher, VEX and the output formats share."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from typing import Any, NewType

__all__ = [
    "Finding",
    "ScanResult",
    "Severity",
    "State",
    "VulnId",
    "preferred_id",
]

VulnId = NewType("VulnId", str)


class Severity(enum.StrEnum):
    """Severity ratings, ordered by ``rank`` (``unknown`` sits between negligible and low)."""

    NEGLIGIBLE = "negligible"
    UNKNOWN = "unknown"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _RANK[self]

    @classmethod
    def parse(cls, text: str) -> Severity:
        try:
            return cls(text.strip().lower())
        except ValueError:
            names = ", ".join(s.value for s in cls)
            raise ValueError(f"unknown severity {text!r}; use one of: {names}") from None


_RANK = {
    Severity.NEGLIGIBLE: 0,
    Severity.UNKNOWN: 1,
    Severity.LOW: 2,
    Severity.MEDIUM: 3,
    Severity.HIGH: 4,
    Severity.CRITICAL: 5,
}


class State(enum.StrEnum):
    """What the advisory source says about this package in this release."""

    AFFECTED = "affected"  # vulnerable; ``fixed_in`` tells whether a fix exists
    WONT_FIX = "wont-fix"  # Debian no-dsa / postponed / ignored: no fix planned for this release
    UNDETERMINED = "undetermined"  # the source has not decided yet
    END_OF_LIFE = "end-of-life"  # the package is no longer supported in this release


_ID_PREFERENCE = ("CVE-", "GHSA-", "PYSEC-", "DSA-", "DLA-", "OSV-")


def preferred_id(ids: set[str] | frozenset[str] | list[str] | tuple[str, ...]) -> str:
    """Pick the id to show for a group of aliases: a CVE first, then GHSA, … then the smallest."""
    for prefix in _ID_PREFERENCE:
        hits = sorted(i for i in ids if i.startswith(prefix))
        if hits:
            return hits[0]
    return sorted(ids)[0]


@dataclass(frozen=True)
class Finding:
    """One vulnerability (all its aliases merged) affecting one package of the inventory."""

    id: VulnId
    aliases: tuple[str, ...]  # other ids of the same vulnerability, sorted, without ``id``
    package: str
    version: str
    purl: str
    ecosystem: str
    state: State
    severity: Severity
    source: str  # "debian-tracker" or "osv"
    source_name: str = ""  # Debian source package matched on
    source_version: str = ""
    fixed_in: str = ""  # "" = no fixed version known
    reason: str = ""  # e.g. the no-dsa reason, "postponed"
    urgency: str = ""  # Debian urgency verbatim
    cvss_score: float | None = None
    cvss_vector: str = ""
    severity_source: str = ""  # what rated it: "nvd" (CVSS), "osv" (CVSS or db), "debian", ""
    cvss_source: str = ""  # where cvss_vector comes from: "nvd" or "osv"
    cvss_provider: str = ""  # NVD only: who scored it ("nvd@nist.gov" for NVD's Primary)
    description: str = ""
    kev: bool = False
    kev_due: str = ""  # YYYY-MM-DD
    epss: float | None = None
    epss_percentile: float | None = None
    first_seen: str = ""  # YYYY-MM-DD
    due_date: str = ""  # YYYY-MM-DD, FedRAMP-style remediation deadline
    locations: tuple[str, ...] = ()
    suppressed_by: dict[str, Any] | None = field(default=None, compare=False, hash=False)
    vex_status: str = ""  # status of the VEX statement that matched, suppressing or not

    @property
    def suppressed(self) -> bool:
        return self.suppressed_by is not None

    @property
    def all_ids(self) -> tuple[str, ...]:
        return (self.id, *self.aliases)

    def with_(self, **changes: Any) -> Finding:
        return replace(self, **changes)


@dataclass(frozen=True)
class ScanResult:
    subject_name: str
    subject_digest: str
    subject_purl: str
    distro: str  # e.g. "debian 12 (bookworm)"; "" when unknown
    findings: tuple[Finding, ...]
    skipped: tuple[tuple[str, str], ...] = ()  # (package purl or "", reason)
    db_built: dict[str, str] = field(default_factory=dict)  # source -> date of its data
    hidden_negligible: int = 0
    # ``scan --updates``: {package, installed, candidate, suite, cves, entries, note}
    updates: tuple[dict[str, Any], ...] | None = None
    # packages that could not be matched at all (unknown distro, no data for the release):
    # a scan that cannot see them must not look clean
    blind_spots: tuple[str, ...] = ()
    # when the scan ran (RFC 3339, UTC); set by ``assay scan``, needed by the cosign vuln predicate
    started: str = ""
    finished: str = ""

    def unsuppressed_at_or_above(self, threshold: Severity) -> list[Finding]:
        return [f for f in self.findings if not f.suppressed and f.severity.rank >= threshold.rank]
