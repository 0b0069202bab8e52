"""assay ImagePolicy ``require:`` checks (filled in below)."""

from __future__ import annotations

from collections.abc import Sequence

from assay.policy.authority import AuthorityOutcome
from assay.policy.decision import CheckResult
from assay.policy.evidence import ImageEvidence
from assay.policy.model import Policy

__all__ = ["run_checks"]


def run_checks(
    policy: Policy, image: ImageEvidence, outcomes: Sequence[AuthorityOutcome]
) -> list[CheckResult]:
    return [CheckResult("require", "check", "error", "require checks are not implemented yet")]
