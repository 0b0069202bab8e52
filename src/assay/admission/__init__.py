"""The Kubernetes admission webhook: AdmissionReview handling, tag→digest mutation, the decision
cache, the ASGI app, install manifests and the PolicyReport audit.

The policy engine decides; this package only turns Kubernetes requests into engine calls and
engine decisions into AdmissionReview responses.
"""

from __future__ import annotations

from assay.admission.app import create_app
from assay.admission.cache import DecisionCache
from assay.admission.decider import Decider, ImageVerdict, Verdict
from assay.admission.images import ImageSite, canonical_ref, extract_images, is_digest_ref
from assay.admission.review import AdmissionRequest, parse_review, review_response
from assay.admission.webhook import AUDIT_LOGGER, CredentialSource, Settings, Webhook

__all__ = [
    "AUDIT_LOGGER",
    "AdmissionRequest",
    "CredentialSource",
    "Decider",
    "DecisionCache",
    "ImageSite",
    "ImageVerdict",
    "Settings",
    "Verdict",
    "Webhook",
    "canonical_ref",
    "create_app",
    "extract_images",
    "is_digest_ref",
    "parse_review",
    "review_response",
]
