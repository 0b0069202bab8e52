"""The remediation record in the evidence store: per (image, CVE) when it was first seen, when a
fix became available, when an image carrying the fix was built and pushed, and whether that met
the FedRAMP deadline (``vuln.severity.due_date``: High 30 / Moderate 90 / Low 180 days from first
seen; a KEV entry by its due date when earlier).

The store's table is ``store.schema.remediation``; ``remediation_status`` is what
``assay remediation status`` prints and what a compliance report can cite as evidence of timely
remediation.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from assay._time import utc_now
from assay.remediation.update import CveChange
from assay.store import Store, schema

__all__ = ["RemediationRow", "record_fixes", "remediation_status"]

_RANK = {"critical": 5, "high": 4, "medium": 3, "low": 2, "negligible": 1, "unknown": 0, "": 0}


_now = utc_now


@dataclass(frozen=True)
class RemediationRow:
    image: str
    vuln: str
    package: str
    severity: str
    kev_due: str
    first_seen: str
    fix_available: str | None
    fixed_in: str
    sources: str
    built_at: str | None
    built_digest: str
    shipped_at: str | None
    shipped_ref: str
    due_date: str  # "" = no deadline known (severity unknown, not in KEV)
    met: bool | None  # None: not shipped yet and not yet overdue, or no deadline

    def to_dict(self) -> dict[str, Any]:
        return {
            "image": self.image,
            "vuln": self.vuln,
            "package": self.package,
            "severity": self.severity,
            "kevDue": self.kev_due,
            "firstSeen": self.first_seen,
            "fixAvailable": self.fix_available,
            "fixedIn": self.fixed_in,
            "sources": self.sources,
            "builtAt": self.built_at,
            "builtDigest": self.built_digest,
            "shippedAt": self.shipped_at,
            "shippedRef": self.shipped_ref,
            "dueDate": self.due_date,
            "deadlineMet": self.met,
        }


def _first_seen_in_findings(conn: Any, image: str, vuln: str) -> str:
    """The earliest first_seen of this CVE among stored scans of images of this name."""
    f, i = schema.findings, schema.images
    q = (
        select(f.c.first_seen)
        .select_from(f.join(i, f.c.image_id == i.c.id))
        .where((i.c.name == image) & (f.c.vuln == vuln))
        .order_by(f.c.first_seen)
        .limit(1)
    )
    row = conn.execute(q).first()
    return str(row[0]) if row else ""


def record_fixes(
    store: Store,
    image: str,
    fixed: Iterable[CveChange],
    versions: dict[str, str],
    *,
    built_digest: str = "",
    shipped_ref: str = "",
    now: str = "",
) -> int:
    """Record that an update found fixes for ``fixed`` (``versions``: package -> new version);
    with ``built_digest`` an image carrying them was built, with ``shipped_ref`` it was pushed.
    Earlier dates are never overwritten. Returns the number of (image, CVE) rows touched."""
    when = now or _now()
    t = schema.remediation
    merged: dict[str, list[CveChange]] = {}
    for c in fixed:
        merged.setdefault(c.id, []).append(c)
    with store.engine.begin() as conn:
        for vuln, changes in sorted(merged.items()):
            best = max(changes, key=lambda c: _RANK.get(c.severity.lower(), 0))
            package = sorted({c.package for c in changes})[0]
            sources = "+".join(sorted({c.source for c in changes}))
            kev_due = next((c.kev_due for c in changes if c.kev_due), "")
            key = (t.c.image == image) & (t.c.vuln == vuln)
            row = conn.execute(select(t).where(key)).mappings().first()
            if row is None:
                seen = _first_seen_in_findings(conn, image, vuln) or when
                conn.execute(
                    t.insert().values(
                        image=image,
                        vuln=vuln,
                        package=package,
                        severity=best.severity.lower(),
                        kev_due=kev_due,
                        first_seen=min(seen, when),
                        fix_available=when,
                        fixed_in=versions.get(package, ""),
                        sources=sources,
                        built_at=when if built_digest else None,
                        built_digest=built_digest,
                        shipped_at=when if shipped_ref else None,
                        shipped_ref=shipped_ref,
                    )
                )
                continue
            values: dict[str, Any] = {}
            if _RANK.get(best.severity.lower(), 0) > _RANK.get(str(row["severity"]), 0):
                values["severity"] = best.severity.lower()
            if kev_due and not row["kev_due"]:
                values["kev_due"] = kev_due
            if row["fix_available"] is None:
                values["fix_available"] = when
            if set(sources.split("+")) - set(str(row["sources"]).split("+")):
                values["sources"] = "+".join(
                    sorted(set(sources.split("+")) | set(str(row["sources"]).split("+")))
                )
            if built_digest and row["built_at"] is None:
                values.update(built_at=when, built_digest=built_digest)
            if shipped_ref and row["shipped_at"] is None:
                values.update(shipped_at=when, shipped_ref=shipped_ref)
            if values:
                conn.execute(t.update().where(key).values(**values))
    return len(merged)


def _deadline(severity: str, first_seen: str, kev_due: str) -> str:
    from assay.vuln.model import Severity
    from assay.vuln.severity import due_date

    try:
        sev = Severity(severity)
    except ValueError:
        sev = Severity.UNKNOWN
    return due_date(sev, first_seen, kev_due)


def remediation_status(
    store: Store, *, image: str | None = None, today: dt.date | None = None
) -> list[RemediationRow]:
    """Every remediation row (optionally of one image), with its deadline and whether it was met:
    shipped on or before the due date → True; shipped later, or unshipped past it → False."""
    today = today or dt.datetime.now(dt.UTC).date()
    t = schema.remediation
    q = select(t).order_by(t.c.image, t.c.vuln)
    if image:
        q = q.where(t.c.image == image)
    out: list[RemediationRow] = []
    with store.engine.connect() as conn:
        for r in conn.execute(q).mappings():
            due = _deadline(str(r["severity"]), str(r["first_seen"]), str(r["kev_due"]))
            shipped = r["shipped_at"]
            met: bool | None = None
            if due:
                if shipped is not None:
                    met = str(shipped)[:10] <= due
                elif today.isoformat() > due:
                    met = False
            out.append(
                RemediationRow(
                    image=str(r["image"]),
                    vuln=str(r["vuln"]),
                    package=str(r["package"]),
                    severity=str(r["severity"]),
                    kev_due=str(r["kev_due"]),
                    first_seen=str(r["first_seen"]),
                    fix_available=r["fix_available"],
                    fixed_in=str(r["fixed_in"]),
                    sources=str(r["sources"]),
                    built_at=r["built_at"],
                    built_digest=str(r["built_digest"]),
                    shipped_at=shipped,
                    shipped_ref=str(r["shipped_ref"]),
                    due_date=due,
                    met=met,
                )
            )
    return out
