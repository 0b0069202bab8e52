"""Catalogers for foreign images: one module per package database, one interface."""

from __future__ import annotations

from assay.sbom.catalogers.apk import ApkCataloger
from assay.sbom.catalogers.dpkg import DpkgCataloger
from assay.sbom.catalogers.interface import CatalogContext, Cataloger
from assay.sbom.catalogers.npm import NpmCataloger
from assay.sbom.catalogers.python import PythonCataloger

__all__ = [
    "ApkCataloger",
    "CatalogContext",
    "Cataloger",
    "DpkgCataloger",
    "NpmCataloger",
    "PythonCataloger",
    "default_catalogers",
]


def default_catalogers() -> list[Cataloger]:
    """OS package databases first: their file ownership de-duplicates language packages."""
    return [DpkgCataloger(), ApkCataloger(), PythonCataloger(), NpmCataloger()]
