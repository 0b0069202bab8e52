"""The inventory (and SBOMs) of an image assay built, from the lock and the assembled files.

No re-scan: the lock says which .debs went in (name, version, source, SHA256 of the .deb,
maintainer, dependencies), the assembly says which files each package installed, and the
copyright files come from the assembled entries. The result is byte-identical for the same
lock, files and SOURCE_DATE_EPOCH.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from assay.sbom.catalog import detect_distro, sort_key
from assay.sbom.fs import MemoryFileView
from assay.sbom.licenses import parse_dep5
from assay.sbom.model import Distro, Inventory, Package
from assay.sbom.purl import deb_purl

if TYPE_CHECKING:  # pragma: no cover
    from assay.build.builder import ArchImage, BuildResult
    from assay.oci.entry import Entry

__all__ = [
    "LockPackage",
    "inventory_for_arch_image",
    "inventory_from_build",
    "rfc3339",
    "sboms_for_build",
    "wheel_packages",
]

DEBIAN_12 = Distro(
    id="debian", version_id="12", codename="bookworm", pretty_name="Debian GNU/Linux 12 (bookworm)"
)
_VENDOR_KEYS = ("org.opencontainers.image.vendor", "org.opencontainers.image.authors")


class LockPackage(Protocol):
    """What the SBOM needs from one locked package (``assay.build.lock.LockedPackage``)."""

    name: str
    version: str
    architecture: str
    source: str
    source_version: str
    sha256: str
    maintainer: str
    depends: list[str]


def rfc3339(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def inventory_from_build(
    lock_packages: Iterable[LockPackage],
    entries_by_package: Mapping[str, Sequence[str]],
    image_name: str,
    image_digest: str,
    arch: str,
    distro: Distro | None,
    source_date_epoch: int,
    copyrights: Mapping[str, bytes],
    *,
    repository: str = "",
    supplier: str = "",
) -> Inventory:
    """The inventory of a built image for one architecture.

    ``entries_by_package`` maps a package name to the paths it installed (with or without a
    leading ``/``); ``copyrights`` maps a package name to its ``/usr/share/doc/NAME/copyright``.
    """
    pkgs = list(lock_packages)
    distro_id = distro.id if distro else "debian"
    distro_version = distro.version_id if distro else ""
    purls: dict[str, str] = {}
    for p in pkgs:
        purls[p.name] = deb_purl(
            p.name,
            p.version,
            p.architecture,
            source_name=p.source,
            source_version=p.source_version,
            distro_id=distro_id,
            distro_version=distro_version,
        )
    out = []
    for p in pkgs:
        files = entries_by_package.get(p.name, ())
        out.append(
            Package(
                name=p.name,
                version=p.version,
                ecosystem="deb",
                purl=purls[p.name],
                architecture=p.architecture,
                source_name=p.source or p.name,
                source_version=p.source_version or p.version,
                supplier=p.maintainer,
                license_expression=parse_dep5(copyrights.get(p.name)),
                hashes=(("SHA256", p.sha256),) if p.sha256 else (),
                files=tuple(sorted({"/" + f.lstrip("/") for f in files})),
                depends_on=tuple(
                    sorted({purls[d] for d in p.depends if d in purls} - {purls[p.name]})
                ),
                cataloger="lock",
            )
        )
    return Inventory(
        subject_name=image_name,
        subject_digest=image_digest,
        architecture=arch,
        distro=distro,
        packages=tuple(sorted(out, key=sort_key)),
        created=rfc3339(source_date_epoch),
        lifecycle="build",
        repository=repository,
        supplier=supplier,
    )


def _view_of(entries: Iterable[Entry]) -> MemoryFileView:
    from assay.oci.entry import EntryType

    view = MemoryFileView()
    for e in entries:
        path = e.path.strip("/")
        if e.type is EntryType.SYMLINK:
            view.add_symlink(path, e.link)
        elif e.type is EntryType.FILE and (
            path in ("etc/os-release", "usr/lib/os-release")
            or (path.startswith("usr/share/doc/") and path.endswith("/copyright"))
        ):
            view.add_file(path, e.data)
    return view


def inventory_from_assembly(
    packages: Iterable[LockPackage],
    entries: Iterable[Entry],
    owners: Mapping[str, Sequence[str]],
    *,
    image_name: str,
    image_digest: str,
    arch: str,
    source_date_epoch: int,
    repository: str = "",
    supplier: str = "",
) -> Inventory:
    """``inventory_from_build`` fed from an assembled rootfs: the copyright files and the
    os-release come from the assembled entries themselves."""
    pkgs = list(packages)
    view = _view_of(entries)
    copyrights: dict[str, bytes] = {}
    for p in pkgs:
        data = view.read(f"usr/share/doc/{p.name}/copyright")
        if data is not None:
            copyrights[p.name] = data
    return inventory_from_build(
        pkgs,
        owners,
        image_name=image_name,
        image_digest=image_digest,
        arch=arch,
        # the image's own os-release, as `assay sbom` reads it (no guess when there is none)
        distro=detect_distro(view),
        source_date_epoch=source_date_epoch,
        copyrights=copyrights,
        repository=repository,
        supplier=supplier,
    )


class InstalledWheelLike(Protocol):
    """What the SBOM needs from one installed wheel (``assay.build.pyinstall.InstalledWheel``)."""

    @property
    def wheel(self) -> Any: ...  # LockedWheel: name, version, sha256, filename

    @property
    def files(self) -> Sequence[Any]: ...  # InstalledFile: path, data


def wheel_packages(wheels: Iterable[InstalledWheelLike]) -> list[Package]:
    """The PyPI packages of installed wheels: what the Python cataloger reads from their own
    ``.dist-info`` (so ``assay sbom IMAGE`` finds the same), plus the wheel's SHA-256."""
    from dataclasses import replace

    from assay.sbom.catalogers.interface import CatalogContext
    from assay.sbom.catalogers.python import PythonCataloger

    cataloger = PythonCataloger()
    view = MemoryFileView()
    sha_by_name: dict[str, str] = {}
    for w in wheels:
        sha_by_name[str(w.wheel.name)] = str(w.wheel.sha256)
        for f in w.files:
            if cataloger.wants(f.path):
                view.add_file(f.path, cataloger.reduce(f.path, f.data))
    out = []
    for pkg in cataloger.catalog(view, CatalogContext()):
        sha = sha_by_name.get(pkg.name)
        out.append(replace(pkg, hashes=(("SHA256", sha),) if sha else (), cataloger="lock"))
    return out


def inventory_for_arch_image(result: BuildResult, image: ArchImage) -> Inventory:
    """``inventory_from_assembly`` fed from the build's own result objects."""
    from dataclasses import replace

    from assay.sbom.source import image_short_name

    ref = result.output
    repository = ref.name if getattr(ref, "is_registry", False) else ""
    name = image_short_name(ref)
    annotations: Mapping[str, Any] = getattr(result.spec, "annotations", {}) or {}
    supplier = next((str(annotations[k]) for k in _VENDOR_KEYS if annotations.get(k)), "")
    inv = inventory_from_assembly(
        image.packages,
        image.assembly.entries,
        image.assembly.owners,
        image_name=name,
        image_digest=image.manifest.digest,
        arch=image.arch,
        source_date_epoch=result.source_date_epoch,
        repository=repository,
        supplier=supplier,
    )
    base = getattr(image, "base", None)
    if base is not None and base.inventory is not None:
        # base: builds — the base's packages, catalogued from its layers, plus the new ones
        below: Inventory = base.inventory
        seen = {p.purl for p in inv.packages}
        merged = [*inv.packages, *(p for p in below.packages if p.purl not in seen)]
        inv = replace(
            inv, packages=tuple(sorted(merged, key=sort_key)), distro=inv.distro or below.distro
        )
    wheels = getattr(image, "wheels", ())
    if wheels:
        packages = (*inv.packages, *wheel_packages(wheels))
        inv = replace(inv, packages=tuple(sorted(packages, key=sort_key)))
    return replace(inv, tag=ref.tag or "latest")


def sboms_for_build(result: BuildResult, image: ArchImage) -> dict[str, bytes]:
    """``{"spdx": …, "cyclonedx": …}`` for one architecture of a build (``assay build``)."""
    from assay.sbom.formats import SbomFormat, render

    inv = inventory_for_arch_image(result, image)
    return {
        "spdx": render(inv, SbomFormat.SPDX_JSON),
        "cyclonedx": render(inv, SbomFormat.CYCLONEDX_JSON),
    }
