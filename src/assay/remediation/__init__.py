"""Continuous remediation: relock and rebuild when fixes land, and say what each rebuild fixed."""

from assay.remediation.update import (
    CveChange,
    PackageChange,
    UpdatePlan,
    changelog_fixes,
    db_delta,
    inventory_of_lock,
    is_security_suite,
    plan_update,
)

__all__ = [
    "CveChange",
    "PackageChange",
    "UpdatePlan",
    "changelog_fixes",
    "db_delta",
    "inventory_of_lock",
    "is_security_suite",
    "plan_update",
]
