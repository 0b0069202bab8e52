"""Value sets of ``-o/--output`` shared by several commands (typer turns them into choices).

Kept here, free of heavy imports, so registering a command costs nothing; the library's own
enums (e.g. ``assay.vuln.formats.OutputFormat``) stay the source of truth and a test checks that
the values agree.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["ScanFormat", "TextJson"]


class TextJson(StrEnum):
    """``-o text`` (for people) or ``-o json`` (for programs)."""

    text = "text"
    json = "json"


class ScanFormat(StrEnum):
    """What ``scan -o`` and ``vex apply -o`` render: ``assay.vuln.formats.OutputFormat``."""

    table = "table"
    json = "json"
    sarif = "sarif"
    cyclonedx_vex = "cyclonedx-vex"
    cosign_vuln = "cosign-vuln"
