"""CycloneDX 1.6 JSON.

The image is ``metadata.component`` (type ``container``, ``pkg:oci`` purl); the operating
system is an ``operating-system`` component; packages are ``library`` components with purl,
supplier, hashes and licenses. ``dependencies`` lists the image's direct members and each
package's ``dependsOn``. ``metadata.lifecycles`` carries the phase (``build`` for images assay
built, ``post-build`` for catalogued ones). Deterministic: the serial number is a UUID derived
from the image digest, the timestamp comes from the inventory, everything is sorted.
"""

from __future__ import annotations

import json
from typing import Any

from assay.sbom.formats._common import (
    TOOL_NAME,
    TOOL_VERSION,
    document_uuid,
    image_purl,
    os_supplier,
    package_ref,
    split_contact,
    timestamp,
)
from assay.sbom.model import Inventory, Package

__all__ = ["render_cyclonedx"]

_HASH_ALGS = {
    "SHA256": "SHA-256",
    "SHA-256": "SHA-256",
    "SHA1": "SHA-1",
    "SHA512": "SHA-512",
    "MD5": "MD5",
    "SHA-1": "SHA-1",
    "SHA-512": "SHA-512",
}


def _supplier(value: str) -> dict[str, Any] | None:
    if not value:
        return None
    for prefix in ("Organization: ", "Person: "):
        value = value.removeprefix(prefix)
    name, email = split_contact(value)
    out: dict[str, Any] = {"name": name}
    if email and "@" in email:
        out["contact"] = [{"email": email}]
    return out


def _properties(pkg: Package) -> list[dict[str, str]]:
    props = []
    if pkg.architecture:
        props.append(("assay:package:architecture", pkg.architecture))
    if pkg.source_name:
        props.append(("assay:package:source-name", pkg.source_name))
    if pkg.source_version:
        props.append(("assay:package:source-version", pkg.source_version))
    if pkg.cataloger:
        props.append(("assay:package:found-by", pkg.cataloger))
    props.extend(("assay:package:location", loc) for loc in pkg.locations)
    props.extend(("assay:package:embedded-purl", p) for p in pkg.embedded)
    return [{"name": k, "value": v} for k, v in props]


def _component(pkg: Package, ref: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": "library",
        "bom-ref": ref,
        "name": pkg.name,
        "version": pkg.version,
        "purl": pkg.purl,
    }
    supplier = _supplier(pkg.supplier)
    if supplier:
        out["supplier"] = supplier
    if pkg.hashes:
        out["hashes"] = [
            {"alg": _HASH_ALGS.get(alg.upper(), "SHA-256"), "content": value}
            for alg, value in sorted(pkg.hashes)
            if alg.upper() in _HASH_ALGS
        ]
    if pkg.license_expression:
        out["licenses"] = [{"expression": pkg.license_expression}]
    props = _properties(pkg)
    if props:
        out["properties"] = props
    return out


def render_cyclonedx(inv: Inventory) -> bytes:
    image_ref = image_purl(inv)
    root: dict[str, Any] = {
        "type": "container",
        "bom-ref": image_ref,
        "name": inv.subject_name or "image",
        "version": inv.subject_digest,
        "purl": image_ref,
    }
    if inv.subject_digest.startswith("sha256:"):
        root["hashes"] = [{"alg": "SHA-256", "content": inv.subject_digest.split(":", 1)[1]}]
    supplier = _supplier(inv.supplier)
    if supplier:
        root["supplier"] = supplier
    components: list[dict[str, Any]] = []
    members: list[str] = []
    if inv.distro is not None:
        os_ref = f"os:{inv.distro.id}@{inv.distro.version_id}"
        os_comp: dict[str, Any] = {
            "type": "operating-system",
            "bom-ref": os_ref,
            "name": inv.distro.id,
            "version": inv.distro.version_id,
            "supplier": {"name": os_supplier(inv.distro)},
        }
        if inv.distro.pretty_name:
            os_comp["description"] = inv.distro.pretty_name
        components.append(os_comp)
        members.append(os_ref)
    refs: dict[str, list[str]] = {}
    for pkg in inv.packages:
        ref = package_ref(pkg)
        refs.setdefault(pkg.purl, []).append(ref)
        components.append(_component(pkg, ref))
        members.append(ref)
    dependencies = [{"ref": image_ref, "dependsOn": sorted(members)}]
    for pkg in inv.packages:
        deps = sorted({r for d in pkg.depends_on for r in refs.get(d, ())})
        dependencies.append({"ref": package_ref(pkg), "dependsOn": deps})
    if inv.distro is not None:
        dependencies.append({"ref": members[0], "dependsOn": []})
    bom: dict[str, Any] = {
        "$schema": "http://cyclonedx.org/schema/bom-1.6.schema.json",
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": f"urn:uuid:{document_uuid(inv, 'cyclonedx')}",
        "version": 1,
        "metadata": {
            "timestamp": timestamp(inv),
            "lifecycles": [{"phase": inv.lifecycle}],
            "tools": {
                "components": [{"type": "application", "name": TOOL_NAME, "version": TOOL_VERSION}]
            },
            "authors": [{"name": f"{TOOL_NAME} {TOOL_VERSION} (automated)"}],
            "component": root,
        },
        "components": sorted(components, key=lambda c: str(c["bom-ref"])),
        "dependencies": sorted(dependencies, key=lambda d: str(d["ref"])),
    }
    return (json.dumps(bom, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()
