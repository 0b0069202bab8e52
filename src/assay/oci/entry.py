"""A filesystem entry as it goes into (or comes out of) an image layer.

The build produces ``Entry`` values from .deb data archives and generated files; the layer
writer (``assay.oci.layer``) serialises them deterministically; catalogers and the rebuild diff
read them back from layers.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

__all__ = ["Entry", "EntryType"]


class EntryType(str, Enum):  # noqa: UP042 - str() of members is relied on
    FILE = "file"
    DIR = "dir"
    SYMLINK = "symlink"
    HARDLINK = "hardlink"  # ``link`` names the earlier entry's path
    # Only produced by the layer reader (``assay.oci.layer.read_layer``):
    WHITEOUT = "whiteout"  # ``path`` was deleted by this layer (a ``.wh.NAME`` file)
    OPAQUE = "opaque"  # directory ``path`` hides everything below it in lower layers
    CHAR = "char"  # character device (``devmajor``/``devminor``); never written by assay
    BLOCK = "block"  # block device; never written by assay
    FIFO = "fifo"  # named pipe; never written by assay


@dataclass(frozen=True)
class Entry:
    """One path in a layer.

    ``path`` is relative to the root, without leading ``/`` or ``./``, no ``..`` components,
    no trailing slash (``usr/bin/python3``). ``data`` holds a regular file's content. ``mtime``
    is seconds since the epoch (the writer clamps it to SOURCE_DATE_EPOCH).
    """

    path: str
    type: EntryType
    mode: int  # permission bits only (0o7777 mask)
    uid: int = 0
    gid: int = 0
    mtime: int = 0
    data: bytes = b""
    link: str = ""  # symlink target (verbatim) or hardlink target path
    owner: str = ""  # package that contributed it, "" for generated files
    devmajor: int = 0
    devminor: int = 0
    # Set by the layer reader when it skipped a file's content (``data`` is then b""):
    content_size: int | None = None

    @property
    def size(self) -> int:
        if self.type is not EntryType.FILE:
            return 0
        return self.content_size if self.content_size is not None else len(self.data)
