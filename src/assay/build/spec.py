"""The image spec: a YAML file shaped like apko's, describing a Debian-based image.

```yaml
contents:
  repositories:            # optional; default: ASSAY_DEBIAN_MIRROR or the host's apt sources
    - uri: http://MIRROR/debian
      suites: [bookworm, bookworm-updates]
      components: [main]
      signed-by: /usr/share/keyrings/debian-archive-keyring.gpg
  keyring: [keys/extra.gpg]  # extra OpenPGP keyrings (paths relative to the spec)
  packages: [base-files, tzdata, "libssl3=3.0.15-1~deb12u1"]
accounts:
  users:  [{username: nonroot, uid: 65532, gid: 65532, homedir: /home/nonroot}]
  groups: [{groupname: nonroot, gid: 65532}]
  run-as: "65532:65532"      # or a user name
entrypoint: {command: /usr/bin/python3}   # or a list: [/usr/bin/python3, -I]
cmd: [app.py]
work-dir: /app
environment: {LANG: C.UTF-8}
annotations: {org.opencontainers.image.source: https://example.invalid/app}
paths: [{path: /app, type: directory, uid: 65532, gid: 65532, permissions: 0o755}]
archs: [amd64, arm64]
variant: default            # or dev: adds dev.packages (a shell, busybox…) to the image
dev: {packages: [busybox]}
layering: {strategy: package, budget: 10}
source-date-epoch: 1700000000
setuid-allow: []
sbom: {embed: false}
app: ./src                  # or {source: ./src, target: /app, uid: 0, gid: 0}: a layer of its own
# base: {ref: REG/REPO@sha256:… | oci:DIR[:TAG], verify: {key: cosign.pub}} instead of packages
python:                     # Python wheels installed without pip (see assay.build.wheels)
  requirements: requirements.txt   # hash-pinned (pip-compile --generate-hashes), beside the spec
  find-links: wheels        # optional local wheelhouse, beside the spec
  index: https://pypi.org/pypi     # optional; PyPI's JSON API (NAME/VERSION/json below it)
  version: "3.11"           # optional; else from the locked python3.X-minimal package
```

Unknown keys are errors; every error names the key (``contents.packages[2]``) and the file.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from assay._yaml import load_yaml
from assay.debian.model import RepoSource
from assay.debian.version import version_key
from assay.errors import AssayError, InputError, UsageError

__all__ = [
    "Accounts",
    "AppFiles",
    "BaseImage",
    "BaseVerify",
    "Contents",
    "DevVariant",
    "Entrypoint",
    "Group",
    "ImageSpec",
    "Layering",
    "PathEntry",
    "Python",
    "Repository",
    "SbomOptions",
    "User",
    "read_spec",
]

_MAX_SPEC_BYTES = 1 << 20


def read_spec(path: Path | str) -> bytes:
    """The bytes of the spec file ``path``: a regular file (a FIFO or device is refused, never
    read) of at most 1 MiB; UsageError otherwise."""
    from assay._safefs import read_regular

    try:
        return read_regular(path, _MAX_SPEC_BYTES, f"spec {path}")
    except FileNotFoundError:
        raise UsageError(f"cannot read spec {path}: no such file") from None
    except InputError as exc:
        raise UsageError(str(exc).replace("-byte limit", "-byte (1 MiB) limit")) from None


_PKG_NAME = re.compile(r"^[a-z0-9][a-z0-9+.\-]+$")
_ARCHS = ("amd64", "arm64", "armhf", "armel", "i386", "ppc64el", "s390x", "mips64el", "riscv64")
_NAME = re.compile(r"^[a-z_][a-z0-9_.\-]{0,31}\$?$")  # POSIX-ish user and group names


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Repository(_Model):
    """One deb822-style repository entry."""

    uri: str
    suites: list[str] = Field(min_length=1)
    components: list[str] = Field(default_factory=lambda: ["main"], min_length=1)
    signed_by: str | None = Field(default=None, alias="signed-by")

    @field_validator("uri")
    @classmethod
    def _uri(cls, v: str) -> str:
        if not re.match(r"^(https?|file)://", v):
            raise ValueError("must be an http://, https:// or file:// URI")
        return v.rstrip("/")


def _package_request(v: str) -> str:
    name, sep, version = v.partition("=")
    if not _PKG_NAME.match(name):
        raise ValueError(f"{name!r} is not a Debian package name")
    if sep:
        try:
            version_key(version)
        except AssayError as exc:
            raise ValueError(str(exc)) from None
    return v


PackageRequest = Annotated[str, BeforeValidator(lambda v: _package_request(str(v)))]


class Contents(_Model):
    repositories: list[Repository] | None = None
    keyring: list[str] = Field(default_factory=list)
    # At least one unless ``base:`` is given (then none: see ImageSpec._base_has_no_packages).
    packages: list[PackageRequest] = Field(default_factory=list)
    #: Never installed; a dependency on one counts as met (for packages only maintainer
    #: scripts need, which assay never runs — e.g. debconf, mawk, dpkg).
    exclude: list[str] = Field(default_factory=list)

    @field_validator("exclude")
    @classmethod
    def _exclude_names(cls, v: list[str]) -> list[str]:
        for name in v:
            if not _PKG_NAME.match(name):
                raise ValueError(f"{name!r} is not a Debian package name (no versions here)")
        return v

    @field_validator("packages")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        names = [p.partition("=")[0] for p in v]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"listed more than once: {', '.join(dup)}")
        return v


def _check_name(v: str) -> str:
    if not _NAME.match(v):
        raise ValueError(f"{v!r} is not a valid user or group name")
    return v


AccountName = Annotated[str, BeforeValidator(lambda v: _check_name(str(v)))]
_Id = Annotated[int, Field(ge=0, le=2**31 - 1)]


class User(_Model):
    username: AccountName
    uid: _Id
    gid: _Id | None = None
    homedir: str | None = None
    shell: str | None = None


class Group(_Model):
    groupname: AccountName
    gid: _Id
    members: list[AccountName] = Field(default_factory=list)


class Accounts(_Model):
    users: list[User] = Field(default_factory=list)
    groups: list[Group] = Field(default_factory=list)
    run_as: str | None = Field(default=None, alias="run-as")

    @field_validator("run_as", mode="before")
    @classmethod
    def _run_as(cls, v: Any) -> Any:
        if v is None:
            return v
        v = str(v)
        if not (re.match(r"^\d+(:\d+)?$", v) or _NAME.match(v)):
            raise ValueError("must be UID[:GID] or a user name")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> Accounts:
        for kind, names in (
            ("user", [u.username for u in self.users]),
            ("group", [g.groupname for g in self.groups]),
        ):
            dup = sorted({n for n in names if names.count(n) > 1})
            if dup:
                raise ValueError(f"{kind} listed more than once: {', '.join(dup)}")
        users = {u.username for u in self.users}
        if self.run_as and not self.run_as[0].isdigit() and self.run_as not in users:
            raise ValueError(f"run-as names user {self.run_as!r}, which accounts.users lacks")
        return self


class Entrypoint(_Model):
    command: str


class PathEntry(_Model):
    path: str
    type: Literal["directory", "file", "symlink", "hardlink"]
    uid: _Id = 0
    gid: _Id = 0
    permissions: int = Field(default=0o755, ge=0, le=0o7777)
    source: str | None = None
    content: str | None = None

    @field_validator("permissions", mode="before")
    @classmethod
    def _octal(cls, v: Any) -> Any:
        # YAML 1.1 reads 0755 as octal already; accept the string forms "0755" and "0o755".
        if isinstance(v, str):
            try:
                return int(v.removeprefix("0o"), 8)
            except ValueError:
                raise ValueError("must be an octal mode such as 0o755") from None
        return v

    @field_validator("path")
    @classmethod
    def _abs(cls, v: str) -> str:
        if not v.startswith("/") or "\0" in v or ".." in v.split("/"):
            raise ValueError("must be an absolute path without '..'")
        return v

    @model_validator(mode="after")
    def _fields_for_type(self) -> PathEntry:
        if self.type in ("symlink", "hardlink") and not self.source:
            raise ValueError(f"a {self.type} needs 'source' (its target)")
        if self.type == "directory" and self.content is not None:
            # a directory's ``source`` is a directory beside the spec, copied in (see AppFiles)
            raise ValueError("a directory takes no 'content' (give 'source' to copy a tree)")
        if self.content is not None and self.source:
            raise ValueError("give either 'content' or 'source', not both")
        return self


def _target_path(v: str) -> str:
    if not v.startswith("/") or "\0" in v or ".." in v.split("/") or v.strip("/") == "":
        raise ValueError("must be an absolute path below / without '..'")
    return v


class AppFiles(_Model):
    """``app:``: a directory beside the spec copied into the image, in a layer of its own.

    ``app: ./src`` is short for ``app: {source: ./src, target: /app}``. Files are owned by
    ``uid``/``gid`` (root by default), mode 0755 when the source file has an execute bit and
    0644 otherwise; directories 0755; mtimes are SOURCE_DATE_EPOCH.
    """

    source: str = Field(min_length=1, max_length=4096)
    target: str = "/app"
    uid: _Id = 0
    gid: _Id = 0

    @field_validator("target")
    @classmethod
    def _target(cls, v: str) -> str:
        return _target_path(v)


class BaseVerify(_Model):
    """``base.verify``: the base's cosign signature must verify with this public key."""

    key: str = Field(min_length=1, max_length=4096)


class BaseImage(_Model):
    """``base:``: build on top of an existing image instead of Debian packages.

    ``ref`` is ``REG/REPO@sha256:…`` (a registry reference must carry a digest: a tag alone is
    refused, so the spec itself pins the base) or ``oci:DIR[:TAG]`` / ``oci-archive:FILE[:TAG]``
    (the tag is resolved when locking and the digest pinned in the lock).
    """

    ref: str = Field(min_length=1, max_length=2048)
    verify: BaseVerify | None = None

    @model_validator(mode="before")
    @classmethod
    def _short(cls, v: Any) -> Any:
        return {"ref": v} if isinstance(v, str) else v

    @model_validator(mode="after")
    def _ref(self) -> BaseImage:
        from assay.oci.reference import parse_image_ref

        try:
            ref = parse_image_ref(self.ref)
        except AssayError as exc:
            raise ValueError(str(exc)) from None
        if ref.is_registry:
            if not ref.digest:
                raise ValueError(
                    f"{self.ref} names a tag, not a digest: pin the base as REPO@sha256:… "
                    "(e.g. from `skopeo inspect`) so the build is reproducible"
                )
        elif ref.transport not in ("oci", "oci-archive"):
            raise ValueError(
                f"{self.ref}: a base is a registry reference with a digest, oci:DIR[:TAG] or "
                "oci-archive:FILE[:TAG]"
            )
        if self.verify is not None and not ref.is_registry:
            raise ValueError(
                "verify needs a registry reference: signatures live in the registry (push the "
                "base and name it REG/REPO@sha256:…)"
            )
        return self


class DevVariant(_Model):
    """What ``variant: dev`` adds: extra packages (a shell, busybox…) for debugging."""

    packages: list[PackageRequest] = Field(default_factory=list)


class Layering(_Model):
    strategy: Literal["none", "package"] = "none"
    budget: int = Field(default=10, ge=1, le=127)


class SbomOptions(_Model):
    embed: bool = False


def _beside_spec(v: str) -> str:
    """A relative path that stays in the spec's directory (symlinks are checked on use)."""
    parts = v.split("/")
    if not v or v.startswith("/") or "\\" in v or "\0" in v or ".." in parts:
        raise ValueError("must be a relative path inside the spec's directory (no '..')")
    return v


class Python(_Model):
    """``python:``: Python packages installed from hash-pinned wheels, without pip in the image."""

    requirements: Annotated[str, BeforeValidator(lambda v: _beside_spec(str(v)))]
    find_links: Annotated[str, BeforeValidator(lambda v: _beside_spec(str(v)))] | None = Field(
        default=None, alias="find-links"
    )
    index: str = "https://pypi.org/pypi"
    version: str | None = None

    @field_validator("index")
    @classmethod
    def _index(cls, v: str) -> str:
        if not re.match(r"^https://[^\s/?#]+(/[^\s?#]*)?$", v):
            raise ValueError("must be an https:// URL of a PyPI-style JSON API (no query)")
        return v.rstrip("/")

    @field_validator("version", mode="before")
    @classmethod
    def _version(cls, v: Any) -> Any:
        if v is not None and not re.match(r"^3\.\d{1,2}$", str(v)):
            raise ValueError("must be the image's Python 3 version as MAJOR.MINOR, e.g. '3.11'")
        return None if v is None else str(v)


class ImageSpec(_Model):
    """A validated image spec. Build it with :meth:`from_file` or :meth:`from_yaml`."""

    contents: Contents = Field(default_factory=Contents)  # required unless base: is given
    accounts: Accounts = Field(default_factory=Accounts)
    entrypoint: Entrypoint | list[str] | None = None
    cmd: str | list[str] | None = None
    work_dir: str | None = Field(default=None, alias="work-dir")
    environment: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    paths: list[PathEntry] = Field(default_factory=list)
    archs: list[Literal[_ARCHS]] = Field(default_factory=lambda: ["amd64"], min_length=1)  # type: ignore[valid-type]
    variant: Literal["default", "dev"] = "default"
    dev: DevVariant = Field(default_factory=DevVariant)
    layering: Layering = Field(default_factory=Layering)
    # Up to 9999-12-31T23:59:59Z: later timestamps cannot be written as dates or tar mtimes.
    source_date_epoch: int | None = Field(
        default=None, alias="source-date-epoch", ge=0, le=253_402_300_799
    )
    setuid_allow: list[str] = Field(default_factory=list, alias="setuid-allow")
    sbom: SbomOptions = Field(default_factory=SbomOptions)
    python: Python | None = None
    app: AppFiles | None = None
    base: BaseImage | None = None

    @field_validator("app", mode="before")
    @classmethod
    def _app_short(cls, v: Any) -> Any:
        return {"source": v} if isinstance(v, str) else v

    @model_validator(mode="after")
    def _base_has_no_packages(self) -> ImageSpec:
        if self.base is None:
            if "contents" not in self.model_fields_set:
                raise ValueError(
                    "contents: required key is missing (or build on an existing image: base:)"
                )
            if not self.contents.packages:
                raise ValueError(
                    "contents.packages: list at least one package (or build on an existing "
                    "image: base:)"
                )
            return self
        if self.package_requests():
            raise ValueError(
                "base: cannot be combined with contents.packages (or dev.packages): assay does "
                "not install .debs on top of another image's package database; build the base "
                "with those packages, or drop them"
            )
        if self.accounts.users or self.accounts.groups:
            raise ValueError(
                "base: cannot be combined with accounts.users/groups (the base's /etc/passwd "
                "stays as it is); set accounts.run-as to a UID:GID only"
            )
        if self.sbom.embed:
            raise ValueError("base: cannot be combined with sbom.embed (not supported yet)")
        if self.python is not None:
            raise ValueError(
                "base: cannot be combined with python: yet (the wheels' target comes from the "
                "locked Debian python package); build on packages, or copy a venv with app:"
            )
        if self.accounts.run_as and not self.accounts.run_as[0].isdigit():
            raise ValueError("with base:, accounts.run-as must be UID[:GID] (not a user name)")
        return self

    @field_validator("archs")
    @classmethod
    def _archs_unique(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("an architecture is listed more than once")
        return v

    @field_validator("environment", mode="before")
    @classmethod
    def _env(cls, v: Any) -> Any:
        if isinstance(v, dict):
            for key in v:
                if not isinstance(key, str) or not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", key):
                    raise ValueError(f"{key!r} is not a valid environment variable name")
            return {
                k: str(val) if isinstance(val, int | float | bool) else val for k, val in v.items()
            }
        return v

    @model_validator(mode="after")
    def _dev(self) -> ImageSpec:
        if self.variant == "dev" and not self.dev.packages:
            raise ValueError("variant is dev but dev.packages is empty")
        return self

    # -- loading ------------------------------------------------------------------------------

    @classmethod
    def from_yaml(cls, text: str | bytes, where: str = "<spec>") -> ImageSpec:
        if len(text) > _MAX_SPEC_BYTES:
            raise UsageError(f"{where}: spec is larger than 1 MiB")
        try:
            data = load_yaml(text, what=where, max_size=_MAX_SPEC_BYTES)
        except InputError as exc:
            raise UsageError(str(exc)) from None
        if not isinstance(data, dict):
            raise UsageError(f"{where}: expected a mapping at the top level (contents:, archs:, …)")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise UsageError(f"{where}: " + _describe(exc)) from None

    @classmethod
    def from_file(cls, path: Path | str) -> ImageSpec:
        return cls.from_yaml(read_spec(path), str(path))

    # -- derived ------------------------------------------------------------------------------

    def package_requests(self) -> list[str]:
        """The package requests for this spec's variant (dev adds ``dev.packages``)."""
        reqs = list(self.contents.packages)
        if self.variant == "dev":
            have = {p.partition("=")[0] for p in reqs}
            reqs += [p for p in self.dev.packages if p.partition("=")[0] not in have]
        return reqs

    def repo_sources(self) -> list[RepoSource]:
        """The repositories to use: the spec's own, else ``ASSAY_DEBIAN_MIRROR`` / host apt."""
        from assay.debian.sources import parse_repository_entries, sources_from_env_or_host

        if self.contents.repositories is None:
            return sources_from_env_or_host()
        entries = [
            r.model_dump(by_alias=True, exclude_none=True) for r in self.contents.repositories
        ]
        return parse_repository_entries(entries)

    def keyring_paths(self, spec_dir: Path) -> list[Path]:
        """Extra keyrings, relative paths taken from the spec's directory."""
        return [p if (p := Path(k)).is_absolute() else spec_dir / p for k in self.contents.keyring]


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ""
        for item in err["loc"]:
            if isinstance(item, int):
                loc += f"[{item}]"
            elif not str(item).startswith(("function-", "literal[", "list[", "str", "int")):
                loc += ("." if loc else "") + str(item)
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling; see the spec reference in the README)"
        elif err["type"] == "missing":
            msg = "required key is missing"
        parts.append(f"{loc or '(top level)'}: {msg}")
    more = len(exc.errors()) - 5
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")
