"""A filesystem entry as it goes into (or comes out of) an image layer.

The build produces ``Entry`` values from .deb data archives and generated files; the layer
writer (``assay.oci.layer``) serialises them deterministically; catalogers and the rebuild diff
read them back from layers.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

__all__ = ["Entry", "EntryType"]


class EntryType(str, Enum):
    FILE = "file"
    DIR = "dir"
    SYMLINK = "symlink"
    HARDLINK = "hardlink"  # ``link`` names the earlier entry's path


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

    @property
    def size(self) -> int:
        return len(self.data) if self.type is EntryType.FILE else 0
