"""The neutral package inventory that SBOM writers, the scanner and policy read.

It is format-free: SPDX and CycloneDX writers, and the vulnerability matcher, all take an
``Inventory``. Built images get one from the lock and the assembled file list; foreign images
get one from the catalogers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Distro", "Inventory", "Package"]


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    ecosystem: str  # "deb", "apk", "pypi", "npm"
    purl: str
    architecture: str = ""
    source_name: str = ""  # source package (Debian Source, apk origin); "" when not applicable
    source_version: str = ""
    supplier: str = ""  # e.g. Maintainer field; "" = unknown (NOASSERTION)
    license_expression: str = ""  # SPDX expression; "" = NOASSERTION
    hashes: tuple[tuple[str, str], ...] = ()  # (algorithm e.g. "SHA256", hex)
    files: tuple[str, ...] = ()  # absolute paths inside the image, sorted
    depends_on: tuple[str, ...] = ()  # purls of direct dependencies
    locations: tuple[str, ...] = ()  # where the cataloger found it (e.g. status.d path)
    # purls of language packages (pypi, npm…) whose files this package owns: reported once, here
    embedded: tuple[str, ...] = ()
    cataloger: str = ""  # which cataloger found it ("dpkg", "apk", "python", "npm", "lock")

    @property
    def key(self) -> str:
        return self.purl


@dataclass(frozen=True)
class Distro:
    id: str  # "debian"
    version_id: str  # "12"
    codename: str = ""  # "bookworm"
    pretty_name: str = ""


@dataclass(frozen=True)
class Inventory:
    """Everything known about what an image contains."""

    subject_name: str  # e.g. "localhost:5000/base/python" or "examples/python.yaml"
    subject_digest: str  # "sha256:…" of the image manifest (or of the input when not an image)
    architecture: str
    distro: Distro | None
    packages: tuple[Package, ...]
    created: str = ""  # RFC 3339, from SOURCE_DATE_EPOCH where reproducibility is promised
    tool: str = "assay"
    lifecycle: str = "build"  # CycloneDX phase: "build" for built images, "post-build" otherwise
    repository: str = ""  # registry/repository of the image, for the pkg:oci purl (may be "")
    tag: str = ""  # the tag the image was read or written under (a pkg:oci qualifier), or ""
    supplier: str = ""  # supplier of the image itself (spec / image vendor label); "" = unknown
    extra: dict[str, str] = field(default_factory=dict, compare=False, hash=False)
