"""Dependency edges between the packages one cataloger found."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from assay.sbom.model import Package

__all__ = ["link_dependencies"]


def link_dependencies(
    found: Sequence[tuple[Package, Sequence[str]]],
    by_name: Mapping[str, Sequence[str]] | None = None,
) -> list[Package]:
    """Each package with ``depends_on`` set to the purls its dependency names resolve to
    (sorted, itself left out). ``by_name`` maps a name to purls; by default each found
    package answers to its own name; names nothing answers to are dropped."""
    if by_name is None:
        names: dict[str, list[str]] = {}
        for pkg, _ in found:
            names.setdefault(pkg.name, []).append(pkg.purl)
        by_name = names
    out = []
    for pkg, deps in found:
        edges = {p for d in deps for p in by_name.get(d, ())} - {pkg.purl}
        out.append(replace(pkg, depends_on=tuple(sorted(edges))))
    return out
