"""assay.compliance: controls mapped to verified evidence, and the reports auditors take.

``load_catalog()`` reads the packaged control catalog; ``collect()`` verifies and gathers an
image's evidence; ``evaluate()`` turns it into a :class:`Report` (each control satisfied, not
satisfied, not applicable or not assessed, with its evidence and reason); ``render()`` writes
it as HTML, JSON, OSCAL assessment-results or an OSCAL POA&M.
"""

from __future__ import annotations

from assay.compliance.catalog import Catalog, Control, Framework, load_catalog
from assay.compliance.collect import collect
from assay.compliance.evaluate import deadline, evaluate
from assay.compliance.model import (
    ControlResult,
    EvidenceRef,
    FrameworkResult,
    ImageEvidence,
    Report,
    ReportFinding,
)
from assay.compliance.oscal import assessment_results, poam
from assay.compliance.render import ReportFormat, render

__all__ = [
    "Catalog",
    "Control",
    "ControlResult",
    "EvidenceRef",
    "Framework",
    "FrameworkResult",
    "ImageEvidence",
    "Report",
    "ReportFinding",
    "ReportFormat",
    "assessment_results",
    "collect",
    "deadline",
    "evaluate",
    "load_catalog",
    "poam",
    "render",
]
