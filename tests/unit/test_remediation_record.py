"""The remediation record on SQLite and a real PostgreSQL: first dates kept, deadlines judged."""

from __future__ import annotations

import datetime as dt

from assay.remediation.record import record_fixes, remediation_status
from assay.remediation.update import CveChange
from assay.store import open_store
from fixtures.postgres import store_url

__all__ = ["store_url"]  # the fixture: sqlite and postgresql


def test_dates_kept_and_deadlines(store_url: str) -> None:
    high = CveChange("CVE-2024-1", "libx", "db", "high")
    low = CveChange("CVE-2024-2", "libx", "changelog", "")
    kev = CveChange("CVE-2024-3", "liby", "db", "low", kev=True, kev_due="2024-01-10")
    versions = {"libx": "2.0", "liby": "3.0"}
    with open_store(store_url) as s:
        # fix seen on Jan 1 (unbuilt); built and pushed on Feb 15
        record_fixes(s, "reg/app", [high, low, kev], versions, now="2024-01-01T00:00:00Z")
        record_fixes(
            s,
            "reg/app",
            [high, CveChange("CVE-2024-2", "libx", "db", "medium"), kev],
            versions,
            built_digest="sha256:" + "a" * 64,
            shipped_ref="reg/app@sha256:" + "a" * 64,
            now="2024-02-15T00:00:00Z",
        )
        record_fixes(s, "reg/other", [high], versions, now="2024-03-01T00:00:00Z")
        rows = {(r.image, r.vuln): r for r in remediation_status(s, today=dt.date(2024, 6, 1))}
        only = remediation_status(s, image="reg/other", today=dt.date(2024, 6, 1))
    r1 = rows[("reg/app", "CVE-2024-1")]
    assert r1.first_seen == "2024-01-01T00:00:00Z" and r1.fix_available == r1.first_seen
    assert r1.shipped_at == "2024-02-15T00:00:00Z" and r1.fixed_in == "2.0"
    assert r1.due_date == "2024-01-31" and r1.met is False  # high: 30 days, shipped on day 45
    r2 = rows[("reg/app", "CVE-2024-2")]
    assert r2.severity == "medium" and r2.sources == "changelog+db"
    assert r2.due_date == "2024-03-31" and r2.met is True
    r3 = rows[("reg/app", "CVE-2024-3")]
    assert r3.due_date == "2024-01-10" and r3.met is False  # KEV due date comes first
    other = rows[("reg/other", "CVE-2024-1")]
    assert other.shipped_at is None and other.met is False  # unshipped past 2024-03-31
    assert [r.image for r in only] == ["reg/other"]
    assert other.to_dict()["deadlineMet"] is False
