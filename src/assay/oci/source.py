"""Read any local image (``oci:``, ``oci-archive:``, ``docker-archive:``) through one interface.

``open_local_image(ref)`` returns an ``ImageSource``: the platform images it contains (each with
its manifest, config and digests) and a way to open a layer as a verified stream. Every
document is size-bounded and validated; every blob is checked against its digest as it is read.
Use sources as context managers (archives extract to a temp directory that ``close`` removes).

To add a transport (the registry client adds ``docker``), write a class with the same methods
and register its opener with ``register_opener``.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Protocol, runtime_checkable

from assay._closing import Closing
from assay._json import load_json
from assay._safefs import open_regular
from assay.errors import InputError, UsageError
from assay.oci import _tar
from assay.oci import mediatypes as mt
from assay.oci._tar import FileSlice
from assay.oci.archive import OciArchive
from assay.oci.digest import Digest, VerifyingReader, parse_digest, sha256_digest
from assay.oci.jsonc import canonical_json
from assay.oci.layout import OciLayout
from assay.oci.model import (
    MAX_CONFIG_SIZE,
    MAX_MANIFEST_SIZE,
    Descriptor,
    Platform,
    config_platform,
    manifest_config,
    manifest_layers,
    parse_config,
    parse_index,
    parse_manifest,
)
from assay.oci.reference import ImageRef

__all__ = [
    "BlobStore",
    "DockerArchiveSource",
    "ImageManifest",
    "ImageSource",
    "LayoutSource",
    "collect_images",
    "open_image",
    "open_local_image",
    "register_opener",
]

log = logging.getLogger(__name__)

_MAX_INDEX_DEPTH = 2


@dataclass(frozen=True)
class ImageManifest:
    """One platform image. Iterates as ``(platform, manifest, config)`` for tuple unpacking."""

    platform: Platform
    manifest: Mapping[str, Any]
    config: Mapping[str, Any]
    descriptor: Descriptor  # of the manifest (its digest is the platform image's digest)
    config_descriptor: Descriptor
    layers: tuple[Descriptor, ...] = field(default=())

    @property
    def digest(self) -> Digest:
        return self.descriptor.digest

    @property
    def diff_ids(self) -> list[Digest]:
        return [parse_digest(d) for d in self.config["rootfs"]["diff_ids"]]

    def __iter__(self) -> Iterator[Any]:
        return iter((self.platform, self.manifest, self.config))


@runtime_checkable
class ImageSource(Protocol):
    """A readable image: one or more platform images and their layers."""

    @property
    def digest(self) -> Digest:
        """What the reference resolves to: the index digest, or the manifest digest."""
        ...

    def manifests(self) -> list[ImageManifest]: ...

    def open_layer(self, desc: Descriptor) -> VerifyingReader:
        """The layer blob as a stream; raises ``VerificationError`` at its end on mismatch.

        Use it as a context manager and pass it to ``assay.oci.layer.read_layer``.
        """
        ...

    def close(self) -> None: ...

    def __enter__(self) -> ImageSource: ...

    def __exit__(self, *exc: object) -> None: ...


def _is_attestation(desc: Descriptor) -> bool:
    ann = desc.annotations or {}
    if ann.get("vnd.docker.reference.type") == "attestation-manifest":
        return True
    p = desc.platform
    return p is not None and p.os == "unknown" and p.architecture == "unknown"


def collect_images(
    top: Descriptor,
    read_manifest: Callable[[Descriptor], bytes],
    read_config: Callable[[Descriptor], bytes],
    only: Platform | None = None,
) -> list[ImageManifest]:
    """The platform images ``top`` names: itself, or the images of an index (nested at most
    two deep; attestation manifests skipped), each with its config, whose diff_ids must match
    the manifest's layers. ``only`` keeps one platform. The readers bound and verify the bytes.
    """
    found: list[ImageManifest] = []
    _collect(top, 0, read_manifest, read_config, found)
    if only is not None:
        found = [m for m in found if m.platform == only]
    return found


def _collect(
    desc: Descriptor,
    depth: int,
    read_manifest: Callable[[Descriptor], bytes],
    read_config: Callable[[Descriptor], bytes],
    out: list[ImageManifest],
) -> None:
    if desc.media_type in mt.INDEX_TYPES:
        if depth >= _MAX_INDEX_DEPTH:
            raise InputError(f"index {desc.digest}: nested more than {_MAX_INDEX_DEPTH} deep")
        doc = parse_index(read_manifest(desc), media_type=desc.media_type)
        for child in (Descriptor.from_dict(m) for m in doc["manifests"]):
            if _is_attestation(child):
                continue
            if child.media_type in mt.MANIFEST_TYPES | mt.INDEX_TYPES:
                _collect(child, depth + 1, read_manifest, read_config, out)
            else:
                log.info("skipping index entry %s of type %s", child.digest, child.media_type)
        return
    if desc.media_type not in mt.MANIFEST_TYPES:
        raise InputError(f"{desc.digest}: media type {desc.media_type!r} is not an image")
    manifest = parse_manifest(read_manifest(desc), media_type=desc.media_type)
    cdesc = manifest_config(manifest)
    config = parse_config(read_config(cdesc))
    layers = tuple(manifest_layers(manifest))
    if len(config["rootfs"]["diff_ids"]) != len(layers):
        raise InputError(
            f"image {desc.digest}: {len(layers)} layers but "
            f"{len(config['rootfs']['diff_ids'])} diff_ids in the config"
        )
    platform = desc.platform or config_platform(config)
    out.append(ImageManifest(platform, manifest, config, desc, cdesc, layers))


class BlobStore(Protocol):
    """What a layout-shaped image needs: ``OciLayout`` (a directory) or ``OciArchive``."""

    def resolve(self, tag: str | None = None) -> Descriptor: ...

    def read_blob(self, digest: Digest | str, max_size: int = ...) -> bytes: ...

    def open_blob(self, digest: Digest | str, size: int | None = None) -> VerifyingReader: ...


class LayoutSource(Closing):
    """An image in an OCI image layout directory or an oci-archive read in place."""

    def __init__(
        self,
        layout: BlobStore,
        tag: str = "",
        *,
        cleanup: contextlib.ExitStack | None = None,
        platform: Platform | None = None,
    ) -> None:
        self.layout = layout
        self._cleanup = cleanup
        self._root = layout.resolve(tag or None)
        self._only = platform
        self._manifests: list[ImageManifest] | None = None

    @property
    def digest(self) -> Digest:
        return self._root.digest

    @property
    def descriptor(self) -> Descriptor:
        return self._root

    def _blob(self, desc: Descriptor, limit: int) -> bytes:
        if desc.size > limit:
            raise InputError(f"{desc.media_type} {desc.digest} is {desc.size} bytes, over {limit}")
        data = self.layout.read_blob(desc.digest, max_size=limit)
        if len(data) != desc.size:
            raise InputError(
                f"blob {desc.digest} is {len(data)} bytes but its descriptor says {desc.size}"
            )
        return data

    def manifests(self) -> list[ImageManifest]:
        if self._manifests is None:
            self._manifests = collect_images(
                self._root,
                lambda d: self._blob(d, MAX_MANIFEST_SIZE),
                lambda d: self._blob(d, MAX_CONFIG_SIZE),
                self._only,
            )
        return list(self._manifests)

    def open_layer(self, desc: Descriptor) -> VerifyingReader:
        return self.layout.open_blob(desc.digest, desc.size)

    def close(self) -> None:
        if self._cleanup is not None:
            self._cleanup.close()
            self._cleanup = None


def _names_match(repo_tag: object, wanted: str) -> bool:
    """``wanted`` equals the archive's tag, or the tag is ``HOST/wanted`` (a host-qualified tag,
    as tools normalise short names when they write an archive)."""
    if not isinstance(repo_tag, str):
        return False
    if repo_tag == wanted:
        return True
    host, _, rest = repo_tag.partition("/")
    return rest == wanted and ("." in host or ":" in host or host == "localhost")


class DockerArchiveSource(Closing):
    """A ``docker save`` tarball: ``manifest.json`` plus config and layer tar members.

    The synthetic manifest uses Docker media types; each uncompressed layer's digest is its
    diff_id (from the config), so reading a layer verifies it against the config.
    """

    def __init__(self, path: Path, name: str = "") -> None:
        self.path = Path(path)
        try:
            self._fh: BinaryIO = open_regular(self.path, f"docker-archive {self.path}")
        except FileNotFoundError:
            raise InputError(f"docker-archive {self.path}: no such file") from None
        try:
            self._members = self._index()
            self._image = self._load(name)
        except BaseException:
            self._fh.close()
            raise

    def _index(self) -> dict[str, tuple[int, int]]:
        what = f"docker-archive {self.path}"
        tr = _tar.TarReader(
            self._fh,
            max_member_size=64 << 30,
            max_total_size=1 << 42,
            max_members=100_000,
            what=what,
        )
        members: dict[str, tuple[int, int]] = {}
        links: dict[str, str] = {}
        while (m := tr.next()) is not None:
            parts = [c for c in m.name.split("/") if c not in ("", ".")]
            if ".." in parts:
                raise InputError(f"{what}: member {m.name!r} has a '..' component; refusing it")
            name = "/".join(parts)
            if m.typeflag in (_tar.REGTYPE, _tar.AREGTYPE):
                if name in members:
                    raise InputError(f"{what}: duplicate member {name!r}")
                members[name] = (m.offset, m.size)
            elif m.typeflag in (_tar.SYMTYPE, _tar.LNKTYPE):
                # docker save links identical layers; resolve within the archive only.
                base = "/".join(parts[:-1]) if m.typeflag == _tar.SYMTYPE else ""
                target = os.path.normpath(os.path.join(base, m.linkname)).lstrip("/")
                links[name] = target
        for name, target in links.items():
            hops = 0
            while target in links and hops < 8:
                target, hops = links[target], hops + 1
            if target in members:
                members.setdefault(name, members[target])
        return members

    def _read_member(self, name: str, limit: int) -> bytes:
        if name not in self._members:
            raise InputError(f"docker-archive {self.path}: member {name!r} is missing")
        offset, size = self._members[name]
        if size > limit:
            raise InputError(f"docker-archive {self.path}: {name} is over the {limit}-byte limit")
        return os.pread(self._fh.fileno(), size, offset)

    def _load(self, name: str) -> ImageManifest:
        what = f"docker-archive {self.path}"
        raw = self._read_member("manifest.json", MAX_MANIFEST_SIZE)
        doc = load_json(raw, what=f"{what}: manifest.json", max_size=MAX_MANIFEST_SIZE)
        if not isinstance(doc, list) or not doc or not all(isinstance(x, dict) for x in doc):
            raise InputError(f"{what}: manifest.json must be a non-empty list of objects")
        chosen: dict[str, Any]
        if name.startswith("@"):
            if not (name[1:].isascii() and name[1:].isdigit() and len(name) < 8):
                raise UsageError(f"{what}: '{name}' is not @N, the number of an image (e.g. @0)")
            i = int(name[1:])
            if i >= len(doc):
                raise UsageError(f"{what}: has {len(doc)} images; index @{i} is out of range")
            chosen = doc[i]
        elif name:
            matches = [x for x in doc if any(_names_match(t, name) for t in _repo_tags(x))]
            if not matches:
                tags = sorted(t for x in doc for t in _repo_tags(x))
                raise UsageError(f"{what}: no image {name!r} (images: {', '.join(tags) or 'none'})")
            chosen = matches[0]
        else:
            if len(doc) != 1:
                raise UsageError(
                    f"{what}: holds {len(doc)} images; name one as docker-archive:FILE:NAME:TAG "
                    "or docker-archive:FILE:@N"
                )
            chosen = doc[0]
        cfg_name, layer_names = chosen.get("Config"), chosen.get("Layers")
        if not isinstance(cfg_name, str) or not isinstance(layer_names, list):
            raise InputError(f"{what}: manifest.json entry needs 'Config' and 'Layers'")
        cfg_raw = self._read_member(cfg_name, MAX_CONFIG_SIZE)
        config = parse_config(cfg_raw)
        cdesc = Descriptor(mt.DOCKER_CONFIG, sha256_digest(cfg_raw), len(cfg_raw))
        diff_ids = config["rootfs"]["diff_ids"]
        if len(diff_ids) != len(layer_names):
            raise InputError(
                f"{what}: {len(layer_names)} layers but {len(diff_ids)} diff_ids in the config"
            )
        self._layer_members: dict[str, str] = {}
        layers = []
        for lname, diff_id in zip(layer_names, diff_ids, strict=True):
            if not isinstance(lname, str) or lname not in self._members:
                raise InputError(f"{what}: layer {lname!r} is missing from the archive")
            offset, size = self._members[lname]
            head = os.pread(self._fh.fileno(), 4, offset)
            if head[:2] == b"\x1f\x8b" or head == b"\x28\xb5\x2f\xfd":
                # A compressed layer (newer docker): digest the blob itself.
                hh = hashlib.sha256()
                sl = FileSlice(self._fh, offset, size)
                while chunk := sl.read(1 << 20):
                    hh.update(chunk)
                digest = Digest("sha256:" + hh.hexdigest())
                media = mt.OCI_LAYER_GZIP if head[:2] == b"\x1f\x8b" else mt.OCI_LAYER_ZSTD
            else:
                digest, media = parse_digest(diff_id), mt.DOCKER_LAYER_TAR
            desc = Descriptor(media, digest, size)
            self._layer_members[desc.digest] = lname
            layers.append(desc)
        manifest = {
            "schemaVersion": 2,
            "mediaType": mt.DOCKER_MANIFEST,
            "config": cdesc.to_dict(),
            "layers": [d.to_dict() for d in layers],
        }
        raw_manifest = canonical_json(manifest)
        mdesc = Descriptor(mt.DOCKER_MANIFEST, sha256_digest(raw_manifest), len(raw_manifest))
        self.repo_tags: list[str] = [t for t in chosen.get("RepoTags") or [] if isinstance(t, str)]
        return ImageManifest(config_platform(config), manifest, config, mdesc, cdesc, tuple(layers))

    @property
    def digest(self) -> Digest:
        """The digest of the synthesised manifest (a docker save has no manifest of its own)."""
        return self._image.digest

    def manifests(self) -> list[ImageManifest]:
        return [self._image]

    def open_layer(self, desc: Descriptor) -> VerifyingReader:
        lname = self._layer_members.get(desc.digest)
        if lname is None:
            raise InputError(f"docker-archive {self.path}: no layer {desc.digest}")
        offset, size = self._members[lname]
        return VerifyingReader(
            FileSlice(self._fh, offset, size),
            desc.digest,
            size,
            what=f"layer {lname} of {self.path}",
        )

    def close(self) -> None:
        self._fh.close()


Opener = Callable[[ImageRef], ImageSource]
_OPENERS: dict[str, Opener] = {}


def register_opener(transport: str, opener: Opener) -> None:
    """Let another module (e.g. the registry client for ``docker``) serve a transport."""
    _OPENERS[transport] = opener


def _open_oci(ref: ImageRef) -> ImageSource:
    return LayoutSource(OciLayout.open(ref.path), ref.tag)


def _open_oci_archive(ref: ImageRef) -> ImageSource:
    archive = OciArchive(ref.path)  # read in place: nothing is extracted
    stack = contextlib.ExitStack()
    stack.callback(archive.close)
    try:
        return LayoutSource(archive, ref.tag, cleanup=stack)
    except BaseException:
        stack.close()
        raise


def _open_docker_archive(ref: ImageRef) -> ImageSource:
    try:
        return DockerArchiveSource(Path(ref.path), ref.tag)
    except FileNotFoundError:
        raise InputError(f"docker-archive {ref.path}: no such file") from None


register_opener("oci", _open_oci)
register_opener("oci-archive", _open_oci_archive)
register_opener("docker-archive", _open_docker_archive)


# Modules that register an opener when imported, loaded on first use of their transport.
_LAZY = {"docker": "assay.oci.push"}


def open_local_image(ref: ImageRef) -> ImageSource:
    """Open ``ref`` (oci:, oci-archive:, docker-archive:, or any registered transport)."""
    opener = _OPENERS.get(ref.transport)
    if opener is None and ref.transport in _LAZY:
        importlib.import_module(_LAZY[ref.transport])
        opener = _OPENERS.get(ref.transport)
    if opener is None:
        if ref.transport == "dir":
            raise UsageError(
                f"{ref}: dir: names a root filesystem, not an image; catalogue it directly"
            )
        raise UsageError(f"{ref}: transport {ref.transport!r} cannot be opened here")
    return opener(ref)


open_image = open_local_image  # the same entry point, for callers that also take registries


def _repo_tags(entry: dict[str, Any]) -> list[str]:
    """The string entries of a docker-archive manifest entry's ``RepoTags`` (others ignored)."""
    tags = entry.get("RepoTags")
    return [t for t in tags if isinstance(t, str)] if isinstance(tags, list) else []
