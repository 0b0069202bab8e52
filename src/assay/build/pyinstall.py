"""Locked wheels into an image: fetch into the cache, verify, install as one layer's entries.

Wheels are cached like ``.deb`` files, content-addressed by SHA-256
(``<cache>/wheels/sha256/<hex>.whl``, :class:`assay.debian.fetch.DebCache`): index wheels are
downloaded with size and hash checked before the file is kept; wheelhouse wheels are copied in
with the same checks. Before installation each wheel's bytes are hashed again against the lock
and the requirements file (:func:`assay.build.wheels.verified_wheel`).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from assay.build.lock import LockedPython, LockedWheel
from assay.build.pylock import site_layout
from assay.build.wheels import (
    InstalledFile,
    PinnedRequirement,
    install_wheel,
    layer_entries,
    verified_wheel,
)
from assay.errors import UsageError, VerificationError
from assay.oci.entry import Entry

__all__ = ["InstalledWheel", "fetch_wheels", "wheel_layer"]


@dataclass(frozen=True)
class InstalledWheel:
    """A wheel as installed into one architecture's image: its pin and its files."""

    wheel: LockedWheel
    files: tuple[InstalledFile, ...]


def fetch_wheels(
    locked: LockedPython,
    archs: Sequence[str],
    cache_dir: Path | None,
    wheelhouse: Path | None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Path]:
    """``{sha256: cached path}`` for every wheel of ``archs``, each checked by size and hash."""
    from assay.debian.fetch import DebCache

    wanted = {w.sha256: w for a in archs for w in locked.archs[a].wheels}
    out: dict[str, Path] = {}
    with DebCache(cache_dir, kind="wheels", suffix=".whl") as cache:
        remote = [(w.url, w.sha256, w.size) for w in wanted.values() if w.origin == "index"]
        out.update(cache.fetch_all(remote, progress=progress))
        for w in wanted.values():
            if w.origin != "find-links":
                continue
            if cache.has(w.sha256, w.size, full_verify=True):
                out[w.sha256] = cache.path_for(w.sha256)
                continue
            if wheelhouse is None:
                raise UsageError(
                    f"{w.filename} was locked from a find-links wheelhouse and is not cached; "
                    "set python.find-links in the spec or pass --find-links DIR"
                )
            source = wheelhouse / w.filename
            if source.is_symlink() or not source.is_file():
                raise UsageError(
                    f"{w.filename} is not a regular file in the wheelhouse {wheelhouse}; "
                    "put the locked wheel there (or run 'assay lock' again)"
                )
            out[w.sha256] = cache.add_file(source, w.sha256, w.size)
    return out


def wheel_layer(
    locked: LockedPython,
    arch: str,
    paths: dict[str, Path],
    requirements: Sequence[PinnedRequirement],
    mtime: int,
) -> tuple[list[Entry], tuple[InstalledWheel, ...]]:
    """The layer entries (files and their directories, mtime ``mtime``, root-owned) of the
    wheels locked for ``arch``, and what each wheel installed. Every wheel is re-hashed against
    the lock and must be a pinned requirement's (VerificationError otherwise)."""
    major, minor = (int(x) for x in locked.version.split("."))
    layout = site_layout((major, minor))
    by_name: dict[str, PinnedRequirement] = {str(r.name): r for r in requirements}
    installed: list[InstalledWheel] = []
    for w in locked.archs[arch].wheels:
        req = by_name.get(w.name)
        if req is None:
            raise VerificationError(f"{arch}: wheel {w.filename} is not a pinned requirement")
        data = verified_wheel(paths[w.sha256], req)
        if hashlib.sha256(data).hexdigest() != w.sha256 or len(data) != w.size:
            raise VerificationError(
                f"{w.filename}: the cached file is not the locked one (sha256 {w.sha256}); "
                "remove it from the cache and build again"
            )
        files = install_wheel(data, req, wheel=w.filename, **layout)
        installed.append(InstalledWheel(w, files))
    entries = layer_entries((i.wheel.name, i.files) for i in installed)
    return [dataclasses.replace(e, mtime=mtime) for e in entries], tuple(installed)
