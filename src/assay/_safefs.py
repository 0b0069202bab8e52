"""Opening files named by outside input: regular files only, never blocking, no symlink tricks.

* :func:`open_regular` opens a file for reading only when it is a regular file: ``stat`` first
  (so a device is never opened), then ``open`` with ``O_NONBLOCK`` (a FIFO swapped in between
  cannot hang the open) and ``fstat`` to check that the same regular file was opened.
  ``follow=False`` adds ``O_NOFOLLOW``: a final symlink is refused.
* :func:`open_beneath` opens ``base/rel`` walking each directory with ``O_NOFOLLOW``, so no
  symlinked component (or ``..``) can lead outside ``base``.
* :func:`refuse_symlinked_dirs` is for writers: each directory they are about to write into
  must be a real directory, not a symlink to somewhere else.

Every refusal is an :class:`~assay.errors.InputError` naming the path and what it is.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

from assay.errors import InputError

__all__ = ["file_kind", "open_beneath", "open_regular", "read_regular", "refuse_symlinked_dirs"]

_BASE = os.O_RDONLY | os.O_CLOEXEC


def file_kind(mode: int) -> str:
    """A human name for a file type (``a FIFO``, ``a character device`` …)."""
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISLNK, "a symbolic link"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def open_regular(
    path: str | Path,
    what: str | None = None,
    *,
    follow: bool = True,
    dir_fd: int | None = None,
    max_size: int | None = None,
) -> BinaryIO:
    """Open ``path`` for reading if it is a regular file (at most ``max_size`` bytes).

    ``FileNotFoundError`` propagates (callers say what is missing); other refusals raise
    InputError naming ``what`` (default: the path).
    """
    name = what or str(path)
    try:
        st = os.stat(path, dir_fd=dir_fd, follow_symlinks=follow)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise InputError(f"{name}: cannot read it ({exc.strerror or exc})") from None
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"{name} is {file_kind(st.st_mode)}, not a regular file; refusing it")
    if max_size is not None and st.st_size > max_size:
        raise InputError(
            f"{name} is {st.st_size} bytes, over the {max_size}-byte limit; refusing it"
        )
    flags = _BASE | os.O_NONBLOCK | (0 if follow else os.O_NOFOLLOW)
    try:
        fd = os.open(path, flags, dir_fd=dir_fd)
    except FileNotFoundError:
        raise
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENXIO):
            raise InputError(f"{name} changed while being opened; refusing it") from None
        raise InputError(f"{name}: cannot read it ({exc.strerror or exc})") from None
    try:
        now = os.fstat(fd)
        if not stat.S_ISREG(now.st_mode) or (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino):
            raise InputError(f"{name} changed while being opened; refusing it")
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular(path: str | Path, max_size: int, what: str | None = None) -> bytes:
    """The content of the regular file ``path``; InputError over ``max_size`` bytes."""
    name = what or str(path)
    with open_regular(path, name, max_size=max_size) as fh:
        data = fh.read(max_size + 1)
    if len(data) > max_size:
        raise InputError(f"{name} is over the {max_size}-byte limit; refusing it")
    return data


def open_beneath(base: Path, rel: str, what: str, max_size: int | None = None) -> BinaryIO:
    """Open the regular file ``base/rel`` without following any symlink below ``base``."""
    parts = [p for p in rel.split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        raise InputError(f"{what}: {rel!r} is not a relative path without '..'")
    fd = os.open(base, _BASE | os.O_DIRECTORY)
    try:
        for part in parts[:-1]:
            try:
                nxt = os.open(part, _BASE | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise InputError(
                        f"{what}: {part!r} in {rel!r} is not a directory (a symlink?); refusing it"
                    ) from None
                raise
            os.close(fd)
            fd = nxt
        return open_regular(parts[-1], what, follow=False, dir_fd=fd, max_size=max_size)
    finally:
        os.close(fd)


def refuse_symlinked_dirs(paths: Iterable[Path], what: str) -> None:
    """InputError when one of ``paths`` exists and is a symlink or not a directory."""
    for path in paths:
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            continue
        if not stat.S_ISDIR(st.st_mode):
            raise InputError(
                f"{what}: {path} is {file_kind(st.st_mode)}, not a directory; refusing to write "
                "through it"
            )
