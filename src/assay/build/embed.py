"""``sbom: {embed: true}``: put the image's SPDX document inside the image, as apko does.

The document lives at ``/var/lib/db/sbom/<name>-<arch>.spdx.json``. It is made before the image
exists, so it cannot name the image digest; its subject digest is the SHA256 of the locked
package list for that architecture (which is what the document describes). It is part of the
layer, so it is covered by the image digest and by the reproducibility guarantee.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from assay.build.lock import LockedPackage
from assay.build.rootfs import AssemblyResult
from assay.oci.entry import Entry, EntryType
from assay.oci.jsonc import canonical_json
from assay.sbom.model import Distro

__all__ = ["SBOM_DIR", "embedded_spdx"]

SBOM_DIR = "var/lib/db/sbom"


def _distro(assembly: AssemblyResult) -> Distro | None:
    from assay.sbom.catalog import parse_os_release

    for e in assembly.entries:
        if e.path in ("usr/lib/os-release", "etc/os-release") and e.type is EntryType.FILE:
            fields = parse_os_release(e.data.decode("utf-8", "replace"))
            return Distro(
                id=fields.get("ID", ""),
                version_id=fields.get("VERSION_ID", ""),
                codename=fields.get("VERSION_CODENAME", ""),
                pretty_name=fields.get("PRETTY_NAME", ""),
            )
    return None


def embedded_spdx(
    assembly: AssemblyResult,
    packages: Sequence[LockedPackage],
    *,
    name: str,
    arch: str,
    source_date_epoch: int,
) -> Entry:
    """The Entry holding the SPDX document for ``packages`` as assembled."""
    from assay.sbom.build import DEBIAN_12, inventory_from_build
    from assay.sbom.formats import SbomFormat, render

    locked = canonical_json([p.model_dump(by_alias=True, mode="json") for p in packages])
    copyrights = {
        e.path.split("/")[3]: e.data
        for e in assembly.entries
        if e.type is EntryType.FILE
        and e.path.startswith("usr/share/doc/")
        and e.path.endswith("/copyright")
        and e.path.count("/") == 4
    }
    inventory = inventory_from_build(
        packages,
        assembly.owners,
        image_name=name,
        image_digest="sha256:" + hashlib.sha256(locked).hexdigest(),
        arch=arch,
        distro=_distro(assembly) or DEBIAN_12,
        source_date_epoch=source_date_epoch,
        copyrights=copyrights,
    )
    data = render(inventory, SbomFormat.SPDX_JSON)
    return Entry(
        f"{SBOM_DIR}/{name}-{arch}.spdx.json",
        EntryType.FILE,
        0o644,
        mtime=source_date_epoch,
        data=data,
    )
