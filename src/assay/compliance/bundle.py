"""Evidence bundles: one deterministic tar per image digest, its manifest signed with DSSE.

Layout: ``manifest.json`` (every other file's path, size and sha256, and the image),
``manifest.dsse.json`` (a DSSE envelope over the manifest bytes, signed with a cosign key using
RFC 6979 nonces so the same inputs give the same bytes), and the files themselves
(``image/config.json``, ``signatures/*.json``, ``attestations/*.json``, ``scan/scan.json``,
``policy/decision.json``, ``report/report.json``, ``report/report.html``…). The tar comes from
assay's one deterministic tar writer; verification reads it with the one hardened tar reader.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from assay._json import load_evidence_json
from assay.attest.dsse import Envelope, pae
from assay.attest.keys import PublicKey, SigningKey
from assay.errors import InputError, VerificationError
from assay.oci.digest import sha256_digest
from assay.oci.entry import Entry, EntryType
from assay.oci.layer import read_tar, write_tar

__all__ = [
    "MANIFEST",
    "MANIFEST_PAYLOAD_TYPE",
    "SIGNATURE",
    "BundleContents",
    "make_bundle",
    "verify_bundle",
]

MANIFEST = "manifest.json"
SIGNATURE = "manifest.dsse.json"
MANIFEST_PAYLOAD_TYPE = "application/vnd.assay.evidence-manifest.v1+json"
SCHEMA = "https://assay.dev/schemas/evidence-bundle/v1"
MAX_BUNDLE = 1 << 30
MAX_FILE = 256 << 20
MAX_FILES = 10_000
_PATH = re.compile(r"^[a-z]+(/[A-Za-z0-9][A-Za-z0-9._-]{0,127}){1,2}$")


@dataclass(frozen=True)
class BundleContents:
    """A verified bundle: its image and files (path, size, sha256)."""

    image: dict[str, str]
    files: tuple[tuple[str, int, str], ...]
    created: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "image": self.image,
            "created": self.created,
            "files": [{"path": p, "size": n, "sha256": d} for p, n, d in self.files],
        }


def _check_path(path: str) -> None:
    if path in (MANIFEST, SIGNATURE) or not _PATH.match(path) or ".." in path.split("/"):
        raise InputError(f"evidence bundle path {path!r} is not allowed")


def make_bundle(
    files: Mapping[str, bytes],
    *,
    image: Mapping[str, str],
    created: str,
    key: SigningKey,
    epoch: int = 0,
) -> bytes:
    """The bundle's tar bytes: ``files`` plus a manifest of their digests and its DSSE
    signature. Same inputs and key give the same bytes."""
    for path in files:
        _check_path(path)
    manifest = {
        "schema": SCHEMA,
        "image": dict(sorted(image.items())),
        "created": created,
        "files": [
            {"path": p, "size": len(data), "sha256": str(sha256_digest(data))}
            for p, data in sorted(files.items())
        ],
    }
    raw = (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode()
    sig = key.sign(pae(MANIFEST_PAYLOAD_TYPE, raw), deterministic=True)
    envelope = Envelope(MANIFEST_PAYLOAD_TYPE, raw, (("", sig),))
    members = {**files, MANIFEST: raw, SIGNATURE: envelope.to_json()}
    dirs = sorted({p.rsplit("/", 1)[0] for p in members if "/" in p})
    entries = [Entry(d, EntryType.DIR, 0o755, mtime=epoch) for d in dirs]
    entries += [
        Entry(p, EntryType.FILE, 0o644, mtime=epoch, data=data) for p, data in members.items()
    ]
    out = io.BytesIO()
    write_tar(entries, out, source_date_epoch=epoch)
    return out.getvalue()


def _manifest(raw: bytes) -> dict[str, Any]:
    doc = load_evidence_json(raw, what="evidence bundle manifest")
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise VerificationError("evidence bundle manifest is not an assay evidence manifest")
    files = doc.get("files")
    if not isinstance(files, list) or len(files) > MAX_FILES:
        raise VerificationError("evidence bundle manifest has no valid file list")
    image = doc.get("image")
    if not isinstance(image, dict) or not all(isinstance(v, str) for v in image.values()):
        raise VerificationError("evidence bundle manifest has no valid image")
    return doc


def verify_bundle(data: bytes, key: PublicKey) -> BundleContents:
    """Check a bundle offline: the manifest's DSSE signature by ``key``, every listed file
    present with its size and sha256, nothing missing and nothing extra. Raises
    VerificationError naming the first problem."""
    if len(data) > MAX_BUNDLE:
        raise InputError(f"evidence bundle is {len(data)} bytes; refusing over {MAX_BUNDLE}")
    members: dict[str, bytes] = {}
    for e in read_tar(
        io.BytesIO(data),
        what="evidence bundle",
        allow_absolute=False,
        max_member_size=MAX_FILE,
        max_total_size=MAX_BUNDLE,
        max_members=MAX_FILES + 64,
        whiteouts=False,
    ):
        if e.type is EntryType.DIR:
            continue
        if e.type is not EntryType.FILE:
            raise VerificationError(f"evidence bundle member {e.path} is not a regular file")
        if e.path in members:
            raise VerificationError(f"evidence bundle holds {e.path} twice")
        members[e.path] = e.data
    if SIGNATURE not in members or MANIFEST not in members:
        raise VerificationError(
            f"evidence bundle has no {MANIFEST} or {SIGNATURE}; it is not an assay bundle"
        )
    envelope = Envelope.from_json(members.pop(SIGNATURE))
    try:
        payload = envelope.verify(key, MANIFEST_PAYLOAD_TYPE)
    except VerificationError as exc:
        raise VerificationError(
            f"evidence bundle manifest signature does not verify with the given key ({exc})"
        ) from None
    raw = members.pop(MANIFEST)
    if payload != raw:
        raise VerificationError("evidence bundle manifest.json differs from the signed manifest")
    doc = _manifest(payload)
    listed: list[tuple[str, int, str]] = []
    for item in doc["files"]:
        if not isinstance(item, dict):
            raise VerificationError("evidence bundle manifest entry is not an object")
        path, size, digest = item.get("path"), item.get("size"), item.get("sha256")
        if not isinstance(path, str) or type(size) is not int or not isinstance(digest, str):
            raise VerificationError("evidence bundle manifest entry lacks path, size or sha256")
        if path not in members:
            raise VerificationError(f"evidence bundle is missing {path}, which its manifest lists")
        body = members.pop(path)
        if len(body) != size or str(sha256_digest(body)) != digest:
            raise VerificationError(
                f"evidence bundle file {path} does not match its manifest digest (altered)"
            )
        listed.append((path, size, digest))
    if members:
        extra = ", ".join(sorted(members)[:5])
        raise VerificationError(f"evidence bundle holds files its manifest does not list: {extra}")
    return BundleContents(
        image={str(k): str(v) for k, v in doc["image"].items()},
        files=tuple(listed),
        created=str(doc.get("created", "")),
    )
