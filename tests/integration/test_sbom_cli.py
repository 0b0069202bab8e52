"""``assay sbom`` end to end on the foreign test images: every format validates and is
byte-identical across runs, table and dir: output, tampered blobs fail closed, registry refs.

The images are built by tests/assets/sbom/foreign_rootfs.py (see test_sbom_foreign.py).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from assay.errors import VerificationError
from assay.sbom.image import catalog_image
from fixtures.assets import sbom_asset

fixtures = sbom_asset("foreign_rootfs")
validate = sbom_asset("validate")


def _assay_cli(*args: str) -> bytes:
    proc = subprocess.run(["assay", *args], capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()
    return proc.stdout


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("foreign")
    fixtures.write_foreign_images(base)
    return {"base": base}


def test_every_format_validates_and_is_byte_identical(
    images: dict[str, Path], tmp_path: Path
) -> None:
    layout = images["base"] / "debian-oci"
    for fmt, name in (("spdx-json", "a.spdx.json"), ("cyclonedx-json", "a.cdx.json")):
        first = _assay_cli("sbom", f"oci:{layout}:test", "-o", fmt, "--file", str(tmp_path / name))
        assert first == b""  # data went to the file
        again = _assay_cli("sbom", f"oci:{layout}:test", "-o", fmt)
        assert (tmp_path / name).read_bytes() == again
    spdx = tmp_path / "a.spdx.json"
    proc = subprocess.run(["pyspdxtools", "-i", str(spdx)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert validate.spdx_errors(spdx) == []
    assert validate.cyclonedx_errors((tmp_path / "a.cdx.json").read_bytes()) is None
    # NTIA: every component has a supplier except legacy-egg, whose metadata names no author
    # or maintainer; assay writes NOASSERTION there rather than inventing one.
    assert validate.ntia_missing_suppliers(spdx) == (False, ["legacy-egg"])
    doc = json.loads(spdx.read_bytes())
    assert doc["creationInfo"]["created"] == "2024-01-02T03:04:05Z"  # the image's config
    image = next(p for p in doc["packages"] if p["primaryPackagePurpose"] == "CONTAINER")
    assert image["supplier"] == "Organization: Assay Test Fixtures"
    cdx = json.loads((tmp_path / "a.cdx.json").read_bytes())
    assert cdx["metadata"]["lifecycles"] == [{"phase": "post-build"}]


def test_table_output(images: dict[str, Path]) -> None:
    out = _assay_cli("sbom", f"docker-archive:{images['base'] / 'debian.tar'}", "-o", "table")
    lines = out.decode().splitlines()
    assert lines[0].split() == ["NAME", "VERSION", "TYPE"]
    assert ["bison", "2:3.8.2+dfsg-1+b1", "deb"] in [ln.split() for ln in lines]


def test_dir_transport(images: dict[str, Path]) -> None:
    root = images["base"] / "debian-rootfs"
    names = {p.name for p in catalog_image(f"dir:{root}").packages}
    assert {"libc6", "requests", "left-pad"} <= names and "six" not in names


def test_tampered_layer_fails_closed(images: dict[str, Path], tmp_path: Path) -> None:
    layout = tmp_path / "oci"
    shutil.copytree(images["base"] / "debian-oci", layout)
    index = json.loads((layout / "index.json").read_text())
    manifest_hex = index["manifests"][0]["digest"].split(":")[1]
    manifest = json.loads((layout / "blobs/sha256" / manifest_hex).read_bytes())
    blob = layout / "blobs/sha256" / manifest["layers"][0]["digest"].split(":")[1]
    raw = bytearray(gzip.decompress(blob.read_bytes()))
    raw[raw.find(b"Version: 2.36-9+deb12u4")] ^= 0x20  # 'V' -> 'v', still a valid tar
    blob.write_bytes(gzip.compress(bytes(raw), mtime=0))
    with pytest.raises(VerificationError, match="tampered"):
        catalog_image(f"oci:{layout}")
    proc = subprocess.run(["assay", "sbom", f"oci:{layout}"], capture_output=True, text=True)
    assert proc.returncode == 1 and "tampered" in proc.stderr and proc.stdout == ""


def test_registry_image(images: dict[str, Path], registry: object) -> None:
    if shutil.which("skopeo") is None:
        pytest.skip("skopeo not installed")
    host = registry.host  # type: ignore[attr-defined]
    layout = images["base"] / "debian-oci"
    subprocess.run(
        [
            "skopeo",
            "copy",
            "--dest-tls-verify=false",
            f"oci:{layout}:test",
            f"docker://{host}/fixtures/debian:1",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    inv = catalog_image(f"{host}/fixtures/debian:1")
    local = catalog_image(f"oci:{layout}:test")
    assert [p.purl for p in inv.packages] == [p.purl for p in local.packages]
    assert inv.repository == f"{host}/fixtures/debian"
    digest = hashlib.sha256(
        subprocess.run(
            [
                "skopeo",
                "inspect",
                "--raw",
                "--tls-verify=false",
                f"docker://{host}/fixtures/debian:1",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        ).stdout
    ).hexdigest()
    assert inv.subject_digest == f"sha256:{digest}"


def test_oci_archive_gives_the_same_inventory(images: dict[str, Path], tmp_path: Path) -> None:
    layout = images["base"] / "debian-oci"
    archive = tmp_path / "debian.oci.tar"
    subprocess.run(["tar", "-cf", str(archive), "-C", str(layout), "."], check=True)
    a = catalog_image(f"oci-archive:{archive}")
    b = catalog_image(f"oci:{layout}")
    assert (a.subject_digest, a.packages) == (b.subject_digest, b.packages)


def test_bad_reference_is_a_usage_error() -> None:
    proc = subprocess.run(["assay", "sbom", "nonsense"], capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stdout == ""
    proc = subprocess.run(
        ["assay", "sbom", "dir:/nonexistent/rootfs"], capture_output=True, text=True
    )
    assert proc.returncode == 2 and "not a directory" in proc.stderr
