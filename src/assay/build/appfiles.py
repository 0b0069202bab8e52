"""Files from the spec's directory copied into the image: ``app:`` and ``paths[].source``.

Everything here reads outside input (a checkout someone else may control), so:

* the source must resolve inside the spec's directory (no ``..`` out of it, no symlink pointing
  out of it): :func:`confined_source`;
* a tree is walked with ``O_NOFOLLOW`` directory file descriptors, so nothing swapped in while it
  is read can lead elsewhere; inside the tree only regular files and directories are taken — a
  symlink, FIFO, socket or device is refused, naming it;
* sizes are bounded (one file, the whole tree, the number of entries, the depth) and names must
  be UTF-8 without control characters.

The result is deterministic: entries sorted by path, mtimes SOURCE_DATE_EPOCH, owners from the
spec (root by default), modes 0755 for directories and executables (any ``x`` bit in the source)
and 0644 for other files. Nothing of the host's owners, umask or timestamps gets in.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from assay._safefs import file_kind, open_regular
from assay.errors import InputError, UsageError
from assay.oci.entry import Entry, EntryType

if TYPE_CHECKING:  # pragma: no cover
    from assay.build.spec import AppFiles

__all__ = [
    "MAX_TREE_BYTES",
    "MAX_TREE_DEPTH",
    "MAX_TREE_ENTRIES",
    "app_entries",
    "confined_source",
    "read_tree",
]

#: The most one file of a copied tree may hold (as for ``paths[].source``).
MAX_FILE_BYTES = 128 << 20
#: The most a copied tree may hold in all, and how many entries and levels it may have.
MAX_TREE_BYTES = 1 << 30
MAX_TREE_ENTRIES = 100_000
MAX_TREE_DEPTH = 64

_DIR_FLAGS = os.O_RDONLY | os.O_CLOEXEC | os.O_DIRECTORY | os.O_NOFOLLOW


def confined_source(spec_dir: Path, source: str, what: str) -> str:
    """``source`` (relative to ``spec_dir`` or absolute inside it) as a path relative to the
    resolved spec directory; UsageError when it is empty or resolves outside it."""
    base = spec_dir.resolve()
    if not source or "\0" in source:
        raise UsageError(f"{what}: source must name something beside the spec")
    raw = Path(source)
    try:
        target = (raw if raw.is_absolute() else base / raw).resolve()
    except (OSError, RuntimeError) as exc:
        raise UsageError(f"{what}: cannot resolve source {source!r} ({exc})") from None
    if not target.is_relative_to(base) or target == base:
        raise UsageError(
            f"{what}: source {source!r} resolves to {target}, outside the spec's directory "
            f"{base}; copy it next to the spec"
        )
    return target.relative_to(base).as_posix()


def _check_name(name: str, where: str) -> None:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise UsageError(f"{where}: a file name is not valid UTF-8; rename it") from None
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        raise UsageError(f"{where}: {name!r} has a control character in its name; rename it")


class _Walk:
    def __init__(self, what: str, target: str, uid: int, gid: int, mtime: int) -> None:
        self.what = what
        self.target = target.strip("/")
        self.uid = uid
        self.gid = gid
        self.mtime = mtime
        self.total = 0
        self.out: list[Entry] = []

    def add(self, entry: Entry) -> None:
        if len(self.out) >= MAX_TREE_ENTRIES:
            raise UsageError(f"{self.what}: more than {MAX_TREE_ENTRIES} entries; refusing it")
        self.out.append(entry)

    def walk(self, fd: int, rel: str, depth: int) -> None:
        if depth > MAX_TREE_DEPTH:
            raise UsageError(f"{self.what}: {rel} is nested over {MAX_TREE_DEPTH} levels deep")
        for name in sorted(os.listdir(fd)):
            shown = f"{rel}/{name}" if rel else name
            _check_name(name, f"{self.what}: {rel or '.'}")
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            dest = f"{self.target}/{shown}"
            if stat.S_ISDIR(st.st_mode):
                self.add(Entry(dest, EntryType.DIR, 0o755, self.uid, self.gid, self.mtime))
                try:
                    sub = os.open(name, _DIR_FLAGS, dir_fd=fd)
                except OSError as exc:
                    if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                        raise UsageError(
                            f"{self.what}: {shown} changed while being read; refusing it"
                        ) from None
                    raise
                try:
                    self.walk(sub, shown, depth + 1)
                finally:
                    os.close(sub)
            elif stat.S_ISREG(st.st_mode):
                self.add(self._file(fd, name, shown, dest))
            else:
                raise UsageError(
                    f"{self.what}: {shown} is {file_kind(st.st_mode)}; only regular files and "
                    "directories are copied — remove it or copy its target instead"
                )

    def _file(self, fd: int, name: str, shown: str, dest: str) -> Entry:
        limit = min(MAX_FILE_BYTES, MAX_TREE_BYTES - self.total)
        try:
            with open_regular(name, f"{self.what}: {shown}", follow=False, dir_fd=fd) as fh:
                mode = os.fstat(fh.fileno()).st_mode
                data = fh.read(limit + 1)
        except InputError as exc:
            raise UsageError(str(exc)) from None
        if len(data) > limit:
            which = "file" if limit == MAX_FILE_BYTES else "tree"
            raise UsageError(
                f"{self.what}: {shown} goes over the {limit}-byte {which} limit; refusing it"
            )
        self.total += len(data)
        perm = 0o755 if mode & 0o111 else 0o644
        return Entry(dest, EntryType.FILE, perm, self.uid, self.gid, self.mtime, data)


def read_tree(
    spec_dir: Path,
    source: str,
    target: str,
    *,
    what: str,
    uid: int = 0,
    gid: int = 0,
    mtime: int = 0,
    top_mode: int = 0o755,
) -> list[Entry]:
    """The directory ``source`` beside the spec as entries under ``target`` (sorted by path;
    the first is ``target`` itself, mode ``top_mode``). UsageError naming the problem otherwise.
    """
    rel = confined_source(spec_dir, source, what)
    base = spec_dir.resolve()
    walk = _Walk(what, target, uid, gid, mtime)
    fd = os.open(base, os.O_RDONLY | os.O_CLOEXEC | os.O_DIRECTORY)
    try:
        for part in rel.split("/"):
            try:
                nxt = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                raise UsageError(f"{what}: source {source!r} does not exist (in {base})") from None
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise UsageError(
                        f"{what}: source {source!r} is not a directory (or went through a "
                        "symlink while being read); refusing it"
                    ) from None
                raise UsageError(f"{what}: cannot read {source!r} ({exc.strerror})") from None
            os.close(fd)
            fd = nxt
        walk.add(Entry(walk.target, EntryType.DIR, top_mode, uid, gid, mtime))
        walk.walk(fd, "", 1)
    except OSError as exc:
        raise UsageError(f"{what}: cannot read {source!r} ({exc.strerror or exc})") from None
    finally:
        os.close(fd)
    return walk.out


def app_entries(
    app: AppFiles, spec_dir: Path, mtime: int, lower: Mapping[str, Entry] | None = None
) -> list[Entry]:
    """The entries of the ``app:`` layer: the tree under its target, preceded by the target's
    parent directories — as the lower layers have them (``lower``, path -> entry) so the layer
    changes none of their metadata, else root-owned 0755."""
    lower = lower or {}
    target = app.target.strip("/")
    parts = target.split("/")
    parents = []
    for i in range(1, len(parts)):
        path = "/".join(parts[:i])
        have = lower.get(path)
        if have is not None and have.type is not EntryType.DIR:
            raise UsageError(
                f"app: target {app.target} needs /{path} to be a directory, but the image has a "
                f"{have.type.value} there; choose another target"
            )
        parents.append(have or Entry(path, EntryType.DIR, 0o755, mtime=mtime))
    tree = read_tree(
        spec_dir, app.source, app.target, what="app", uid=app.uid, gid=app.gid, mtime=mtime
    )
    top = lower.get(target)
    if top is not None and top.type is not EntryType.DIR:
        raise UsageError(
            f"app: target {app.target} is a {top.type.value} in the image; choose another target"
        )
    if top is not None:  # keep what paths: (or a package) made of it
        tree[0] = top
    return [*parents, *tree]
