"""Read image layers into a ``MemoryFileView`` through the one archive reader (``assay.oci``).

Every layer streams through ``assay.oci.layer.read_layer`` (gzip, zstd or plain tar; the
compressed digest and the config's diff_id verified at the end of the stream) and the layers
are merged by ``assay.oci.layer.apply_layers`` exactly as a runtime applies them: OCI
whiteouts, symlinked parent directories resolved inside the root, hardlinks to files of the
same layer. Only the files catalogers want keep their bytes, within one budget checked before
anything is read (``MAX_FILE_BYTES`` per file, ``MAX_TOTAL_BYTES`` in all).

A wanted file can hide behind an unwanted name: a hardlink ``var/lib/dpkg/status.d/x`` to
``opt/y``, or ``opt/d/status`` seen as ``var/lib/dpkg/status`` through a symlink made later.
After the merge every file without bytes is checked under each name it has in the final tree
(through directory symlinks); when one is wanted, the layers holding those members are read a
second time for just them. Ordinary images never need that second pass.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace

from assay.oci.digest import Digest, Readable
from assay.oci.entry import Entry, EntryType
from assay.oci.layer import DataBudget, apply_layers, read_layer
from assay.sbom.fs import (
    MAX_FILE_BYTES,
    MAX_TOTAL_BYTES,
    MemoryFileView,
    Selection,
    as_selection,
)

__all__ = ["LayerInput", "view_of_layers"]

_MAX_ALIAS_DEPTH = 8


@dataclass(frozen=True)
class LayerInput:
    """One layer to read: how to open its blob, and what to verify it against."""

    open: Callable[[], AbstractContextManager[Readable]]
    media_type: str = ""
    diff_id: Digest | None = None
    what: str = "layer"


def _entries(
    layer: LayerInput, wants: Callable[[str], bool], budget: DataBudget, selection: Selection
) -> Iterator[Entry]:
    for e in read_layer_once(layer, wants, budget):
        if e.type is EntryType.FILE and e.content_size is None and e.data:
            e = replace(e, data=selection.reduce(e.path, e.data))
        yield e


def _symlink_aliases(view: dict[str, Entry]) -> dict[str, list[str]]:
    """Resolved target -> the symlinks that lead to it."""
    rev: dict[str, list[str]] = {}
    for path, e in view.items():
        if e.type is not EntryType.SYMLINK:
            continue
        parts = [] if e.link.startswith("/") else path.split("/")[:-1]
        for c in e.link.split("/"):
            if c in ("", "."):
                continue
            if c == "..":
                if parts:
                    parts.pop()
                continue
            parts.append(c)
        rev.setdefault("/".join(parts), []).append(path)
    return rev


def _wanted_name(
    path: str, rev: dict[str, list[str]], wants: Callable[[str], bool], depth: int = 0
) -> str | None:
    """``path`` or a name it has through symlinks that ``wants`` accepts, else None."""
    if wants(path):
        return path
    if depth >= _MAX_ALIAS_DEPTH:
        return None
    end = len(path)
    while end > 0:
        links = rev.get(path[:end])
        if links:
            rest = path[end:]
            for link in links:
                found = _wanted_name(link + rest, rev, wants, depth + 1)
                if found is not None:
                    return found
        end = path.rfind("/", 0, end)
    return None


def view_of_layers(
    layers: Sequence[LayerInput], select: Selection | Callable[[str], bool]
) -> MemoryFileView:
    """Merge ``layers`` (lowest first) and keep the wanted files and every symlink."""
    selection = as_selection(select)
    wants = selection.wants
    budget = DataBudget(MAX_TOTAL_BYTES, MAX_FILE_BYTES)
    origins: dict[str, tuple[int, str]] = {}
    merged = apply_layers(
        (_entries(layer, wants, budget, selection) for layer in layers), origins=origins
    )
    # Files without bytes that are wanted under another name (hardlink, symlinked directory).
    rev = _symlink_aliases(merged)
    needed: dict[int, dict[str, list[tuple[str, str]]]] = {}
    for path, e in merged.items():
        if e.type not in (EntryType.FILE, EntryType.HARDLINK) or e.content_size is None:
            continue
        name = _wanted_name(path, rev, wants)
        if name is not None and path in origins:
            index, member = origins[path]
            needed.setdefault(index, {}).setdefault(member, []).append((path, name))
    for index, members in sorted(needed.items()):
        layer = layers[index]
        for e in read_layer_once(layer, members.__contains__, budget):
            for path, name in members.get(e.path, ()):
                if e.type is EntryType.FILE and e.content_size is None:
                    merged[path] = replace(
                        merged[path], data=selection.reduce(name, e.data), content_size=None
                    )
    view = MemoryFileView()
    for path, e in merged.items():
        if e.type is EntryType.SYMLINK:
            view.add_symlink(path, e.link)
        elif e.type in (EntryType.FILE, EntryType.HARDLINK) and e.content_size is None:
            view.add_file(path, e.data)
    return view


def read_layer_once(
    layer: LayerInput, wants: Callable[[str], bool], budget: DataBudget
) -> Iterator[Entry]:
    """The entries of one layer, keeping the bytes of ``wants`` members (a second pass)."""
    with layer.open() as stream:
        yield from read_layer(
            stream,
            media_type=layer.media_type,
            diff_id=layer.diff_id,
            what=layer.what,
            want_data=wants,
            budget=budget,
        )
