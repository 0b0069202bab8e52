"""Read an SPDX 2.3 JSON or CycloneDX JSON SBOM into an ``Inventory`` for scanning.

Only what matching needs is taken: each package's purl (name, version, ecosystem; for
``pkg:deb`` the ``upstream`` qualifier gives the source package and the ``distro`` qualifier the
release), and the subject image from a ``pkg:oci`` purl.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from packageurl import PackageURL

from assay._json import load_json
from assay.errors import InputError
from assay.sbom.model import Distro, Inventory, Package

__all__ = ["MAX_SBOM_BYTES", "inventory_from_purls", "looks_like_sbom", "read_sbom"]

MAX_SBOM_BYTES = 256 << 20
MAX_COMPONENT_DEPTH = 32
_ECOSYSTEMS = {
    "deb": "deb",
    "pypi": "pypi",
    "npm": "npm",
    "apk": "apk",
    "golang": "golang",
    "cargo": "cargo",
    "gem": "gem",
    "maven": "maven",
    "nuget": "nuget",
    "composer": "composer",
}


def looks_like_sbom(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() == ".json"


def _package(purl_text: str) -> tuple[Package | None, Distro | None, str]:
    """(package, distro hint, oci digest) from one purl."""
    try:
        purl = PackageURL.from_string(purl_text)
    except ValueError:
        return None, None, ""
    if purl.type == "oci":
        return None, None, str(purl.version or "")
    eco = _ECOSYSTEMS.get(purl.type)
    if eco is None or not purl.version:
        return None, None, ""
    q = purl.qualifiers if isinstance(purl.qualifiers, dict) else {}
    src_name = src_ver = ""
    distro = None
    if eco == "deb":
        upstream = q.get("upstream", "")
        if upstream:
            src_name, _, src_ver = upstream.partition("@")
        m = re.match(r"^([a-z]+)-([0-9.]+|[a-z]+)$", q.get("distro", ""))
        if m and purl.namespace:
            ver = m.group(2)
            distro = Distro(
                id=m.group(1),
                version_id=ver if ver[0].isdigit() else "",
                codename="" if ver[0].isdigit() else ver,
            )
    name = purl.name if not purl.namespace or eco == "deb" else f"{purl.namespace}/{purl.name}"
    pkg = Package(
        name=name,
        version=str(purl.version),
        ecosystem=eco,
        purl=purl_text,
        architecture=q.get("arch", ""),
        source_name=src_name if src_name != purl.name or src_ver else "",
        source_version=src_ver,
    )
    return pkg, distro, ""


def inventory_from_purls(
    subject_name: str, purls: list[str], distro: Distro | None = None
) -> Inventory:
    pkgs: dict[str, Package] = {}
    digest = ""
    for text in purls:
        pkg, hint, oci = _package(text)
        if oci.startswith("sha256:") and not digest:
            digest = oci
        if pkg is not None:
            pkgs.setdefault(pkg.purl, pkg)
        if hint is not None and distro is None:
            distro = hint
    arch = next((p.architecture for p in pkgs.values() if p.architecture not in ("", "all")), "")
    return Inventory(
        subject_name=subject_name,
        subject_digest=digest,
        architecture=arch,
        distro=distro,
        packages=tuple(sorted(pkgs.values(), key=lambda p: p.purl)),
    )


def _cdx_components(comps: Any, out: list[dict[str, Any]], depth: int = 0) -> None:
    if depth > MAX_COMPONENT_DEPTH:
        raise InputError("CycloneDX components are nested too deeply")
    if not isinstance(comps, list):
        return
    for c in comps:
        if isinstance(c, dict):
            out.append(c)
            _cdx_components(c.get("components"), out, depth + 1)


def _list(value: Any, what: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise InputError(f"{what} must be a list")
    return value


def read_sbom(path: Path) -> Inventory:
    """An inventory from an SPDX 2.3 JSON or CycloneDX JSON file."""
    from assay._safefs import open_regular

    try:
        with open_regular(path, f"SBOM {path}") as fh:
            raw = fh.read(MAX_SBOM_BYTES + 1)
    except OSError as exc:
        raise InputError(f"cannot read SBOM {path}: {exc.strerror}") from None
    if len(raw) > MAX_SBOM_BYTES:
        raise InputError(f"SBOM {path} is larger than {MAX_SBOM_BYTES} bytes")
    doc = load_json(raw, what=f"SBOM {path}", max_size=MAX_SBOM_BYTES)
    if not isinstance(doc, dict):
        raise InputError(f"{path} is neither an SPDX nor a CycloneDX JSON document")
    if str(doc.get("spdxVersion", "")).startswith("SPDX-"):
        purls = []
        for p in _list(doc.get("packages"), f"SBOM {path}: packages"):
            if not isinstance(p, dict):
                raise InputError(f"SBOM {path}: a package is not an object")
            for ref in _list(p.get("externalRefs"), f"SBOM {path}: externalRefs"):
                if (
                    isinstance(ref, dict)
                    and ref.get("referenceType") == "purl"
                    and isinstance(ref.get("referenceLocator"), str)
                ):
                    purls.append(ref["referenceLocator"])
        return inventory_from_purls(str(doc.get("name") or path.name), purls)
    if doc.get("bomFormat") == "CycloneDX":
        comps: list[dict[str, Any]] = []
        meta = doc.get("metadata") or {}
        root = meta.get("component") if isinstance(meta, dict) else None
        if isinstance(root, dict):
            comps.append(root)
        _cdx_components(_list(doc.get("components"), f"SBOM {path}: components"), comps)
        distro = None
        for c in comps:
            if c.get("type") == "operating-system" and c.get("name"):
                distro = Distro(id=str(c["name"]).lower(), version_id=str(c.get("version") or ""))
        purls = [str(c["purl"]) for c in comps if isinstance(c.get("purl"), str)]
        name = str(root.get("name")) if isinstance(root, dict) and root.get("name") else path.name
        return inventory_from_purls(name, purls, distro)
    raise InputError(
        f"{path} is neither an SPDX 2.3 JSON (spdxVersion) nor a CycloneDX JSON (bomFormat) SBOM"
    )
