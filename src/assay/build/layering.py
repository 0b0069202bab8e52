"""Split an assembled rootfs into layers.

``none``: one layer with everything (the default; the smallest image).
``package`` with a budget N: the N-1 packages that contribute the most bytes each get a layer of
their own (so images that share e.g. libc6 or libpython share that layer's digest), and
everything else — the remaining packages and all generated files — goes into the last layer.

Every layer carries the directories its files live in, so each layer unpacks on its own; a
hardlink always travels with the file it links to.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from assay.oci.entry import Entry, EntryType

__all__ = ["LayerPlan", "plan_layers"]


@dataclass(frozen=True)
class LayerPlan:
    name: str  # the package a layer is for, or "" for the shared remainder layer
    entries: tuple[Entry, ...]


def _parents(path: str) -> list[str]:
    parts = path.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]


def plan_layers(entries: Sequence[Entry], strategy: str, budget: int) -> list[LayerPlan]:
    """Group ``entries`` (one per path, as assembled) into layers."""
    if strategy == "none" or budget <= 1:
        return [LayerPlan("", tuple(entries))]
    sizes: dict[str, int] = defaultdict(int)
    for e in entries:
        if e.owner and e.type is EntryType.FILE:
            sizes[e.owner] += e.size
    ranked = sorted(sizes, key=lambda p: (-sizes[p], p))[: budget - 1]
    own = set(ranked)
    by_path = {e.path: e for e in entries}
    home: dict[str, str] = {}
    for e in entries:
        if e.type is EntryType.DIR:
            continue
        home[e.path] = e.owner if e.owner in own else ""
    for e in entries:  # a hardlink lives where its target lives
        if e.type is EntryType.HARDLINK and e.link in home:
            home[e.path] = home[e.link]
    groups: dict[str, dict[str, Entry]] = {name: {} for name in [*sorted(own), ""]}
    for e in entries:
        if e.type is EntryType.DIR:
            continue
        group = groups[home[e.path]]
        group[e.path] = e
        for parent in _parents(e.path):
            if parent in by_path and parent not in group:
                group[parent] = by_path[parent]
    # Directories that hold nothing (empty dirs like /tmp, homes) go to the remainder layer.
    placed_dirs = {p for g in groups.values() for p in g}
    for e in entries:
        if e.type is EntryType.DIR and e.path not in placed_dirs:
            groups[""][e.path] = e
            for parent in _parents(e.path):
                if parent in by_path:
                    groups[""].setdefault(parent, by_path[parent])
    return [LayerPlan(name, tuple(group.values())) for name, group in groups.items() if group]
