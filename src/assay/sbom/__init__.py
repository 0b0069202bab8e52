"""assay.sbom: the neutral package inventory, catalogers for foreign images, SPDX 2.3 and
CycloneDX 1.6 writers, and the inventory of images assay builds (from the lock, no re-scan)."""

from __future__ import annotations

from assay.sbom.build import inventory_from_build, sboms_for_build
from assay.sbom.formats import SbomFormat, render
from assay.sbom.image import catalog_image
from assay.sbom.model import Distro, Inventory, Package

__all__ = [
    "Distro",
    "Inventory",
    "Package",
    "SbomFormat",
    "catalog_image",
    "inventory_from_build",
    "render",
    "sboms_for_build",
]
