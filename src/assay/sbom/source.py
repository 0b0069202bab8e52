"""Open an image (or a directory) named by a skopeo-style reference into a ``MemoryFileView``.

Transports: ``dir:PATH`` (read here, without following symlinks out of the root) and
everything ``assay.oci.source.open_image`` serves — ``oci:DIR[:TAG]``, ``oci-archive:FILE``,
``docker-archive:FILE[:NAME:TAG]`` (a ``docker save`` tarball) and registry references
(``docker://HOST/REPO[:TAG][@sha256:…]`` or the same without ``docker://``).

Manifests and configs are verified by ``assay.oci``; each layer streams through its
``VerifyingReader`` into ``assay.sbom.layers`` (the one archive reader of ``assay.oci``) and is
read to its end, so a layer that does not match its digest or its config diff_id raises
``VerificationError`` before any inventory is returned.
"""

from __future__ import annotations

import functools
import hashlib
import platform as _platform
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from assay.errors import UsageError
from assay.oci.reference import ImageRef, parse_image_ref
from assay.oci.source import ImageManifest, ImageSource, open_image
from assay.sbom.fs import MemoryFileView, Selection, read_directory
from assay.sbom.layers import LayerInput, view_of_layers

__all__ = ["ImageInfo", "host_architecture", "image_view", "load_image"]

Wants = Selection | Callable[[str], bool]


@dataclass(frozen=True)
class ImageInfo:
    """What the SBOM says about its subject."""

    name: str  # short image name, e.g. "python" (pkg:oci name)
    # the platform manifest's digest (synthesised for docker-archive); tree digest for dir:
    digest: str
    architecture: str
    repository: str = ""  # "localhost:5000/base/python" for registry images, else ""
    tag: str = ""
    supplier: str = ""  # the image's vendor/authors label, when it has one
    created: str = ""  # the config's creation time, RFC 3339 (UTC, seconds), when present


_VENDOR_LABELS = ("org.opencontainers.image.vendor", "org.opencontainers.image.authors")


def _config_facts(config: Mapping[str, Any], annotations: Any = None) -> dict[str, str]:
    """Supplier (vendor label or annotation) and creation time from an image config."""
    labels = (config.get("config") or {}).get("Labels") or {}
    supplier = ""
    for source in (annotations or {}, labels):
        if isinstance(source, Mapping):
            for key in _VENDOR_LABELS:
                value = source.get(key)
                if isinstance(value, str) and value.strip() and not supplier:
                    # a vendor is an organisation by definition; authors may be either
                    vendor = key.endswith(".vendor")
                    supplier = ("Organization: " if vendor else "") + value.strip()[:200]
    created = ""
    raw = config.get("created")
    if isinstance(raw, str) and raw:
        try:
            stamp = datetime.fromisoformat(raw.replace("Z", "+00:00")[:32])
            if stamp.tzinfo is not None:
                created = stamp.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        except ValueError:
            created = ""
    return {"supplier": supplier, "created": created}


def host_architecture() -> str:
    machine = _platform.machine().lower()
    return {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(
        machine, machine
    )


def load_image(
    text: str, wants: Wants, *, architecture: str = "", insecure: bool = False
) -> tuple[MemoryFileView, ImageInfo]:
    """Read the image named by ``text``; keep wanted files. ``architecture`` picks from an index."""
    ref = parse_image_ref(text)
    arch = architecture or host_architecture()
    if ref.transport == "dir":
        return _load_dir(Path(ref.path), wants, arch)
    source = _open(ref, insecure)
    with source:
        image = _select(source.manifests(), arch, text)
        view = image_view(source, image, wants)
        return view, ImageInfo(
            name=image_short_name(ref),
            digest=str(image.digest),
            architecture=image.platform.architecture,
            repository=ref.name,
            tag=_version_tag(ref),
            **_config_facts(image.config, image.manifest.get("annotations")),
        )


def image_view(source: ImageSource, image: ImageManifest, wants: Wants) -> MemoryFileView:
    """The wanted files of ``image`` as a runtime sees them: its layers applied in order, each
    checked against its diff_id while streamed."""
    return view_of_layers(
        [
            LayerInput(
                open=functools.partial(source.open_layer, layer),
                media_type=layer.media_type,
                diff_id=diff_id,
                what=f"layer {layer.digest}",
            )
            for layer, diff_id in zip(image.layers, image.diff_ids, strict=True)
        ],
        wants,
    )


def _open(ref: ImageRef, insecure: bool) -> ImageSource:
    if ref.is_registry:
        from assay.oci.push import open_registry_image

        return open_registry_image(ref, insecure=insecure)
    return open_image(ref)


def _select(images: list[ImageManifest], arch: str, what: str) -> ImageManifest:
    matching = [m for m in images if m.platform.architecture == arch]
    if matching:
        return matching[0]
    if len(images) == 1:
        return images[0]
    archs = sorted({m.platform.architecture for m in images})
    raise UsageError(
        f"{what} has no image for architecture {arch!r} (it has: {', '.join(archs) or 'none'}); "
        "pass --arch"
    )


def _version_tag(ref: ImageRef) -> str:
    """The tag as a version: a docker-archive's ``NAME:TAG`` gives ``TAG``."""
    if ref.transport == "docker-archive":
        return ref.tag.rsplit(":", 1)[1] if ":" in ref.tag else ""
    return ref.tag


def image_short_name(ref: ImageRef) -> str:
    """The image's name in an SBOM (the pkg:oci name): the repository's last component, or for
    a layout or archive its directory or file name — never the tag, which is a version."""
    if ref.repository:
        return ref.repository.rsplit("/", 1)[-1]
    if ref.transport == "docker-archive" and ref.tag:
        return ref.tag.split(":", 1)[0].rsplit("/", 1)[-1]
    return Path(ref.path).resolve().name.removesuffix(".tar") or "image"


# -- dir: --------------------------------------------------------------------------------------


def _load_dir(root: Path, wants: Wants, arch: str) -> tuple[MemoryFileView, ImageInfo]:
    view = read_directory(root, wants)
    h = hashlib.sha256()
    for path in view.paths():
        h.update(path.encode() + b"\0" + hashlib.sha256(view.files[path]).digest())
    for path, target in sorted(view.symlinks.items()):
        h.update(b"L" + path.encode() + b"\0" + target.encode() + b"\0")
    name = root.resolve().name or "rootfs"
    return view, ImageInfo(name=name, digest="sha256:" + h.hexdigest(), architecture=arch)
