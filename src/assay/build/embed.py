"""``sbom: {embed: true}``: put the image's SPDX document inside the image, as apko does.

The document lives at ``/var/lib/db/sbom/<name>-<arch>.spdx.json``. It is made before the image
exists, so it cannot name the image digest; its subject digest is the SHA256 of the locked
package list for that architecture (which is what the document describes). It is part of the
layer, so it is covered by the image digest and by the reproducibility guarantee.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from assay.build.lock import LockedPackage
from assay.build.rootfs import AssemblyResult
from assay.oci.entry import Entry, EntryType
from assay.oci.jsonc import canonical_json

__all__ = ["SBOM_DIR", "embedded_spdx"]

SBOM_DIR = "var/lib/db/sbom"


def embedded_spdx(
    assembly: AssemblyResult,
    packages: Sequence[LockedPackage],
    *,
    name: str,
    arch: str,
    source_date_epoch: int,
    wheels: Sequence[Any] = (),
) -> Entry:
    """The Entry holding the SPDX document for ``packages`` as assembled, and the Python
    ``wheels`` installed beside them (``assay.build.pyinstall.InstalledWheel``)."""
    from assay.sbom.build import inventory_from_assembly, wheel_packages
    from assay.sbom.catalog import sort_key
    from assay.sbom.formats import SbomFormat, render

    described: list[Any] = [p.model_dump(by_alias=True, mode="json") for p in packages]
    described += [w.wheel.model_dump(by_alias=True, mode="json") for w in wheels]
    locked = canonical_json(described)
    inventory = inventory_from_assembly(
        packages,
        assembly.entries,
        assembly.owners,
        image_name=name,
        image_digest="sha256:" + hashlib.sha256(locked).hexdigest(),
        arch=arch,
        source_date_epoch=source_date_epoch,
    )
    if wheels:
        found = (*inventory.packages, *wheel_packages(wheels))
        inventory = replace(inventory, packages=tuple(sorted(found, key=sort_key)))
    return Entry(
        f"{SBOM_DIR}/{name}-{arch}.spdx.json",
        EntryType.FILE,
        0o644,
        mtime=source_date_epoch,
        data=render(inventory, SbomFormat.SPDX_JSON),
    )
