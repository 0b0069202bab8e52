"""Severity from CVSS vectors (``cvss`` library) or Debian urgency, and remediation due dates."""

from __future__ import annotations

import datetime as dt
import logging

from cvss import CVSS3, CVSS4
from cvss.exceptions import CVSSError

from assay.vuln.model import Severity

__all__ = [
    "FEDRAMP_DAYS",
    "cvss_score",
    "due_date",
    "nvd_preference",
    "severity_from_score",
    "severity_from_urgency",
]

log = logging.getLogger(__name__)

# FedRAMP continuous monitoring: High (and Critical) 30 days, Moderate 90, Low 180.
FEDRAMP_DAYS = {Severity.CRITICAL: 30, Severity.HIGH: 30, Severity.MEDIUM: 90, Severity.LOW: 180}


def cvss_score(vector: str) -> tuple[float, str] | None:
    """Base score and kind ("cvss_v4"/"cvss_v3") of a CVSS v3.x/v4.0 vector; None if unusable."""
    vector = vector.strip()
    try:
        if vector.startswith("CVSS:4.0/"):
            return float(CVSS4(vector).base_score), "cvss_v4"
        if vector.startswith(("CVSS:3.0/", "CVSS:3.1/")):
            return float(CVSS3(vector).base_score), "cvss_v3"
    except (CVSSError, ValueError, KeyError) as exc:
        log.debug("ignoring invalid CVSS vector %r: %s", vector, exc)
    return None


_CVSS_VERSIONS = {"4.0": 3, "3.1": 2, "3.0": 1}


def nvd_preference(kind: str, version: str) -> tuple[bool, int]:
    """Sort key for one CVE's NVD metrics: NVD's ``Primary`` over a CNA's ``Secondary``
    assessment, then the newest CVSS version (the largest key wins)."""
    return kind == "Primary", _CVSS_VERSIONS.get(version, 0)


def severity_from_score(score: float) -> Severity:
    """CVSS qualitative rating (same bands for v3.x and v4.0)."""
    if score >= 9.0:
        return Severity.CRITICAL
    if score >= 7.0:
        return Severity.HIGH
    if score >= 4.0:
        return Severity.MEDIUM
    if score > 0.0:
        return Severity.LOW
    return Severity.NEGLIGIBLE


def severity_from_urgency(urgency: str) -> Severity:
    """Debian tracker urgency (``low``, ``medium**``, ``unimportant``…) to a severity."""
    u = urgency.strip().rstrip("*").strip().lower()
    return {
        "unimportant": Severity.NEGLIGIBLE,
        "low": Severity.LOW,
        "medium": Severity.MEDIUM,
        "high": Severity.HIGH,
    }.get(u, Severity.UNKNOWN)


def due_date(severity: Severity, first_seen: str, kev_due: str = "") -> str:
    """FedRAMP remediation deadline from the first-seen date; the KEV due date when earlier."""
    candidates: list[dt.date] = []
    days = FEDRAMP_DAYS.get(severity)
    if days is not None and first_seen:
        candidates.append(dt.date.fromisoformat(first_seen[:10]) + dt.timedelta(days=days))
    if kev_due:
        try:
            candidates.append(dt.date.fromisoformat(kev_due[:10]))
        except ValueError:
            log.debug("ignoring invalid KEV due date %r", kev_due)
    return min(candidates).isoformat() if candidates else ""
