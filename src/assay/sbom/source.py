"""Open an image (or a directory) named by a skopeo-style reference into a ``MemoryFileView``.

Transports: ``dir:PATH``, ``oci:DIR[:TAG]``, ``oci-archive:FILE[:TAG]``,
``docker-archive:FILE[:TAG]`` (a ``docker save`` tarball) and registry references
(``docker://HOST/REPO[:TAG][@sha256:…]`` or the same without ``docker://``; the host must be
given, assay has no default registry).

Every blob is verified against its digest while it streams (manifests and configs before they
are used, layers at their end; a docker-archive layer against the config's ``diff_ids``), and a
mismatch raises ``VerificationError`` before any inventory is returned.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform as _platform
import tarfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from assay.errors import InputError, UsageError, VerificationError
from assay.oci import mediatypes as mt
from assay.oci.model import (
    Descriptor,
    index_descriptors,
    manifest_config,
    manifest_layers,
    parse_config,
    parse_index,
    parse_manifest,
)
from assay.sbom.fs import MemoryFileView, Selection, read_directory
from assay.sbom.layers import ChunkReader, apply_layer, decompressed

__all__ = ["ImageInfo", "ImageRefText", "load_image", "split_reference"]

_MAX_DOC = 4 << 20
_REF_NAME = "org.opencontainers.image.ref.name"
Wants = Selection | Callable[[str], bool]


@dataclass(frozen=True)
class ImageInfo:
    """What the SBOM says about its subject."""

    name: str  # short image name, e.g. "python" (pkg:oci name)
    # manifest digest; config digest (image ID) for docker-archive; tree digest for dir:
    digest: str
    architecture: str
    repository: str = ""  # "localhost:5000/base/python" for registry images, else ""
    tag: str = ""
    supplier: str = ""  # the image's vendor/authors label, when it has one
    created: str = ""  # the config's creation time, RFC 3339 (UTC, seconds), when present


_VENDOR_LABELS = ("org.opencontainers.image.vendor", "org.opencontainers.image.authors")


def _config_facts(config: dict[str, Any], annotations: Any = None) -> dict[str, str]:
    """Supplier (vendor label or annotation) and creation time from an image config."""
    labels = (config.get("config") or {}).get("Labels") or {}
    supplier = ""
    for source in (annotations or {}, labels):
        if isinstance(source, dict):
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


@dataclass(frozen=True)
class ImageRefText:
    transport: str  # "dir", "oci", "oci-archive", "docker-archive", "docker"
    path: str  # directory/file for local transports, "HOST/REPO" for registries
    tag: str = ""
    digest: str = ""


def split_reference(text: str) -> ImageRefText:
    """Parse an IMAGE argument. Raises ``UsageError`` with the accepted forms when it is not one."""
    if not text:
        raise UsageError("empty image reference")
    for transport in ("dir", "oci-archive", "oci", "docker-archive"):
        prefix = transport + ":"
        if text.startswith(prefix):
            rest = text[len(prefix) :]
            if transport == "dir":
                return ImageRefText("dir", rest)
            path, tag = rest, ""
            # oci:DIR:TAG — the tag is after the last ':' unless that belongs to the path
            if ":" in rest:
                head, _, tail = rest.rpartition(":")
                if head and "/" not in tail:
                    path, tag = head, tail
            if not path:
                raise UsageError(f"{text!r}: missing path after '{prefix}'")
            return ImageRefText(transport, path, tag)
    ref = text.removeprefix("docker://")
    digest = ""
    if "@" in ref:
        ref, _, digest = ref.partition("@")
    tag = ""
    last = ref.rsplit("/", 1)[-1]
    if ":" in last:
        ref, _, tag = ref.rpartition(":")
    host = ref.split("/", 1)[0]
    if "/" not in ref or not ("." in host or ":" in host or host == "localhost"):
        raise UsageError(
            f"{text!r} is not an image reference assay understands: use dir:PATH, oci:DIR:TAG, "
            "oci-archive:FILE, docker-archive:FILE, HOST/REPO:TAG or HOST/REPO@sha256:DIGEST "
            "(with the registry host spelled out)"
        )
    return ImageRefText("docker", ref, tag or ("" if digest else "latest"), digest)


def host_architecture() -> str:
    machine = _platform.machine().lower()
    return {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(
        machine, machine
    )


def load_image(
    text: str, wants: Wants, *, architecture: str = "", insecure: bool = False
) -> tuple[MemoryFileView, ImageInfo]:
    """Read the image named by ``text``; keep wanted files. ``architecture`` picks from an index."""
    ref = split_reference(text)
    arch = architecture or host_architecture()
    if ref.transport == "dir":
        return _load_dir(Path(ref.path), wants, architecture or arch)
    if ref.transport == "oci":
        return _load_oci(_DirBlobs(Path(ref.path)), ref, wants, arch)
    if ref.transport == "oci-archive":
        with _TarBlobs.open_archive(Path(ref.path)) as blobs:
            return _load_oci(blobs, ref, wants, arch)
    if ref.transport == "docker-archive":
        return _load_docker_archive(Path(ref.path), ref, wants)
    return _load_registry(ref, wants, arch, insecure)


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


# -- verification helpers ----------------------------------------------------------------------


class _Hashing:
    """Pass-through reader that hashes what it reads."""

    def __init__(self, raw: IO[bytes] | ChunkReader) -> None:
        self.raw: Any = raw
        self.hash = hashlib.sha256()
        self.count = 0

    def read(self, n: int = -1) -> bytes:
        data: bytes = self.raw.read(n)
        self.hash.update(data)
        self.count += len(data)
        return data

    def finish(self) -> str:
        while self.read(1 << 20):
            pass
        return "sha256:" + self.hash.hexdigest()


def _check(data: bytes, digest: str, what: str) -> bytes:
    if not digest.startswith("sha256:"):
        raise InputError(f"{what}: only sha256 digests are supported, got {digest[:80]!r}")
    got = "sha256:" + hashlib.sha256(data).hexdigest()
    if got != digest:
        raise VerificationError(
            f"{what}: content hashes to {got}, but {digest} was expected; the image is corrupt "
            "or was tampered with"
        )
    return data


def _apply_verified(
    view: MemoryFileView, raw: IO[bytes] | ChunkReader, expected: set[str], wants: Wants, what: str
) -> None:
    hashing = _Hashing(raw)
    apply_layer(view, decompressed(hashing), wants)  # type: ignore[arg-type]
    got = hashing.finish()
    if got not in expected:
        raise VerificationError(
            f"{what}: content hashes to {got}, expected {sorted(expected)[0]}; the image is "
            "corrupt or was tampered with"
        )


# -- OCI layouts (directory or archive) ---------------------------------------------------------


class _DirBlobs:
    def __init__(self, root: Path) -> None:
        if not (root / "index.json").is_file():
            raise InputError(f"{root}: no index.json; not an OCI image layout")
        self.root = root
        self.label = str(root)

    def read_small(self, name: str) -> bytes:
        path = self.root / name
        if path.is_symlink() or not path.is_file():
            raise InputError(f"{self.label}: missing or not a regular file: {name}")
        if path.stat().st_size > _MAX_DOC:
            raise InputError(f"{self.label}: {name} is larger than {_MAX_DOC} bytes; refusing it")
        return path.read_bytes()

    @contextmanager
    def open(self, name: str) -> Iterator[IO[bytes]]:
        path = self.root / name
        if path.is_symlink() or not path.is_file():
            raise InputError(f"{self.label}: missing blob {name}")
        with open(path, "rb") as fh:
            yield fh


class _TarBlobs:
    """Blobs inside a tar file (oci-archive, docker-archive), by normalised member name."""

    def __init__(self, tar: tarfile.TarFile, label: str) -> None:
        self.tar = tar
        self.label = label
        self.members: dict[str, tarfile.TarInfo] = {}
        for m in tar.getmembers():
            name = os.path.normpath(m.name).lstrip("/")
            if name.startswith("..") or not m.isreg():
                continue
            self.members[name] = m

    @classmethod
    @contextmanager
    def open_archive(cls, path: Path) -> Iterator[_TarBlobs]:
        if not path.is_file():
            raise InputError(f"{path}: no such archive")
        try:
            tar = tarfile.open(path, "r:*")  # noqa: SIM115 - closed by the with below
        except tarfile.TarError as exc:
            raise InputError(f"{path}: not a tar archive: {exc}") from None
        with tar:
            yield cls(tar, str(path))

    def has(self, name: str) -> bool:
        return name in self.members

    def read_small(self, name: str) -> bytes:
        m = self.members.get(name)
        if m is None:
            raise InputError(f"{self.label}: archive has no {name}")
        if m.size > _MAX_DOC:
            raise InputError(f"{self.label}: {name} is larger than {_MAX_DOC} bytes; refusing it")
        fh = self.tar.extractfile(m)
        assert fh is not None
        return fh.read()

    @contextmanager
    def open(self, name: str) -> Iterator[IO[bytes]]:
        m = self.members.get(name)
        if m is None:
            raise InputError(f"{self.label}: archive has no blob {name}")
        fh = self.tar.extractfile(m)
        assert fh is not None
        yield fh


def _blob_name(digest: str) -> str:
    alg, _, hexpart = digest.partition(":")
    if alg != "sha256" or len(hexpart) != 64 or not all(c in "0123456789abcdef" for c in hexpart):
        raise InputError(f"unsupported or malformed digest {digest[:100]!r}")
    return f"blobs/{alg}/{hexpart}"


def _select_platform(descs: list[Descriptor], arch: str, what: str) -> Descriptor:
    images = [d for d in descs if d.media_type in mt.MANIFEST_TYPES]
    matching = [d for d in images if d.platform is not None and d.platform.architecture == arch]
    if matching:
        return matching[0]
    if len(images) == 1:
        return images[0]
    archs = sorted({d.platform.architecture for d in images if d.platform is not None})
    raise UsageError(
        f"{what} has no image for architecture {arch!r} (it has: {', '.join(archs) or 'none'}); "
        "pass --arch"
    )


def _load_oci(
    blobs: Any, ref: ImageRefText, wants: Wants, arch: str
) -> tuple[MemoryFileView, ImageInfo]:
    index = parse_index(blobs.read_small("index.json"), max_size=_MAX_DOC)
    descs = index_descriptors(index)
    what = f"{ref.transport}:{ref.path}"
    if ref.tag:
        tagged = [d for d in descs if (d.annotations or {}).get(_REF_NAME) == ref.tag]
        if not tagged:
            tags = sorted({(d.annotations or {}).get(_REF_NAME, "") for d in descs} - {""})
            raise UsageError(
                f"{what} has no image tagged {ref.tag!r} (tags: {', '.join(tags) or 'none'})"
            )
        descs = tagged
    elif len(descs) > 1:
        tags = sorted({(d.annotations or {}).get(_REF_NAME, "") for d in descs} - {""})
        raise UsageError(f"{what} holds several images; name one with :TAG ({', '.join(tags)})")
    if not descs:
        raise InputError(f"{what}: index.json lists no images")
    desc = descs[0]
    while desc.media_type in mt.INDEX_TYPES:
        raw = _check(blobs.read_small(_blob_name(desc.digest)), desc.digest, f"{what} index")
        desc = _select_platform(index_descriptors(parse_index(raw, max_size=_MAX_DOC)), arch, what)
    raw = _check(blobs.read_small(_blob_name(desc.digest)), desc.digest, f"{what} manifest")
    manifest = parse_manifest(raw, max_size=_MAX_DOC)
    cfg_desc = manifest_config(manifest)
    config = parse_config(
        _check(blobs.read_small(_blob_name(cfg_desc.digest)), cfg_desc.digest, f"{what} config")
    )
    view = MemoryFileView()
    for i, layer in enumerate(manifest_layers(manifest)):
        with blobs.open(_blob_name(layer.digest)) as fh:
            _apply_verified(view, fh, {layer.digest}, wants, f"{what} layer {i}")
    name = ref.tag or Path(ref.path).resolve().name
    return view, ImageInfo(
        name=name.rsplit("/", 1)[-1],
        digest=desc.digest,
        architecture=str(config.get("architecture", "")),
        tag=ref.tag,
        **_config_facts(config, manifest.get("annotations")),
    )


# -- docker-archive ------------------------------------------------------------------------------


def _load_docker_archive(
    path: Path, ref: ImageRefText, wants: Wants
) -> tuple[MemoryFileView, ImageInfo]:
    what = f"docker-archive:{path}"
    with _TarBlobs.open_archive(path) as blobs:
        try:
            manifest = json.loads(blobs.read_small("manifest.json"))
        except ValueError as exc:
            raise InputError(f"{what}: manifest.json is not valid JSON: {exc}") from None
        if not isinstance(manifest, list) or not manifest:
            raise InputError(f"{what}: manifest.json must be a non-empty list")
        chosen: dict[str, Any] | None = None
        for item in manifest:
            if not isinstance(item, dict):
                raise InputError(f"{what}: manifest.json entries must be objects")
            tags = item.get("RepoTags") or []
            if not ref.tag or any(isinstance(t, str) and _tag_matches(t, ref.tag) for t in tags):
                chosen = item
                break
        if chosen is None:
            raise UsageError(f"{what} has no image tagged {ref.tag!r}")
        if not ref.tag and len(manifest) > 1:
            raise UsageError(f"{what} holds several images; name one with :TAG")
        cfg_name, layers = chosen.get("Config"), chosen.get("Layers")
        if not isinstance(cfg_name, str) or not isinstance(layers, list):
            raise InputError(f"{what}: manifest.json entry needs 'Config' and 'Layers'")
        cfg_raw = blobs.read_small(os.path.normpath(cfg_name))
        config = parse_config(cfg_raw)
        diff_ids = config["rootfs"]["diff_ids"]
        if len(diff_ids) != len(layers):
            raise InputError(f"{what}: {len(layers)} layers but {len(diff_ids)} diff_ids")
        view = MemoryFileView()
        for i, (layer, diff_id) in enumerate(zip(layers, diff_ids, strict=True)):
            if not isinstance(layer, str):
                raise InputError(f"{what}: layer names must be strings")
            name = os.path.normpath(layer)
            expected = {diff_id}
            if name.startswith("blobs/sha256/"):
                expected.add("sha256:" + name.rsplit("/", 1)[1])
            with blobs.open(name) as fh:
                _apply_verified(view, fh, expected, wants, f"{what} layer {i}")
        repo_tag = next((t for t in chosen.get("RepoTags") or [] if isinstance(t, str)), "")
        repo, tag = repo_tag, ""
        if ":" in repo_tag.rsplit("/", 1)[-1]:
            repo, _, tag = repo_tag.rpartition(":")
        return view, ImageInfo(
            name=(repo or path.stem).rsplit("/", 1)[-1],
            digest="sha256:" + hashlib.sha256(cfg_raw).hexdigest(),
            architecture=str(config.get("architecture", "")),
            tag=tag,
            **_config_facts(config),
        )


def _tag_matches(repo_tag: str, tag: str) -> bool:
    return repo_tag == tag or repo_tag.endswith(":" + tag)


# -- registries ---------------------------------------------------------------------------------


def _load_registry(
    ref: ImageRefText, wants: Wants, arch: str, insecure: bool
) -> tuple[MemoryFileView, ImageInfo]:
    from assay.oci.registry import RegistryClient

    host, _, repository = ref.path.partition("/")
    with RegistryClient(host, insecure=insecure) as client:
        fetched = client.get_manifest(repository, ref.digest or ref.tag)
        if ref.digest and fetched.digest != ref.digest:
            raise VerificationError(f"{ref.path}: manifest digest {fetched.digest} != {ref.digest}")
        while fetched.is_index:
            index = parse_index(fetched.data, media_type=fetched.media_type)
            desc = _select_platform(index_descriptors(index), arch, ref.path)
            fetched = client.get_manifest(repository, desc.digest)
            if fetched.digest != desc.digest:
                raise VerificationError(f"{ref.path}: manifest digest mismatch for {desc.digest}")
        manifest = parse_manifest(fetched.data)
        cfg = manifest_config(manifest)
        config = parse_config(client.get_blob(repository, cfg.digest, size=cfg.size))
        view = MemoryFileView()
        for i, layer in enumerate(manifest_layers(manifest)):
            reader = ChunkReader(client.iter_blob(repository, layer.digest, size=layer.size))
            _apply_verified(view, reader, {layer.digest}, wants, f"{ref.path} layer {i}")
        return view, ImageInfo(
            name=repository.rsplit("/", 1)[-1],
            digest=fetched.digest,
            architecture=str(config.get("architecture", "")),
            repository=f"{host}/{repository}",
            tag=ref.tag,
            **_config_facts(config, manifest.get("annotations")),
        )
