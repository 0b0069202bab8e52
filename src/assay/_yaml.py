"""The one loader for YAML documents (image specs, policies): safe and bounded.

Beyond PyYAML's ``SafeLoader`` (no object construction), every document is held to:

* **size** — at most ``max_size`` bytes;
* **nesting** — collections nested at most :data:`MAX_DEPTH` deep (a 100,000-deep ``[[[…`` is
  refused before it can exhaust the stack);
* **aliases** — at most :data:`MAX_ALIASES` alias references, and the document as it would be
  expanded (every alias counted as a copy of what it names) at most :data:`MAX_NODES` nodes, so a
  "billion laughs" document is refused before anything walks it; nodes are also counted while
  composing, so a document with millions of nodes written out is refused before it is built;
* **integers** — at most :data:`MAX_INT_DIGITS` digits;
* **duplicate keys** — refused (YAML keeps the last one silently, which would quietly drop, say,
  a first ``packages:`` list).

Every failure is an :class:`~assay.errors.InputError` whose message names the document.
"""

from __future__ import annotations

from typing import Any

import yaml

from assay.errors import InputError

__all__ = [
    "MAX_ALIASES",
    "MAX_DEPTH",
    "MAX_INT_DIGITS",
    "MAX_NODES",
    "load_yaml",
    "load_yaml_all",
]

MAX_DEPTH = 64
"""Deepest nesting of mappings and sequences accepted."""

MAX_ALIASES = 100
"""Alias references (``*name``) a document may hold."""

MAX_NODES = 100_000
"""Nodes a document may have once every alias is counted as a copy of its anchor's node."""

MAX_INT_DIGITS = 40
"""Most digits an integer may have."""


class _Refused(yaml.YAMLError):
    pass


class _BoundedLoader(yaml.SafeLoader):
    """A SafeLoader that counts depth and aliases while composing the node graph."""

    def __init__(
        self, stream: str | bytes, max_aliases: int = MAX_ALIASES, max_nodes: int = MAX_NODES
    ) -> None:
        super().__init__(stream)
        self._depth = 0
        self._aliases = 0
        self._max_aliases = max_aliases
        self._nodes = 0
        self._max_nodes = max_nodes

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._max_aliases == 0:
                raise _Refused("YAML aliases (*name) are not accepted in this kind of document")
            if self._aliases > self._max_aliases:
                raise _Refused(f"more than {MAX_ALIASES} alias references (an alias bomb?)")
            return super().compose_node(parent, index)
        # Nodes as written are a lower bound of the expanded count: refusing here, while
        # composing, keeps a 10 MB ``[[],[],…]`` from building millions of nodes (and minutes of
        # pure-Python parsing) before the expanded size is checked.
        self._nodes += 1
        if self._nodes > self._max_nodes:
            raise _Refused(f"more than {self._max_nodes} nodes (a node bomb?)")
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise _Refused(f"collections nested more than {MAX_DEPTH} deep")
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _construct_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
    text = str(node.value)
    digits = sum(ch.isdigit() for ch in text)
    if digits > MAX_INT_DIGITS:
        raise _Refused(f"an integer of {digits} digits (line {node.start_mark.line + 1})")
    return yaml.SafeLoader.construct_yaml_int(loader, node)


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> Any:
    seen: set[Any] = set()
    for key_node, _value in node.value:
        key = loader.construct_object(key_node, deep=True)
        if isinstance(key, list | dict):
            raise _Refused(
                f"a mapping key that is a collection (line {key_node.start_mark.line + 1})"
            )
        if key in seen:
            line = key_node.start_mark.line + 1
            raise _Refused(f"the key {str(key)[:60]!r} appears twice in one mapping (line {line})")
        seen.add(key)
    return loader.construct_mapping(node, deep=True)


_BoundedLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)
_BoundedLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _expanded_size(root: yaml.Node, limit: int = MAX_NODES) -> int:
    """Nodes in the document with every alias expanded, computed without expanding it (once
    past ``limit``, some number over it)."""
    size: dict[int, int] = {}
    # Post-order over the node graph (aliases are shared node objects; the graph is acyclic
    # except for recursive anchors, which the depth bound and the constructor refuse).
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    on_path: set[int] = set()
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            on_path.discard(key)
            total = 1
            for child in _children(node):
                total += size[id(child)]
                if total > limit:
                    return total
            size[key] = total
            continue
        if key in size:
            continue
        if key in on_path:
            raise _Refused("a recursive alias (an anchor that contains itself)")
        on_path.add(key)
        stack.append((node, True))
        stack.extend((c, False) for c in _children(node) if id(c) not in size)
    return size[id(root)]


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def load_yaml(text: str | bytes, *, what: str, max_size: int = 1 << 20) -> Any:
    """Parse one YAML document from outside under the limits in the module docstring."""
    docs = _load(
        text,
        what=what,
        max_size=max_size,
        single=True,
        max_nodes=MAX_NODES,
        max_aliases=MAX_ALIASES,
    )
    return docs[0] if docs else None


def load_yaml_all(
    text: str | bytes,
    *,
    what: str,
    max_size: int = 1 << 20,
    max_nodes: int = MAX_NODES,
    aliases: bool = True,
) -> list[Any]:
    """Parse every document of a ``---``-separated YAML stream from outside.

    The limits hold for the stream as a whole: ``max_size`` bytes, :data:`MAX_ALIASES` alias
    references and ``max_nodes`` expanded nodes over all documents together, and
    :data:`MAX_DEPTH` nesting in each. Empty documents are ``None`` in the list. With
    ``aliases=False`` any alias is refused.
    """
    return _load(
        text,
        what=what,
        max_size=max_size,
        single=False,
        max_nodes=max_nodes,
        max_aliases=MAX_ALIASES if aliases else 0,
    )


def _load(
    text: str | bytes,
    *,
    what: str,
    max_size: int,
    single: bool,
    max_nodes: int,
    max_aliases: int,
) -> list[Any]:
    if len(text) > max_size:
        raise InputError(
            f"{what}: {len(text)} bytes, larger than {max_size >> 10} KiB; refusing it"
        )
    try:
        # decodes the stream; refuses control characters
        loader = _BoundedLoader(text, max_aliases, max_nodes)
    except yaml.YAMLError as exc:
        detail = " ".join(str(exc).split())[:200]
        raise InputError(f"{what}: not valid YAML: {detail}") from None
    try:
        roots: list[yaml.Node | None] = []
        if single:
            roots.append(loader.get_single_node())
        else:
            while loader.check_node():
                roots.append(loader.get_node())
        nodes = 0
        for root in roots:
            if root is not None:
                nodes += _expanded_size(root, max_nodes - nodes)
            if nodes > max_nodes:
                raise _Refused(
                    f"more than {max_nodes} nodes once aliases are expanded (an alias bomb?)"
                )
        return [None if root is None else loader.construct_document(root) for root in roots]
    except _Refused as exc:
        raise InputError(f"{what}: {exc}; refusing it") from None
    except yaml.YAMLError as exc:
        detail = " ".join(str(exc).split())[:200]
        raise InputError(f"{what}: not valid YAML: {detail}") from None
    except RecursionError:
        raise InputError(f"{what}: nested too deeply; refusing it") from None
    finally:
        loader.dispose()
