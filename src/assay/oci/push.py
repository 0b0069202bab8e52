"""Copy images between OCI layouts and registries.

``push_layout`` uploads an image (a single manifest or a multi-arch index, recursively) with all
its blobs from an OCI layout to a registry: blobs the registry already has are skipped after a
``HEAD``, so pushing the same image twice uploads nothing the second time; child manifests go up
before the index that lists them; the top-level document is tagged last, so a tag never names an
incomplete image.

``pull_image`` does the reverse into an OCI layout (staged, committed only when complete), and
``copy_image`` copies registry to registry, mounting blobs across repositories on the same host
instead of sending them again.

Everything read from a layout or a registry is verified against its digest before it is
forwarded. Progress is reported through an optional callback receiving ``PushEvent`` values; this
module never prints.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Literal, cast

from assay._closing import Closing
from assay.errors import InputError, UsageError
from assay.oci import mediatypes as mt
from assay.oci.digest import Digest, VerifyingReader
from assay.oci.layout import OciLayout, staged_layout, valid_tag
from assay.oci.model import (
    MAX_CONFIG_SIZE,
    MAX_MANIFEST_SIZE,
    Descriptor,
    Platform,
    index_descriptors,
    manifest_config,
    manifest_layers,
    parse_index,
    parse_manifest,
)
from assay.oci.reference import ImageRef
from assay.oci.registry import FetchedManifest, RegistryClient
from assay.oci.source import ImageManifest, collect_images, register_opener

__all__ = [
    "CopyResult",
    "PushEvent",
    "RegistryImageSource",
    "copy_image",
    "open_registry_image",
    "pull_image",
    "push_image",
    "push_layout",
]

log = logging.getLogger(__name__)

EventKind = Literal["blob", "manifest", "tag"]
#: "exists" (skipped after HEAD), "mounted", "uploaded", "downloaded" or "pushed"
EventStatus = str


@dataclass(frozen=True)
class PushEvent:
    """One step of a copy, for progress display."""

    kind: EventKind
    status: EventStatus
    digest: str
    size: int
    media_type: str = ""
    reference: str = ""


@dataclass
class CopyResult:
    """What a push/pull/copy did. ``digest`` is the top-level manifest or index."""

    digest: Digest
    media_type: str
    size: int
    manifests: list[Descriptor] = field(default_factory=list)  # per-platform, for an index
    uploaded: int = 0
    skipped: int = 0
    mounted: int = 0
    uploaded_bytes: int = 0

    def to_json(self) -> dict[str, object]:
        return {
            "digest": self.digest,
            "mediaType": self.media_type,
            "size": self.size,
            "manifests": [
                {
                    "digest": d.digest,
                    "mediaType": d.media_type,
                    "size": d.size,
                    **({"platform": str(d.platform)} if d.platform else {}),
                }
                for d in self.manifests
            ],
            "blobs": {
                "uploaded": self.uploaded,
                "skipped": self.skipped,
                "mounted": self.mounted,
                "uploadedBytes": self.uploaded_bytes,
            },
        }


Progress = Callable[[PushEvent], None]


@dataclass
class _Plan:
    """The image graph: unique blobs, and manifests in post-order (children first)."""

    blobs: dict[str, Descriptor] = field(default_factory=dict)
    manifests: list[tuple[Descriptor, bytes]] = field(default_factory=list)
    platforms: list[Descriptor] = field(default_factory=list)


_MAX_DEPTH = 8
_MAX_NODES = 10_000


def _walk(
    top: Descriptor,
    read: Callable[[Descriptor], bytes],
) -> _Plan:
    """Read every manifest under ``top`` (verified by ``read``) and collect the blobs."""
    plan = _Plan()
    seen: set[str] = set()

    def visit(desc: Descriptor, depth: int) -> None:
        if depth > _MAX_DEPTH:
            raise InputError(f"image index nesting deeper than {_MAX_DEPTH} at {desc.digest}")
        if desc.digest in seen:
            return
        seen.add(desc.digest)
        if len(seen) > _MAX_NODES:
            raise InputError(f"image has more than {_MAX_NODES} manifests; refusing it")
        raw = read(desc)
        if desc.media_type in mt.INDEX_TYPES:
            doc = parse_index(raw, media_type=desc.media_type)
            for child in index_descriptors(doc):
                if child.media_type in mt.INDEX_TYPES or child.media_type in mt.MANIFEST_TYPES:
                    visit(child, depth + 1)
                    if depth == 0 and child.media_type in mt.MANIFEST_TYPES:
                        plan.platforms.append(child)
                else:
                    # an index entry that is not a manifest (rare, allowed by OCI): a plain blob
                    plan.blobs.setdefault(child.digest, child)
        elif desc.media_type in mt.MANIFEST_TYPES:
            doc = parse_manifest(raw, media_type=desc.media_type)
            for blob in (manifest_config(doc), *manifest_layers(doc)):
                plan.blobs.setdefault(blob.digest, blob)
        else:
            raise InputError(
                f"{desc.digest} has media type {desc.media_type!r}, which is neither an image "
                "manifest nor an index; assay copies images only"
            )
        plan.manifests.append((desc, raw))

    visit(top, 0)
    return plan


class _Counter:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.uploaded = self.skipped = self.mounted = self.bytes = 0

    def add(self, status: str, size: int) -> None:
        with self.lock:
            if status == "uploaded":
                self.uploaded += 1
                self.bytes += size
            elif status == "mounted":
                self.mounted += 1
            else:
                self.skipped += 1


def _run_parallel(jobs: int, fn: Callable[[Descriptor], None], items: list[Descriptor]) -> None:
    """Run ``fn`` over ``items`` on ``jobs`` threads; on the first error, cancel what has not
    started, wait for what has, and raise that error."""
    if jobs <= 1 or len(items) <= 1:
        for item in items:
            fn(item)
        return
    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="assay-copy") as pool:
        futures = [pool.submit(fn, item) for item in items]
        _, pending = wait(futures, return_when=FIRST_EXCEPTION)
        for f in pending:
            f.cancel()
    for f in futures:
        exc = None if f.cancelled() else f.exception()
        if exc is not None:
            raise exc


def _check_dest(dest: ImageRef) -> tuple[str, str]:
    if not dest.is_registry:
        raise UsageError(f"{dest} is not a registry reference; expected HOST/REPO[:TAG]")
    if dest.digest:
        raise UsageError(
            f"cannot push to {dest}: a destination names a tag (or nothing), not a digest — "
            "the digest is what the push produces"
        )
    return dest.repository, dest.tag


def _put_manifests(
    client: RegistryClient,
    repository: str,
    plan: _Plan,
    tag: str,
    progress: Progress | None,
) -> None:
    top_desc, top_raw = plan.manifests[-1]
    for desc, raw in plan.manifests[:-1]:
        if client.manifest_exists(repository, desc.digest):
            status: EventStatus = "exists"
        else:
            client.put_manifest(repository, desc.digest, raw, desc.media_type)
            status = "pushed"
        if progress:
            progress(PushEvent("manifest", status, desc.digest, desc.size, desc.media_type))
    if tag:
        client.put_manifest(repository, tag, top_raw, top_desc.media_type)
        if progress:
            progress(
                PushEvent("tag", "pushed", top_desc.digest, top_desc.size, top_desc.media_type, tag)
            )
    else:
        status = "exists" if client.manifest_exists(repository, top_desc.digest) else "pushed"
        if status == "pushed":
            client.put_manifest(repository, top_desc.digest, top_raw, top_desc.media_type)
        if progress:
            progress(
                PushEvent("manifest", status, top_desc.digest, top_desc.size, top_desc.media_type)
            )


def _result(plan: _Plan, counter: _Counter) -> CopyResult:
    top, raw = plan.manifests[-1]
    return CopyResult(
        digest=top.digest,
        media_type=top.media_type,
        size=len(raw),
        manifests=list(plan.platforms),
        uploaded=counter.uploaded,
        skipped=counter.skipped,
        mounted=counter.mounted,
        uploaded_bytes=counter.bytes,
    )


# --------------------------------------------------------------------------- layout → registry


def push_image(
    layout: OciLayout | Path | str,
    tag: str | None,
    dest: ImageRef,
    client: RegistryClient,
    progress: Progress | None = None,
    *,
    jobs: int = 4,
) -> CopyResult:
    """Push the image ``tag`` (or the layout's only image) of ``layout`` to ``dest``."""
    lay = layout if isinstance(layout, OciLayout) else OciLayout.open(layout)
    repository, dest_tag = _check_dest(dest)
    top = lay.resolve(tag or None)

    def read(desc: Descriptor) -> bytes:
        if desc.size > MAX_MANIFEST_SIZE:
            raise InputError(f"manifest {desc.digest} is {desc.size} bytes; over the 4 MiB limit")
        data = lay.read_blob(desc.digest, max_size=MAX_MANIFEST_SIZE)
        if len(data) != desc.size:
            raise InputError(
                f"{lay.path}: manifest {desc.digest} is {len(data)} bytes, its descriptor says "
                f"{desc.size}; the layout is corrupt"
            )
        return data

    plan = _walk(Descriptor(top.media_type, top.digest, top.size), read)
    counter = _Counter()

    def upload(blob: Descriptor) -> None:
        status = _upload_layout_blob(lay, client, repository, blob)
        counter.add(status, blob.size)
        if progress:
            progress(PushEvent("blob", status, blob.digest, blob.size, blob.media_type))

    _run_parallel(jobs, upload, list(plan.blobs.values()))
    _put_manifests(client, repository, plan, dest_tag, progress)
    return _result(plan, counter)


def _upload_layout_blob(
    lay: OciLayout, client: RegistryClient, repository: str, blob: Descriptor
) -> str:
    """Upload one layout blob, checked before any byte of it leaves: it must be a regular file
    (not a symlink, FIFO or device) whose content hashes to its name and descriptor size. The
    registry client hashes again while streaming (the file could change in between) and does
    not commit a mismatch."""
    with lay.open_blob_file(blob.digest) as fh:
        if client.blob_exists(repository, blob.digest):
            return "exists"
        VerifyingReader(fh, blob.digest, blob.size, what=f"{lay.path}: blob").drain()
        fd = fh.fileno()

        def reopen() -> BinaryIO:
            os.lseek(fd, 0, os.SEEK_SET)
            return os.fdopen(os.dup(fd), "rb")

        return client.upload_blob(repository, blob.digest, blob.size, reopen, check_exists=False)


def push_layout(
    layout: OciLayout | Path | str,
    tag: str | None,
    dest: ImageRef,
    client: RegistryClient,
    progress: Progress | None = None,
) -> Digest:
    """Push an image from an OCI layout to a registry; returns the pushed digest."""
    return push_image(layout, tag, dest, client, progress).digest


# --------------------------------------------------------------------------- registry → *


def _fetch_reader(client: RegistryClient, repository: str) -> Callable[[Descriptor], bytes]:
    def read(desc: Descriptor) -> bytes:
        fetched = client.get_manifest(repository, desc.digest)  # verified against the digest
        if fetched.size != desc.size:
            raise InputError(
                f"manifest {desc.digest} is {fetched.size} bytes, its descriptor says {desc.size}"
            )
        return fetched.data

    return read


def _top(client: RegistryClient, src: ImageRef) -> FetchedManifest:
    if not src.is_registry:
        raise UsageError(f"{src} is not a registry reference")
    return client.get_manifest(src.repository, src.digest or src.tag or "latest")


def pull_image(
    client: RegistryClient,
    src: ImageRef,
    layout_dir: Path | str,
    tag: str | None = None,
    progress: Progress | None = None,
    *,
    jobs: int = 4,
) -> CopyResult:
    """Copy a registry image (all platforms) into the OCI layout ``layout_dir`` under ``tag``.

    The layout is staged and committed only once every blob has been downloaded and verified.
    """
    if tag and not valid_tag(tag):
        raise UsageError(f"invalid tag {tag!r} for an OCI layout")
    top = _top(client, src)
    first: dict[str, bytes] = {top.digest: top.data}
    fetch = _fetch_reader(client, src.repository)

    def read(desc: Descriptor) -> bytes:
        return first.pop(desc.digest, None) or fetch(desc)

    plan = _walk(top.descriptor, read)
    counter = _Counter()
    with staged_layout(layout_dir) as staging:

        def download(blob: Descriptor) -> None:
            client.download_blob(
                src.repository, blob.digest, staging.blob_path(blob.digest), size=blob.size
            )
            counter.add("uploaded", blob.size)
            if progress:
                progress(PushEvent("blob", "downloaded", blob.digest, blob.size, blob.media_type))

        _run_parallel(jobs, download, list(plan.blobs.values()))
        for desc, raw in plan.manifests:
            staging.put_blob(raw, desc.media_type)
        final = Descriptor(top.media_type, top.digest, top.size)
        staging.tag(tag or src.tag or "latest", final)
    return _result(plan, counter)


class _IterReader:
    """A ``read(n)`` file object over an iterator of byte chunks."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._it = chunks
        self._buf = b""

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            out, self._buf = self._buf + b"".join(self._it), b""
            return out
        while len(self._buf) < n:
            try:
                self._buf += next(self._it)
            except StopIteration:
                break
        out, self._buf = self._buf[:n], self._buf[n:]
        return out

    def close(self) -> None:
        close = getattr(self._it, "close", None)
        if close is not None:
            close()


def copy_image(
    src_client: RegistryClient,
    src: ImageRef,
    dst_client: RegistryClient,
    dest: ImageRef,
    progress: Progress | None = None,
    *,
    jobs: int = 4,
) -> CopyResult:
    """Copy an image between registries (or repositories). Blobs are mounted on the same host."""
    repository, dest_tag = _check_dest(dest)
    top = _top(src_client, src)
    first: dict[str, bytes] = {top.digest: top.data}
    fetch = _fetch_reader(src_client, src.repository)

    def read(desc: Descriptor) -> bytes:
        return first.pop(desc.digest, None) or fetch(desc)

    plan = _walk(top.descriptor, read)
    same_host = src_client.host == dst_client.host
    counter = _Counter()

    def transfer(blob: Descriptor) -> None:
        def opener() -> _IterReader:
            return _IterReader(src_client.iter_blob(src.repository, blob.digest, size=blob.size))

        status = dst_client.upload_blob(
            repository,
            blob.digest,
            blob.size,
            opener,
            mount_from=src.repository if same_host and src.repository != repository else None,
        )
        counter.add(status, blob.size)
        if progress:
            progress(PushEvent("blob", status, blob.digest, blob.size, blob.media_type))

    _run_parallel(jobs, transfer, list(plan.blobs.values()))
    _put_manifests(dst_client, repository, plan, dest_tag, progress)
    return _result(plan, counter)


# --------------------------------------------------------------------------- registry as a source


class RegistryImageSource(Closing):
    """A registry image behind H-C's ``assay.oci.source.ImageSource`` interface.

    Every manifest is verified against its digest; layers stream through ``VerifyingReader``.
    Attestation manifests in an index (buildkit's ``unknown/unknown``) are skipped, as for
    layouts.
    """

    def __init__(
        self,
        client: RegistryClient,
        ref: ImageRef,
        *,
        platform: Platform | None = None,
        own_client: bool = False,
    ) -> None:
        self.client = client
        self.ref = ref
        self._own = own_client
        self._only = platform
        self._top = _top(client, ref)
        self._manifests: list[ImageManifest] | None = None

    @property
    def digest(self) -> Digest:
        return self._top.digest

    @property
    def descriptor(self) -> Descriptor:
        return self._top.descriptor

    def _config(self, desc: Descriptor) -> bytes:
        if desc.size > MAX_CONFIG_SIZE:
            raise InputError(f"config {desc.digest} is {desc.size} bytes, over the limit")
        return self.client.get_blob(self.ref.repository, desc.digest, size=desc.size)

    def manifests(self) -> list[ImageManifest]:
        if self._manifests is None:
            top, fetch = self._top, _fetch_reader(self.client, self.ref.repository)
            self._manifests = collect_images(
                top.descriptor,
                lambda d: top.data if d == top.descriptor else fetch(d),
                self._config,
                self._only,
            )
        return list(self._manifests)

    def open_layer(self, desc: Descriptor) -> VerifyingReader:
        chunks = self.client.iter_blob(self.ref.repository, desc.digest, size=desc.size)
        return VerifyingReader(
            cast(BinaryIO, _IterReader(chunks)),
            desc.digest,
            desc.size,
            what=f"layer {desc.digest} of {self.ref}",
        )

    def close(self) -> None:
        if self._own:
            self.client.close()
            self._own = False


def open_registry_image(ref: ImageRef, *, insecure: bool | None = None) -> RegistryImageSource:
    """Open a ``docker://`` reference as an image source (owns its client).

    ``insecure`` defaults to ``ASSAY_INSECURE_REGISTRY`` (1/true/yes).
    """
    import os

    if insecure is None:
        insecure = os.environ.get("ASSAY_INSECURE_REGISTRY", "").lower() in ("1", "true", "yes")
    client = RegistryClient(ref.registry, insecure=insecure)
    try:
        return RegistryImageSource(client, ref, own_client=True)
    except BaseException:
        client.close()
        raise


register_opener("docker", open_registry_image)
