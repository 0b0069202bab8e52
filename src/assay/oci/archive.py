"""``oci-archive:`` files: a tar of an OCI image layout, as skopeo reads and writes them.

Writing is deterministic (sorted members, fixed mtime, uid/gid 0) and atomic. Reading accepts a
strict allow-list: only ``oci-layout``, ``index.json`` and ``blobs/<alg>/<hex>`` regular files
(and their directories); links, devices, ``..`` and duplicate members are refused.

Two readers: ``OciArchive`` reads the archive in place (members indexed by offset, nothing
written to disk, every blob verified against its digest as it is read), which is what image
sources use; ``open_oci_archive`` extracts into a private temporary directory (checking every
blob while extracting) for callers that need a real ``OciLayout`` directory.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from assay._atomic import atomic_writer
from assay._closing import Closing
from assay._safefs import open_regular
from assay.errors import InputError, VerificationError
from assay.oci import _tar
from assay.oci.digest import Digest, VerifyingReader, parse_digest, sha256_digest
from assay.oci.layout import MAX_INDEX_SIZE, OciLayout, is_layout, resolve_tag
from assay.oci.model import Descriptor, parse_index, parse_json_document

__all__ = ["OciArchive", "open_oci_archive", "write_oci_archive"]

MAX_ARCHIVE_SIZE = 64 << 30
_BLOB_RE = re.compile(r"^blobs/(sha256/[0-9a-f]{64}|sha512/[0-9a-f]{128})$")
_DIRS = {"blobs", "blobs/sha256", "blobs/sha512"}
_FILES = {"oci-layout", "index.json"}


def write_oci_archive(layout_dir: Path | str, dest_file: Path | str, *, mtime: int = 0) -> None:
    """Write the layout at ``layout_dir`` as an uncompressed tar to ``dest_file`` (atomically)."""
    layout = OciLayout.open(layout_dir)
    root = layout.path
    with atomic_writer(Path(dest_file)) as fh:
        tw = _tar.TarWriter(fh)
        for name in ("index.json", "oci-layout"):
            with open_regular(root / name, follow=False) as member:
                data = member.read()
            tw.add(name, _tar.REGTYPE, mode=0o644, mtime=mtime, size=len(data), data=data)
        tw.add("blobs/", _tar.DIRTYPE, mode=0o755, mtime=mtime)
        algs = sorted(p.name for p in (root / "blobs").iterdir() if p.is_dir())
        for alg in algs:
            tw.add(f"blobs/{alg}/", _tar.DIRTYPE, mode=0o755, mtime=mtime)
            for blob in sorted((root / "blobs" / alg).iterdir()):
                if blob.name.startswith(".") or not blob.is_file():
                    continue
                with open_regular(blob, follow=False) as src:
                    size = os.fstat(src.fileno()).st_size
                    tw.add(
                        f"blobs/{alg}/{blob.name}",
                        _tar.REGTYPE,
                        mode=0o644,
                        mtime=mtime,
                        size=size,
                        source=src,
                    )
        tw.close()


def _layout_tar(fh: BinaryIO, what: str, max_size: int) -> _tar.TarReader:
    """A reader over an oci-archive: a plain tar (a compressed one is refused), bounded."""
    head = fh.read(2)
    fh.seek(0)
    if head == b"\x1f\x8b":
        raise InputError(f"{what}: is gzip-compressed; an oci-archive is a plain tar")
    return _tar.TarReader(
        fh, max_member_size=max_size, max_total_size=max_size, max_members=1_000_000, what=what
    )


def _layout_members(tr: _tar.TarReader, what: str) -> Iterator[tuple[str, _tar.TarMember]]:
    """The archive's directories and regular files, by normalised name.

    A ``..`` component, a name given twice and any other member type are refused: an OCI
    layout holds only files and directories, and an ambiguous archive is not read.
    """
    seen: set[str] = set()
    while (m := tr.next()) is not None:
        parts = [c for c in m.name.split("/") if c not in ("", ".")]
        if ".." in parts:
            raise InputError(f"{what}: member {m.name!r} has a '..' component; refusing it")
        name = "/".join(parts)
        if not name:
            continue
        if name in seen:
            raise InputError(f"{what}: duplicate member {name!r}; refusing an ambiguous archive")
        seen.add(name)
        if m.typeflag not in (_tar.DIRTYPE, _tar.REGTYPE, _tar.AREGTYPE):
            raise InputError(
                f"{what}: member {m.name!r} is not a regular file (type {m.typeflag!r}); "
                "an OCI layout holds only files and directories"
            )
        yield name, m


def _extract(archive: Path, dest: Path, max_size: int) -> None:
    what = f"oci-archive {archive}"
    try:
        opened = open_regular(archive, what)
    except FileNotFoundError:
        raise InputError(f"{what}: no such file") from None
    with opened as fh:
        tr = _layout_tar(fh, what, max_size)
        for name, m in _layout_members(tr, what):
            if m.typeflag == _tar.DIRTYPE:
                if name in _DIRS:
                    (dest / name).mkdir(parents=True, exist_ok=True)
                continue
            blob = _BLOB_RE.fullmatch(name)
            if name not in _FILES and not blob:
                continue  # not part of the layout (e.g. a README); ignored
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
            alg = name.split("/")[1] if blob else "sha256"
            h = hashlib.new(alg)
            with os.fdopen(fd, "wb") as out:
                while chunk := tr.read_data(1 << 20):
                    h.update(chunk)
                    out.write(chunk)
            if blob and h.hexdigest() != name.rsplit("/", 1)[1]:
                raise VerificationError(
                    f"{what}: blob {name} does not match its digest; the archive is corrupt"
                )
    if not is_layout(dest):
        raise InputError(f"{what}: no oci-layout file; not an OCI archive")


@contextlib.contextmanager
def open_oci_archive(
    file: Path | str, *, tmp_dir: Path | None = None, max_size: int = MAX_ARCHIVE_SIZE
) -> Iterator[OciLayout]:
    """Extract an oci-archive into a private temp directory and yield it as a layout.

    The directory is removed when the block ends.
    """
    work = Path(tempfile.mkdtemp(prefix="assay-oci-archive-", dir=tmp_dir))
    try:
        try:
            _extract(Path(file), work, max_size)
        except FileNotFoundError:
            raise InputError(f"oci-archive {file}: no such file") from None
        except IsADirectoryError:
            raise InputError(f"oci-archive {file}: is a directory; use oci:{file}") from None
        yield OciLayout.open(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


class OciArchive(Closing):
    """An oci-archive read in place. Use as a context manager (it holds the file open)."""

    def __init__(self, path: Path | str, *, max_size: int = MAX_ARCHIVE_SIZE) -> None:
        self.path = Path(path)
        what = f"oci-archive {self.path}"
        if self.path.is_dir():
            raise InputError(f"{what}: is a directory; use oci:{self.path}")
        try:
            self._fh = open_regular(self.path, what)
        except FileNotFoundError:
            raise InputError(f"{what}: no such file") from None
        try:
            self._members = self._scan(what, max_size)
            for name in ("oci-layout", "index.json"):
                if name not in self._members:
                    raise InputError(f"{what}: no {name} member; not an OCI archive")
            marker = parse_json_document(self._member("oci-layout", 4096), what=what, max_size=4096)
            version = marker.get("imageLayoutVersion")
            if not isinstance(version, str) or not version.startswith("1."):
                raise InputError(f"{what}: unsupported imageLayoutVersion {version!r}")
            self._index = parse_index(self._member("index.json", MAX_INDEX_SIZE))
        except BaseException:
            self._fh.close()
            raise

    def _scan(self, what: str, max_size: int) -> dict[str, tuple[int, int]]:
        tr = _layout_tar(self._fh, what, max_size)
        members: dict[str, tuple[int, int]] = {}
        for name, m in _layout_members(tr, what):
            if m.typeflag != _tar.DIRTYPE and (name in _FILES or _BLOB_RE.fullmatch(name)):
                members[name] = (m.offset, m.size)
        return members

    def _member(self, name: str, limit: int) -> bytes:
        offset, size = self._members[name]
        if size > limit:
            raise InputError(f"oci-archive {self.path}: {name} is over the {limit}-byte limit")
        return _tar.FileSlice(self._fh, offset, size).read()

    def _blob_name(self, digest: Digest | str) -> str:
        d = parse_digest(digest)
        name = "blobs/" + d.replace(":", "/", 1)
        if name not in self._members:
            raise InputError(f"oci-archive {self.path}: blob {d} is missing from the archive")
        return name

    def has_blob(self, digest: Digest | str) -> bool:
        return "blobs/" + parse_digest(digest).replace(":", "/", 1) in self._members

    def read_blob(self, digest: Digest | str, max_size: int = 64 << 20) -> bytes:
        """The blob's content, verified against ``digest`` (``VerificationError`` otherwise)."""
        digest = parse_digest(digest)
        name = self._blob_name(digest)
        data = self._member(name, max_size)
        if digest.startswith("sha256:") and sha256_digest(data) != digest:
            raise VerificationError(
                f"oci-archive {self.path}: blob {digest} does not match its digest; the archive "
                "is corrupt"
            )
        if not digest.startswith("sha256:"):
            VerifyingReader(_tar.FileSlice(self._fh, *self._members[name]), digest).drain()
        return data

    def open_blob(self, digest: Digest | str, size: int | None = None) -> VerifyingReader:
        """A reader over the blob that verifies digest (and ``size``) when it reaches the end."""
        digest = parse_digest(digest)
        offset, length = self._members[self._blob_name(digest)]
        return VerifyingReader(
            _tar.FileSlice(self._fh, offset, length),
            digest,
            size,
            what=f"blob {digest} in {self.path}",
        )

    def index(self) -> dict[str, object]:
        return dict(self._index)

    def descriptors(self) -> list[Descriptor]:
        return [Descriptor.from_dict(m) for m in self._index["manifests"]]

    def resolve(self, tag: str | None = None) -> Descriptor:
        return resolve_tag(self.descriptors(), tag, where=str(self.path), transport="oci-archive")

    def close(self) -> None:
        self._fh.close()
