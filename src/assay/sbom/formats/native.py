"""assay's own inventory JSON (``-o json``): the neutral model as is, including file lists."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from assay._json import load_json
from assay.sbom.model import Distro, Inventory, Package

__all__ = ["SCHEMA", "inventory_from_json", "render_json"]

SCHEMA = "https://assay.invalid/schema/inventory/v1"


def render_json(inv: Inventory) -> bytes:
    doc: dict[str, Any] = asdict(inv)
    doc["schema"] = SCHEMA
    return (json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def inventory_from_json(data: bytes) -> Inventory:
    """Read back what ``render_json`` wrote (for ``assay scan`` of a saved inventory)."""
    from assay.errors import InputError

    doc = load_json(data, what="inventory JSON", max_size=256 << 20)
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise InputError("not an assay inventory document (missing or wrong 'schema')")
    try:
        packages = tuple(_package(p) for p in doc["packages"])
        distro = Distro(**doc["distro"]) if doc.get("distro") else None
        fields = {k: v for k, v in doc.items() if k not in ("schema", "packages", "distro")}
        return Inventory(packages=packages, distro=distro, **fields)
    except (TypeError, KeyError) as exc:
        raise InputError(f"inventory JSON is malformed: {exc}") from None


def _package(raw: dict[str, Any]) -> Package:
    fields = dict(raw)
    fields["hashes"] = tuple(tuple(h) for h in fields.get("hashes", ()))
    for key in ("files", "depends_on", "locations", "embedded"):
        fields[key] = tuple(fields.get(key, ()))
    return Package(**fields)
