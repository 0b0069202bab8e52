"""Scan result formats, one module per format, all behind the ``Formatter`` protocol."""

from __future__ import annotations

import enum

from assay.vuln.formats._interface import Formatter
from assay.vuln.formats.cosign_vuln import CosignVulnFormatter
from assay.vuln.formats.cyclonedx import CycloneDxVexFormatter
from assay.vuln.formats.json_format import JsonFormatter
from assay.vuln.formats.sarif import SarifFormatter
from assay.vuln.formats.table import TableFormatter

__all__ = ["FORMATTERS", "Formatter", "OutputFormat"]


class OutputFormat(enum.StrEnum):
    TABLE = "table"
    JSON = "json"
    SARIF = "sarif"
    CYCLONEDX = "cyclonedx-vex"
    COSIGN_VULN = "cosign-vuln"


FORMATTERS: dict[OutputFormat, Formatter] = {
    OutputFormat.TABLE: TableFormatter(),
    OutputFormat.JSON: JsonFormatter(),
    OutputFormat.SARIF: SarifFormatter(),
    OutputFormat.CYCLONEDX: CycloneDxVexFormatter(),
    OutputFormat.COSIGN_VULN: CosignVulnFormatter(),
}
