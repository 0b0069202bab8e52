"""The lockfile: the exact package set a spec resolved to, per architecture.

``NAME.lock.json`` sits next to ``NAME.yaml``. It pins every package (name, version, source,
``Filename``, size, SHA256, the repository and suite it came from, the dependencies it pulled in)
and the SHA256 of each InRelease used, so a build from the lock fetches exactly the same bytes. The
spec's own SHA256 is recorded: a lock whose spec has changed since is reported as stale.

The JSON is deterministic: fixed key order, packages sorted by name, two-space indent, trailing
newline. ``read_lock`` treats the file as outside input (size bound, strict schema, no unknown
keys, checked names, hashes and paths).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Literal, Protocol

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from assay._atomic import atomic_write_bytes
from assay._json import load_json
from assay.build.spec import ImageSpec, read_spec
from assay.debian.model import PackageRecord, ReleaseInfo, RepoSource
from assay.debian.resolver import Resolution, resolve
from assay.debian.version import version_key
from assay.errors import AssayError, InputError

__all__ = [
    "LOCK_VERSION",
    "Lock",
    "LockedBase",
    "LockedPackage",
    "LockedPython",
    "LockedPythonArch",
    "LockedRelease",
    "LockedSource",
    "LockedWheel",
    "lock_matches_spec",
    "lock_path_for",
    "lock_spec",
    "read_lock",
    "spec_digest",
    "with_python",
    "write_lock",
]

LOCK_VERSION = 1
_MAX_LOCK_BYTES = 64 << 20

_Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
_PkgName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9+.\-]+$", max_length=200)]
_Arch = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9\-]{0,31}$")]
_Uri = Annotated[str, Field(pattern=r"^(https?|file)://[^\s]+$", max_length=2048)]
_Word = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9.+~_\-/]*$", max_length=200)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _check_version(v: str) -> str:
    try:
        version_key(v)
    except AssayError as exc:
        raise ValueError(str(exc)) from None
    return v


class LockedSource(_Model):
    uri: _Uri
    suite: _Word
    components: list[_Word]


class LockedRelease(_Model):
    url: _Uri
    sha256: _Sha256
    date: str = Field(max_length=100)
    date_epoch: int = Field(alias="dateEpoch", ge=0)
    suite: _Word
    codename: str = Field(max_length=100)
    version: str = Field("", max_length=100)  # the Release's Version ("12.8"); "" if absent


class LockedPackage(_Model):
    name: _PkgName
    version: str = Field(max_length=200)
    architecture: _Arch
    source: _PkgName
    source_version: str = Field(alias="sourceVersion", max_length=200)
    filename: str = Field(max_length=1024)
    url: _Uri
    size: int = Field(ge=0, le=1 << 40)
    sha256: _Sha256
    repository: _Uri
    suite: _Word
    component: _Word
    depends: list[_PkgName] = Field(default_factory=list)
    maintainer: str = Field(default="", max_length=1000)
    multi_arch: str = Field(default="", alias="multiArch", pattern=r"^(|same|foreign|allowed|no)$")
    essential: bool = False
    priority: str = Field(default="", max_length=50)

    @field_validator("version", "source_version")
    @classmethod
    def _version(cls, v: str) -> str:
        return _check_version(v)

    @field_validator("filename")
    @classmethod
    def _filename(cls, v: str) -> str:
        parts = v.split("/")
        if (
            not v
            or v.startswith("/")
            or "\\" in v
            or any(p in ("", ".", "..") for p in parts)
            or any(ord(c) < 0x20 for c in v)
            or not v.endswith(".deb")
        ):
            raise ValueError("must be a relative pool path ending in .deb, without '..'")
        return v

    @field_validator("depends")
    @classmethod
    def _sorted_deps(cls, v: list[str]) -> list[str]:
        return sorted(set(v))


_OciDigest = Annotated[str, Field(pattern=r"^sha256:[0-9a-f]{64}$")]


class LockedBase(_Model):
    """The image a ``base:`` spec builds on, pinned: what its reference named when locked (the
    index or manifest digest) and each architecture's platform manifest in it."""

    ref: str = Field(min_length=1, max_length=2048)
    digest: _OciDigest
    manifests: dict[_Arch, _OciDigest]


_PyName = Annotated[str, Field(pattern=r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$", max_length=200)]


class LockedWheel(_Model):
    """One wheel pinned for one architecture: which file, from where, and its exact bytes."""

    name: _PyName
    version: str = Field(max_length=200)
    filename: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._+!\-]*\.whl$", max_length=500)
    #: ``index``: fetched from ``url`` (https); ``find-links``: taken from a local wheelhouse
    origin: Literal["index", "find-links"]
    url: str = Field(default="", max_length=2048)
    size: int = Field(ge=0, le=1 << 40)
    sha256: _Sha256
    tags: list[str] = Field(max_length=1000)

    @model_validator(mode="after")
    def _consistent(self) -> LockedWheel:
        from packaging.utils import InvalidWheelFilename, parse_wheel_filename
        from packaging.version import InvalidVersion, Version

        try:
            name, version, _build, tags = parse_wheel_filename(self.filename)
            if Version(self.version) != version:
                raise ValueError(f"{self.filename} is not version {self.version}")
        except (InvalidWheelFilename, InvalidVersion) as exc:
            raise ValueError(str(exc)) from None
        if name != self.name:
            raise ValueError(f"{self.filename} is not a wheel of {self.name}")
        if sorted(str(t) for t in tags) != self.tags:
            raise ValueError(f"tags are not the sorted tags of {self.filename}")
        if self.origin == "index":
            if not self.url.startswith("https://") or any(c.isspace() for c in self.url):
                raise ValueError("an index wheel's url must be an https:// URL")
        elif self.url:
            raise ValueError("a find-links wheel has no url (it comes from the wheelhouse)")
        return self


class LockedPythonArch(_Model):
    """The Python target of one architecture and its wheels (sorted by name)."""

    glibc: str = Field(pattern=r"^2\.\d{1,3}$")
    wheels: list[LockedWheel]

    @field_validator("wheels")
    @classmethod
    def _sorted_unique(cls, v: list[LockedWheel]) -> list[LockedWheel]:
        names = [w.name for w in v]
        if len(set(names)) != len(names):
            raise ValueError("a Python package is listed more than once")
        return sorted(v, key=lambda w: w.name)


class LockedPython(_Model):
    """``python:`` of the spec, resolved: the requirements file's digest and every wheel."""

    version: str = Field(pattern=r"^3\.\d{1,2}$")
    requirements: str = Field(max_length=1024)
    requirements_sha256: _Sha256 = Field(alias="requirementsSha256")
    index: str = Field(pattern=r"^https://[^\s]+$", max_length=2048)
    archs: dict[_Arch, LockedPythonArch]


class Lock(_Model):
    lock_version: int = Field(alias="lockVersion")
    spec: str = Field(max_length=1024)
    spec_digest: _Sha256 = Field(alias="specDigest")
    requested: list[str] = Field(default_factory=list)
    sources: list[LockedSource]
    releases: list[LockedRelease]
    packages: dict[_Arch, list[LockedPackage]]
    base: LockedBase | None = None  # only for specs with base: (then packages are empty)
    # Absent from locks of specs without ``python:`` (so those stay byte-identical).
    python: LockedPython | None = None

    @field_validator("lock_version")
    @classmethod
    def _known(cls, v: int) -> int:
        if v != LOCK_VERSION:
            raise ValueError(
                f"lock version {v} is not supported (this assay writes {LOCK_VERSION})"
            )
        return v

    @field_validator("packages")
    @classmethod
    def _sorted_unique(cls, v: dict[str, list[LockedPackage]]) -> dict[str, list[LockedPackage]]:
        out: dict[str, list[LockedPackage]] = {}
        for arch in sorted(v):
            pkgs = sorted(v[arch], key=lambda p: p.name)
            names = [p.name for p in pkgs]
            if len(set(names)) != len(names):
                raise ValueError(f"{arch}: a package is listed more than once")
            for p in pkgs:
                if p.architecture not in (arch, "all"):
                    raise ValueError(f"{arch}: {p.name} has architecture {p.architecture}")
            out[arch] = pkgs
        return out

    @model_validator(mode="after")
    def _urls_follow_sources(self) -> Lock:
        # A package is fetched from its url: it must be its repository's URI plus its Filename,
        # and that repository must be one of the lock's sources (no fetching from elsewhere).
        uris = {s.uri for s in self.sources}
        for arch, pkgs in self.packages.items():
            for p in pkgs:
                if p.repository not in uris:
                    raise ValueError(f"{arch}: {p.name} comes from {p.repository}, not a source")
                if p.url != f"{p.repository}/{p.filename}":
                    raise ValueError(f"{arch}: {p.name} url is not its repository + filename")
        return self

    @property
    def archs(self) -> list[str]:
        return list(self.packages)

    def to_json(self) -> bytes:
        data = self.model_dump(by_alias=True, mode="json")
        if data.get("base") is None:
            data.pop("base", None)  # locks of package-only specs stay as they always were
        if data.get("python") is None:
            data.pop("python", None)
        return (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode()

    def release_sha256s(self) -> dict[str, str]:
        return {r.url: r.sha256 for r in self.releases}


# -- files -------------------------------------------------------------------------------------


def lock_path_for(spec_path: Path | str) -> Path:
    """``examples/python.yaml`` → ``examples/python.lock.json``."""
    p = Path(spec_path)
    stem = p.name
    for suffix in (".yaml", ".yml", ".json"):
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    return p.with_name(stem + ".lock.json")


def spec_digest(spec_bytes: bytes) -> str:
    return hashlib.sha256(spec_bytes).hexdigest()


def write_lock(path: Path | str, lock: Lock) -> None:
    """Write the lock atomically (no reader ever sees half a lock)."""
    atomic_write_bytes(path, lock.to_json())


def read_lock(path: Path | str) -> Lock:
    """Read and validate a lock; InputError (naming the problem) when it is not a valid lock."""
    path = Path(path)
    from assay._safefs import open_regular

    try:
        with open_regular(path, f"lock {path}") as fh:
            raw = fh.read(_MAX_LOCK_BYTES + 1)
    except OSError as exc:
        raise InputError(f"cannot read lock {path}: {exc.strerror or exc}") from None
    if len(raw) > _MAX_LOCK_BYTES:
        raise InputError(f"{path}: larger than 64 MiB; this is not an assay lock")
    try:
        data = load_json(raw, what=f"lock {path}", max_size=_MAX_LOCK_BYTES)
    except InputError as exc:
        raise InputError(f"{exc}; run 'assay lock' to rewrite it") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a JSON object")
    try:
        return Lock.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(x) for x in first["loc"])
        raise InputError(
            f"{path}: invalid lock at {loc}: {first['msg']} "
            f"({len(exc.errors())} problem(s)); run 'assay lock' to rewrite it"
        ) from None


def lock_matches_spec(lock: Lock, spec_bytes: bytes) -> bool:
    """Whether ``lock`` was made from exactly these spec bytes."""
    return lock.spec_digest == spec_digest(spec_bytes)


# -- making a lock ----------------------------------------------------------------------------


class _Index(Protocol):
    @property
    def releases(self) -> tuple[ReleaseInfo, ...]: ...
    @property
    def packages(self) -> dict[str, tuple[PackageRecord, ...]]: ...


class _Client(Protocol):
    def load(self, sources: Sequence[RepoSource], archs: Sequence[str]) -> _Index: ...


def locked_package(rec: PackageRecord, depends: Sequence[str]) -> LockedPackage:
    return LockedPackage(
        name=rec.name,
        version=rec.version,
        architecture=rec.architecture,
        source=rec.source,
        sourceVersion=rec.source_version,
        filename=rec.filename,
        url=rec.url,
        size=rec.size,
        sha256=rec.sha256,
        repository=rec.repo.uri,
        suite=rec.repo.suite,
        component=rec.component,
        depends=list(depends),
        maintainer=rec.maintainer,
        multiArch=rec.multi_arch,
        essential=rec.essential,
        priority=rec.priority,
    )


def make_lock(
    spec_path: Path | str,
    spec_bytes: bytes,
    requests: Sequence[str],
    sources: Sequence[RepoSource],
    releases: Sequence[ReleaseInfo],
    resolutions: Sequence[Resolution],
) -> Lock:
    return Lock(
        lockVersion=LOCK_VERSION,
        spec=Path(spec_path).name,
        specDigest=spec_digest(spec_bytes),
        requested=list(requests),
        sources=[
            LockedSource(uri=s.uri, suite=s.suite, components=list(s.components)) for s in sources
        ],
        releases=sorted(
            (
                LockedRelease(
                    url=r.url,
                    sha256=r.sha256,
                    date=r.date,
                    dateEpoch=r.date_epoch,
                    suite=r.suite,
                    codename=r.codename,
                    version=r.version,
                )
                for r in releases
            ),
            key=lambda r: r.url,
        ),
        packages={
            res.arch: [locked_package(p, res.depends_of(p.name)) for p in res.packages]
            for res in resolutions
        },
    )


def resolve_spec(
    spec: ImageSpec, client: _Client, archs: Sequence[str] | None = None
) -> tuple[list[RepoSource], _Index, list[Resolution]]:
    """Sources → verified index → one Resolution per architecture."""
    sources = spec.repo_sources()
    archs = list(archs) if archs else list(spec.archs)
    index = client.load(sources, archs)
    requests = spec.package_requests()
    exclude = spec.contents.exclude
    resolutions = [resolve(index.packages.get(a, ()), requests, a, exclude) for a in archs]
    return sources, index, resolutions


def lock_spec(
    spec: ImageSpec,
    spec_path: Path | str,
    client: _Client,
    spec_bytes: bytes | None = None,
    *,
    find_links: Path | None = None,
) -> Lock:
    """Resolve ``spec`` for each of its architectures and return the lock (not yet written).

    A spec with ``python:`` also gets its wheels pinned (``assay.build.pylock``).
    """
    if spec_bytes is None:
        spec_bytes = read_spec(spec_path)
    sources, index, resolutions = resolve_spec(spec, client)
    lock = make_lock(
        spec_path, spec_bytes, spec.package_requests(), sources, index.releases, resolutions
    )
    return with_python(lock, spec, Path(spec_path).parent, find_links=find_links)


def with_python(
    lock: Lock, spec: ImageSpec, spec_dir: Path, *, find_links: Path | None = None
) -> Lock:
    """``lock`` with the wheels of the spec's ``python:`` pinned for each of its archs."""
    if spec.python is None:
        return lock
    from assay.build.pylock import lock_python

    python = lock_python(spec, spec_dir, lock.packages, find_links=find_links)
    return lock.model_copy(update={"python": python})
