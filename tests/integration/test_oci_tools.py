"""Images written by assay.oci are accepted by real tools: skopeo and umoci (from Debian)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from assay.oci import mediatypes as mt
from assay.oci.archive import open_oci_archive, write_oci_archive
from assay.oci.entry import Entry, EntryType
from assay.oci.layer import apply_layers, read_layer, write_layer
from assay.oci.layout import OciLayout, write_layout_atomically
from assay.oci.model import Descriptor, Platform, image_config, image_index, image_manifest
from assay.oci.reference import parse_image_ref
from assay.oci.source import open_local_image

EPOCH = 1_700_000_000
pytestmark = pytest.mark.skipif(
    not (shutil.which("skopeo") and shutil.which("umoci")),
    reason="skopeo and umoci are required (apt-get install skopeo umoci; see .ci/apt-packages)",
)

FILES = {
    "etc/os-release": b"ID=assaytest\n",
    "usr/bin/hello": b"#!/bin/sh\necho hello\n",
    "usr/share/doc/x/" + "long-name-" * 12 + "/copyright": b"Apache-2.0\n",
}


def entries() -> list[Entry]:
    out = [
        Entry("etc", EntryType.DIR, 0o755),
        Entry("usr", EntryType.DIR, 0o755),
        Entry("usr/bin", EntryType.DIR, 0o755),
        Entry("usr/share", EntryType.DIR, 0o755),
        Entry("usr/share/doc", EntryType.DIR, 0o755),
        Entry("usr/share/doc/x", EntryType.DIR, 0o755),
        Entry("usr/share/doc/x/" + "long-name-" * 12, EntryType.DIR, 0o755),
        Entry("usr/bin/hello-link", EntryType.HARDLINK, 0o755, link="usr/bin/hello"),
        Entry("bin", EntryType.SYMLINK, 0o777, link="usr/bin"),
        Entry("home", EntryType.DIR, 0o755),
        Entry("home/nonroot", EntryType.DIR, 0o700, uid=65532, gid=65532),
    ]
    for path, data in FILES.items():
        mode = 0o755 if path.startswith("usr/bin") else 0o644
        out.append(Entry(path, EntryType.FILE, mode, data=data, mtime=EPOCH + 5))
    return out


def put_image(layout: OciLayout, tmp: Path, arch: str, compression: str) -> Descriptor:
    blob = write_layer(entries(), tmp / "layers", source_date_epoch=EPOCH, compression=compression)  # type: ignore[arg-type]
    layout.put_blob_file(blob.path, blob.digest, blob.size)
    cfg = image_config(
        arch=arch,
        variant="v8" if arch == "arm64" else "",
        user="65532:65532",
        env=["PATH=/usr/bin"],
        entrypoint=["/usr/bin/hello"],
        created=EPOCH,
        diff_ids=[blob.diff_id],
        labels={"org.example.test": "yes"},
    )
    cdesc = layout.put_json(cfg, mt.OCI_CONFIG)
    mdesc = layout.put_json(
        image_manifest(
            cdesc,
            [Descriptor(blob.media_type, blob.digest, blob.size)],
            {"org.opencontainers.image.created": "2023-11-14T22:13:20Z"},
        ),
        mt.OCI_MANIFEST,
    )
    return mdesc.with_platform(Platform("linux", arch, "v8" if arch == "arm64" else ""))


def make_layout(tmp: Path, compression: str = "gzip") -> Path:
    dest = tmp / "oci"

    def build(layout: OciLayout) -> None:
        amd = put_image(layout, tmp, "amd64", compression)
        arm = put_image(layout, tmp, "arm64", compression)
        layout.tag("single", amd)
        layout.tag("multi", layout.put_json(image_index([amd, arm]), mt.OCI_INDEX))

    write_layout_atomically(dest, build)
    return dest


def run(*args: str) -> str:
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"{args[0]} failed: {proc.stderr}"
    return proc.stdout


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_skopeo_inspect_and_copy(tmp_path: Path, compression: str) -> None:
    layout_dir = make_layout(tmp_path, compression)
    layer_type = mt.OCI_LAYER_GZIP if compression == "gzip" else mt.OCI_LAYER_ZSTD
    info = json.loads(run("skopeo", "inspect", f"oci:{layout_dir}:single"))
    layout = OciLayout.open(layout_dir)
    assert info["Digest"] == layout.resolve("single").digest
    assert info["Architecture"] == "amd64" and info["Os"] == "linux"
    assert info["Labels"] == {"org.example.test": "yes"}
    assert info["Created"].startswith("2023-11-14T22:13:20")
    raw = json.loads(run("skopeo", "inspect", "--raw", f"oci:{layout_dir}:single"))
    assert raw["mediaType"] == mt.OCI_MANIFEST
    assert raw["config"]["mediaType"] == mt.OCI_CONFIG
    assert [layer["mediaType"] for layer in raw["layers"]] == [layer_type]
    index = json.loads(run("skopeo", "inspect", "--raw", f"oci:{layout_dir}:multi"))
    assert index["mediaType"] == mt.OCI_INDEX
    assert [m["platform"]["architecture"] for m in index["manifests"]] == ["amd64", "arm64"]
    cfg = json.loads(
        run("skopeo", "inspect", "--config", "--override-arch", "arm64", f"oci:{layout_dir}:multi")
    )
    assert cfg["architecture"] == "arm64" and cfg["variant"] == "v8"
    assert cfg["config"]["User"] == "65532:65532"

    # skopeo copy to an oci-archive keeps every digest; assay reads skopeo's archive back
    archive = tmp_path / "copy.tar"
    run(
        "skopeo",
        "copy",
        "--all",
        "--preserve-digests",
        f"oci:{layout_dir}:multi",
        f"oci-archive:{archive}:multi",
    )
    with open_oci_archive(archive) as copied:
        assert copied.resolve("multi").digest == layout.resolve("multi").digest
    with open_local_image(parse_image_ref(f"oci-archive:{archive}:multi")) as src:
        assert [str(m.platform) for m in src.manifests()] == ["linux/amd64", "linux/arm64/v8"]
        with src.open_layer(src.manifests()[1].layers[0]) as fh:
            view = apply_layers([read_layer(fh, diff_id=src.manifests()[1].diff_ids[0])])
        assert {p: view[p].data for p in FILES} == FILES
    # and skopeo reads an archive assay wrote
    ours = tmp_path / "ours.tar"
    write_oci_archive(layout_dir, ours)
    again = json.loads(run("skopeo", "inspect", f"oci-archive:{ours}:single"))
    assert again["Digest"] == info["Digest"]
    run("skopeo", "copy", f"oci-archive:{ours}:single", f"oci:{tmp_path}/back:single")
    assert OciLayout.open(tmp_path / "back").resolve("single").digest == info["Digest"]


def test_umoci_unpacks_the_right_files(tmp_path: Path) -> None:
    layout_dir = make_layout(tmp_path)
    bundle = tmp_path / "bundle"
    run("umoci", "unpack", "--rootless", "--image", f"{layout_dir}:single", str(bundle))
    rootfs = bundle / "rootfs"
    for path, data in FILES.items():
        assert (rootfs / path).read_bytes() == data, path
    assert os.stat(rootfs / "usr/bin/hello").st_ino == os.stat(rootfs / "usr/bin/hello-link").st_ino
    assert os.readlink(rootfs / "bin") == "usr/bin"
    assert os.stat(rootfs / "usr/bin/hello").st_mode & 0o777 == 0o755
    assert int(os.stat(rootfs / "etc/os-release").st_mtime) == EPOCH  # clamped
    runtime = json.loads((bundle / "config.json").read_text())
    assert runtime["process"]["args"] == ["/usr/bin/hello"]
    assert runtime["process"]["env"][0] == "PATH=/usr/bin"


def test_assay_reads_what_skopeo_wrote(tmp_path: Path) -> None:
    """skopeo re-compresses on copy to a docker-archive; assay's source reads it back."""
    layout_dir = make_layout(tmp_path)
    save = tmp_path / "save.tar"
    run("skopeo", "copy", f"oci:{layout_dir}:single", f"docker-archive:{save}:localhost/t/app:1")
    # the full name and the name without its host both select the image
    with open_local_image(parse_image_ref(f"docker-archive:{save}:t/app:1")) as src:
        assert src.manifests()[0].config["architecture"] == "amd64"
    with open_local_image(parse_image_ref(f"docker-archive:{save}:localhost/t/app:1")) as src:
        (image,) = src.manifests()
        assert image.config["config"]["User"] == "65532:65532"
        with src.open_layer(image.layers[0]) as fh:
            view = apply_layers([read_layer(fh, diff_id=image.diff_ids[0])])
    for path, data in FILES.items():
        assert view[path].data == data


def test_umoci_applies_assay_whiteouts(tmp_path: Path) -> None:
    """A two-layer image: the upper layer's whiteout and opaque marker, as assay writes them,
    are honoured by umoci exactly as by assay's own apply_layers."""
    lower = [
        Entry("etc", EntryType.DIR, 0o755),
        Entry("etc/keep", EntryType.FILE, 0o644, data=b"k"),
        Entry("etc/drop", EntryType.FILE, 0o644, data=b"d"),
        Entry("var", EntryType.DIR, 0o755),
        Entry("var/cache", EntryType.DIR, 0o755),
        Entry("var/cache/old", EntryType.FILE, 0o644, data=b"o"),
    ]
    upper = [
        Entry("etc/drop", EntryType.WHITEOUT, 0),
        Entry("var/cache", EntryType.OPAQUE, 0),
        Entry("var/cache", EntryType.DIR, 0o755),
        Entry("var/cache/new", EntryType.FILE, 0o644, data=b"n"),
    ]

    def build(layout: OciLayout) -> None:
        blobs = [write_layer(x, tmp_path / "l", source_date_epoch=EPOCH) for x in (lower, upper)]
        for b in blobs:
            layout.put_blob_file(b.path, b.digest, b.size)
        cfg = layout.put_json(
            image_config(arch="amd64", created=EPOCH, diff_ids=[b.diff_id for b in blobs]),
            mt.OCI_CONFIG,
        )
        layers = [Descriptor(b.media_type, b.digest, b.size) for b in blobs]
        layout.tag("two", layout.put_json(image_manifest(cfg, layers), mt.OCI_MANIFEST))

    write_layout_atomically(tmp_path / "oci", build)
    run("umoci", "unpack", "--rootless", "--image", f"{tmp_path}/oci:two", str(tmp_path / "b"))
    rootfs = tmp_path / "b" / "rootfs"
    on_disk = sorted(
        str(p.relative_to(rootfs)) for p in rootfs.rglob("*") if p.is_file() or p.is_dir()
    )
    with open_local_image(parse_image_ref(f"oci:{tmp_path}/oci:two")) as src:
        (image,) = src.manifests()
        streams = [src.open_layer(d) for d in image.layers]
        view = apply_layers(read_layer(s) for s in streams)
    assert on_disk == sorted(view) == ["etc", "etc/keep", "var", "var/cache", "var/cache/new"]
