"""OCI descriptors, platforms, and the config/manifest/index documents assay writes and reads.

Writers return plain dicts meant for ``canonical_json``; parsers take raw bytes from outside
(a registry, a layout, an archive), bound their size, refuse duplicate keys and ambiguous
documents, and return validated dicts. Every parse failure is an ``InputError`` that says which
document and which field.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from assay._json import load_json_object
from assay.errors import InputError
from assay.oci import mediatypes as mt
from assay.oci.digest import Digest, parse_digest

__all__ = [
    "MAX_CONFIG_SIZE",
    "MAX_MANIFEST_SIZE",
    "Descriptor",
    "Platform",
    "config_platform",
    "history_entry",
    "image_config",
    "image_index",
    "image_manifest",
    "index_descriptors",
    "manifest_config",
    "manifest_layers",
    "parse_config",
    "parse_index",
    "parse_json_document",
    "parse_manifest",
    "rfc3339",
]

MAX_MANIFEST_SIZE = 4 << 20  # the distribution spec's suggested manifest limit
MAX_CONFIG_SIZE = 16 << 20

_MEDIA_TYPE_RE = re.compile(
    r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$"
)


def rfc3339(epoch: int) -> str:
    """``2024-01-02T03:04:05Z`` for a SOURCE_DATE_EPOCH value."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str = ""

    def to_dict(self) -> dict[str, str]:
        d = {"architecture": self.architecture, "os": self.os}
        if self.variant:
            d["variant"] = self.variant
        return d

    @classmethod
    def from_dict(cls, d: object, *, what: str = "platform") -> Platform:
        if not isinstance(d, Mapping):
            raise InputError(f"{what}: expected an object, got {type(d).__name__}")
        os_ = d.get("os")
        arch = d.get("architecture")
        variant = d.get("variant", "")
        for name, value in (("os", os_), ("architecture", arch), ("variant", variant)):
            if not isinstance(value, str) or len(value) > 64:
                raise InputError(f"{what}: field {name!r} must be a short string")
        assert isinstance(os_, str) and isinstance(arch, str) and isinstance(variant, str)
        if not os_ or not arch:
            raise InputError(f"{what}: 'os' and 'architecture' are required")
        return cls(os=os_, architecture=arch, variant=variant)

    def __str__(self) -> str:
        s = f"{self.os}/{self.architecture}"
        return f"{s}/{self.variant}" if self.variant else s


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: Digest
    size: int
    annotations: Mapping[str, str] | None = None
    platform: Platform | None = None
    artifact_type: str = ""

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.size,
        }
        if self.annotations:
            d["annotations"] = dict(self.annotations)
        if self.platform is not None:
            d["platform"] = self.platform.to_dict()
        if self.artifact_type:
            d["artifactType"] = self.artifact_type
        return d

    @classmethod
    def from_dict(cls, d: object, *, what: str = "descriptor") -> Descriptor:
        if not isinstance(d, Mapping):
            raise InputError(f"{what}: expected an object, got {type(d).__name__}")
        media_type = d.get("mediaType")
        if not isinstance(media_type, str) or not _MEDIA_TYPE_RE.fullmatch(media_type):
            raise InputError(f"{what}: missing or invalid 'mediaType' {media_type!r}"[:200])
        raw_digest = d.get("digest")
        if not isinstance(raw_digest, str):
            raise InputError(f"{what}: missing 'digest'")
        try:
            digest = parse_digest(raw_digest)
        except InputError as e:
            raise InputError(f"{what}: {e}") from None
        size = d.get("size")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0 or size > 1 << 50:
            raise InputError(f"{what}: 'size' must be a non-negative integer, got {size!r}"[:200])
        annotations = d.get("annotations")
        if annotations is not None:
            if not isinstance(annotations, Mapping) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in annotations.items()
            ):
                raise InputError(f"{what}: 'annotations' must map strings to strings")
            annotations = dict(annotations)
        platform = d.get("platform")
        plat = None if platform is None else Platform.from_dict(platform, what=f"{what} platform")
        artifact_type = d.get("artifactType", "")
        if not isinstance(artifact_type, str):
            raise InputError(f"{what}: 'artifactType' must be a string")
        return cls(
            media_type=media_type,
            digest=digest,
            size=size,
            annotations=annotations or None,
            platform=plat,
            artifact_type=artifact_type,
        )

    def with_annotations(self, annotations: Mapping[str, str] | None) -> Descriptor:
        return Descriptor(
            self.media_type, self.digest, self.size, annotations, self.platform, self.artifact_type
        )

    def with_platform(self, platform: Platform | None) -> Descriptor:
        return Descriptor(
            self.media_type, self.digest, self.size, self.annotations, platform, self.artifact_type
        )


def _put(d: dict[str, Any], key: str, value: object) -> None:
    """Set ``key`` unless ``value`` is None or empty (Go's ``omitempty``)."""
    if value is None or (isinstance(value, (str, list, tuple, dict)) and not value):
        return
    d[key] = list(value) if isinstance(value, tuple) else value


def history_entry(
    created: int | str, created_by: str, comment: str = "", *, empty_layer: bool = False
) -> dict[str, Any]:
    """One ``history`` item of an image config."""
    h: dict[str, Any] = {"created": rfc3339(created) if isinstance(created, int) else created}
    _put(h, "created_by", created_by)
    _put(h, "comment", comment)
    if empty_layer:
        h["empty_layer"] = True
    return h


def image_config(
    *,
    arch: str,
    os: str = "linux",
    variant: str = "",
    user: str = "",
    env: Sequence[str] = (),
    entrypoint: Sequence[str] | None = None,
    cmd: Sequence[str] | None = None,
    working_dir: str = "",
    labels: Mapping[str, str] | None = None,
    created: int | str,
    diff_ids: Sequence[Digest],
    history: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """An OCI image config (``application/vnd.oci.image.config.v1+json``) as a dict.

    ``created`` is SOURCE_DATE_EPOCH (int, formatted RFC 3339) or an RFC 3339 string. Empty
    values are omitted, as Go's ``omitempty`` does, so the document matches what other tools
    produce for the same settings.
    """
    if not diff_ids:
        raise ValueError("an image config needs at least one layer diff_id")
    for d in diff_ids:
        parse_digest(d)
    config: dict[str, Any] = {}
    _put(config, "User", user)
    _put(config, "Env", list(env))
    _put(config, "Entrypoint", list(entrypoint) if entrypoint is not None else None)
    _put(config, "Cmd", list(cmd) if cmd is not None else None)
    _put(config, "WorkingDir", working_dir)
    _put(config, "Labels", dict(labels) if labels else None)
    doc: dict[str, Any] = {
        "architecture": arch,
        "os": os,
        "created": rfc3339(created) if isinstance(created, int) else created,
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": list(diff_ids)},
    }
    _put(doc, "variant", variant)
    _put(doc, "history", [dict(h) for h in history])
    return doc


def image_manifest(
    config: Descriptor,
    layers: Sequence[Descriptor],
    annotations: Mapping[str, str] | None = None,
    *,
    subject: Descriptor | None = None,
    artifact_type: str = "",
) -> dict[str, Any]:
    """An OCI image manifest as a dict (serialise with ``canonical_json``).

    ``subject`` and ``artifact_type`` make it an OCI 1.1 artifact manifest that refers to
    another image (signatures, attestations, SBOMs found through the referrers API).
    """
    doc: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": config.to_dict(),
        "layers": [layer.to_dict() for layer in layers],
    }
    _put(doc, "artifactType", artifact_type)
    if subject is not None:
        doc["subject"] = subject.to_dict()
    _put(doc, "annotations", dict(annotations) if annotations else None)
    return doc


def image_index(
    manifests: Sequence[Descriptor], annotations: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """An OCI image index as a dict; each descriptor should carry its ``platform``."""
    doc: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_INDEX,
        "manifests": [m.to_dict() for m in manifests],
    }
    _put(doc, "annotations", dict(annotations) if annotations else None)
    return doc


def parse_json_document(raw: bytes, *, what: str, max_size: int) -> dict[str, Any]:
    """Decode a JSON object from outside through the shared bounded loader (:mod:`assay._json`)."""
    return load_json_object(raw, what=what, max_size=max_size)


def _check_schema(doc: Mapping[str, Any], what: str) -> None:
    if doc.get("schemaVersion") != 2:
        raise InputError(
            f"{what}: 'schemaVersion' must be 2, got {doc.get('schemaVersion')!r}"[:200]
        )
    if "mediaType" in doc and not isinstance(doc["mediaType"], str):
        raise InputError(f"{what}: 'mediaType' must be a string")
    ann = doc.get("annotations")
    if ann is not None and (
        not isinstance(ann, dict)
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in ann.items())
    ):
        raise InputError(f"{what}: 'annotations' must map strings to strings")


def _check_media_type(
    doc: dict[str, Any], what: str, referenced: str, allowed: Collection[str], kind: str
) -> None:
    """The document's own ``mediaType`` and the one it was referenced by: of ``kind``, and equal."""
    own = doc.get("mediaType", "")
    if own and own not in allowed:
        raise InputError(f"{what}: 'mediaType' {own!r} is not {kind}"[:200])
    if referenced:
        if referenced not in allowed:
            raise InputError(f"{what}: descriptor media type {referenced!r} is not {kind}"[:200])
        if own and own != referenced:
            raise InputError(
                f"{what}: document says mediaType {own!r} but was referenced as {referenced!r}"
            )


def parse_manifest(
    raw: bytes, *, max_size: int = MAX_MANIFEST_SIZE, media_type: str = ""
) -> dict[str, Any]:
    """Validate an image manifest (OCI or Docker schema 2) and return it as a dict.

    ``media_type`` is the type the referring descriptor (or HTTP response) claimed; when given,
    the document's own ``mediaType`` must agree. A document that has both ``layers`` and
    ``manifests`` is refused as ambiguous.
    """
    what = "image manifest"
    doc = parse_json_document(raw, what=what, max_size=max_size)
    _check_schema(doc, what)
    _check_media_type(doc, what, media_type, mt.MANIFEST_TYPES, "an image manifest type")
    if "manifests" in doc:
        raise InputError(
            f"{what}: has both 'layers' and 'manifests'; refusing an ambiguous document"
        )
    Descriptor.from_dict(doc.get("config"), what=f"{what} config")
    layers = doc.get("layers")
    if not isinstance(layers, list):
        raise InputError(f"{what}: 'layers' must be a list")
    if len(layers) > 10000:
        raise InputError(f"{what}: {len(layers)} layers is more than assay accepts (10000)")
    for i, layer in enumerate(layers):
        Descriptor.from_dict(layer, what=f"{what} layer {i}")
    if "subject" in doc:
        Descriptor.from_dict(doc["subject"], what=f"{what} subject")
    return doc


def parse_index(
    raw: bytes, *, max_size: int = MAX_MANIFEST_SIZE, media_type: str = ""
) -> dict[str, Any]:
    """Validate an image index (OCI index or Docker manifest list; also ``index.json``)."""
    what = "image index"
    doc = parse_json_document(raw, what=what, max_size=max_size)
    _check_schema(doc, what)
    _check_media_type(doc, what, media_type, mt.INDEX_TYPES, "an index type")
    if "layers" in doc or "config" in doc:
        raise InputError(f"{what}: has 'layers'/'config' as well as 'manifests'; refusing it")
    manifests = doc.get("manifests")
    if not isinstance(manifests, list):
        raise InputError(f"{what}: 'manifests' must be a list")
    if len(manifests) > 100000:
        raise InputError(f"{what}: {len(manifests)} entries is more than assay accepts")
    for i, m in enumerate(manifests):
        Descriptor.from_dict(m, what=f"{what} entry {i}")
    return doc


def index_descriptors(doc: Mapping[str, Any]) -> list[Descriptor]:
    """The ``manifests`` of a parsed index as descriptors."""
    return [Descriptor.from_dict(m) for m in doc["manifests"]]


def manifest_config(doc: Mapping[str, Any]) -> Descriptor:
    return Descriptor.from_dict(doc["config"], what="image manifest config")


def manifest_layers(doc: Mapping[str, Any]) -> list[Descriptor]:
    return [Descriptor.from_dict(x) for x in doc["layers"]]


def parse_config(raw: bytes, *, max_size: int = MAX_CONFIG_SIZE) -> dict[str, Any]:
    """Validate an image config (OCI or Docker): os, architecture, rootfs.diff_ids."""
    what = "image config"
    doc = parse_json_document(raw, what=what, max_size=max_size)
    for key in ("os", "architecture"):
        if not isinstance(doc.get(key), str):
            raise InputError(f"{what}: {key!r} must be a string")
    if "variant" in doc and not isinstance(doc["variant"], str):
        raise InputError(f"{what}: 'variant' must be a string")
    rootfs = doc.get("rootfs")
    if not isinstance(rootfs, dict) or not isinstance(rootfs.get("diff_ids"), list):
        raise InputError(f"{what}: 'rootfs.diff_ids' must be a list")
    for d in rootfs["diff_ids"]:
        if not isinstance(d, str):
            raise InputError(f"{what}: diff_ids must be strings")
        parse_digest(d)
    cfg = doc.get("config")
    if cfg is not None and not isinstance(cfg, dict):
        raise InputError(f"{what}: 'config' must be an object")
    return doc


def config_platform(doc: Mapping[str, Any]) -> Platform:
    """The platform a parsed image config describes."""
    return Platform(
        os=str(doc["os"]),
        architecture=str(doc["architecture"]),
        variant=str(doc.get("variant", "")),
    )
