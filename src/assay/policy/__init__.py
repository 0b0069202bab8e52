"""assay.policy: one decision engine for CI (``assay verify --policy``) and admission.

Reads Sigstore policy-controller ClusterImagePolicies (``policy.sigstore.dev/v1alpha1`` and
``v1beta1``) as they are, plus assay's ``assay.dev/v1alpha1 ImagePolicy`` with a declarative
``require:`` block, and turns an image's verified evidence into a :class:`Decision`.
"""

from __future__ import annotations

from assay.policy.decision import CheckResult, Decision, ImageDecision, PolicyResult
from assay.policy.engine import Engine, MatchContext, PolicySet, load_policies

__all__ = [
    "CheckResult",
    "Decision",
    "Engine",
    "ImageDecision",
    "MatchContext",
    "PolicyResult",
    "PolicySet",
    "load_policies",
]
