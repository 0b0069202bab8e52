"""SPDX 2.3 JSON.

Layout: the document ``DESCRIBES`` the image (a package with primaryPackagePurpose
``CONTAINER`` and a ``pkg:oci`` purl); the image ``CONTAINS`` the operating system (purpose
``OPERATING-SYSTEM``) and every package; packages ``DEPENDS_ON`` each other as the dpkg database
or the lock says. Licenses go in ``licenseDeclared`` (``licenseConcluded`` stays
``NOASSERTION``: assay does not conclude); every ``LicenseRef-…`` used is declared in
``hasExtractedLicensingInfos``. Output is deterministic: the namespace is derived from the image
digest, the creation time from the inventory, and everything is sorted.
"""

from __future__ import annotations

import json
from typing import Any

from assay.sbom.formats._common import (
    TOOL_NAME,
    TOOL_VERSION,
    document_uuid,
    image_purl,
    is_organization,
    os_supplier,
    package_ref,
    split_contact,
    timestamp,
)
from assay.sbom.licenses import license_refs
from assay.sbom.model import Inventory, Package

__all__ = ["render_spdx", "spdx_supplier"]

_NOASSERTION = "NOASSERTION"
_PURPOSE = {"deb": "LIBRARY", "apk": "LIBRARY", "pypi": "LIBRARY", "npm": "LIBRARY"}
_SAFE = "".join(c for c in map(chr, range(128)) if c.isalnum()) + ".-"


def _sanitize(text: str) -> str:
    return "".join(c if c in _SAFE else "-" for c in text).strip("-") or "x"


def spdx_supplier(value: str) -> str:
    """``Name <mail>`` → ``Organization: Name (mail)`` or ``Person: Name (mail)``."""
    if not value:
        return _NOASSERTION
    if value.startswith(("Organization:", "Person:")) or value == _NOASSERTION:
        return value
    name, email = split_contact(value)
    kind = "Organization" if is_organization(name, email) else "Person"
    name = name.replace("(", "[").replace(")", "]")
    return f"{kind}: {name} ({email})" if email else f"{kind}: {name}"


def _package(pkg: Package, spdx_id: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "SPDXID": spdx_id,
        "name": pkg.name,
        "versionInfo": pkg.version or _NOASSERTION,
        "supplier": spdx_supplier(pkg.supplier),
        "downloadLocation": _NOASSERTION,
        "filesAnalyzed": False,
        "licenseConcluded": _NOASSERTION,
        "licenseDeclared": pkg.license_expression or _NOASSERTION,
        "copyrightText": _NOASSERTION,
        "primaryPackagePurpose": _PURPOSE.get(pkg.ecosystem, "LIBRARY"),
        "externalRefs": [
            {
                "referenceCategory": "PACKAGE-MANAGER",
                "referenceType": "purl",
                "referenceLocator": pkg.purl,
            }
        ],
    }
    if pkg.hashes:
        out["checksums"] = [
            {"algorithm": alg.upper().replace("-", ""), "checksumValue": value}
            for alg, value in sorted(pkg.hashes)
        ]
    if pkg.source_name and (pkg.source_name, pkg.source_version) != (pkg.name, pkg.version):
        out["sourceInfo"] = f"built package from: {pkg.source_name} {pkg.source_version}".rstrip()
    notes = []
    if pkg.locations:
        notes.append("found in: " + ", ".join(pkg.locations))
    if pkg.embedded:
        notes.append("includes (reported here, not separately): " + ", ".join(pkg.embedded))
    if notes:
        out["comment"] = "; ".join(notes)
    return out


def render_spdx(inv: Inventory) -> bytes:
    doc_id = document_uuid(inv, "spdx")
    subject = inv.subject_name or "image"
    image_id = "SPDXRef-Image-" + _sanitize(subject.rsplit("/", 1)[-1])
    image_pkg: dict[str, Any] = {
        "SPDXID": image_id,
        "name": subject,
        "versionInfo": inv.subject_digest,
        "supplier": spdx_supplier(inv.supplier),
        "downloadLocation": _NOASSERTION,
        "filesAnalyzed": False,
        "licenseConcluded": _NOASSERTION,
        "licenseDeclared": _NOASSERTION,
        "copyrightText": _NOASSERTION,
        "primaryPackagePurpose": "CONTAINER",
        "externalRefs": [
            {
                "referenceCategory": "PACKAGE-MANAGER",
                "referenceType": "purl",
                "referenceLocator": image_purl(inv),
            }
        ],
    }
    if inv.subject_digest.startswith("sha256:"):
        image_pkg["checksums"] = [
            {"algorithm": "SHA256", "checksumValue": inv.subject_digest.split(":", 1)[1]}
        ]
    packages = [image_pkg]
    relationships = [
        {
            "spdxElementId": "SPDXRef-DOCUMENT",
            "relationshipType": "DESCRIBES",
            "relatedSpdxElement": image_id,
        }
    ]
    if inv.distro is not None:
        os_id = "SPDXRef-OperatingSystem-" + _sanitize(inv.distro.id)
        os_pkg: dict[str, Any] = {
            "SPDXID": os_id,
            "name": inv.distro.id,
            "versionInfo": inv.distro.version_id or _NOASSERTION,
            "supplier": f"Organization: {os_supplier(inv.distro)}",
            "downloadLocation": _NOASSERTION,
            "filesAnalyzed": False,
            "licenseConcluded": _NOASSERTION,
            "licenseDeclared": _NOASSERTION,
            "copyrightText": _NOASSERTION,
            "primaryPackagePurpose": "OPERATING-SYSTEM",
        }
        if inv.distro.pretty_name:
            os_pkg["description"] = inv.distro.pretty_name
        packages.append(os_pkg)
        relationships.append(
            {"spdxElementId": image_id, "relationshipType": "CONTAINS", "relatedSpdxElement": os_id}
        )
    ids: dict[str, list[str]] = {}
    refs: set[str] = set()
    for pkg in inv.packages:
        spdx_id = "SPDXRef-Package-" + package_ref(pkg)
        ids.setdefault(pkg.purl, []).append(spdx_id)
        packages.append(_package(pkg, spdx_id))
        refs.update(license_refs(pkg.license_expression))
        relationships.append(
            {
                "spdxElementId": image_id,
                "relationshipType": "CONTAINS",
                "relatedSpdxElement": spdx_id,
            }
        )
    for pkg in inv.packages:
        own = "SPDXRef-Package-" + package_ref(pkg)
        for dep in pkg.depends_on:
            for target in ids.get(dep, ()):
                relationships.append(
                    {
                        "spdxElementId": own,
                        "relationshipType": "DEPENDS_ON",
                        "relatedSpdxElement": target,
                    }
                )
    document: dict[str, Any] = {
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": subject,
        "documentNamespace": (
            f"https://spdx.org/spdxdocs/{TOOL_NAME}/{_sanitize(subject)}-{doc_id}"
        ),
        "creationInfo": {
            "created": timestamp(inv),
            "creators": [f"Tool: {TOOL_NAME}-{TOOL_VERSION}"],
            "comment": f"lifecycle phase: {inv.lifecycle}",
        },
        "documentDescribes": [image_id],
        "packages": sorted(packages, key=lambda p: p["SPDXID"]),
        "relationships": sorted(
            relationships,
            key=lambda r: (r["spdxElementId"], r["relationshipType"], r["relatedSpdxElement"]),
        ),
    }
    if refs:
        document["hasExtractedLicensingInfos"] = [
            {
                "licenseId": ref,
                "name": ref.removeprefix("LicenseRef-"),
                "extractedText": (
                    f"The license named {ref.removeprefix('LicenseRef-')!r} in the package's "
                    "metadata; it has no SPDX identifier. See the package's copyright file."
                ),
            }
            for ref in sorted(refs)
        ]
    return (json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()
