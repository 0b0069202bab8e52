"""A plain-text table for people: NAME VERSION TYPE, like syft's table."""

from __future__ import annotations

from assay._text import printable
from assay.sbom.model import Inventory

__all__ = ["render_table"]


def render_table(inv: Inventory) -> bytes:
    rows = [("NAME", "VERSION", "TYPE")]
    rows += [(printable(p.name), printable(p.version), p.ecosystem) for p in inv.packages]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    if not inv.packages:
        lines.append("(no packages found)")
    return ("\n".join(lines) + "\n").encode()
