"""push/pull/copy between OCI layouts and a real docker-registry; skopeo reads the result."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import httpx
import pytest

from assay.errors import VerificationError
from assay.oci import mediatypes as mt
from assay.oci.layout import OciLayout
from assay.oci.model import Descriptor
from assay.oci.push import PushEvent, copy_image, pull_image, push_image, push_layout
from assay.oci.reference import parse_image_ref
from assay.oci.registry import RegistryClient
from fixtures.ociimage import put_tar_index
from fixtures.registry import RunningRegistry


class Traffic:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def __call__(self, request: httpx.Request) -> None:
        self.seen.append((request.method, str(request.url)))

    def blob_uploads(self) -> int:
        """Requests that carry blob data: monolithic PUT ?digest=… and chunk PATCHes."""
        return sum(
            1
            for m, u in self.seen
            if (m == "PUT" and "/blobs/uploads/" in u and "digest=" in u) or m == "PATCH"
        )


def client(reg: RunningRegistry, traffic: Traffic | None = None) -> RegistryClient:
    hooks = {"request": [traffic]} if traffic else {}
    return RegistryClient(reg.host, http=httpx.Client(timeout=30, event_hooks=hooks))  # type: ignore[arg-type]


def build_layout(path: Path, *, big_layer: bool = False) -> OciLayout:
    """A two-platform image index in a fresh layout, tagged ``python``."""
    lay = OciLayout.create(path)
    # uncompressed-tar media type, so a layer's diff_id is its own digest
    shared = lay.put_blob(os.urandom(2048), mt.OCI_LAYER_TAR)
    per_arch = {}
    for arch in ("amd64", "arm64"):
        own = lay.put_blob(
            os.urandom((6 << 20) if big_layer and arch == "amd64" else 1024), mt.OCI_LAYER_TAR
        )
        per_arch[arch] = [shared, own]
    lay.tag("python", put_tar_index(lay, per_arch))
    return lay


def test_push_twice_uploads_nothing_the_second_time(
    registry: RunningRegistry, tmp_path: Path
) -> None:
    lay = build_layout(tmp_path / "out")
    dest = parse_image_ref(f"{registry.host}/base/python-{uuid.uuid4().hex[:8]}:3.11")
    t = Traffic()
    events: list[PushEvent] = []
    with client(registry, t) as c:
        first = push_image(lay, "python", dest, c, events.append)
        assert first.uploaded == 5  # shared layer + 2 own layers + 2 configs
        assert t.blob_uploads() == 5
        assert first.digest == lay.resolve("python").digest
        assert sorted(str(d.platform) for d in first.manifests) == ["linux/amd64", "linux/arm64"]
        assert {e.status for e in events if e.kind == "blob"} == {"uploaded"}
        # children before the index: the tag is the last write
        assert [e.kind for e in events][-1] == "tag"
        t.seen.clear()
        second = push_layout(lay, "python", dest, c)
        assert second == first.digest
        assert t.blob_uploads() == 0
        assert not any(m == "POST" for m, _ in t.seen)  # no upload session even started
        # what the registry now serves under the tag is exactly the layout's index
        fetched = c.get_manifest(dest.repository, "3.11")
        assert fetched.digest == first.digest
        assert fetched.data == lay.read_blob(first.digest)


@pytest.mark.skipif(shutil.which("skopeo") is None, reason="skopeo is not installed")
def test_skopeo_accepts_the_pushed_image(registry: RunningRegistry, tmp_path: Path) -> None:
    lay = build_layout(tmp_path / "out")
    dest = parse_image_ref(f"{registry.host}/base/skopeo-{uuid.uuid4().hex[:8]}:v1")
    with client(registry) as c:
        digest = push_layout(lay, None, dest, c)
    env = {**os.environ, "REGISTRY_AUTH_FILE": str(tmp_path / "auth.json")}
    (tmp_path / "auth.json").write_text('{"auths":{}}')
    raw = subprocess.run(
        ["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{dest.name}:v1"],
        check=True,
        capture_output=True,
        env=env,
        timeout=60,
    ).stdout
    assert raw == lay.read_blob(digest)
    out = subprocess.run(
        [
            "skopeo",
            "inspect",
            "--tls-verify=false",
            "--override-arch",
            "arm64",
            f"docker://{dest.name}:v1",
        ],
        check=True,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    ).stdout
    info = json.loads(out)
    assert info["Architecture"] == "arm64" and len(info["Layers"]) == 2
    # skopeo can copy the whole thing back out of the registry into a layout
    subprocess.run(
        [
            "skopeo",
            "copy",
            "--all",
            "--preserve-digests",
            "--src-tls-verify=false",
            f"docker://{dest.name}:v1",
            f"oci:{tmp_path / 'skopeo-out'}:v1",
        ],
        check=True,
        capture_output=True,
        env=env,
        timeout=120,
    )
    assert OciLayout.open(tmp_path / "skopeo-out").resolve("v1").digest == digest


def test_push_with_a_large_layer_goes_up_in_chunks(
    registry: RunningRegistry, tmp_path: Path
) -> None:
    lay = build_layout(tmp_path / "out", big_layer=True)
    dest = parse_image_ref(f"{registry.host}/base/big-{uuid.uuid4().hex[:8]}:1")
    t = Traffic()
    with client(registry, t) as c:
        digest = push_layout(lay, "python", dest, c)
        assert sum(1 for m, _ in t.seen if m == "PATCH") == 1  # 6 MiB: one 16 MiB chunk
        assert c.get_manifest(dest.repository, "1").digest == digest


def test_pull_round_trip_into_a_layout(registry: RunningRegistry, tmp_path: Path) -> None:
    lay = build_layout(tmp_path / "out")
    dest = parse_image_ref(f"{registry.host}/base/pull-{uuid.uuid4().hex[:8]}:v1")
    with client(registry) as c:
        digest = push_layout(lay, "python", dest, c)
        result = pull_image(c, dest, tmp_path / "pulled", "copy")
    assert result.digest == digest
    pulled = OciLayout.open(tmp_path / "pulled")
    assert pulled.resolve("copy").digest == digest
    assert set(pulled.blobs()) == set(lay.blobs())
    for d in pulled.blobs():
        pulled.read_blob(d)  # every blob verifies


def test_copy_between_repositories_mounts_blobs(registry: RunningRegistry, tmp_path: Path) -> None:
    lay = build_layout(tmp_path / "out")
    src = parse_image_ref(f"{registry.host}/base/src-{uuid.uuid4().hex[:8]}:v1")
    dst = parse_image_ref(f"{registry.host}/team/dst-{uuid.uuid4().hex[:8]}:v2")
    t = Traffic()
    with client(registry) as c, client(registry, t) as c2:
        digest = push_layout(lay, "python", src, c)
        result = copy_image(c, src, c2, dst)
        assert result.digest == digest
        assert result.mounted == 5 and result.uploaded == 0
        assert t.blob_uploads() == 0
        assert c2.get_manifest(dst.repository, "v2").digest == digest


def test_push_refuses_a_corrupt_layout(registry: RunningRegistry, tmp_path: Path) -> None:
    lay = build_layout(tmp_path / "out")
    # flip a byte in one layer blob: the push must fail before committing it
    man = json.loads(lay.read_blob(lay.resolve("python").digest))["manifests"][0]
    layer = json.loads(lay.read_blob(man["digest"]))["layers"][1]
    path = lay.blob_path(layer["digest"])
    data = bytearray(path.read_bytes())
    data[0] ^= 1
    path.write_bytes(bytes(data))
    dest = parse_image_ref(f"{registry.host}/base/bad-{uuid.uuid4().hex[:8]}:v1")
    with client(registry) as c:
        with pytest.raises(VerificationError, match="corrupt"):
            push_layout(lay, "python", dest, c)
        assert not c.blob_exists(dest.repository, layer["digest"])
        assert c.list_tags(dest.repository) == []  # the tag never appeared


def test_single_manifest_push(registry: RunningRegistry, tmp_path: Path) -> None:
    lay = build_layout(tmp_path / "out")
    child = Descriptor.from_dict(
        json.loads(lay.read_blob(lay.resolve("python").digest))["manifests"][1]
    )
    lay.tag("arm64", Descriptor(child.media_type, child.digest, child.size))
    dest = parse_image_ref(f"{registry.host}/base/single-{uuid.uuid4().hex[:8]}:arm")
    with client(registry) as c:
        result = push_image(lay, "arm64", dest, c)
        assert result.digest == child.digest and result.manifests == []
        assert c.get_manifest(dest.repository, "arm").media_type == mt.OCI_MANIFEST


def test_registry_image_source_reads_platforms_and_verified_layers(
    registry: RunningRegistry, tmp_path: Path
) -> None:
    from assay.oci.source import open_local_image

    lay = build_layout(tmp_path / "out")
    dest = parse_image_ref(f"{registry.host}/base/src-{uuid.uuid4().hex[:8]}:v1")
    with client(registry) as c:
        digest = push_layout(lay, "python", dest, c)
    with open_local_image(dest) as source:
        assert source.digest == digest
        images = source.manifests()
        assert sorted(str(m.platform) for m in images) == ["linux/amd64", "linux/arm64"]
        for m in images:
            for layer in m.layers:
                with source.open_layer(layer) as reader:
                    data = reader.read()
                assert reader.verified
                assert data == lay.read_blob(layer.digest)


def test_copy_between_registries_streams_and_verifies(
    registry: RunningRegistry, registry_htpasswd: RunningRegistry, tmp_path: Path
) -> None:
    from assay.oci.auth import Credentials

    lay = build_layout(tmp_path / "out", big_layer=True)  # one 6 MiB layer: chunked upload
    src = parse_image_ref(f"{registry.host}/base/x-{uuid.uuid4().hex[:8]}:v1")
    dst = parse_image_ref(f"{registry_htpasswd.host}/mirror/x-{uuid.uuid4().hex[:8]}:v1")
    creds = Credentials(registry_htpasswd.username or "", registry_htpasswd.password or "")
    t = Traffic()
    with (
        client(registry) as sc,
        RegistryClient(
            registry_htpasswd.host,
            auth=creds,
            chunk_size=4 << 20,
            http=httpx.Client(timeout=30, event_hooks={"request": [t]}),
        ) as dc,
    ):
        digest = push_layout(lay, "python", src, sc)
        result = copy_image(sc, src, dc, dst)
        assert result.digest == digest and result.uploaded == 5 and result.mounted == 0
        assert sum(1 for m, _ in t.seen if m == "PATCH") == 2  # the 6 MiB layer, 4 MiB chunks
        assert dc.get_manifest(dst.repository, "v1").data == lay.read_blob(digest)
        for m in json.loads(lay.read_blob(digest))["manifests"]:
            doc = json.loads(lay.read_blob(m["digest"]))
            for b in [doc["config"], *doc["layers"]]:
                assert dc.blob_exists(dst.repository, b["digest"])


def test_parallel_push_to_a_token_registry_fetches_each_token_once(
    registry_token: RunningRegistry, tmp_path: Path
) -> None:
    from assay.oci.auth import Credentials

    ts = registry_token.token_server
    assert ts is not None
    lay = build_layout(tmp_path / "out")
    dest = parse_image_ref(f"{registry_token.host}/base/tok-{uuid.uuid4().hex[:8]}:v1")
    creds = Credentials(registry_token.username or "", registry_token.password or "")
    before = len(ts.requests)
    with RegistryClient(registry_token.host, auth=creds) as c:
        result = push_image(lay, "python", dest, c, jobs=4)
        assert result.uploaded == 5
        assert c.get_manifest(dest.repository, "v1").digest == result.digest
    scopes = [tuple(r["query"].get("scope", [])) for r in ts.requests[before:]]
    assert len(scopes) == len(set(scopes)), scopes  # no duplicate fetches across threads
