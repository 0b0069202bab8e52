"""Assemble the image's root filesystem from locked ``.deb`` files, without dpkg.

Each package's ``data.tar`` is unpacked, in the order given (dependency order), into an
in-memory tree of :class:`~assay.oci.entry.Entry` values; then the files that maintainer scripts
would have produced are generated (see :mod:`assay.build.generated` and
:mod:`assay.build.ldcache`). The result is sorted for the layer writer.

Decisions, so the image is predictable:

* **No usrmerge.** Files stay where the packages put them (bookworm's libc6 ships
  ``lib/x86_64-linux-gnu/…`` and the ``lib64/ld-linux-x86-64.so.2`` symlink, base-files ships
  ``bin``, ``lib`` and ``sbin`` as real directories, python3.11-minimal ships
  ``usr/bin/python3.11``) — the layout distroless images have. Every path a package references
  therefore resolves as shipped.
* **Overwrites.** A later package replacing another's file is refused unless the content is
  identical (reported as a warning) or the later package declares ``Replaces:`` on the earlier
  one (dpkg's rule; reported too). A directory shipped where an earlier package put a symlink to
  a directory keeps the symlink, as dpkg does.
* **Writing through symlinks.** A relative symlink that stays inside the root is followed when a
  later path goes through it (as dpkg would). A path that goes through an absolute symlink or one
  whose target climbs out of the root is refused, naming the package, the path and the link:
  such a target means something else wherever the tree is extracted.
* **Excluded by default:** documentation, manual pages, info pages and translations
  (``usr/share/doc/**``, ``usr/share/man/**``, ``usr/share/info/**``, ``usr/share/locale/**``)
  except ``usr/share/doc/*/copyright``, which license evidence needs. Pass ``exclude=()`` to
  keep everything, or other glob patterns (``*`` within a path component, ``**`` across).
  Directories are never dropped by a pattern alone; empty directories left under an excluded
  pattern are pruned.
* **setuid/setgid** bits on non-directories are dropped unless the path matches ``setuid_allow``
  (glob patterns, with or without a leading ``/``); every drop is listed. Group-writable setgid
  directories from base-files (``var/local``, ``var/mail``) keep their bits.
* **No host files:** ``etc/hostname``, ``etc/resolv.conf`` and ``etc/machine-id`` are dropped if
  a package ships them (the runtime provides them), with a warning. Device nodes and FIFOs are
  refused while reading the package.
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

from assay.build import generated, ldcache
from assay.debian.debfile import DebFile, iter_data, open_deb, read_data_member
from assay.errors import InputError
from assay.oci.entry import Entry, EntryType

__all__ = [
    "DEFAULT_EXCLUDE",
    "DEFAULT_KEEP",
    "AssemblyResult",
    "assemble",
    "path_sort_key",
]

DEFAULT_EXCLUDE: tuple[str, ...] = (
    "usr/share/doc/**",
    "usr/share/man/**",
    "usr/share/info/**",
    "usr/share/locale/**",
)
DEFAULT_KEEP: tuple[str, ...] = ("usr/share/doc/*/copyright",)
HOST_FILES = frozenset({"etc/hostname", "etc/resolv.conf", "etc/machine-id"})
MAX_SYMLINK_HOPS = 40


class PackageLike(Protocol):
    """Anything with the package's name: a lock entry or a :class:`PackageRecord`."""

    @property
    def name(self) -> str: ...


@dataclass
class AssemblyResult:
    entries: list[Entry]  # sorted with path_sort_key: parents first, then directory order
    owners: dict[str, list[str]]  # package -> non-directory paths it installed (sorted)
    setuid_dropped: list[str]  # "/path (package)" whose setuid/setgid bits were removed
    warnings: list[str]
    debs: dict[str, DebFile] = field(default_factory=dict)  # package -> its control data
    excluded: dict[str, int] = field(default_factory=dict)  # package -> files left out


def path_sort_key(path: str) -> tuple[str, ...]:
    """Sort key for layer order: component-wise, so a directory's contents stay together."""
    return tuple(path.split("/"))


def _glob_re(pattern: str) -> re.Pattern[str]:
    pattern = pattern.strip("/")
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


def _matcher(patterns: Iterable[str]) -> Callable[[str], bool]:
    parts = [_glob_re(p).pattern for p in patterns]
    if not parts:
        return lambda path: False
    combined = re.compile("|".join(f"(?:{p})" for p in parts))
    return lambda path: combined.match(path) is not None


def _replaces(control: dict[str, str]) -> set[str]:
    names = set()
    for item in control.get("Replaces", "").split(","):
        name = re.split(r"[\s(:]", item.strip(), maxsplit=1)[0]
        if name:
            names.add(name)
    return names


class _Tree:
    """The in-memory root: path -> Entry, with symlink-aware placement."""

    def __init__(self) -> None:
        self.nodes: dict[str, Entry] = {}
        self.hardlink_data: dict[str, bytes] = {}
        self.file_owners: dict[str, list[str]] = {}

    def content(self, path: str) -> bytes | None:
        node = self.nodes.get(path)
        if node is None:
            return None
        if node.type is EntryType.FILE:
            return node.data
        if node.type is EntryType.HARDLINK:
            return self.hardlink_data.get(path)
        return None

    def resolve_dir(self, path: str, package: str, original: str) -> str:
        """Resolve ``path`` (a would-be parent directory) through symlinks inside the tree.

        Missing directories are not created here; the caller does. Raises when a symlink on the
        way is absolute or climbs out of the root.
        """
        node = self.nodes.get(path)
        if node is not None and node.type is EntryType.DIR:
            return path  # fast path: only DIR nodes are stored under a resolved parent chain
        hops = 0
        parts = [p for p in path.split("/") if p]
        resolved: list[str] = []
        while parts:
            comp = parts.pop(0)
            cand = "/".join([*resolved, comp])
            node = self.nodes.get(cand)
            if node is None or node.type is EntryType.DIR:
                resolved.append(comp)
                continue
            if node.type is not EntryType.SYMLINK:
                raise InputError(
                    f"package {package}: path {original} needs {cand} to be a directory, but "
                    f"{node.owner or 'assay'} installed a {node.type.value} there"
                )
            hops += 1
            if hops > MAX_SYMLINK_HOPS:
                raise InputError(f"package {package}: too many symlinks resolving {original}")
            target = node.link
            if target.startswith("/"):
                raise InputError(
                    f"package {package}: path {original} would be written through symlink "
                    f"/{cand} -> {target}, which points outside the package tree (absolute "
                    "target) — refusing the package"
                )
            joined = posixpath.normpath(posixpath.join("/".join(resolved), target))
            if joined == ".." or joined.startswith("../") or joined.startswith("/"):
                raise InputError(
                    f"package {package}: path {original} would be written through symlink "
                    f"/{cand} -> {target}, which points outside the image root — refusing "
                    "the package"
                )
            parts = [p for p in joined.split("/") if p not in ("", ".")] + parts
            resolved = []
        return "/".join(resolved)


def _is_setuid_candidate(e: Entry) -> bool:
    return e.type in (EntryType.FILE, EntryType.HARDLINK) and bool(e.mode & 0o6000)


def assemble(
    debs: Sequence[tuple[PackageLike, Path]],
    *,
    arch: str,
    accounts: generated.Accounts = generated.DEFAULT_ACCOUNTS,
    setuid_allow: Sequence[str] = (),
    exclude: Sequence[str] = DEFAULT_EXCLUDE,
    keep: Sequence[str] = DEFAULT_KEEP,
    extra_paths: Sequence[Entry] = (),
    release: generated.ReleaseLike | None = None,
    mtime: int = 0,
    progress: Callable[[int, int], None] | None = None,
    workers: int | None = None,
    unpack_cache: Path | None = None,
) -> AssemblyResult:
    """Unpack ``debs`` in order and add the generated files; see the module docstring.

    ``mtime`` is used for generated files (pass SOURCE_DATE_EPOCH); package files keep the
    mtimes from their archives (the layer writer clamps them). ``unpack_cache`` is a directory
    for decoded data.tar copies (see :func:`assay.debian.debfile.read_data_member`): a warm
    build then skips xz decoding, most of the unpacking cost.
    """
    excluded_match = _matcher(exclude)
    keep_match = _matcher(keep)
    allow_match = _matcher(setuid_allow)
    tree = _Tree()
    warnings: list[str] = []
    setuid_dropped: list[str] = []
    infos: dict[str, DebFile] = {}
    excluded_count: dict[str, int] = {}
    # deb path -> final path, per package, for md5sums and hardlinks
    placed: dict[str, dict[str, str]] = {}
    replaces: dict[str, set[str]] = {}

    controls: list[tuple[str, Path, DebFile]] = []
    for pkg, path in debs:
        info = open_deb(Path(path), package_hint=pkg.name)
        if info.package != pkg.name:
            raise InputError(
                f"{Path(path).name}: expected package {pkg.name} but the .deb contains "
                f"{info.package!r}; the cache or lock is inconsistent — re-fetch"
            )
        if info.architecture not in (arch, "all"):
            raise InputError(
                f"package {pkg.name}: architecture {info.architecture} does not match the "
                f"image architecture {arch}"
            )
        if info.package in infos:
            raise InputError(f"package {info.package} is listed twice")
        infos[info.package] = info
        controls.append((info.package, Path(path), info))

    total = len(controls)
    nworkers = workers or min(4, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=max(1, nworkers)) as pool:
        futures: list[Future[bytes]] = [
            pool.submit(read_data_member, p, package=name, deb=info, cache_dir=unpack_cache)
            for name, p, info in controls
        ]
        for idx, ((name, p, info), fut) in enumerate(zip(controls, futures, strict=True)):
            data = fut.result()
            futures[idx] = None  # type: ignore[call-overload]  # release memory early
            replaces[name] = _replaces(info.control)
            placed[name] = {}
            _unpack(
                tree,
                iter_data(p, package=name, deb=info, data=data),
                name,
                placed[name],
                replaces,
                excluded_match,
                keep_match,
                allow_match,
                setuid_dropped,
                warnings,
                excluded_count,
            )
            del data
            if progress is not None:
                progress(idx + 1, total)

    _prune_excluded_dirs(tree, excluded_match)
    _generate(tree, infos, placed, accounts, release, arch, mtime, warnings)
    for e in extra_paths:
        _put_generated(tree, e)
    entries = _finish(tree)
    owners: dict[str, list[str]] = {name: [] for name in infos}
    for fpath, fowners in tree.file_owners.items():
        if fpath in tree.nodes:
            for owner in fowners:
                owners.setdefault(owner, []).append(fpath)
    for paths in owners.values():
        paths.sort(key=path_sort_key)
    return AssemblyResult(
        entries=entries,
        owners=owners,
        setuid_dropped=setuid_dropped,
        warnings=warnings,
        debs=infos,
        excluded=excluded_count,
    )


def _unpack(
    tree: _Tree,
    entries: Iterable[Entry],
    package: str,
    placed: dict[str, str],
    replaces: dict[str, set[str]],
    excluded_match: Callable[[str], bool],
    keep_match: Callable[[str], bool],
    allow_match: Callable[[str], bool],
    setuid_dropped: list[str],
    warnings: list[str],
    excluded_count: dict[str, int],
) -> None:
    excluded_data: dict[str, bytes] = {}
    for e in entries:
        if e.type is not EntryType.DIR and excluded_match(e.path) and not keep_match(e.path):
            excluded_count[package] = excluded_count.get(package, 0) + 1
            if e.type is EntryType.FILE:
                excluded_data[e.path] = e.data
            elif e.type is EntryType.HARDLINK and e.link in excluded_data:
                excluded_data[e.path] = excluded_data[e.link]
            continue
        if e.path in HOST_FILES:
            warnings.append(f"{package}: dropped /{e.path} (host file; the runtime provides it)")
            continue
        parent, _, base = e.path.rpartition("/")
        real_parent = tree.resolve_dir(parent, package, e.path) if parent else ""
        _ensure_dirs(tree, real_parent, package, e.mtime)
        final = f"{real_parent}/{base}" if real_parent else base
        if final != e.path:
            warnings.append(f"{package}: /{e.path} placed at /{final} (through a symlink)")
        hl_data: bytes | None = None
        if e.type is EntryType.HARDLINK:
            target = placed.get(e.link)
            if target is not None and tree.content(target) is not None:
                hl_data = tree.content(target)
                e = replace(e, link=target)
            elif e.link in excluded_data:
                e = replace(e, type=EntryType.FILE, link="", data=excluded_data[e.link])
            else:
                raise InputError(
                    f"package {package}: hardlink /{e.path} points to /{e.link}, which this "
                    "package did not install — refusing the package"
                )
        if _is_setuid_candidate(e) and not (allow_match(final) or allow_match(e.path)):
            setuid_dropped.append(f"/{final} ({package})")
            e = replace(e, mode=e.mode & ~0o6000)
        deb_path = e.path
        if final != e.path or e.owner != package:
            e = replace(e, path=final, owner=package)
        _place(tree, e, package, replaces, warnings, hl_data)
        if e.type is not EntryType.DIR:
            placed[deb_path] = final


def _ensure_dirs(tree: _Tree, path: str, owner: str, mtime: int) -> None:
    if not path:
        return
    parts = path.split("/")
    for i in range(1, len(parts) + 1):
        sub = "/".join(parts[:i])
        node = tree.nodes.get(sub)
        if node is None:
            tree.nodes[sub] = Entry(sub, EntryType.DIR, 0o755, mtime=mtime, owner=owner)
        elif node.type is not EntryType.DIR:
            raise InputError(
                f"package {owner or 'assay'}: /{path} needs /{sub} to be a directory, but it "
                f"is a {node.type.value} from {node.owner or 'assay'}"
            )


def _place(
    tree: _Tree,
    e: Entry,
    package: str,
    replaces: dict[str, set[str]],
    warnings: list[str],
    hl_data: bytes | None,
) -> bool:
    """Insert ``e``; return False when an existing entry was kept instead."""
    old = tree.nodes.get(e.path)
    if old is not None:
        if e.type is EntryType.DIR and old.type is EntryType.DIR:
            return False
        if e.type is EntryType.DIR and old.type is EntryType.SYMLINK:
            # dpkg keeps a symlink to a directory; resolving refuses escaping links
            real = tree.resolve_dir(e.path, package, e.path)
            node = tree.nodes.get(real)
            if node is not None and node.type is EntryType.DIR:
                return False
        if old.type is EntryType.DIR:
            raise InputError(
                f"package {package}: /{e.path} would replace the directory installed by "
                f"{old.owner or 'assay'} with a {e.type.value} — refusing the package"
            )
        same = False
        new_content = e.data if e.type is EntryType.FILE else hl_data
        if old.type in (EntryType.FILE, EntryType.HARDLINK) and new_content is not None:
            same = tree.content(e.path) == new_content
        elif old.type is EntryType.SYMLINK and e.type is EntryType.SYMLINK:
            same = old.link == e.link
        prev = [o for o in tree.file_owners.get(e.path, [old.owner]) if o]
        if same:
            tree.file_owners.setdefault(e.path, []).append(package)
            warnings.append(
                f"/{e.path} shipped identically by {', '.join(prev) or 'assay'} and {package}"
            )
            return False
        if prev and all(p in replaces.get(package, set()) for p in prev):
            warnings.append(f"/{e.path} of {', '.join(prev)} replaced by {package} (Replaces:)")
            tree.file_owners[e.path] = []
        else:
            raise InputError(
                f"package {package}: /{e.path} would overwrite the {old.type.value} installed by "
                f"{', '.join(prev) or 'an earlier package'} with different content, and "
                f"{package} does not declare Replaces: on it — refusing; fix the package set"
            )
    tree.nodes[e.path] = e
    if hl_data is not None:
        tree.hardlink_data[e.path] = hl_data
    else:
        tree.hardlink_data.pop(e.path, None)
    if e.type is not EntryType.DIR:
        tree.file_owners.setdefault(e.path, []).append(package)
    return True


def _prune_excluded_dirs(tree: _Tree, excluded_match: Callable[[str], bool]) -> None:
    """Drop directories under an excluded pattern that ended up empty (deepest first)."""
    children: dict[str, int] = {}
    for path in tree.nodes:
        parent = path.rpartition("/")[0]
        children[parent] = children.get(parent, 0) + 1
    for path in sorted(tree.nodes, key=lambda p: -p.count("/")):
        node = tree.nodes[path]
        if node.type is not EntryType.DIR or children.get(path, 0):
            continue
        if excluded_match(path) or excluded_match(path + "/."):
            del tree.nodes[path]
            parent = path.rpartition("/")[0]
            children[parent] -= 1


def _put_generated(tree: _Tree, e: Entry) -> None:
    parent = e.path.rpartition("/")[0]
    real_parent = tree.resolve_dir(parent, "assay", e.path) if parent else ""
    _ensure_dirs(tree, real_parent, "", e.mtime)
    path = f"{real_parent}/{e.path.rpartition('/')[2]}" if real_parent else e.path
    old = tree.nodes.get(path)
    if old is not None and old.type is EntryType.DIR and e.type is EntryType.DIR:
        tree.nodes[path] = replace(old, mode=e.mode, uid=e.uid, gid=e.gid)
        return
    if e.type is EntryType.HARDLINK:
        lparent, _, lbase = e.link.strip("/").rpartition("/")
        target = lbase
        if lparent:
            target = f"{tree.resolve_dir(lparent, 'assay', e.path)}/{lbase}".lstrip("/")
        content = tree.content(target)
        if content is None:
            raise InputError(
                f"path /{e.path}: hardlink target /{e.link} is not a regular file in the image"
            )
        tree.nodes[path] = replace(e, path=path, link=target)
        tree.hardlink_data[path] = content
    else:
        tree.nodes[path] = replace(e, path=path)
        tree.hardlink_data.pop(path, None)
    tree.file_owners.pop(path, None)


def _generate(
    tree: _Tree,
    infos: dict[str, DebFile],
    placed: dict[str, dict[str, str]],
    accounts: generated.Accounts,
    release: generated.ReleaseLike | None,
    arch: str,
    mtime: int,
    warnings: list[str],
) -> None:
    for e in generated.accounts_entries(accounts, mtime=mtime):
        old = tree.nodes.get(e.path)
        if old is not None and old.type is not EntryType.DIR:
            warnings.append(f"/{e.path} from {old.owner} replaced by the generated file")
        _put_generated(tree, e)
    _put_generated(tree, generated.tmp_entry(mtime=mtime))
    _put_generated(tree, generated.nsswitch_entry(mtime=mtime))
    if "etc/os-release" not in tree.nodes and "usr/lib/os-release" not in tree.nodes:
        if release is not None:
            for e in generated.os_release_entries(release, mtime=mtime):
                _put_generated(tree, e)
        else:
            warnings.append("no base-files and no release information: /etc/os-release absent")
    for name, info in sorted(infos.items()):
        present: dict[str, bytes] = {}
        for deb_path, final in placed[name].items():
            if name in tree.file_owners.get(final, []):
                content = tree.content(final)
                if content is not None:
                    present[deb_path] = content
        md5 = generated.md5sums_for(info.md5sums, present, info.conffiles)
        for e in generated.status_entries(name, info.control_raw, md5, mtime=mtime):
            _put_generated(tree, e)
    if "ca-certificates" in infos:
        files = {
            p: c
            for p in tree.nodes
            if p.startswith(generated.CERTS_DIR) and (c := tree.content(p)) is not None
        }
        if not files:
            warnings.append("ca-certificates installed but no certificates found")
        for e in generated.ca_bundle_entries(files, mtime=mtime):
            _put_generated(tree, e)
    if "libc6" in infos and arch not in ldcache.ARCHES:
        warnings.append(f"no ld.so.cache written: flags for architecture {arch} are not known")
    elif "libc6" in infos:
        cache = ldcache.build_cache(_TreeView(tree), arch)
        _put_generated(
            tree, Entry("etc/ld.so.cache", EntryType.FILE, 0o644, data=cache, mtime=mtime)
        )


class _TreeView:
    """Read-only filesystem view of the tree for :mod:`assay.build.ldcache`."""

    def __init__(self, tree: _Tree) -> None:
        self._tree = tree

    def lookup(self, path: str) -> Entry | None:
        return self._tree.nodes.get(path.strip("/"))

    def read(self, path: str) -> bytes | None:
        return self._tree.content(path.strip("/"))

    def listdir(self, path: str) -> list[str]:
        prefix = path.strip("/") + "/"
        if prefix == "/":
            prefix = ""
        out = []
        for p in self._tree.nodes:
            if p.startswith(prefix) and "/" not in p[len(prefix) :]:
                out.append(p[len(prefix) :])
        return sorted(out)


def _finish(tree: _Tree) -> list[Entry]:
    """Sorted entries; each hardlink group carried by its first path in layer order."""
    nodes = dict(tree.nodes)
    groups: dict[str, list[str]] = {}
    for path, node in nodes.items():
        if node.type is EntryType.HARDLINK:
            target = nodes.get(node.link)
            data = tree.hardlink_data.get(path, b"")
            if target is None or target.type is not EntryType.FILE or target.data != data:
                nodes[path] = replace(node, type=EntryType.FILE, link="", data=data)
            else:
                groups.setdefault(node.link, []).append(path)
    for tgt, links in groups.items():
        members = sorted([tgt, *links], key=path_sort_key)
        first = members[0]
        if first != tgt:
            carrier = nodes[tgt]
            first_node = nodes[first]
            nodes[first] = replace(first_node, type=EntryType.FILE, link="", data=carrier.data)
        for m in members[1:]:
            nodes[m] = replace(nodes[m], type=EntryType.HARDLINK, link=first, data=b"")
    return [nodes[p] for p in sorted(nodes, key=path_sort_key)]
