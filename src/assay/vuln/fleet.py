"""Fleet rescans: match every stored inventory against the advisory DB as one SQL join.

Inventories are kept with ``AdvisoryDB.store_inventory`` (``assay scan --store``). The join runs
inside SQLite and compares Debian versions as byte keys (``assay.vuln.vkey``, memcmp order =
dpkg order), so the same query runs on any SQL engine; Python only classifies the rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

from assay.vuln.db import AdvisoryDB
from assay.vuln.model import State

__all__ = ["FleetFinding", "fleet_rescan"]

_SQL = """
SELECT ip.subject, ip.name, ip.purl, d.vuln, d.status, d.fixed_version, d.urgency,
       d.nodsa, d.nodsa_reason
FROM inventory_packages AS ip
JOIN inventories AS i ON i.subject = ip.subject
JOIN debian AS d ON d.release = i.release AND d.source = ip.source_name
WHERE ip.ecosystem = 'deb'
  AND d.fixed_version NOT IN ('0', '<not-affected>')
  AND (d.status != 'resolved' OR ip.source_key < d.fixed_key)
"""


class FleetFinding(NamedTuple):
    subject: str
    package: str
    purl: str
    vuln: str
    state: State
    fixed_in: str
    urgency: str
    reason: str


def fleet_rescan(db: AdvisoryDB) -> Iterator[FleetFinding]:
    """Debian tracker findings for every stored inventory (same states as a single scan)."""
    affected, eol, undetermined, wont = (
        State.AFFECTED,
        State.END_OF_LIFE,
        State.UNDETERMINED,
        State.WONT_FIX,
    )
    for subject, name, purl, vuln, status, fixed, urgency, nodsa, reason in db.conn.execute(_SQL):
        if status == "resolved":
            yield FleetFinding(subject, name, purl, vuln, affected, fixed, urgency, "")
        elif urgency.startswith("end-of-life"):
            yield FleetFinding(
                subject, name, purl, vuln, eol, "", urgency, "end-of-life in this release"
            )
        elif status == "undetermined":
            yield FleetFinding(subject, name, purl, vuln, undetermined, "", urgency, "")
        elif status == "open" and (nodsa or reason in ("postponed", "ignored")):
            why = "; ".join(x for x in (reason, nodsa) if x) or "no DSA"
            yield FleetFinding(subject, name, purl, vuln, wont, "", urgency, why)
        elif status == "open":
            yield FleetFinding(subject, name, purl, vuln, affected, "", urgency, "")
