"""The interface of a scan result format."""

from __future__ import annotations

from typing import Protocol

from assay.vuln.model import ScanResult

__all__ = ["Formatter"]


class Formatter(Protocol):
    def render(self, result: ScanResult) -> str:
        """The whole document as text (deterministic for the same result)."""
        ...
