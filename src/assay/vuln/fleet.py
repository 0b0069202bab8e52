"""Fleet rescans: match every stored inventory against the advisory DB as one SQL join.

Inventories are kept with ``AdvisoryDB.store_inventory`` (``assay scan --store``). The join runs
inside SQLite and compares Debian versions as byte keys (``assay.vuln.vkey``, memcmp order =
dpkg order), so the same query runs on any SQL engine; Python only classifies the rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from assay.vuln.db import AdvisoryDB
from assay.vuln.model import State

__all__ = ["FleetFinding", "fleet_rescan"]

_SQL = """
SELECT ip.subject, ip.name, ip.version, ip.purl, d.vuln, d.status, d.fixed_version, d.urgency,
       d.nodsa, d.nodsa_reason
FROM inventory_packages AS ip
JOIN inventories AS i ON i.subject = ip.subject
JOIN debian AS d ON d.release = i.release AND d.source = ip.source_name
WHERE ip.ecosystem = 'deb'
  AND d.fixed_version NOT IN ('0', '<not-affected>')
  AND (d.status != 'resolved' OR ip.source_key < d.fixed_key)
"""


@dataclass(frozen=True)
class FleetFinding:
    subject: str
    package: str
    version: str
    purl: str
    vuln: str
    state: State
    fixed_in: str
    urgency: str
    reason: str


def fleet_rescan(db: AdvisoryDB) -> Iterator[FleetFinding]:
    """Debian tracker findings for every stored inventory (same states as a single scan)."""
    for (
        subject,
        name,
        version,
        purl,
        vuln,
        status,
        fixed,
        urgency,
        nodsa,
        reason,
    ) in db.conn.execute(_SQL):
        u = urgency.strip().rstrip("*").strip().lower()
        if status == "resolved":
            state, why = State.AFFECTED, ""
        elif u == "end-of-life":
            state, why, fixed = State.END_OF_LIFE, "end-of-life in this release", ""
        elif status == "undetermined":
            state, why, fixed = State.UNDETERMINED, "", ""
        elif status == "open" and (nodsa or reason in ("postponed", "ignored")):
            state, fixed = State.WONT_FIX, ""
            why = "; ".join(x for x in (reason, nodsa) if x) or "no DSA"
        elif status == "open":
            state, why, fixed = State.AFFECTED, "", ""
        else:
            continue
        yield FleetFinding(subject, name, version, purl, vuln, state, fixed, urgency, why)
