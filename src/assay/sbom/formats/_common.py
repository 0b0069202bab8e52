"""Helpers shared by the SBOM writers: ids, suppliers, timestamps, the root image purl."""

from __future__ import annotations

import hashlib
import re
import uuid

from assay import __version__
from assay.sbom.model import Distro, Inventory, Package
from assay.sbom.purl import oci_purl

__all__ = [
    "OS_SUPPLIERS",
    "TOOL_NAME",
    "TOOL_VERSION",
    "document_uuid",
    "image_purl",
    "os_supplier",
    "package_ref",
    "split_contact",
    "timestamp",
]

TOOL_NAME = "assay"
TOOL_VERSION = __version__
OS_SUPPLIERS = {"debian": "Debian", "ubuntu": "Canonical", "alpine": "Alpine Linux"}
_EPOCH_ZERO = "1970-01-01T00:00:00Z"
_ORG_HINTS = re.compile(
    r"\b(team|maintainers|project|group|developers|foundation|inc\.?|ltd|llc|gmbh|corp"
    r"|organization|community|authors|contributors|debian|packagers)\b",
    re.IGNORECASE,
)
_ORG_MAIL_HINTS = ("lists.", "tracker.debian.org", "alioth-lists", "packages.debian.org")
_SPDX_ID_UNSAFE = re.compile(r"[^A-Za-z0-9.\-]+")


def timestamp(inv: Inventory) -> str:
    return inv.created or _EPOCH_ZERO


def document_uuid(inv: Inventory, kind: str) -> uuid.UUID:
    """Same subject digest + architecture + tool version → same document id (deterministic)."""
    key = f"assay:{kind}:{inv.subject_digest}:{inv.architecture}:{TOOL_VERSION}"
    return uuid.uuid5(uuid.NAMESPACE_URL, key)


def image_purl(inv: Inventory) -> str:
    name = inv.subject_name.rsplit("/", 1)[-1].split(":", 1)[0] or "image"
    return oci_purl(
        name,
        inv.subject_digest,
        arch=inv.architecture,
        repository_url=inv.repository,
        tag=inv.tag,
    )


def split_contact(value: str) -> tuple[str, str]:
    """``Name <mail@x>`` → (``Name``, ``mail@x``)."""
    value = value.strip()
    m = re.match(r"^(.*?)\s*<([^<>]*)>\s*$", value)
    if m:
        return m.group(1).strip().strip('"') or m.group(2).strip(), m.group(2).strip()
    return value, ""


def is_organization(name: str, email: str) -> bool:
    return bool(_ORG_HINTS.search(name)) or any(h in email for h in _ORG_MAIL_HINTS)


def package_ref(pkg: Package) -> str:
    """A stable id for one package occurrence (same purl at two locations stays distinct)."""
    digest = hashlib.sha256(("\0".join((pkg.purl, *pkg.locations))).encode()).hexdigest()[:16]
    name = _SPDX_ID_UNSAFE.sub("-", pkg.name).strip("-") or "pkg"
    return f"{pkg.ecosystem}-{name}-{digest}"


def os_supplier(distro: Distro) -> str:
    return OS_SUPPLIERS.get(distro.id, distro.pretty_name or distro.id)
