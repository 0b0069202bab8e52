"""Building on an existing image (``base:``): pin it, check it, reuse its layers as they are.

* **Pinning.** A registry base must be named by digest in the spec (``REG/REPO@sha256:…``); an
  ``oci:DIR[:TAG]`` or ``oci-archive:FILE[:TAG]`` base is resolved when locking. Either way the
  lock records the digest the reference named and each architecture's platform manifest
  (:class:`~assay.build.lock.LockedBase`), and a build refuses a base that no longer has it.
* **Signature.** With ``base.verify.key`` the base's cosign signature (on the pinned digest) must
  verify with that key, through the same code as ``assay verify``, at lock and at every build.
  Unsigned, signed by another key, or the registry unreachable: the build fails.
* **Layers.** The base's layer blobs are copied byte for byte (same digests, same diff_ids; a
  Docker layer media type becomes its OCI name, the bytes unchanged), and the new layers (files
  from ``paths``, then ``app``) are stacked on top.
* **Config.** The base's config with the spec's entrypoint, cmd, environment, work-dir, run-as
  and labels laid over it; ``created`` is SOURCE_DATE_EPOCH; one history entry per new layer.

Installing ``.deb`` files on top of another image's dpkg database is out of scope: a spec with
``base:`` lists no packages (the spec model refuses it).
"""

from __future__ import annotations

import copy
import dataclasses
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assay.build.lock import LOCK_VERSION, Lock, LockedBase, spec_digest
from assay.build.spec import BaseImage, ImageSpec
from assay.errors import InputError, UsageError, VerificationError
from assay.oci import mediatypes as mt
from assay.oci.entry import Entry, EntryType
from assay.oci.model import Descriptor, Platform
from assay.oci.reference import ImageRef, parse_image_ref

if TYPE_CHECKING:  # pragma: no cover
    from assay.oci.source import ImageManifest, ImageSource

__all__ = [
    "BaseUse",
    "base_config",
    "base_created_epoch",
    "base_ref",
    "check_base_lock",
    "lock_base",
    "open_base",
    "reused_layer",
    "select_platform",
    "verify_base",
    "with_parents",
]

_MAX_KEY_BYTES = 64 << 10
#: Docker layer media types and their OCI names (same bytes).
_OCI_LAYER = {
    mt.DOCKER_LAYER_GZIP: mt.OCI_LAYER_GZIP,
    mt.DOCKER_LAYER_TAR: mt.OCI_LAYER_TAR,
}


@dataclass(frozen=True)
class BaseUse:
    """What one architecture's image took from its base (for the SBOM, provenance, output)."""

    ref: str  # as the spec names it
    digest: str  # what the reference named (index or manifest), as pinned in the lock
    manifest: str  # the platform manifest used
    layers: tuple[Descriptor, ...]
    inventory: Any = None  # assay.sbom.model.Inventory of the base's layers, when catalogued


def base_ref(base: BaseImage, spec_dir: Path) -> ImageRef:
    """The spec's base reference; a relative ``oci:``/``oci-archive:`` path is taken from the
    spec's directory (as every other path in a spec is)."""
    ref = parse_image_ref(base.ref)
    if not ref.is_registry and not Path(ref.path).is_absolute():
        ref = dataclasses.replace(ref, path=str(spec_dir / ref.path))
    return ref


def _insecure() -> bool:
    return os.environ.get("ASSAY_INSECURE_REGISTRY", "").lower() in ("1", "true", "yes")


def open_base(base: BaseImage, spec_dir: Path, *, digest: str | None = None) -> ImageSource:
    """Open the base image; with ``digest`` (the lock's pin) it must still be that image."""
    ref = base_ref(base, spec_dir)
    if ref.is_registry:
        from assay.oci.push import open_registry_image

        source: ImageSource = open_registry_image(ref, insecure=_insecure())
    else:
        from assay.oci.source import open_image

        source = open_image(ref)
    if digest is not None and str(source.digest) != digest:
        source.close()
        raise VerificationError(
            f"base {base.ref} is now {source.digest} but the lock pins {digest}; run "
            "`assay lock SPEC` if the new base is intended"
        )
    return source


def verify_base(base: BaseImage, spec_dir: Path, digest: str) -> None:
    """``base.verify``: a cosign signature on ``digest`` must verify with the key (fail closed:
    VerificationError when unsigned or signed otherwise, NetworkError when unreachable)."""
    if base.verify is None:
        return
    from assay._safefs import read_regular
    from assay.attest.keys import load_public_key
    from assay.attest.remote import ImageRef as SignedRef
    from assay.attest.remote import verify_image
    from assay.oci.registry import RegistryClient

    key_path = Path(base.verify.key)
    if not key_path.is_absolute():
        key_path = spec_dir / key_path
    try:
        pem = read_regular(key_path, _MAX_KEY_BYTES, f"base.verify.key {base.verify.key}")
    except FileNotFoundError:
        raise UsageError(f"base.verify.key: {key_path} does not exist") from None
    except InputError as exc:
        raise UsageError(str(exc)) from None
    key = load_public_key(pem)
    ref = base_ref(base, spec_dir)
    with RegistryClient(ref.registry, insecure=_insecure()) as client:
        try:
            verify_image(client, SignedRef(ref.registry, ref.repository, None, digest), key)
        except VerificationError as exc:
            raise VerificationError(f"base {base.ref}: {exc}") from None


def select_platform(
    images: Sequence[ImageManifest], platform: Platform, what: str
) -> ImageManifest:
    """The base's image for ``platform`` (os and architecture; the variant when both name one)."""
    for image in images:
        p = image.platform
        same_variant = not (p.variant and platform.variant) or p.variant == platform.variant
        if p.os == platform.os and p.architecture == platform.architecture and same_variant:
            return image
    have = ", ".join(sorted(str(i.platform) for i in images)) or "none"
    raise UsageError(
        f"base {what} has no {platform} image (it has: {have}); build only the archs it has"
    )


def lock_base(
    spec: ImageSpec, spec_path: Path, spec_bytes: bytes, archs: Sequence[str] | None = None
) -> Lock:
    """The lock of a ``base:`` spec: no packages, the base pinned (and its signature checked)."""
    from assay.build.builder import PLATFORMS

    assert spec.base is not None
    spec_dir = Path(spec_path).parent
    archs = list(archs) if archs else list(spec.archs)
    with open_base(spec.base, spec_dir) as source:
        digest = str(source.digest)
        verify_base(spec.base, spec_dir, digest)
        images = source.manifests()
        manifests = {}
        for arch in archs:
            if arch not in PLATFORMS:
                raise UsageError(f"unsupported architecture {arch!r}")
            image = select_platform(images, PLATFORMS[arch], spec.base.ref)
            manifests[arch] = str(image.digest)
    return Lock(
        lockVersion=LOCK_VERSION,
        spec=Path(spec_path).name,
        specDigest=spec_digest(spec_bytes),
        requested=[],
        sources=[],
        releases=[],
        packages={a: [] for a in archs},
        base=LockedBase(ref=spec.base.ref, digest=digest, manifests=manifests),
    )


def check_base_lock(spec: ImageSpec, lock: Lock, archs: Sequence[str], what: str) -> LockedBase:
    """A lock read from outside must pin the spec's base (and, for a registry reference, the
    digest the spec itself names) and hold no packages."""
    assert spec.base is not None
    pinned = lock.base
    if pinned is None or pinned.ref != spec.base.ref:
        raise UsageError(f"{what} does not pin the spec's base {spec.base.ref}; run `assay lock`")
    named = parse_image_ref(spec.base.ref).digest
    if named and pinned.digest != named:
        raise VerificationError(
            f"{what} pins base digest {pinned.digest}, but the spec names {named}; run `assay lock`"
        )
    for arch in archs:
        if lock.packages.get(arch):
            raise UsageError(f"{what} lists packages for {arch}, but the spec has base:")
        if arch not in pinned.manifests:
            raise UsageError(f"{what} pins no base manifest for {arch}; run `assay lock`")
    return pinned


def base_created_epoch(images: Sequence[ImageManifest]) -> int | None:
    """The newest ``created`` of the base's platform configs (the default SOURCE_DATE_EPOCH of
    an image built on it), or None when none has one."""
    found: list[int] = []
    for image in images:
        raw = image.config.get("created")
        if isinstance(raw, str) and raw:
            try:
                found.append(int(datetime.fromisoformat(raw.replace("Z", "+00:00")).timestamp()))
            except ValueError:
                continue
    return max(found) if found else None


def reused_layer(desc: Descriptor) -> Descriptor:
    """The manifest entry for a base layer: the same blob, its media type in OCI terms."""
    media_type = _OCI_LAYER.get(desc.media_type, desc.media_type)
    if media_type not in (mt.OCI_LAYER_GZIP, mt.OCI_LAYER_TAR, mt.OCI_LAYER_ZSTD):
        raise UsageError(
            f"base layer {desc.digest} has media type {desc.media_type!r}, which assay does not "
            "reuse (foreign or non-distributable layers are refused)"
        )
    return Descriptor(media_type=media_type, digest=desc.digest, size=desc.size)


def with_parents(entries: Sequence[Entry], mtime: int) -> list[Entry]:
    """``entries`` preceded by any parent directory they lack (root-owned 0755), sorted."""
    have = {e.path for e in entries}
    out = list(entries)
    for e in entries:
        parts = e.path.split("/")
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            if parent not in have:
                have.add(parent)
                out.append(Entry(parent, EntryType.DIR, 0o755, mtime=mtime))
    return sorted(out, key=lambda e: tuple(e.path.split("/")))


def _split_env(items: object) -> dict[str, str]:
    env: dict[str, str] = {}
    if isinstance(items, list):
        for item in items:
            if isinstance(item, str):
                key, _, value = item.partition("=")
                env[key] = value
    return env


def base_config(
    config: Mapping[str, Any],
    *,
    user: str | None,
    env: Mapping[str, str],
    entrypoint: list[str] | None,
    cmd: list[str] | None,
    working_dir: str | None,
    labels: Mapping[str, str],
    created: str,
    diff_ids: Sequence[str],
    history: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """The base's config with the spec's settings laid over it and the new layers appended.

    Entrypoint set without cmd drops the base's Cmd (as ``docker build`` does: the old Cmd was
    arguments for the old Entrypoint).
    """
    doc = copy.deepcopy(dict(config))
    inner = dict(doc.get("config") or {})
    if user:
        inner["User"] = user
    merged_env = _split_env(inner.get("Env"))
    merged_env.update(env)
    if merged_env:
        inner["Env"] = [f"{k}={v}" for k, v in merged_env.items()]
    if entrypoint is not None:
        inner["Entrypoint"] = entrypoint
        if cmd is None:
            inner.pop("Cmd", None)
    if cmd is not None:
        inner["Cmd"] = cmd
    if working_dir:
        inner["WorkingDir"] = working_dir
    if labels:
        inner["Labels"] = {**dict(inner.get("Labels") or {}), **labels}
    doc["config"] = inner
    doc["created"] = created
    rootfs = dict(doc.get("rootfs") or {})
    base_ids = list(rootfs.get("diff_ids") or [])
    doc["rootfs"] = {"type": "layers", "diff_ids": [*base_ids, *diff_ids]}
    old_history = doc.get("history")
    doc["history"] = [*(old_history if isinstance(old_history, list) else []), *history]
    return doc
