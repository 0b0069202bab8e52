"""The three validators every SBOM assay writes must pass (shared by the SBOM tests)."""

from __future__ import annotations

from pathlib import Path


def spdx_errors(path: Path) -> list[str]:
    """spdx-tools: parse + full validation (what ``pyspdxtools -i`` does)."""
    from spdx_tools.spdx.parser.parse_anything import parse_file
    from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

    doc = parse_file(str(path))
    return [m.validation_message for m in validate_full_spdx_document(doc)]


def cyclonedx_errors(data: bytes) -> str | None:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(data.decode())
    return None if error is None else str(error)


def ntia_missing_suppliers(path: Path) -> tuple[bool, list[str]]:
    """(compliant, names of components without a supplier) per ntia-conformance-checker."""
    from ntia_conformance_checker.sbom_checker import SbomChecker

    checker = SbomChecker(str(path), compliance="ntia")
    missing = [name for name, _ in checker.components_without_suppliers]
    return bool(checker.compliant), sorted(missing)
