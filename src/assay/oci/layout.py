"""OCI image layout directories (``oci-layout``, ``index.json``, ``blobs/<alg>/<hex>``).

Tags are the ``org.opencontainers.image.ref.name`` annotation of ``index.json`` entries, as
skopeo and umoci use them; several tags share one blob store. Blobs are written atomically
(temp file + rename) and are verified against their digest whenever they are read.

``staged_layout`` / ``write_layout_atomically`` give the all-or-nothing output the build
promises: everything is written into a sibling staging directory first; on success a new
destination is renamed into place, or, for an existing layout, the new blobs are moved in and
``index.json`` is replaced atomically with the new tags added (other tags kept). A failed build
leaves the destination as it was.

A layout is outside input: ``oci-layout``, ``index.json`` and every blob must be regular files
(a symlink, FIFO, device or socket is refused, and nothing blocks on opening one); nothing is
written, moved or deleted through a ``blobs`` or ``blobs/ALG`` directory that is a symlink, nor
over an ``index.json`` that is one.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from assay._atomic import atomic_write_bytes, fsync_dir
from assay._safefs import file_kind, open_regular, refuse_symlinked_dirs
from assay.errors import InputError, UsageError, VerificationError
from assay.oci import mediatypes as mt
from assay.oci.digest import (
    Digest,
    VerifyingReader,
    digest_algorithm,
    digest_hex,
    parse_digest,
    sha256_digest,
)
from assay.oci.jsonc import canonical_json
from assay.oci.model import Descriptor, parse_index, parse_json_document

__all__ = [
    "REF_NAME",
    "OciLayout",
    "is_layout",
    "resolve_tag",
    "staged_layout",
    "valid_tag",
    "write_layout_atomically",
]

REF_NAME = "org.opencontainers.image.ref.name"
MAX_INDEX_SIZE = 16 << 20
_CHUNK = 1 << 20

# OCI image-layout ref.name grammar: components of alphanumerics joined by -._:@+ or "--",
# separated by "/".
_COMPONENT = r"[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*"
_REF_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")

T = TypeVar("T")


def valid_tag(name: str) -> bool:
    """Whether ``name`` is a valid ``org.opencontainers.image.ref.name``."""
    return len(name) <= 255 and bool(_REF_RE.fullmatch(name))


def is_layout(path: Path) -> bool:
    return (Path(path) / "oci-layout").is_file()


class OciLayout:
    """An OCI image layout directory. Construct with ``create`` or ``open``."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def create(cls, path: Path | str) -> OciLayout:
        """Create an empty layout at ``path`` (new or empty directory), or open an existing one."""
        path = Path(path)
        if is_layout(path):
            return cls.open(path)
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise UsageError(
                f"{path} exists and is not an OCI image layout; choose a new or empty directory"
            )
        (path / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(
            path / "oci-layout", canonical_json({"imageLayoutVersion": mt.OCI_LAYOUT_VERSION})
        )
        layout = cls(path)
        layout._write_index([])
        return layout

    @classmethod
    def open(cls, path: Path | str) -> OciLayout:
        path = Path(path)
        marker = path / "oci-layout"
        if not marker.is_file():
            raise UsageError(f"{path} is not an OCI image layout (no oci-layout file)")
        doc = parse_json_document(_read_bounded(marker, 4096), what=f"{marker}", max_size=4096)
        version = doc.get("imageLayoutVersion")
        if not isinstance(version, str) or not version.startswith("1."):
            raise InputError(f"{marker}: unsupported imageLayoutVersion {version!r}")
        layout = cls(path)
        layout.index()  # validate early
        return layout

    # -- blobs --------------------------------------------------------------------------------

    def blob_path(self, digest: Digest | str) -> Path:
        d = parse_digest(digest)
        return self.path / "blobs" / digest_algorithm(d) / digest_hex(d)

    def has_blob(self, digest: Digest | str) -> bool:
        return self.blob_path(digest).is_file()

    def put_blob(self, data: bytes, media_type: str = "application/octet-stream") -> Descriptor:
        """Store ``data``; returns its descriptor (no-op when already present)."""
        digest = sha256_digest(data)
        dest = self.blob_path(digest)
        self._check_writable(digest)
        if not dest.is_file():
            atomic_write_bytes(dest, data)
        return Descriptor(media_type=media_type, digest=digest, size=len(data))

    def put_json(self, doc: object, media_type: str) -> Descriptor:
        """Store ``doc`` as canonical JSON."""
        return self.put_blob(canonical_json(doc), media_type)

    def put_blob_file(
        self, src: Path, digest: Digest | str, size: int, *, move: bool = False, verify: bool = True
    ) -> None:
        """Store the file ``src`` as blob ``digest``: hard-linked, moved or copied.

        With ``verify`` (the default) the content is hashed first and a mismatch raises
        ``VerificationError``; the layout never holds a blob under the wrong name.
        """
        digest = parse_digest(digest)
        dest = self.blob_path(digest)
        self._check_writable(digest)
        if dest.is_file():
            if move:
                Path(src).unlink(missing_ok=True)
            return
        if verify:
            with open(src, "rb") as fh:
                VerifyingReader(fh, digest, size, what=f"file {src}").drain()
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".tmp-{dest.name}.{os.getpid()}")
        try:
            if move:
                os.replace(src, tmp)
            else:
                try:
                    os.link(src, tmp)
                except OSError:
                    shutil.copyfile(src, tmp)
            os.chmod(tmp, 0o644)
            os.replace(tmp, dest)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def put_blob_stream(self, stream: BinaryIO, digest: Digest | str, size: int | None) -> None:
        """Store a blob read from ``stream``, verifying digest and size before it is named."""
        digest = parse_digest(digest)
        dest = self.blob_path(digest)
        self._check_writable(digest)
        if dest.is_file():
            return
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".tmp-{dest.name}.", dir=dest.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                reader = VerifyingReader(stream, digest, size)
                while chunk := reader.read(_CHUNK):
                    fh.write(chunk)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, dest)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def _check_writable(self, digest: Digest | str | None = None) -> None:
        """Refuse to write through a symlinked ``blobs``/``blobs/ALG`` dir or ``index.json``."""
        dirs = [self.path / "blobs"]
        if digest is not None:
            dirs.append(self.path / "blobs" / digest_algorithm(parse_digest(digest)))
        refuse_symlinked_dirs(dirs, f"OCI layout {self.path}")
        index = self.path / "index.json"
        with contextlib.suppress(FileNotFoundError):
            mode = os.lstat(index).st_mode
            if not stat.S_ISREG(mode):
                raise InputError(
                    f"OCI layout {self.path}: {index} is {file_kind(mode)}, not a regular "
                    "file; refusing to write through it"
                )

    def open_blob_file(self, digest: Digest | str, max_size: int | None = None) -> BinaryIO:
        """The blob's file, opened only if it is a regular file (not a symlink, FIFO, device).

        Not verified: callers hash what they read (``read_blob``, ``open_blob`` do).
        """
        digest = parse_digest(digest)
        try:
            return open_regular(
                self.blob_path(digest),
                f"{self.path}: blob {digest}",
                follow=False,
                max_size=max_size,
            )
        except FileNotFoundError:
            raise InputError(f"{self.path}: blob {digest} is missing from the layout") from None

    def read_blob(self, digest: Digest | str, max_size: int = 64 << 20) -> bytes:
        """The blob's content, verified against ``digest`` (``VerificationError`` otherwise)."""
        digest = parse_digest(digest)
        with self.open_blob_file(digest, max_size) as fh:
            data = fh.read(max_size + 1)
        if len(data) > max_size:
            raise InputError(f"{self.path}: blob {digest} is over the {max_size}-byte limit")
        if sha256_digest(data) != digest and digest_algorithm(digest) == "sha256":
            raise VerificationError(
                f"{self.path}: blob {digest} does not match its digest; the layout is corrupt — "
                "rebuild or re-copy it"
            )
        if digest_algorithm(digest) != "sha256":
            VerifyingReader(_BytesReader(data), digest, len(data)).drain()
        return data

    def open_blob(self, digest: Digest | str, size: int | None = None) -> VerifyingReader:
        """A reader over the blob that verifies digest (and ``size``) when it reaches the end."""
        digest = parse_digest(digest)
        fh = self.open_blob_file(digest)
        return VerifyingReader(fh, digest, size, what=f"blob {digest} in {self.path}")

    def blobs(self) -> list[Digest]:
        out = []
        root = self.path / "blobs"
        if root.is_dir():
            for alg in sorted(root.iterdir()):
                for f in sorted(alg.iterdir()):
                    if not f.name.startswith("."):
                        with contextlib.suppress(InputError):
                            out.append(parse_digest(f"{alg.name}:{f.name}"))
        return out

    # -- index and tags -----------------------------------------------------------------------

    def index(self) -> dict[str, Any]:
        """The parsed, validated ``index.json``."""
        path = self.path / "index.json"
        try:
            raw = _read_bounded(path, MAX_INDEX_SIZE)
        except FileNotFoundError:
            raise InputError(
                f"{self.path}: index.json is missing; not a complete OCI layout"
            ) from None
        try:
            return parse_index(raw, max_size=MAX_INDEX_SIZE)
        except InputError as e:
            raise InputError(f"{path}: {e}") from None

    def descriptors(self) -> list[Descriptor]:
        return [Descriptor.from_dict(m) for m in self.index()["manifests"]]

    def _write_index(
        self, descriptors: list[Descriptor], annotations: Mapping[str, str] | None = None
    ) -> None:
        def key(d: Descriptor) -> tuple[str, str]:
            return ((d.annotations or {}).get(REF_NAME, ""), d.digest)

        doc: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": mt.OCI_INDEX,
            "manifests": [d.to_dict() for d in sorted(descriptors, key=key)],
        }
        if annotations:
            doc["annotations"] = dict(annotations)
        self._check_writable()
        atomic_write_bytes(self.path / "index.json", canonical_json(doc))

    def tags(self) -> dict[str, Descriptor]:
        """``{tag: descriptor}`` for every tagged entry of ``index.json``."""
        out: dict[str, Descriptor] = {}
        for d in self.descriptors():
            name = (d.annotations or {}).get(REF_NAME)
            if name:
                out[name] = d
        return out

    def tag(self, name: str, desc: Descriptor) -> None:
        """Point tag ``name`` at ``desc`` (replacing an earlier entry of that name)."""
        self.set_tags({name: desc})

    def set_tags(self, tags: Mapping[str, Descriptor]) -> None:
        for name, desc in tags.items():
            if not valid_tag(name):
                raise UsageError(
                    f"invalid tag {name!r}: use letters, digits and . _ - : @ + between them"
                )
            if not self.has_blob(desc.digest):
                raise InputError(f"cannot tag {name!r}: blob {desc.digest} is not in the layout")
        kept = [d for d in self.descriptors() if (d.annotations or {}).get(REF_NAME) not in tags]
        for name, desc in tags.items():
            ann = dict(desc.annotations or {})
            ann[REF_NAME] = name
            kept.append(desc.with_annotations(ann))
        self._write_index(kept, self.index().get("annotations"))

    def untag(self, name: str) -> None:
        kept = [d for d in self.descriptors() if (d.annotations or {}).get(REF_NAME) != name]
        self._write_index(kept, self.index().get("annotations"))

    def referenced(self, roots: list[Descriptor]) -> set[Digest]:
        """Every blob digest reachable from ``roots`` that is present in the layout."""
        seen: set[Digest] = set()
        todo = list(roots)
        while todo:
            d = todo.pop()
            if d.digest in seen or not self.has_blob(d.digest):
                continue
            seen.add(d.digest)
            if d.media_type in mt.MANIFEST_TYPES or d.media_type in mt.INDEX_TYPES:
                doc = parse_json_document(
                    self.read_blob(d.digest, MAX_INDEX_SIZE),
                    what=str(d.digest),
                    max_size=MAX_INDEX_SIZE,
                )
                todo.extend(_children(doc))
        return seen

    def gc(self) -> list[Digest]:
        """Delete blobs no tag or index entry reaches; returns what was removed.

        Only safe while nothing else writes to the layout.
        """
        self._check_writable()
        root = self.path / "blobs"
        if root.is_dir():
            links = [p for p in root.iterdir() if p.is_symlink()]
            refuse_symlinked_dirs(links, f"OCI layout {self.path}")
        keep = self.referenced(self.descriptors())
        removed = [d for d in self.blobs() if d not in keep]
        for d in removed:
            self._check_writable(d)
            self.blob_path(d).unlink(missing_ok=True)
        return removed

    def resolve(self, tag: str | None = None) -> Descriptor:
        """The descriptor a tag names; with no tag, the layout's only entry."""
        return resolve_tag(self.descriptors(), tag, where=str(self.path), transport="oci")


def _children(doc: Mapping[str, Any]) -> list[Descriptor]:
    out: list[Descriptor] = []
    for key in ("config", "subject"):
        if isinstance(doc.get(key), dict):
            out.append(Descriptor.from_dict(doc[key]))
    for key in ("layers", "manifests", "blobs"):
        if isinstance(doc.get(key), list):
            out.extend(Descriptor.from_dict(d) for d in doc[key])
    return out


def resolve_tag(
    descs: list[Descriptor], tag: str | None, *, where: str, transport: str = "oci"
) -> Descriptor:
    """Pick the ``index.json`` entry named ``tag`` (or the only entry when no tag is given)."""
    tags = sorted({(d.annotations or {}).get(REF_NAME, "") for d in descs} - {""})
    if tag:
        for d in descs:
            if (d.annotations or {}).get(REF_NAME) == tag:
                return d
        raise UsageError(f"{where}: no tag {tag!r} (tags: {', '.join(tags) or 'none'})")
    if len(descs) == 1:
        return descs[0]
    if not descs:
        raise UsageError(f"{where}: holds no images")
    raise UsageError(
        f"{where}: holds {len(descs)} images; name one with {transport}:{where}:TAG "
        f"(tags: {', '.join(tags) or 'untagged entries only'})"
    )


class _BytesReader:
    def __init__(self, data: bytes) -> None:
        self._data = memoryview(data)
        self._pos = 0

    def read(self, n: int = -1) -> bytes:
        end = len(self._data) if n < 0 else min(len(self._data), self._pos + n)
        out = bytes(self._data[self._pos : end])
        self._pos = end
        return out


def _read_bounded(path: Path, limit: int) -> bytes:
    with open_regular(path, follow=False) as fh:
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise InputError(f"{path} is larger than the {limit}-byte limit")
    return data


# -- atomic output ----------------------------------------------------------------------------


@contextlib.contextmanager
def _locked(dest: Path) -> Iterator[None]:
    # Lock the parent directory: it exists in every case and leaves no lock file behind.
    fd = os.open(dest.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


@contextlib.contextmanager
def staged_layout(dest: Path | str) -> Iterator[OciLayout]:
    """Yield a staging layout; commit it to ``dest`` when the block finishes without error.

    ``dest`` may be missing, an empty directory, or an existing layout (then its other tags and
    blobs are kept and tags written in the staging layout replace same-named ones).
    """
    dest = Path(dest).absolute()
    if dest.exists() and not is_layout(dest) and (not dest.is_dir() or any(dest.iterdir())):
        raise UsageError(
            f"{dest} exists and is not an OCI image layout; choose a new or empty directory"
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".tmp-{dest.name}.", dir=dest.parent))
    try:
        layout = OciLayout.create(staging)
        yield layout
        with _locked(dest):
            _commit(layout, dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _commit(staged: OciLayout, dest: Path) -> None:
    if not is_layout(dest):
        if dest.is_dir():
            dest.rmdir()  # empty (checked before staging); rename needs it gone or empty
        os.replace(staged.path, dest)
        fsync_dir(dest.parent)
        return
    target = OciLayout.open(dest)
    for digest in staged.blobs():
        target._check_writable(digest)
        if not target.has_blob(digest):
            src = staged.blob_path(digest)
            dst = target.blob_path(digest)
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dst)
    for alg_dir in (dest / "blobs").iterdir():
        fsync_dir(alg_dir)
    new_tags = staged.tags()
    old = target.tags()
    replaced = [old[t] for t in new_tags if t in old and old[t].digest != new_tags[t].digest]
    untagged = [d for d in staged.descriptors() if REF_NAME not in (d.annotations or {})]
    if untagged:
        kept = target.descriptors() + untagged
        target._write_index(kept, target.index().get("annotations"))
    if new_tags:
        target.set_tags(new_tags)
    if replaced:
        # Drop what only the replaced images used (under the lock; never other blobs).
        candidates = target.referenced(replaced)
        still = target.referenced(target.descriptors())
        for digest in sorted(candidates - still):
            target._check_writable(digest)
            target.blob_path(digest).unlink(missing_ok=True)


def write_layout_atomically(dest: Path | str, build: Callable[[OciLayout], T]) -> T:
    """Run ``build`` on a staging layout and commit it to ``dest`` only if it succeeds."""
    with staged_layout(dest) as layout:
        return build(layout)
