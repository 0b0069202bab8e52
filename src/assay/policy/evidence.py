"""Fetching an image's evidence once: signatures, attestations, bundle referrers, config.

What is fetched is raw bytes; nothing here decides trust. The authorities verify these bytes
with :mod:`assay.attest.verify` and the bundle helpers, so one fetch serves every policy and
authority that looks at the image. Fetches run concurrently on the caller's thread pool.
A registry that cannot be reached is recorded as ``error`` (never as "no signatures").
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from assay._json import load_json
from assay.attest import bundle as _bundle
from assay.attest.simplesigning import (
    MAX_PAYLOAD,
    OCI_MANIFEST_MEDIA_TYPE,
    SignedLayer,
    cosign_tag,
    parse_signature_manifest,
)
from assay.errors import AssayError, InputError, NetworkError
from assay.oci.registry import NotFoundError, RegistryClient

__all__ = [
    "Blob",
    "ImageEvidence",
    "LayerRef",
    "PlatformImage",
    "SignedEvidence",
    "download_layers",
    "fetch_image",
    "fetch_signed",
    "platform_images",
]

_log = logging.getLogger(__name__)

MAX_ENVELOPE = 16 << 20
MAX_REFERRERS = 100
MAX_CONFIG = 4 << 20
MAX_PLATFORMS = 16
MAX_LAYERS = 256  # per platform image
MAX_LAYER_DOWNLOAD = 8 << 30  # compressed bytes of one image's layers, all platforms
_PREDICATE_ANNOTATION = "dev.sigstore.bundle.predicateType"

T = TypeVar("T")


@dataclass(frozen=True)
class Blob:
    """A fetched signature/attestation layer or bundle, or why it could not be fetched."""

    digest: str  # layer digest, or the referrer manifest's digest for bundles
    data: bytes | None
    layer: SignedLayer | None = None
    problem: str = ""


@dataclass
class SignedEvidence:
    """Signatures and attestations stored for one digest in one repository."""

    repository: str
    signatures: list[Blob] = field(default_factory=list)  # .sig layers
    attestations: list[Blob] = field(default_factory=list)  # .att layers
    bundles: list[Blob] = field(default_factory=list)  # Sigstore bundle referrers
    problems: list[str] = field(default_factory=list)
    error: str = ""  # the registry could not be asked: results are "error", not "fail"


@dataclass
class ImageEvidence:
    """The image itself: its digest, manifest and (when asked) configs by platform."""

    host: str
    repository: str
    digest: str
    media_type: str
    size: int
    manifest: dict[str, Any]
    configs: dict[str, dict[str, Any]] = field(default_factory=dict)  # "os/arch[/variant]"
    config_digests: dict[str, str] = field(default_factory=dict)
    config_error: str = ""


def _run(pool: ThreadPoolExecutor, jobs: list[Callable[[], T]]) -> list[Future[T]]:
    return [pool.submit(job) for job in jobs]


def _network_problem(exc: AssayError) -> str:
    return " ".join(str(exc).split())


def fetch_image(
    client: RegistryClient,
    repository: str,
    reference: str,
    pool: ThreadPoolExecutor,
    *,
    want_config: bool,
) -> ImageEvidence:
    """Resolve ``reference`` to a digest (NetworkError/NotFoundError propagate)."""
    fetched = client.get_manifest(repository, reference)
    doc = fetched.json()
    image = ImageEvidence(
        client.host, repository, fetched.digest, fetched.media_type, fetched.size, doc
    )
    if want_config:
        try:
            _fetch_configs(client, image, pool)
        except NotFoundError as exc:
            image.config_error = f"image config is missing from the registry: {exc}"
        except AssayError as exc:
            image.config_error = _network_problem(exc)
    return image


def _platform_key(platform: Any) -> str:
    if not isinstance(platform, dict):
        return "unknown/unknown"
    key = f"{platform.get('os', 'unknown')}/{platform.get('architecture', 'unknown')}"
    if platform.get("variant"):
        key += f"/{platform['variant']}"
    return key


def _read_config(client: RegistryClient, repository: str, desc: Any) -> tuple[str, dict[str, Any]]:
    if not isinstance(desc, dict) or not isinstance(desc.get("digest"), str):
        raise NetworkError("image manifest has no config descriptor")
    size = desc.get("size")
    if type(size) is not int or size > MAX_CONFIG:
        raise NetworkError("image config size is missing or larger than 4 MiB")
    raw = client.get_blob(repository, desc["digest"], size=size, max_size=MAX_CONFIG)
    try:
        config = load_json(raw, what=f"image config {desc['digest']}", max_size=MAX_CONFIG)
    except InputError as exc:
        raise NetworkError(str(exc)) from None
    if not isinstance(config, dict):
        raise NetworkError(f"image config {desc['digest']} is not a JSON object")
    return desc["digest"], config


def _fetch_configs(client: RegistryClient, image: ImageEvidence, pool: ThreadPoolExecutor) -> None:
    doc = image.manifest
    if isinstance(doc.get("manifests"), list):
        children = [m for m in doc["manifests"] if isinstance(m, dict)][:MAX_PLATFORMS]

        def child(desc: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
            sub = client.get_manifest(image.repository, str(desc.get("digest"))).json()
            digest, config = _read_config(client, image.repository, sub.get("config"))
            return _platform_key(desc.get("platform")), digest, config

        futures = _run(pool, [lambda d=d: child(d) for d in children])  # type: ignore[misc]
        for fut in futures:
            key, digest, config = fut.result()
            if key.startswith("unknown/"):
                continue  # attestation manifests in buildkit indexes
            image.configs[key] = config
            image.config_digests[key] = digest
        return
    digest, config = _read_config(client, image.repository, doc.get("config"))
    key = f"{config.get('os', 'unknown')}/{config.get('architecture', 'unknown')}"
    if config.get("variant"):
        key += f"/{config['variant']}"
    image.configs[key] = config
    image.config_digests[key] = digest


def _layers(client: RegistryClient, repository: str, tag: str) -> list[SignedLayer]:
    try:
        fetched = client.get_manifest(repository, tag, accept=(OCI_MANIFEST_MEDIA_TYPE,))
    except NotFoundError:
        return []
    return parse_signature_manifest(fetched.data)


def _blob(client: RegistryClient, repository: str, layer: SignedLayer, limit: int) -> Blob:
    if layer.size > limit:
        return Blob(
            layer.digest, None, layer, f"layer {layer.digest} is {layer.size} bytes; too large"
        )
    try:
        return Blob(layer.digest, client.get_blob(repository, layer.digest, size=layer.size), layer)
    except NotFoundError:
        return Blob(layer.digest, None, layer, f"blob {layer.digest} is missing from the registry")
    except NetworkError:
        raise
    except AssayError as exc:  # wrong digest or size: this candidate is bad, the others count
        return Blob(layer.digest, None, layer, _network_problem(exc))


def _bundle_blob(client: RegistryClient, repository: str, subject: str, digest: str) -> Blob:
    try:
        fetched = client.get_manifest(repository, digest, accept=(OCI_MANIFEST_MEDIA_TYPE,))
        doc = fetched.json()
        sub = doc.get("subject")
        if not isinstance(sub, dict) or sub.get("digest") != subject:
            return Blob(digest, None, None, f"referrer {digest} does not name this image")
        layers = doc.get("layers")
        if not isinstance(layers, list) or len(layers) != 1 or not isinstance(layers[0], dict):
            return Blob(digest, None, None, f"referrer {digest} must have exactly one layer")
        size = layers[0].get("size")
        if type(size) is not int or size > _bundle.MAX_BUNDLE:
            return Blob(digest, None, None, f"referrer {digest} bundle size is invalid")
        data = client.get_blob(repository, str(layers[0].get("digest")), size=size)
        return Blob(fetched.digest, data)
    except NotFoundError:
        return Blob(digest, None, None, f"referrer {digest} or its bundle is missing")
    except NetworkError:
        raise
    except AssayError as exc:  # a malformed referrer: skipped, with the reason
        return Blob(digest, None, None, f"referrer {digest}: {_network_problem(exc)}")


def fetch_signed(
    client: RegistryClient,
    repository: str,
    digest: str,
    pool: ThreadPoolExecutor,
    *,
    tag_prefix: str = "",
) -> SignedEvidence:
    """The ``.sig``/``.att`` layers and bundle referrers of ``digest`` in ``repository``."""
    out = SignedEvidence(repository)
    try:
        sig_f = pool.submit(_layers, client, repository, tag_prefix + cosign_tag(digest, "sig"))
        att_f = pool.submit(_layers, client, repository, tag_prefix + cosign_tag(digest, "att"))
        ref_f = pool.submit(client.referrers, repository, digest)
        sig_layers = _collect(sig_f, out, "signature manifest")
        att_layers = _collect(att_f, out, "attestation manifest")
        referrers = ref_f.result()
        bundles = [d for d in referrers if d.artifact_type in _bundle.BUNDLE_MEDIA_TYPES_ACCEPTED]
        if len(bundles) > MAX_REFERRERS:
            out.problems.append(
                f"{len(bundles)} bundle referrers; only the first {MAX_REFERRERS} were checked"
            )
            bundles = bundles[:MAX_REFERRERS]
        sig_jobs = [
            (lambda lay=lay: _blob(client, repository, lay, MAX_PAYLOAD)) for lay in sig_layers
        ]
        att_jobs = [
            (lambda lay=lay: _blob(client, repository, lay, MAX_ENVELOPE)) for lay in att_layers
        ]
        bundle_jobs = [
            (lambda d=d: _bundle_blob(client, repository, digest, str(d.digest))) for d in bundles
        ]
        futures = _run(pool, [*sig_jobs, *att_jobs, *bundle_jobs])
        results = [f.result() for f in futures]
        n, m = len(sig_jobs), len(att_jobs)
        out.signatures = results[:n]
        out.attestations = results[n : n + m]
        out.bundles = results[n + m :]
    except NotFoundError as exc:
        out.problems.append(_network_problem(exc))
    except AssayError as exc:
        out.error = _network_problem(exc)
    return out


def _collect(fut: Future[list[SignedLayer]], out: SignedEvidence, what: str) -> list[SignedLayer]:
    try:
        return fut.result()
    except NotFoundError:
        return []
    except NetworkError:
        raise
    except AssayError as exc:  # a malformed manifest: evidence problem, not an outage
        out.problems.append(f"{what}: {_network_problem(exc)}")
        return []


# --------------------------------------------------------------------------- layers (on demand)


@dataclass(frozen=True)
class LayerRef:
    """One layer of a verified platform manifest, with the diff_id its config names."""

    digest: str
    size: int
    media_type: str
    diff_id: str


@dataclass(frozen=True)
class PlatformImage:
    """A platform manifest of the verified image and its layers (lowest first)."""

    platform: str  # "os/arch[/variant]"
    digest: str  # the platform manifest's digest (the image's own for a plain manifest)
    layers: tuple[LayerRef, ...]


def _config_for(client: RegistryClient, image: ImageEvidence, desc: Any) -> dict[str, Any]:
    digest = desc.get("digest") if isinstance(desc, dict) else None
    for key, known in image.config_digests.items():
        if known == digest:
            return image.configs[key]
    return _read_config(client, image.repository, desc)[1]


def _platform_image(
    client: RegistryClient, image: ImageEvidence, platform: str, digest: str, doc: dict[str, Any]
) -> PlatformImage:
    from assay.oci.mediatypes import LAYER_TYPES

    config = _config_for(client, image, doc.get("config"))
    rootfs = _obj_of(config.get("rootfs"))
    diff_ids = rootfs.get("diff_ids")
    layers = doc.get("layers")
    if not isinstance(layers, list) or not isinstance(diff_ids, list):
        raise InputError(f"image {digest} has no layer list or no rootfs.diff_ids")
    if len(layers) != len(diff_ids):
        raise InputError(
            f"image {digest}: {len(layers)} layers but {len(diff_ids)} diff_ids in its config"
        )
    if len(layers) > MAX_LAYERS:
        raise InputError(f"image {digest} has {len(layers)} layers (more than {MAX_LAYERS})")
    out = []
    for i, (desc, diff_id) in enumerate(zip(layers, diff_ids, strict=True)):
        if (
            not isinstance(desc, dict)
            or not isinstance(desc.get("digest"), str)
            or type(desc.get("size")) is not int
            or desc["size"] < 0
            or not isinstance(diff_id, str)
        ):
            raise InputError(f"image {digest}: layer #{i + 1} has no valid digest, size or diff_id")
        media_type = str(desc.get("mediaType", ""))
        if media_type not in LAYER_TYPES:
            raise InputError(f"image {digest}: layer #{i + 1} has media type {media_type!r}")
        out.append(LayerRef(desc["digest"], desc["size"], media_type, diff_id))
    return PlatformImage(platform, digest, tuple(out))


def _obj_of(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def platform_images(client: RegistryClient, image: ImageEvidence) -> list[PlatformImage]:
    """The platform images of the verified ``image`` (itself, or the manifests its index pins).

    Every manifest is fetched by digest (verified), every config by the digest its manifest
    names; buildkit attestation manifests (``unknown/unknown``) are not images and are skipped.
    NetworkError/NotFoundError propagate; a malformed manifest or config is an InputError.
    """
    from assay.oci.mediatypes import MANIFEST_TYPES

    doc = image.manifest
    if not isinstance(doc.get("manifests"), list):
        config = _config_for(client, image, doc.get("config"))
        key = f"{config.get('os', 'unknown')}/{config.get('architecture', 'unknown')}"
        if config.get("variant"):
            key += f"/{config['variant']}"
        return [_platform_image(client, image, key, image.digest, doc)]
    out = []
    for desc in [m for m in doc["manifests"] if isinstance(m, dict)][:MAX_PLATFORMS]:
        key = _platform_key(desc.get("platform"))
        if key.startswith("unknown/") or desc.get("mediaType") not in MANIFEST_TYPES:
            continue
        digest = str(desc.get("digest"))
        sub = client.get_manifest(image.repository, digest).json()
        out.append(_platform_image(client, image, key, digest, sub))
    if not out:
        raise InputError(f"index {image.digest} lists no platform image")
    return out


def download_layers(
    client: RegistryClient,
    repository: str,
    layers: Iterable[LayerRef],
    dest: Path,
    pool: ThreadPoolExecutor,
    *,
    limit: int = MAX_LAYER_DOWNLOAD,
) -> dict[str, Path]:
    """Download each distinct layer blob once into ``dest`` (verified, atomic); digest → file.

    The blobs stay compressed; their diff_ids are checked when they are read.
    """
    wanted = {layer.digest: layer for layer in layers}
    total = sum(layer.size for layer in wanted.values())
    if total > limit:
        raise InputError(
            f"the image's layers are {total} bytes, more than the {limit}-byte limit for "
            "checks that read files"
        )
    paths = {d: dest / d.replace(":", "-") for d in wanted}

    def one(layer: LayerRef) -> None:
        if not paths[layer.digest].exists():
            client.download_blob(repository, layer.digest, paths[layer.digest], size=layer.size)

    for fut in _run(pool, [lambda lay=lay: one(lay) for lay in wanted.values()]):  # type: ignore[misc]
        fut.result()
    return paths
