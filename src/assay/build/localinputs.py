"""The files a spec reads from its own directory, their digests, and reading them for a rebuild.

A spec is not self-contained when it names files beside it: ``paths[].source`` of a file,
``python.requirements``, ``python.find-links`` (a directory of wheels) and relative
``contents.keyring`` entries. ``assay build`` records the SHA-256 of each such file in the
provenance (``resolvedDependencies`` of kind ``file``); ``assay rebuild --source DIR`` reads them
from the checkout ``DIR`` and refuses any whose digest differs from the recorded one.

Each file is read here through the same reader the build uses (same confinement, same limits),
so what is hashed is what the build takes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

from assay.build.spec import ImageSpec
from assay.errors import InputError, UsageError

__all__ = [
    "MAX_KEYRING",
    "RECORDED_ROLES",
    "LocalInput",
    "input_digests",
    "local_inputs",
    "read_local_input",
    "valid_recorded_path",
]

#: The most a keyring named by ``contents.keyring`` may hold.
MAX_KEYRING = 16 << 20

Role = Literal["paths.source", "python.requirements", "python.find-links", "contents.keyring"]
#: The roles a provenance ``file`` dependency may carry (directories are not recorded).
RECORDED_ROLES = frozenset({"paths.source", "python.requirements", "contents.keyring"})


@dataclass(frozen=True)
class LocalInput:
    """One file (or, for ``python.find-links``, directory) the spec reads from its directory."""

    role: Role
    path: str  # as the spec writes it (relative to the spec's directory)
    dest: str = ""  # paths.source: the image path it becomes

    @property
    def is_dir(self) -> bool:
        return self.role == "python.find-links"

    @property
    def label(self) -> str:
        """How messages name it: ``paths[/etc/app.conf].source conf/app.conf``."""
        if self.role == "paths.source":
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
    """The bytes the build reads for ``item`` (UsageError when it is missing or not allowed)."""
    if item.is_dir:
        raise ValueError(f"{item.label} is a directory")
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
        return read_regular(path, MAX_KEYRING, f"contents.keyring {item.path!r}")
    except FileNotFoundError:
        raise UsageError(f"contents.keyring {item.path!r} does not exist ({path})") from None
    except InputError as exc:
        raise UsageError(str(exc)) from None


def input_digests(spec: ImageSpec, spec_dir: Path) -> dict[str, tuple[Role, str]]:
    """``{path: (role, sha256 hex)}`` of every local file ``spec`` reads by a relative path
    (directories skipped: the wheels in ``find-links`` are pinned by the lock)."""
    return {
        item.path: (item.role, hashlib.sha256(read_local_input(spec, spec_dir, item)).hexdigest())
        for item in local_inputs(spec)
        if not item.is_dir and not PurePosixPath(item.path).is_absolute()
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
