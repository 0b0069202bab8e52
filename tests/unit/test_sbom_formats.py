"""SPDX 2.3 / CycloneDX 1.6 output of a built image's inventory: valid, NTIA-complete,
deterministic. The inventory comes from ``inventory_from_build`` (lock + assembled files)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from assay.sbom.build import DEBIAN_12, inventory_from_build
from assay.sbom.formats import SbomFormat, render
from assay.sbom.formats.native import inventory_from_json
from assay.sbom.model import Inventory
from fixtures.assets import sbom_asset

validate = sbom_asset("validate")
fixtures = sbom_asset("foreign_rootfs")


@dataclass
class Locked:
    """The fields of ``assay.build.lock.LockedPackage`` the SBOM reads."""

    name: str
    version: str
    architecture: str
    source: str
    source_version: str
    sha256: str
    maintainer: str
    depends: list[str] = field(default_factory=list)


LOCK = [
    Locked(
        "libc6",
        "2.36-9+deb12u4",
        "amd64",
        "glibc",
        "2.36-9+deb12u4",
        "a" * 64,
        "GNU Libc Maintainers <debian-glibc@lists.debian.org>",
        ["libgcc-s1"],
    ),
    Locked(
        "libgcc-s1",
        "12.2.0-14",
        "amd64",
        "gcc-12",
        "12.2.0-14",
        "b" * 64,
        "Debian GCC Maintainers <debian-gcc@lists.debian.org>",
        ["gcc-12-base", "libc6"],
    ),
    Locked(
        "gcc-12-base",
        "12.2.0-14",
        "amd64",
        "gcc-12",
        "12.2.0-14",
        "c" * 64,
        "Debian GCC Maintainers <debian-gcc@lists.debian.org>",
    ),
    Locked(
        "zlib1g",
        "1:1.2.13.dfsg-1",
        "amd64",
        "zlib",
        "1:1.2.13.dfsg-1",
        "d" * 64,
        "Mark Brown <broonie@debian.org>",
        ["libc6"],
    ),
    Locked(
        "bison",
        "2:3.8.2+dfsg-1+b1",
        "amd64",
        "bison",
        "2:3.8.2+dfsg-1",
        "e" * 64,
        "Chuan-kai Lin <cklin@debian.org>",
        ["libc6", "m4"],
    ),
]
DIGEST = "sha256:" + "12" * 32


def _built(
    supplier: str = "Organization: Example Corp (sec@example.com)", *, reordered: bool = False
) -> Inventory:
    """The inventory of LOCK; ``reordered``: from the same input with every list and mapping in
    reverse order."""
    lock = LOCK
    files = {"libc6": ["usr/lib/x86_64-linux-gnu/libc.so.6"], "bison": ["/usr/bin/bison"]}
    copyrights = {
        "libc6": fixtures.DEP5_GLIBC.encode(),
        "gcc-12-base": fixtures.DEP5_GCC.encode(),
        "bison": fixtures.DEP5_BISON.encode(),
    }
    if reordered:
        lock = list(reversed(lock))
        files = dict(reversed(files.items()))
        copyrights = dict(reversed(copyrights.items()))
    return inventory_from_build(
        lock,
        files,
        image_name="localhost:5000/base/python",
        image_digest=DIGEST,
        arch="amd64",
        distro=DEBIAN_12,
        source_date_epoch=1700000000,
        copyrights=copyrights,
        repository="localhost:5000/base/python",
        supplier=supplier,
    )


def test_build_inventory_from_lock() -> None:
    inv = _built()
    by = {p.name: p for p in inv.packages}
    assert by["bison"].purl == (
        "pkg:deb/debian/bison@2:3.8.2%2Bdfsg-1%2Bb1?arch=amd64&distro=debian-12"
        "&upstream=bison%402:3.8.2%2Bdfsg-1"
    )
    assert by["bison"].hashes == (("SHA256", "e" * 64),)
    assert by["bison"].depends_on == (by["libc6"].purl,)  # m4 is not in the image
    assert by["libc6"].files == ("/usr/lib/x86_64-linux-gnu/libc.so.6",)
    assert by["zlib1g"].license_expression == ""  # no copyright file given → NOASSERTION
    assert inv.created == "2023-11-14T22:13:20Z"
    assert inv.lifecycle == "build"


def test_spdx_is_valid_and_ntia_complete(tmp_path: Path) -> None:
    data = render(_built(), SbomFormat.SPDX_JSON)
    path = tmp_path / "sbom.spdx.json"
    path.write_bytes(data)
    assert validate.spdx_errors(path) == []
    assert validate.ntia_missing_suppliers(path) == (True, [])
    doc = json.loads(data)
    root = doc["documentDescribes"][0]
    kinds = {(r["spdxElementId"] == root, r["relationshipType"]) for r in doc["relationships"]}
    assert {(True, "CONTAINS"), (False, "DEPENDS_ON")} <= kinds
    purposes = {p["name"]: p.get("primaryPackagePurpose") for p in doc["packages"]}
    assert purposes["debian"] == "OPERATING-SYSTEM"
    assert purposes["localhost:5000/base/python"] == "CONTAINER"
    libc = next(p for p in doc["packages"] if p["name"] == "libc6")
    assert libc["supplier"] == "Organization: GNU Libc Maintainers (debian-glibc@lists.debian.org)"
    assert libc["checksums"] == [{"algorithm": "SHA256", "checksumValue": "a" * 64}]
    assert libc["licenseDeclared"] == "BSD-3-Clause AND GPL-2.0-or-later AND LGPL-2.1-or-later"
    image = next(p for p in doc["packages"] if p["SPDXID"] == root)
    assert image["externalRefs"][0]["referenceLocator"] == (
        f"pkg:oci/python@sha256%3A{'12' * 32}?arch=amd64&repository_url=localhost:5000/base/python"
    )
    assert doc["creationInfo"]["created"] == "2023-11-14T22:13:20Z"


def test_unknown_image_supplier_is_not_invented(tmp_path: Path) -> None:
    path = tmp_path / "sbom.spdx.json"
    path.write_bytes(render(_built(supplier=""), SbomFormat.SPDX_JSON))
    assert validate.spdx_errors(path) == []
    assert validate.ntia_missing_suppliers(path) == (False, ["localhost:5000/base/python"])


def test_cyclonedx_is_valid_with_lifecycle_and_os() -> None:
    data = render(_built(), SbomFormat.CYCLONEDX_JSON)
    assert validate.cyclonedx_errors(data) is None
    bom = json.loads(data)
    assert bom["metadata"]["lifecycles"] == [{"phase": "build"}]
    assert bom["metadata"]["component"]["type"] == "container"
    assert any(c["type"] == "operating-system" and c["version"] == "12" for c in bom["components"])
    assert bom["serialNumber"].startswith("urn:uuid:")
    libc = next(c for c in bom["components"] if c["name"] == "libc6")
    assert libc["hashes"] == [{"alg": "SHA-256", "content": "a" * 64}]
    assert libc["supplier"]["name"] == "GNU Libc Maintainers"
    deps = {d["ref"]: d["dependsOn"] for d in bom["dependencies"]}
    assert deps[libc["bom-ref"]] == [
        next(c["bom-ref"] for c in bom["components"] if c["name"] == "libgcc-s1")
    ]


@pytest.mark.parametrize("fmt", list(SbomFormat))
def test_output_is_deterministic(fmt: SbomFormat) -> None:
    # Same input, built twice and with the lock in another order → byte-identical output.
    assert render(_built(reordered=True), fmt) == render(_built(), fmt)


def test_document_ids_follow_the_digest() -> None:
    a = json.loads(render(_built(), SbomFormat.CYCLONEDX_JSON))
    other = replace(_built(), subject_digest="sha256:" + "34" * 32)
    b = json.loads(render(other, SbomFormat.CYCLONEDX_JSON))
    assert a["serialNumber"] != b["serialNumber"]


def test_native_json_round_trip() -> None:
    inv = _built()
    assert inventory_from_json(render(inv, SbomFormat.JSON)) == inv


def test_license_refs_are_declared(tmp_path: Path) -> None:
    inv = _built()
    pkgs = tuple(
        replace(p, license_expression="LicenseRef-permissive AND MIT") if p.name == "zlib1g" else p
        for p in inv.packages
    )
    path = tmp_path / "refs.spdx.json"
    path.write_bytes(render(replace(inv, packages=pkgs), SbomFormat.SPDX_JSON))
    assert validate.spdx_errors(path) == []
    doc = json.loads(path.read_bytes())
    assert [x["licenseId"] for x in doc["hasExtractedLicensingInfos"]] == ["LicenseRef-permissive"]
