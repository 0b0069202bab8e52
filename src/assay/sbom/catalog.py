"""Catalogue a filesystem view into an ``Inventory``: distro detection, the catalogers,
de-duplication, deterministic order.

De-duplication: a language package (pypi, npm) whose metadata file is owned by an OS package
(dpkg, apk) — e.g. ``six`` inside Debian's ``python3-six`` — is reported once, as part of the OS
package: it is dropped from the list and its purl recorded in the OS package's ``embedded``.
syft reports such a package twice; assay's scanner would then match the same code twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace

from assay.sbom.catalogers import CatalogContext, Cataloger, default_catalogers
from assay.sbom.catalogers.interface import refuse_oversized
from assay.sbom.fs import FileView
from assay.sbom.model import Distro, Inventory, Package

__all__ = [
    "OS_RELEASE_PATHS",
    "catalog_view",
    "deduplicate",
    "detect_distro",
    "parse_os_release",
    "reduce_any",
    "wants_any",
]

log = logging.getLogger(__name__)

OS_RELEASE_PATHS = ("etc/os-release", "usr/lib/os-release")
_OS_PACKAGE_ECOSYSTEMS = ("deb", "apk")


def parse_os_release(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        out[key.strip()] = value
    return out


def detect_distro(view: FileView) -> Distro | None:
    for path in OS_RELEASE_PATHS:
        data = view.read(path)
        if data is not None:
            fields = parse_os_release(data[:65536].decode("utf-8", errors="replace"))
            if fields.get("ID"):
                return Distro(
                    id=fields["ID"],
                    version_id=fields.get("VERSION_ID", ""),
                    codename=fields.get("VERSION_CODENAME", ""),
                    pretty_name=fields.get("PRETTY_NAME", ""),
                )
    return None


def wants_any(catalogers: Sequence[Cataloger]) -> Callable[[str], bool]:
    """One predicate for the image source: os-release plus whatever a cataloger wants."""
    preds = [c.wants for c in catalogers]

    def wants(path: str) -> bool:
        if path in OS_RELEASE_PATHS:
            return True
        return any(p(path) for p in preds)

    return wants


def reduce_any(catalogers: Sequence[Cataloger]) -> Callable[[str, bytes], bytes]:
    """One reducer for the image source: the first cataloger that wants a path reduces it."""
    pairs = [(c.wants, c.reduce) for c in catalogers]

    def reduce(path: str, data: bytes) -> bytes:
        for wants, red in pairs:
            if wants(path):
                return red(path, data)
        return data

    return reduce


def deduplicate(packages: Sequence[Package], view: FileView) -> list[Package]:
    """Fold language packages owned by an OS package into it (see the module docstring)."""
    owner: dict[str, int] = {}
    for idx, pkg in enumerate(packages):
        if pkg.ecosystem in _OS_PACKAGE_ECOSYSTEMS:
            for f in pkg.files:
                owner.setdefault(_canonical(view, f), idx)
    if not owner:
        return list(packages)
    embedded: dict[int, set[str]] = {}
    kept: list[Package | None] = list(packages)
    for idx, pkg in enumerate(packages):
        if pkg.ecosystem in _OS_PACKAGE_ECOSYSTEMS:
            continue
        for loc in pkg.locations:
            os_idx = owner.get(_canonical(view, loc))
            if os_idx is not None:
                log.debug("%s is owned by %s: reported once", pkg.purl, packages[os_idx].purl)
                embedded.setdefault(os_idx, set()).add(pkg.purl)
                kept[idx] = None
                break
    out = []
    for idx, maybe in enumerate(kept):
        if maybe is None:
            continue
        if idx in embedded:
            maybe = replace(maybe, embedded=tuple(sorted(set(maybe.embedded) | embedded[idx])))
        out.append(maybe)
    return out


def _canonical(view: FileView, path: str) -> str:
    try:
        return view.canonical(path)
    except Exception:  # a hostile symlink loop in a list file path: compare it as written
        return path.lstrip("/")


def sort_key(pkg: Package) -> tuple[str, str, str, str, tuple[str, ...]]:
    return (pkg.ecosystem, pkg.name, pkg.version, pkg.purl, pkg.locations)


def catalog_view(
    view: FileView,
    *,
    subject_name: str,
    subject_digest: str,
    architecture: str,
    catalogers: Sequence[Cataloger] | None = None,
    created: str = "",
    repository: str = "",
) -> Inventory:
    """Run every cataloger over ``view`` and return the de-duplicated, sorted inventory."""
    catalogers = list(catalogers) if catalogers is not None else default_catalogers()
    distro = detect_distro(view)
    context = CatalogContext(distro=distro)
    found: list[Package] = []
    for cataloger in catalogers:
        pkgs = cataloger.catalog(view, context)
        log.debug("%s cataloger: %d packages", cataloger.name, len(pkgs))
        found.extend(pkgs)
        refuse_oversized(len(found), sum(len(p.depends_on) for p in found))
    packages = sorted(deduplicate(found, view), key=sort_key)
    return Inventory(
        subject_name=subject_name,
        subject_digest=subject_digest,
        architecture=architecture,
        distro=distro,
        packages=tuple(packages),
        created=created,
        lifecycle="post-build",
        repository=repository,
    )
