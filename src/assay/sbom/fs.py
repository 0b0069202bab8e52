"""A small read-only view of an image's (or directory's) filesystem, as catalogers need it.

Catalogers never read a whole image: each says which paths it wants (``Cataloger.wants``), the
source keeps only those files' bytes plus every symlink, and catalogers then read through a
``FileView``. Paths are relative to the root, ``/``-separated, without a leading ``/``
(``var/lib/dpkg/status``), like ``assay.oci.Entry.path``.

Symlinks are resolved inside the root, as in a chroot: ``..`` stops at the root and absolute
targets start at the root, so nothing can point outside the image.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from assay.errors import InputError

__all__ = [
    "MAX_FILE_BYTES",
    "MAX_TOTAL_BYTES",
    "FileView",
    "MemoryFileView",
    "Selection",
    "as_selection",
    "normalize_path",
    "read_directory",
]

MAX_FILE_BYTES = 64 * 1024 * 1024  # one catalogued metadata file (a dpkg status is a few MiB)
MAX_TOTAL_BYTES = 256 * 1024 * 1024  # everything kept from one image (checked before reading)
_MAX_LINK_HOPS = 40


def _keep(path: str, data: bytes) -> bytes:
    return data


@dataclass(frozen=True)
class Selection:
    """Which files an image source keeps (``wants``) and how it cuts them down (``reduce``)."""

    wants: Callable[[str], bool]
    reduce: Callable[[str, bytes], bytes] = _keep


def as_selection(select: Selection | Callable[[str], bool]) -> Selection:
    return select if isinstance(select, Selection) else Selection(select)


class FileView(Protocol):
    """What catalogers read: the kept files and a symlink-aware ``read``."""

    def paths(self) -> Iterable[str]:
        """Every kept regular file (canonical paths, sorted)."""
        ...

    def read(self, path: str) -> bytes | None:
        """Content of ``path`` after resolving symlinks inside the root; None if absent."""
        ...

    def canonical(self, path: str) -> str:
        """``path`` with every symlinked component resolved (inside the root)."""
        ...


def normalize_path(name: str) -> str:
    """Normalise a tar member name or list-file path; refuse ``..`` (path traversal)."""
    parts = []
    for part in name.replace("\\", "/").split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            raise InputError(
                f"refusing path {name!r}: it contains '..' (path traversal); "
                "the image or directory is malformed or hostile"
            )
        parts.append(part)
    return "/".join(parts)


class MemoryFileView:
    """Kept files and symlinks in memory; what every image source produces."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.symlinks: dict[str, str] = {}
        self._total = 0
        self._dir_cache: dict[str, str] = {}

    # -- building ----------------------------------------------------------------------------
    def add_file(self, path: str, data: bytes) -> None:
        if len(data) > MAX_FILE_BYTES:
            raise InputError(
                f"{path}: {len(data)} bytes is larger than the {MAX_FILE_BYTES}-byte limit for "
                "package metadata files; the image looks malformed"
            )
        old = self.files.get(path)
        self._total += len(data) - (len(old) if old is not None else 0)
        if self._total > MAX_TOTAL_BYTES:
            raise InputError(
                f"package metadata in this image exceeds {MAX_TOTAL_BYTES} bytes; "
                "refusing to continue (the image looks malformed or hostile)"
            )
        self.symlinks.pop(path, None)
        self.files[path] = data
        self._dir_cache.clear()

    def add_symlink(self, path: str, target: str) -> None:
        self.files.pop(path, None)
        self.symlinks[path] = target
        self._dir_cache.clear()

    def remove(self, path: str) -> None:
        """Remove ``path`` and everything below it (a whiteout)."""
        self.remove_below(path)
        data = self.files.pop(path, None)
        if data is not None:
            self._total -= len(data)
        self.symlinks.pop(path, None)
        self._dir_cache.clear()

    def discard(self, path: str) -> None:
        """Forget ``path`` itself (replaced by a directory or an unwanted file in a layer)."""
        data = self.files.pop(path, None)
        if data is not None:
            self._total -= len(data)
        if self.symlinks.pop(path, None) is not None:
            self._dir_cache.clear()

    def remove_below(self, directory: str) -> None:
        """Remove everything strictly below ``directory`` (an opaque whiteout)."""
        prefix = directory + "/" if directory else ""
        for key in [k for k in self.files if k.startswith(prefix)]:
            self._total -= len(self.files.pop(key))
        for key in [k for k in self.symlinks if k.startswith(prefix)]:
            del self.symlinks[key]
        self._dir_cache.clear()

    # -- reading -----------------------------------------------------------------------------
    def paths(self) -> list[str]:
        return sorted(self.files)

    def canonical(self, path: str) -> str:
        path = normalize_path(path)
        parent, _, base = path.rpartition("/")
        resolved_parent = self._resolve_dir(parent) if parent else ""
        full = f"{resolved_parent}/{base}" if resolved_parent else base
        if full in self.symlinks:
            return self._resolve(full, follow_last=True)
        return full

    def read(self, path: str) -> bytes | None:
        try:
            return self.files.get(self.canonical(path))
        except InputError:
            return None

    def _resolve_dir(self, directory: str) -> str:
        cached = self._dir_cache.get(directory)
        if cached is None:
            cached = self._resolve(directory, follow_last=True)
            self._dir_cache[directory] = cached
        return cached

    def _resolve(self, path: str, *, follow_last: bool) -> str:
        hops = 0
        pending = [p for p in path.split("/") if p]
        done: list[str] = []
        while pending:
            part = pending.pop(0)
            if part == ".":
                continue
            if part == "..":
                if done:
                    done.pop()
                continue
            candidate = "/".join([*done, part])
            target = self.symlinks.get(candidate)
            if target is not None and (pending or follow_last):
                hops += 1
                if hops > _MAX_LINK_HOPS:
                    raise InputError(f"too many levels of symbolic links resolving /{path}")
                if target.startswith("/"):
                    done = []
                pending = [p for p in target.split("/") if p] + pending
                continue
            done.append(part)
        return "/".join(done)


def read_directory(root: Path, select: Selection | Callable[[str], bool]) -> MemoryFileView:
    """Walk a real directory without following symlinks; keep wanted files and all symlinks."""
    selection = as_selection(select)
    wants = selection.wants
    if not root.is_dir():
        raise InputError(f"{root}: not a directory; use dir:PATH with an unpacked root filesystem")
    view = MemoryFileView()
    for rel, entry in _walk(root, ""):
        st = entry.stat(follow_symlinks=False)
        if stat.S_ISLNK(st.st_mode):
            view.add_symlink(rel, os.readlink(entry.path))
        elif stat.S_ISREG(st.st_mode) and wants(rel):
            if st.st_size > MAX_FILE_BYTES:
                raise InputError(f"{entry.path}: too large for a package metadata file")
            # O_NOFOLLOW: the entry may have been swapped for a symlink since the scan.
            fd = os.open(entry.path, os.O_RDONLY | os.O_NOFOLLOW)
            with os.fdopen(fd, "rb") as fh:
                view.add_file(rel, selection.reduce(rel, fh.read(MAX_FILE_BYTES + 1)))
    return view


def _walk(root: Path, rel: str) -> Iterator[tuple[str, os.DirEntry[str]]]:
    try:
        entries = sorted(os.scandir(root / rel if rel else root), key=lambda e: e.name)
    except PermissionError:
        return
    for entry in entries:
        child = f"{rel}/{entry.name}" if rel else entry.name
        yield child, entry
        if entry.is_dir(follow_symlinks=False):
            yield from _walk(root, child)
