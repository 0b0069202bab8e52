"""OCI layouts: blobs, tags, verification, staged atomic output, oci-archive, local sources."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from assay.errors import InputError, UsageError, VerificationError
from assay.oci import mediatypes as mt
from assay.oci.archive import OciArchive, open_oci_archive, write_oci_archive
from assay.oci.digest import sha256_digest
from assay.oci.entry import Entry, EntryType
from assay.oci.jsonc import canonical_json
from assay.oci.layer import apply_layers, read_layer, write_layer
from assay.oci.layout import REF_NAME, OciLayout, staged_layout, write_layout_atomically
from assay.oci.model import Descriptor, Platform, image_config, image_index, image_manifest
from assay.oci.reference import parse_image_ref
from assay.oci.source import open_local_image

EPOCH = 1_700_000_000


def build_image(
    layout: OciLayout, tmp: Path, files: dict[str, bytes], arch: str = "amd64"
) -> Descriptor:
    """A one-layer image manifest for ``files``; returns the manifest descriptor."""
    entries = [Entry("app", EntryType.DIR, 0o755)] + [
        Entry(f"app/{n}", EntryType.FILE, 0o644, data=d) for n, d in files.items()
    ]
    blob = write_layer(entries, tmp / "layers", source_date_epoch=EPOCH)
    layout.put_blob_file(blob.path, blob.digest, blob.size)
    cfg = image_config(
        arch=arch,
        user="65532:65532",
        created=EPOCH,
        diff_ids=[blob.diff_id],
        entrypoint=["/app/run"],
    )
    cdesc = layout.put_json(cfg, mt.OCI_CONFIG)
    ldesc = Descriptor(blob.media_type, blob.digest, blob.size)
    mdesc = layout.put_json(image_manifest(cdesc, [ldesc]), mt.OCI_MANIFEST)
    return mdesc.with_platform(Platform("linux", arch))


def test_tags_share_blobs_and_resolve(tmp_path: Path) -> None:
    layout = OciLayout.create(tmp_path / "out")
    m1 = build_image(layout, tmp_path, {"a": b"1"})
    m2 = build_image(layout, tmp_path, {"a": b"1", "b": b"2"})
    layout.tag("one", m1)
    layout.tag("two", m2)
    layout.tag("one-again", m1)
    assert set(layout.tags()) == {"one", "two", "one-again"}
    assert layout.resolve("one").digest == layout.resolve("one-again").digest == m1.digest
    assert layout.resolve("two").digest == m2.digest
    # re-tagging replaces, other tags stay
    layout.tag("one", m2)
    assert (
        layout.resolve("one").digest == m2.digest
        and layout.resolve("one-again").digest == m1.digest
    )
    # blobs are stored once: two manifests, two configs, two layers
    assert len(layout.blobs()) == 6
    idx = json.loads((tmp_path / "out/index.json").read_bytes())
    assert idx["mediaType"] == mt.OCI_INDEX
    assert [m["annotations"][REF_NAME] for m in idx["manifests"]] == ["one", "one-again", "two"]
    assert json.loads((tmp_path / "out/oci-layout").read_bytes()) == {"imageLayoutVersion": "1.0.0"}
    with pytest.raises(UsageError, match=r"no tag 'three' \(tags: one, one-again, two\)"):
        layout.resolve("three")
    with pytest.raises(UsageError, match="holds 3 images; name one with oci:"):
        layout.resolve(None)
    with pytest.raises(UsageError, match="invalid tag"):
        layout.tag("bad tag", m1)


def test_read_blob_verifies_digest(tmp_path: Path) -> None:
    layout = OciLayout.create(tmp_path / "out")
    d = layout.put_blob(b"hello world", "text/plain")
    assert layout.read_blob(d.digest) == b"hello world"
    layout.blob_path(d.digest).write_bytes(b"hello w0rld")
    with pytest.raises(VerificationError, match="does not match its digest"):
        layout.read_blob(d.digest)
    with pytest.raises(VerificationError):
        layout.open_blob(d.digest).drain()
    with pytest.raises(InputError, match="missing"):
        layout.read_blob(sha256_digest(b"absent"))
    with pytest.raises(InputError, match="over the 4-byte limit"):
        layout.read_blob(d.digest, max_size=4)


def test_put_blob_file_refuses_wrong_digest(tmp_path: Path) -> None:
    layout = OciLayout.create(tmp_path / "out")
    f = tmp_path / "f"
    f.write_bytes(b"content")
    with pytest.raises(VerificationError):
        layout.put_blob_file(f, sha256_digest(b"other"), 7)
    assert not layout.has_blob(sha256_digest(b"other"))


def test_staged_layout_failure_leaves_nothing(tmp_path: Path) -> None:
    dest = tmp_path / "out"

    def boom(layout: OciLayout) -> None:
        layout.put_blob(b"partial")
        raise RuntimeError("build failed")

    with pytest.raises(RuntimeError):
        write_layout_atomically(dest, boom)
    assert not dest.exists()
    assert list(tmp_path.iterdir()) == []  # no staging leftovers


def test_staged_layout_adds_tags_to_existing_layout(tmp_path: Path) -> None:
    dest = tmp_path / "out"
    first = write_layout_atomically(dest, lambda lay: _tagged(lay, tmp_path, "a", {"x": b"1"}))
    second = write_layout_atomically(dest, lambda lay: _tagged(lay, tmp_path, "b", {"x": b"2"}))
    layout = OciLayout.open(dest)
    assert (
        layout.resolve("a").digest == first.digest and layout.resolve("b").digest == second.digest
    )
    before = (dest / "index.json").read_bytes()
    with pytest.raises(RuntimeError), staged_layout(dest) as lay:
        _tagged(lay, tmp_path, "a", {"x": b"3"})
        raise RuntimeError("late failure")
    assert (dest / "index.json").read_bytes() == before
    # replacing a tag keeps the other one
    third = write_layout_atomically(dest, lambda lay: _tagged(lay, tmp_path, "a", {"x": b"3"}))
    layout = OciLayout.open(dest)
    assert (
        layout.resolve("a").digest == third.digest and layout.resolve("b").digest == second.digest
    )
    for d in layout.blobs():
        layout.read_blob(d)  # every blob present and intact
    # the image "a" used to name is gone (its manifest, config and layer), nothing else is
    assert not layout.has_blob(first.digest)
    assert len(layout.blobs()) == 6
    assert layout.referenced(layout.descriptors()) == set(layout.blobs())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["layers", "out"]


def test_gc_removes_only_unreachable_blobs(tmp_path: Path) -> None:
    layout = OciLayout.create(tmp_path / "out")
    m1 = build_image(layout, tmp_path, {"a": b"1"})
    m2 = build_image(layout, tmp_path, {"a": b"2"})
    layout.tag("keep", layout.put_json(image_index([m1]), mt.OCI_INDEX))
    stray = layout.put_blob(b"stray")
    assert layout.has_blob(m2.digest)
    removed = set(layout.gc())
    assert stray.digest in removed and m2.digest in removed and m1.digest not in removed
    assert len(removed) == 4  # m2's manifest, config, layer + the stray blob
    with open_local_image(parse_image_ref(f"oci:{layout.path}:keep")) as src:
        assert [m.digest for m in src.manifests()] == [m1.digest]


def test_staged_layout_refuses_foreign_directory(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "precious.txt").write_text("keep me")
    with pytest.raises(UsageError, match="not an OCI image layout"):
        write_layout_atomically(tmp_path / "out", lambda lay: None)
    assert (tmp_path / "out" / "precious.txt").read_text() == "keep me"


def _tagged(layout: OciLayout, tmp: Path, tag: str, files: dict[str, bytes]) -> Descriptor:
    m = build_image(layout, tmp, files)
    layout.tag(tag, m)
    return m


def test_archive_round_trip_is_deterministic(tmp_path: Path) -> None:
    layout = OciLayout.create(tmp_path / "out")
    layout.tag("t", build_image(layout, tmp_path, {"a": b"1"}))
    write_oci_archive(layout.path, tmp_path / "a.tar")
    write_oci_archive(layout.path, tmp_path / "b.tar")
    assert (tmp_path / "a.tar").read_bytes() == (tmp_path / "b.tar").read_bytes()
    with tarfile.open(tmp_path / "a.tar") as tf:
        names = tf.getnames()
    assert names[:2] == ["index.json", "oci-layout"]
    with open_oci_archive(tmp_path / "a.tar") as extracted:
        assert extracted.resolve("t") == layout.resolve("t")
        work = extracted.path
    assert not work.exists()


def _archive(members: list[tuple[tarfile.TarInfo, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for info, data in members:
            info.size = len(data) if info.isreg() else 0
            tf.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return buf.getvalue()


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    return info


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ([(_member("../escape"), b"x")], "'..' component"),
        ([(_member("blobs", tarfile.SYMTYPE, "/etc"), b"")], "not a regular file"),
        ([(_member("index.json", tarfile.LNKTYPE, "/etc/passwd"), b"")], "not a regular file"),
        ([(_member("oci-layout"), b"{}"), (_member("oci-layout"), b"{}")], "duplicate member"),
        ([(_member("blobs/sha256/" + "0" * 64), b"not that")], "does not match its digest"),
        ([(_member("README"), b"hi")], "no oci-layout file"),
    ],
)
def test_hostile_archives_refused(tmp_path: Path, members: list, message: str) -> None:  # type: ignore[type-arg]
    bad = tmp_path / "bad.tar"
    bad.write_bytes(_archive(members))
    with pytest.raises((InputError, VerificationError), match=message), open_oci_archive(bad):
        pass
    assert not (tmp_path / "etc").exists()
    # The in-place reader refuses the same archives; the two without any layout files fail its
    # earlier check for oci-layout (a corrupt blob is covered by test_in_place_archive_reader).
    structural = message not in ("does not match its digest", "no oci-layout file")
    with pytest.raises(InputError, match=message if structural else "no oci-layout member"):
        OciArchive(bad)


def test_in_place_archive_reader(tmp_path: Path) -> None:
    layout = OciLayout.create(tmp_path / "out")
    m = build_image(layout, tmp_path, {"a": b"1"})
    layout.tag("t", m)
    write_oci_archive(layout.path, tmp_path / "a.tar")
    with OciArchive(tmp_path / "a.tar") as arc:
        assert arc.resolve("t") == layout.resolve("t")
        for d in layout.blobs():
            assert arc.read_blob(d) == layout.read_blob(d)
            with arc.open_blob(d) as fh:
                assert fh.read() == layout.read_blob(d)
        with pytest.raises(UsageError, match="no tag 'x'"):
            arc.resolve("x")
    # corrupt one blob's bytes inside the archive: reading it fails verification
    raw = bytearray((tmp_path / "a.tar").read_bytes())
    content = layout.read_blob(m.digest)
    at = bytes(raw).find(content)
    raw[at] ^= 1
    (tmp_path / "b.tar").write_bytes(bytes(raw))
    with OciArchive(tmp_path / "b.tar") as arc:
        with pytest.raises(VerificationError):
            arc.read_blob(m.digest)
        with pytest.raises(VerificationError), arc.open_blob(m.digest) as fh:
            fh.read()


def test_local_sources_oci_and_archive(tmp_path: Path) -> None:
    layout = OciLayout.create(tmp_path / "out")
    amd = build_image(layout, tmp_path, {"a": b"amd"}, "amd64")
    arm = build_image(layout, tmp_path, {"a": b"arm"}, "arm64")
    idx = layout.put_json(image_index([amd, arm]), mt.OCI_INDEX)
    layout.tag("multi", idx)
    write_oci_archive(layout.path, tmp_path / "img.tar")
    for ref in (f"oci:{tmp_path}/out:multi", f"oci-archive:{tmp_path}/img.tar:multi"):
        with open_local_image(parse_image_ref(ref)) as src:
            assert src.digest == idx.digest
            images = src.manifests()
            assert [str(m.platform) for m in images] == ["linux/amd64", "linux/arm64"]
            for image, want in zip(images, (b"amd", b"arm"), strict=True):
                platform, _manifest, config = image  # tuple unpacking still works
                assert config["architecture"] == platform.architecture
                (layer,) = image.layers
                with src.open_layer(layer) as fh:
                    view = apply_layers([read_layer(fh, diff_id=image.diff_ids[0])])
                assert view["app/a"].data == want


def test_docker_archive_source(tmp_path: Path) -> None:
    """A tarball shaped like `docker save` output: manifest.json, config, uncompressed layers."""
    layer_tar = io.BytesIO()
    with tarfile.open(fileobj=layer_tar, mode="w") as tf:
        info = tarfile.TarInfo("etc/os-release")
        data = b"ID=debian\n"
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    layer = layer_tar.getvalue()
    diff_id = sha256_digest(layer)
    config = canonical_json(
        image_config(arch="amd64", created=EPOCH, diff_ids=[diff_id], user="1000")
    )
    cfg_name = sha256_digest(config).split(":")[1] + ".json"
    manifest = json.dumps(
        [{"Config": cfg_name, "RepoTags": ["app:1"], "Layers": ["abc/layer.tar"]}]
    ).encode()
    save = tmp_path / "save.tar"
    save.write_bytes(
        _archive(
            [
                (_member("manifest.json"), manifest),
                (_member(cfg_name), config),
                (_member("abc/layer.tar"), layer),
            ]
        )
    )
    for ref in (
        f"docker-archive:{save}",
        f"docker-archive:{save}:app:1",
        f"docker-archive:{save}:@0",
    ):
        with open_local_image(parse_image_ref(ref)) as src:
            (image,) = src.manifests()
            assert image.config["config"]["User"] == "1000"
            assert image.manifest["mediaType"] == mt.DOCKER_MANIFEST
            with src.open_layer(image.layers[0]) as fh:
                (entry,) = list(read_layer(fh))
            assert entry.path == "etc/os-release" and entry.data == b"ID=debian\n"
    with pytest.raises(UsageError, match=r"no image 'other:2'.*app:1"):
        open_local_image(parse_image_ref(f"docker-archive:{save}:other:2"))
    # a layer whose content does not match the config's diff_id fails verification
    tampered = tmp_path / "tampered.tar"
    tampered.write_bytes(
        _archive(
            [
                (_member("manifest.json"), manifest),
                (_member(cfg_name), config),
                (_member("abc/layer.tar"), layer.replace(b"debian", b"evilos")),
            ]
        )
    )
    with open_local_image(parse_image_ref(f"docker-archive:{tampered}")) as src:
        (image,) = src.manifests()
        with pytest.raises(VerificationError), src.open_layer(image.layers[0]) as fh:
            list(read_layer(fh))


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ([(_member("../manifest.json"), b"[]")], "'..' component"),
        ([(_member("x"), b"1"), (_member("x"), b"2")], "duplicate member 'x'"),
        ([(_member("other"), b"1")], "member 'manifest.json' is missing"),
        ([(_member("manifest.json"), b"{not json")], "not valid JSON"),
        ([(_member("manifest.json"), b"[]")], "non-empty list"),
        ([(_member("manifest.json"), b'[{"Config": 1}]')], "needs 'Config' and 'Layers'"),
        (
            [(_member("manifest.json"), b'[{"Config": "c.json", "Layers": []}]')],
            "member 'c.json' is missing",
        ),
        (
            [
                (_member("manifest.json"), b'[{"Config": "c.json", "Layers": ["l.tar"]}]'),
                (
                    _member("c.json"),
                    canonical_json(
                        image_config(arch="amd64", created=0, diff_ids=[sha256_digest(b"")])
                    ),
                ),
            ],
            "layer 'l.tar' is missing",
        ),
        (
            [
                (_member("manifest.json"), b'[{"Config": "c.json", "Layers": []}]'),
                (
                    _member("c.json"),
                    canonical_json(
                        image_config(arch="amd64", created=0, diff_ids=[sha256_digest(b"")])
                    ),
                ),
            ],
            "0 layers but 1 diff_ids",
        ),
    ],
)
def test_hostile_docker_archives_refused(tmp_path: Path, members: list, message: str) -> None:  # type: ignore[type-arg]
    bad = tmp_path / "bad.tar"
    bad.write_bytes(_archive(members))
    with pytest.raises(InputError, match=message):
        open_local_image(parse_image_ref(f"docker-archive:{bad}"))
