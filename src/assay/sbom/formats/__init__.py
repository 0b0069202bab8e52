"""SBOM output formats: one module per format, one entry point."""

from __future__ import annotations

from enum import StrEnum

from assay.sbom.formats.cyclonedx import render_cyclonedx
from assay.sbom.formats.native import render_json
from assay.sbom.formats.spdx import render_spdx
from assay.sbom.formats.table import render_table
from assay.sbom.model import Inventory

__all__ = ["SbomFormat", "render"]


class SbomFormat(StrEnum):
    SPDX_JSON = "spdx-json"
    CYCLONEDX_JSON = "cyclonedx-json"
    TABLE = "table"
    JSON = "json"


_RENDERERS = {
    SbomFormat.SPDX_JSON: render_spdx,
    SbomFormat.CYCLONEDX_JSON: render_cyclonedx,
    SbomFormat.TABLE: render_table,
    SbomFormat.JSON: render_json,
}


def render(inventory: Inventory, fmt: SbomFormat | str) -> bytes:
    return _RENDERERS[SbomFormat(fmt)](inventory)
