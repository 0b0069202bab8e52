"""Digests, canonical JSON, descriptors and the config/manifest/index documents."""

from __future__ import annotations

import hashlib
import io
import json

import pytest

from assay.errors import InputError, VerificationError
from assay.oci import mediatypes as mt
from assay.oci.digest import DigestingWriter, VerifyingReader, parse_digest, sha256_digest
from assay.oci.jsonc import canonical_json
from assay.oci.model import (
    Descriptor,
    Platform,
    history_entry,
    image_config,
    image_index,
    image_manifest,
    parse_config,
    parse_index,
    parse_manifest,
)

D1 = sha256_digest(b"one")
D2 = sha256_digest(b"two")


def test_sha256_digest() -> None:
    assert sha256_digest(b"abc") == "sha256:" + hashlib.sha256(b"abc").hexdigest()


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "sha256:",
        "sha256:" + "A" * 64,
        "sha256:" + "a" * 63,
        "md5:" + "a" * 32,
        "sha512:" + "a" * 64,
        " sha256:" + "a" * 64,
        "sha256:" + "a" * 64 + "\n",
    ],
)
def test_parse_digest_rejects(bad: str) -> None:
    with pytest.raises(InputError, match="invalid digest"):
        parse_digest(bad)


def test_parse_digest_accepts_sha512() -> None:
    assert parse_digest("sha512:" + "0" * 128).startswith("sha512:")


def test_digesting_writer() -> None:
    out = io.BytesIO()
    w = DigestingWriter(out)  # type: ignore[arg-type]
    w.write(b"ab")
    w.write(b"c")
    assert (w.digest, w.size, out.getvalue()) == (sha256_digest(b"abc"), 3, b"abc")


def test_verifying_reader() -> None:
    r = VerifyingReader(io.BytesIO(b"abc"), sha256_digest(b"abc"), 3)
    assert r.read(2) + r.read() == b"abc" and r.verified
    with pytest.raises(VerificationError, match="expected sha256"):
        VerifyingReader(io.BytesIO(b"abd"), sha256_digest(b"abc"), 3).drain()
    with pytest.raises(VerificationError, match="larger than the expected 2"):
        VerifyingReader(io.BytesIO(b"abc"), sha256_digest(b"abc"), 2).drain()
    with pytest.raises(VerificationError, match="size 2 does not match"):
        VerifyingReader(io.BytesIO(b"ab"), sha256_digest(b"abc"), 3).drain()


def test_canonical_json() -> None:
    doc = {"b": 1, "a": {"z": [1, "é"], "y": None}}
    assert canonical_json(doc) == '{"a":{"y":null,"z":[1,"é"]},"b":1}'.encode()
    assert canonical_json(json.loads(canonical_json(doc))) == canonical_json(doc)
    with pytest.raises(ValueError):
        canonical_json({"x": float("nan")})


def test_descriptor_round_trip_and_validation() -> None:
    d = Descriptor(mt.OCI_MANIFEST, D1, 12, {"k": "v"}, Platform("linux", "arm64", "v8"), "x/y")
    assert Descriptor.from_dict(d.to_dict()) == d
    assert d.to_dict()["platform"] == {"os": "linux", "architecture": "arm64", "variant": "v8"}
    for bad, msg in [
        ({"digest": D1, "size": 1}, "mediaType"),
        ({"mediaType": "x/y", "digest": "sha256:zz", "size": 1}, "invalid digest"),
        ({"mediaType": "x/y", "digest": D1, "size": -1}, "size"),
        ({"mediaType": "x/y", "digest": D1, "size": True}, "size"),
        ({"mediaType": "x/y", "digest": D1, "size": 1, "annotations": {"a": 1}}, "annotations"),
        (
            {"mediaType": "x/y", "digest": D1, "size": 1, "platform": {"os": "linux"}},
            "architecture",
        ),
    ]:
        with pytest.raises(InputError, match=msg):
            Descriptor.from_dict(bad)


def test_image_config_shape() -> None:
    cfg = image_config(
        arch="arm64",
        variant="v8",
        user="65532:65532",
        env=["PATH=/usr/bin"],
        entrypoint=["/usr/bin/python3"],
        cmd=None,
        working_dir="",
        labels={"a": "b"},
        created=0,
        diff_ids=[D1],
        history=[history_entry(0, "assay build", "layer")],
    )
    assert cfg == {
        "architecture": "arm64",
        "os": "linux",
        "variant": "v8",
        "created": "1970-01-01T00:00:00Z",
        "config": {
            "User": "65532:65532",
            "Env": ["PATH=/usr/bin"],
            "Entrypoint": ["/usr/bin/python3"],
            "Labels": {"a": "b"},
        },
        "rootfs": {"type": "layers", "diff_ids": [D1]},
        "history": [
            {"created": "1970-01-01T00:00:00Z", "created_by": "assay build", "comment": "layer"}
        ],
    }
    assert parse_config(canonical_json(cfg)) == cfg


def test_manifest_and_index_round_trip() -> None:
    cfg = Descriptor(mt.OCI_CONFIG, D1, 10)
    layer = Descriptor(mt.OCI_LAYER_GZIP, D2, 20)
    m = image_manifest(cfg, [layer], {"org.opencontainers.image.created": "1970-01-01T00:00:00Z"})
    assert m["mediaType"] == mt.OCI_MANIFEST and m["schemaVersion"] == 2
    assert parse_manifest(canonical_json(m), media_type=mt.OCI_MANIFEST) == m
    idx = image_index([Descriptor(mt.OCI_MANIFEST, D1, 5, platform=Platform("linux", "amd64"))])
    assert idx["mediaType"] == mt.OCI_INDEX
    assert parse_index(canonical_json(idx)) == idx


def test_artifact_manifest_with_subject() -> None:
    empty = Descriptor(mt.OCI_EMPTY, sha256_digest(b"{}"), 2)
    subject = Descriptor(mt.OCI_MANIFEST, D1, 100)
    layer = Descriptor("application/spdx+json", D2, 5)
    m = image_manifest(empty, [layer], subject=subject, artifact_type="application/spdx+json")
    assert m["subject"] == subject.to_dict() and m["artifactType"] == "application/spdx+json"
    assert parse_manifest(canonical_json(m)) == m


def test_parse_manifest_refuses_bad_documents() -> None:
    cfg = {"mediaType": mt.OCI_CONFIG, "digest": D1, "size": 1}
    good = {"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST, "config": cfg, "layers": []}
    with pytest.raises(InputError, match="duplicate JSON key 'layers'"):
        parse_manifest(canonical_json(good)[:-1] + b',"layers":[]}')
    with pytest.raises(InputError, match="both 'layers' and 'manifests'"):
        parse_manifest(canonical_json({**good, "manifests": []}))
    with pytest.raises(InputError, match="referenced as"):
        parse_manifest(canonical_json(good), media_type=mt.DOCKER_MANIFEST)
    with pytest.raises(InputError, match="not an image manifest type"):
        parse_manifest(canonical_json({**good, "mediaType": mt.OCI_INDEX}))
    with pytest.raises(InputError, match="over the 100-byte limit"):
        parse_manifest(canonical_json(good), max_size=100)
    with pytest.raises(InputError, match="not valid JSON"):
        parse_manifest(b"{nope")
    with pytest.raises(InputError, match="schemaVersion"):
        parse_manifest(canonical_json({**good, "schemaVersion": 1}))
    with pytest.raises(InputError, match="layer 0"):
        parse_manifest(canonical_json({**good, "layers": [{"mediaType": "a/b"}]}))
    with pytest.raises(InputError, match="'layers'/'config'"):
        parse_index(canonical_json({"schemaVersion": 2, "manifests": [], "config": cfg}))
