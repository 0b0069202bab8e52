"""Vulnerability scanning: advisory feeds, the local DB, Debian-accurate matching, OpenVEX.

Typical use::

    with AdvisoryDB(default_db_path(), create=False) as db:
        result = run_scan(db, inventory, ScanOptions(vex=[load_vex(path)]))
"""

from __future__ import annotations

from assay.vuln.db import AdvisoryDB, default_db_path
from assay.vuln.model import Finding, ScanResult, Severity, State
from assay.vuln.scanner import ScanOptions, load_target, run_scan
from assay.vuln.vex import VexDocument, apply_vex, load_vex

__all__ = [
    "AdvisoryDB",
    "Finding",
    "ScanOptions",
    "ScanResult",
    "Severity",
    "State",
    "VexDocument",
    "apply_vex",
    "default_db_path",
    "load_target",
    "load_vex",
    "run_scan",
]
