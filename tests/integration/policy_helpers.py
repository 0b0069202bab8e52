"""Helpers for the policy tests: small images pushed to the real registry, signed by assay."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path
from typing import Any

from assay.attest import keys, remote
from assay.oci.registry import RegistryClient
from fixtures.ociimage import OCI_LAYER_GZIP, push_image_blobs, sha256


def _layer(files: dict[str, tuple[bytes, int]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, (data, mode) in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = mode
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(buf.getvalue(), mtime=0)


def push_image(
    client: RegistryClient,
    repo: str,
    tag: str,
    *,
    user: str = "65532",
    created: str = "2026-11-01T00:00:00Z",
    files: dict[str, tuple[bytes, int]] | None = None,
    label: str = "",
) -> str:
    """Push a one-layer linux/amd64 image; return its manifest digest."""
    layer = _layer(files or {"hello.txt": (b"hello " + label.encode() + b"\n", 0o644)})
    diff = sha256(gzip.decompress(layer))
    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": created,
        "config": {"User": user, "Labels": {"t": label}} if user else {"Labels": {"t": label}},
        "rootfs": {"type": "layers", "diff_ids": [diff]},
    }
    return push_image_blobs(client, repo, tag, config, [(OCI_LAYER_GZIP, layer)])


def new_key() -> tuple[keys.SigningKey, str]:
    pem, pub = keys.generate_keypair(b"")
    return keys.load_private_key(pem, b""), pub.decode()


def sign(client: RegistryClient, ref: str, key: keys.SigningKey) -> None:
    remote.sign_image(client, remote.parse_image_ref(ref), key)


def attest(
    client: RegistryClient, ref: str, key: keys.SigningKey, ptype: str, predicate: Any
) -> None:
    body = predicate if isinstance(predicate, bytes) else json.dumps(predicate).encode()
    remote.attest_image(client, remote.parse_image_ref(ref), key, ptype, body)


def write_policy(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def cip(name: str, glob: str, authorities: str, extra: str = "") -> str:
    return (
        "apiVersion: policy.sigstore.dev/v1beta1\nkind: ClusterImagePolicy\n"
        f"metadata:\n  name: {name}\nspec:\n  images:\n  - glob: '{glob}'\n{extra}"
        f"  authorities:\n{authorities}"
    )


def key_authority(pub_pem: str, extra: str = "", name: str = "") -> str:
    body = "".join(f"        {line}\n" for line in pub_pem.strip().splitlines())
    head = f"  - name: {name}\n    key:\n" if name else "  - key:\n"
    return f"{head}      data: |\n{body}{extra}"


def push_layers(
    client: RegistryClient,
    repo: str,
    tag: str,
    layers: list[list[Any]],
    workdir: Path,
    *,
    user: str = "65532",
    diff_ids: list[str] | None = None,
) -> str:
    """Push a linux/amd64 image whose layers are written by assay's layer writer from
    ``assay.oci.entry.Entry`` lists (lowest first; whiteouts allowed); return its digest.
    ``diff_ids`` overrides the config's (to make a config that lies about a layer)."""
    from assay.oci.layer import write_layer

    blobs = [write_layer(entries, workdir, source_date_epoch=0) for entries in layers]
    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": "2026-11-01T00:00:00Z",
        "config": {"User": user},
        "rootfs": {"type": "layers", "diff_ids": diff_ids or [b.diff_id for b in blobs]},
    }
    return push_image_blobs(
        client, repo, tag, config, [(b.media_type, b.path.read_bytes()) for b in blobs]
    )
