"""The files a spec reads from its own directory, their digests, and reading them for a rebuild.

A spec is not self-contained when it names files beside it: ``paths[].source`` (a file, or a
directory tree copied in), ``app.source`` (a tree), ``python.requirements``, ``python.find-links``
(a directory of wheels), relative ``contents.keyring`` entries, a relative ``base.verify.key``
and a relative ``oci:``/``oci-archive:`` ``base.ref``. ``assay build`` records the SHA-256 of each
file and tree in the provenance (``resolvedDependencies`` of kind ``file``); ``assay rebuild
--source DIR`` reads them from the checkout ``DIR`` and refuses any whose digest differs.

Not recorded (their content is pinned elsewhere): ``python.find-links`` (every wheel taken from
it is pinned by the lock) and a local base image (the lock pins its digest, checked on open).

A tree's digest is the SHA-256 of the canonical JSON array ``[[path, kind, mode, sha256], …]`` of
every entry below it (``kind`` ``dir`` or ``file``, ``mode`` as the image gets it, ``sha256`` of a
file's bytes or ``""``), sorted by path: file names, contents and execute bits all count.

Each input is read here through the same reader the build uses (same confinement, same limits),
so what is hashed is what the build takes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

from assay.build.spec import ImageSpec
from assay.errors import InputError, UsageError

__all__ = [
    "MAX_KEYRING",
    "RECORDED_ROLES",
    "LocalInput",
    "digest_local_input",
    "input_digests",
    "local_inputs",
    "read_local_input",
    "valid_recorded_path",
]

#: The most a keyring named by ``contents.keyring`` may hold.
MAX_KEYRING = 16 << 20

Role = Literal[
    "paths.source",
    "paths.tree",
    "app.source",
    "python.requirements",
    "python.find-links",
    "contents.keyring",
    "base.verify.key",
    "base.ref",
]
#: The roles a provenance ``file`` dependency may carry.
RECORDED_ROLES = frozenset(
    {
        "paths.source",
        "paths.tree",
        "app.source",
        "python.requirements",
        "contents.keyring",
        "base.verify.key",
    }
)
_TREES = frozenset({"paths.tree", "app.source"})


@dataclass(frozen=True)
class LocalInput:
    """One file (or, for ``python.find-links``, directory) the spec reads from its directory."""

    role: Role
    path: str  # as the spec writes it (relative to the spec's directory)
    dest: str = ""  # paths.source: the image path it becomes

    @property
    def recorded(self) -> bool:
        """Whether the provenance records its digest (else its content is pinned elsewhere)."""
        return self.role in RECORDED_ROLES

    @property
    def is_tree(self) -> bool:
        return self.role in _TREES

    @property
    def label(self) -> str:
        """How messages name it: ``paths[/etc/app.conf].source conf/app.conf``."""
        if self.role in ("paths.source", "paths.tree"):
            return f"paths[{self.dest}].source {self.path}"
        return f"{self.role} {self.path}"


def local_inputs(spec: ImageSpec) -> list[LocalInput]:
    """What ``spec`` reads from its directory, in spec order (each path once).

    Absolute keyring paths are host files (as ``signed-by`` always is), not the spec's.
    """
    out: list[LocalInput] = []
    for p in spec.paths:
        if p.type == "file" and p.content is None and p.source:
            out.append(LocalInput("paths.source", p.source, p.path))
        elif p.type == "directory" and p.source:
            out.append(LocalInput("paths.tree", p.source, p.path))
    if spec.app is not None:
        out.append(LocalInput("app.source", spec.app.source, spec.app.target))
    if spec.base is not None:
        from assay.oci.reference import parse_image_ref

        ref = parse_image_ref(spec.base.ref)
        if not ref.is_registry and not Path(ref.path).is_absolute():
            out.append(LocalInput("base.ref", ref.path))
        if spec.base.verify is not None and not Path(spec.base.verify.key).is_absolute():
            out.append(LocalInput("base.verify.key", spec.base.verify.key))
    if spec.python is not None:
        out.append(LocalInput("python.requirements", spec.python.requirements))
        if spec.python.find_links is not None:
            out.append(LocalInput("python.find-links", spec.python.find_links))
    keyrings = [k for k in spec.contents.keyring if not Path(k).is_absolute()]
    out.extend(LocalInput("contents.keyring", k) for k in keyrings)
    seen: set[str] = set()
    unique = []
    for item in out:
        if item.path not in seen:
            seen.add(item.path)
            unique.append(item)
    return unique


def read_local_input(spec: ImageSpec, spec_dir: Path, item: LocalInput) -> bytes:
    """The bytes the build reads for the file ``item`` (UsageError when it is missing or not
    allowed)."""
    if item.is_tree or not item.recorded:
        raise ValueError(f"{item.label} is not a file the provenance records")
    if item.role == "paths.source":
        from assay.build.builder import read_path_source

        return read_path_source(spec_dir, item.path, item.dest)
    if item.role == "python.requirements":
        from assay.build.pylock import read_requirements

        assert spec.python is not None
        return read_requirements(spec_dir, spec.python)[0]
    from assay._safefs import read_regular

    path = spec_dir / item.path
    try:
        return read_regular(path, MAX_KEYRING, f"{item.role} {item.path!r}")
    except FileNotFoundError:
        raise UsageError(f"{item.role} {item.path!r} does not exist ({path})") from None
    except InputError as exc:
        raise UsageError(str(exc)) from None


def digest_local_input(spec: ImageSpec, spec_dir: Path, item: LocalInput) -> str:
    """The SHA-256 (hex) of a recorded input: a file's bytes, or a tree's canonical listing."""
    if not item.is_tree:
        return hashlib.sha256(read_local_input(spec, spec_dir, item)).hexdigest()
    from assay.build.appfiles import read_tree
    from assay.oci.entry import EntryType

    entries = read_tree(spec_dir, item.path, "/t", what=item.label)
    listing = sorted(
        [
            e.path.removeprefix("t").lstrip("/"),
            "dir" if e.type is EntryType.DIR else "file",
            e.mode,
            hashlib.sha256(e.data or b"").hexdigest() if e.type is EntryType.FILE else "",
        ]
        for e in entries[1:]  # the first is the tree's own top (its mode comes from the spec)
    )
    raw = json.dumps(listing, separators=(",", ":"), ensure_ascii=False).encode()
    return hashlib.sha256(raw).hexdigest()


def input_digests(spec: ImageSpec, spec_dir: Path) -> dict[str, tuple[Role, str]]:
    """``{path: (role, sha256 hex)}`` of every recorded input ``spec`` names by a relative path."""
    return {
        item.path: (item.role, digest_local_input(spec, spec_dir, item))
        for item in local_inputs(spec)
        if item.recorded and not PurePosixPath(item.path).is_absolute()
    }


def valid_recorded_path(path: object, where: str) -> str:
    """A recorded local-input path from a provenance document: relative, bounded, plain."""
    if (
        not isinstance(path, str)
        or not path
        or len(path) > 4096
        or "\0" in path
        or "\\" in path
        or PurePosixPath(path).is_absolute()
    ):
        raise InputError(f"{where} must be a relative path (as the spec names the file)")
    return path
