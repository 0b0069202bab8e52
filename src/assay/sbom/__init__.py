"""assay.sbom: the neutral package inventory, catalogers for foreign images, SPDX 2.3 and
CycloneDX 1.6 writers, and the inventory of images assay builds (from the lock, no re-scan).

Names are imported lazily so that ``assay`` starts fast for commands that do not need them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from assay._lazy import lazy_exports

if TYPE_CHECKING:  # pragma: no cover
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

_EXPORTS = {
    "Distro": "assay.sbom.model",
    "Inventory": "assay.sbom.model",
    "Package": "assay.sbom.model",
    "SbomFormat": "assay.sbom.formats",
    "render": "assay.sbom.formats",
    "catalog_image": "assay.sbom.image",
    "inventory_from_build": "assay.sbom.build",
    "sboms_for_build": "assay.sbom.build",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
