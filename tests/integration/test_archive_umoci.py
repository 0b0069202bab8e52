"""Differential test: assay's archive reader against real ``umoci unpack`` on crafted layers.

umoci applies layers with Go's archive/tar and securejoin, as container runtimes do. For each
crafted image (including the three scanner-evasion encodings: a GNU header with junk in the
prefix area, ``var/lib/dpkg`` as a symlink with the status files written through it, and
``status.d/*`` hardlinked to files elsewhere) the paths, kinds, file contents and symlink targets
must equal what umoci unpacks — both for the in-memory merge (``read_layer`` +
``apply_layers``, what sbom/scan/inspect/diff see) and for ``assay run``'s unpack to disk.
Device nodes and FIFOs are left out: assay records them but never creates them (documented).
"""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import pytest

from assay.build.run import unpack_image
from assay.oci.entry import Entry, EntryType
from assay.oci.layer import apply_layers, read_layer
from assay.oci.reference import parse_image_ref
from assay.oci.source import open_local_image
from assay.sbom.catalogers.dpkg import DpkgCataloger
from assay.sbom.catalogers.interface import CatalogContext
from assay.sbom.source import load_image
from fixtures import tarcraft as tc
from fixtures.cli import run_script

pytestmark = pytest.mark.skipif(shutil.which("umoci") is None, reason="umoci is not installed")

GNU = {"magic": b"ustar ", "version": b" \x00"}
D = tc.directory

BASE = [D("etc/"), D("opt/"), D("usr/"), D("usr/bin/"), D("var/"), D("var/lib/")]

IMAGES: dict[str, list[bytes]] = {
    "gnu-junk-prefix": [
        tc.archive(
            *BASE,
            D("var/lib/dpkg/"),
            tc.member(
                "var/lib/dpkg/status",
                tc.status_stanza("openssl"),
                prefix_field=b"00000000000\x0000000000000\x00evil/hidden/prefix",
                **GNU,
            ),
            # pre-Go-1.8 files: unparseable times and an ASCII prefix area -> it is the prefix
            tc.member("tool", b"#!/bin/sh\n", prefix_field=b"usr/bin", **GNU),
            tc.member("passwd", b"root:x:0:0\n", prefix_field=b"etc"),  # USTAR prefix
            tc.gnu_long(b"usr/" + b"l" * 120),
            tc.file("short", b"long name"),
            tc.gnu_long(b"opt/" + b"t" * 110, b"K"),
            tc.symlink("opt/longlink", "ignored"),
            tc.pax(tc.pax_record("path", "opt/first")),
            tc.pax(tc.pax_record("path", "opt/second")),
            tc.file("opt/x", b"pax replaces"),
            tc.pax(tc.pax_record("path", "")),
            tc.file("opt/empty-pax-keeps-name", b"e"),
            tc.member("opt/legacy-dir/", b"", b"\0"),
        )
    ],
    "symlinked-dpkg-dir": [
        tc.archive(
            *BASE,
            D("opt/db/"),
            tc.symlink("var/lib/dpkg", "/opt/db"),
            D("var/lib/dpkg/status.d/"),
            tc.file("var/lib/dpkg/status.d/openssl", tc.status_stanza("openssl")),
            tc.file("var/lib/dpkg/status.d/zlib1g", tc.status_stanza("zlib1g")),
            tc.symlink("etc/up", "../../../../opt"),
            tc.file("etc/up/through-relative", b"clamped at the root"),
        )
    ],
    "hardlinked-status-d": [
        tc.archive(
            *BASE,
            D("opt/hidden/"),
            tc.file("opt/hidden/a", tc.status_stanza("openssl")),
            tc.file("opt/hidden/b", tc.status_stanza("libc6")),
            D("var/lib/dpkg/"),
            D("var/lib/dpkg/status.d/"),
            tc.hardlink("var/lib/dpkg/status.d/openssl", "opt/hidden/a"),
            tc.hardlink("var/lib/dpkg/status.d/libc6", "opt/hidden/b"),
            tc.hardlink("usr/bin/link-to-link", "var/lib/dpkg/status.d/libc6"),
        )
    ],
    "whiteout-status-d": [
        tc.archive(
            *BASE,
            D("var/lib/dpkg/"),
            D("var/lib/dpkg/status.d/"),
            tc.file("var/lib/dpkg/status.d/openssl", tc.status_stanza("openssl")),
            tc.file("var/lib/dpkg/status.d/zlib1g", tc.status_stanza("zlib1g")),
        ),
        tc.archive(tc.file("var/lib/dpkg/status.d/.wh.zlib1g", b"")),
    ],
    "status-d-by-real-name": [
        tc.archive(
            *BASE,
            D("opt/db/"),
            D("opt/db/status.d/"),
            tc.symlink("var/lib/dpkg", "/opt/db"),
            tc.file("opt/db/status.d/openssl", tc.status_stanza("openssl")),
        )
    ],
    "layers-whiteouts-and-lower-symlinks": [
        tc.archive(
            *BASE,
            D("opt/data/"),
            tc.file("opt/data/keep", b"k"),
            tc.file("opt/data/gone", b"g"),
            D("opt/dir/"),
            tc.file("opt/dir/a", b"a"),
            D("opt/opaque/"),
            tc.file("opt/opaque/lower", b"l"),
            tc.symlink("var/lib/dpkg", "../../opt/data"),
            tc.file("etc/was-a-file", b"f"),
        ),
        tc.archive(
            tc.file("opt/data/.wh.gone", b""),
            tc.file("opt/opaque/.wh..wh..opq", b""),
            tc.file("opt/opaque/upper", b"u"),
            tc.file("var/lib/dpkg/status", tc.status_stanza("bash")),  # via the lower symlink
            tc.file("opt/dir", b"a file replaces the directory"),
            D("etc/was-a-file/"),
            tc.file("etc/was-a-file/now-a-dir", b"d"),
        ),
    ],
}


def _tree_of_view(view: dict[str, Entry]) -> dict[str, tuple[str, bytes | str]]:
    out: dict[str, tuple[str, bytes | str]] = {}
    for path, e in view.items():
        parts = path.split("/")
        for i in range(1, len(parts)):  # parents a runtime creates implicitly
            out.setdefault("/".join(parts[:i]), ("dir", b""))
        if e.type in (EntryType.FILE, EntryType.HARDLINK):
            out[path] = ("file", e.data)
        elif e.type is EntryType.SYMLINK:
            out[path] = ("symlink", e.link)
        elif e.type is EntryType.DIR:
            out[path] = ("dir", b"")
    return out


def _umoci(layout: Path, bundle: Path) -> dict[str, tuple[str, bytes | str]]:
    proc = subprocess.run(
        ["umoci", "unpack", "--rootless", "--image", f"{layout}:latest", str(bundle)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return tc.tree_of(bundle / "rootfs")


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_reader_and_unpack_equal_umoci(name: str, tmp_path: Path) -> None:
    layers = IMAGES[name]
    layout = tc.write_layout(tmp_path / "layout", layers)
    theirs = _umoci(layout, tmp_path / "bundle")
    merged = apply_layers([read_layer(io.BytesIO(raw)) for raw in layers])
    assert _tree_of_view(merged) == theirs
    root = tmp_path / "assay-root"
    root.mkdir()
    with open_local_image(parse_image_ref(f"oci:{layout}:latest")) as src:
        (image,) = src.manifests()
        unpack_image(src, image, root)
    assert tc.tree_of(root) == theirs


@pytest.mark.parametrize(
    "name,packages",
    [
        ("gnu-junk-prefix", {"openssl"}),
        ("symlinked-dpkg-dir", {"openssl", "zlib1g"}),
        ("hardlinked-status-d", {"openssl", "libc6"}),
        ("layers-whiteouts-and-lower-symlinks", {"bash"}),
    ],
)
def test_sbom_sees_the_packages_umoci_unpacks(
    name: str, packages: set[str], tmp_path: Path
) -> None:
    layout = tc.write_layout(tmp_path / "layout", IMAGES[name])
    theirs = _umoci(layout, tmp_path / "bundle")
    assert any(p.startswith(("var/lib/dpkg", "opt")) for p in theirs)
    view, _ = load_image(f"oci:{layout}:latest", DpkgCataloger().wants)
    found = {p.name for p in DpkgCataloger().catalog(view, CatalogContext())}
    assert found == packages


def test_console_script_sbom_and_inspect_see_the_evasion_packages(tmp_path: Path) -> None:
    """Through the installed ``assay`` script: every evasion image lists its packages."""
    import json

    env = {"PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    for name, packages in (
        ("gnu-junk-prefix", {"openssl"}),
        ("symlinked-dpkg-dir", {"openssl", "zlib1g"}),
        ("hardlinked-status-d", {"openssl", "libc6"}),
    ):
        layout = tc.write_layout(tmp_path / name, IMAGES[name])
        proc = run_script("sbom", f"oci:{layout}:latest", "-o", "spdx-json", env=env)
        assert proc.returncode == 0, proc.stderr
        doc = json.loads(proc.stdout)
        assert {p["name"] for p in doc["packages"]} >= packages, name
    # inspect's package count is the catalog of the applied layers, not of member names
    for name, count in (
        ("symlinked-dpkg-dir", 2),
        ("hardlinked-status-d", 2),
        ("layers-whiteouts-and-lower-symlinks", 1),
        ("whiteout-status-d", 1),
        ("status-d-by-real-name", 1),
    ):
        layout = tc.write_layout(tmp_path / f"inspect-{name}", IMAGES[name])
        proc = run_script("inspect", f"oci:{layout}:latest", "-o", "json", env=env)
        assert proc.returncode == 0, proc.stderr
        (platform,) = json.loads(proc.stdout)["platforms"]
        assert platform["packages"] == count, (name, platform)
    bad = tc.write_layout(tmp_path / "bad", [tc.archive(tc.hardlink("a", "nowhere"))])
    proc = run_script("sbom", f"oci:{bad}:latest", "-o", "spdx-json", env=env)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "hardlink 'a' points to 'nowhere'" in proc.stderr
