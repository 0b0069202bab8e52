"""Plain data shared by the repository client, the resolver, the lock and the build."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["PackageRecord", "ReleaseInfo", "RepoSource"]


@dataclass(frozen=True)
class RepoSource:
    """One deb822-style repository entry: a URI, one suite, its components.

    ``uri`` is the archive root (the directory holding ``dists/``), without trailing slash.
    One ``Types: deb`` stanza with several suites becomes several RepoSources.
    """

    uri: str
    suite: str
    components: tuple[str, ...] = ("main",)
    signed_by: str | None = None  # keyring path; None = the configured default keyring


@dataclass(frozen=True)
class ReleaseInfo:
    """A verified Release file (the signed content of InRelease)."""

    source: RepoSource
    url: str  # where the InRelease was fetched from
    sha256: str  # hex SHA256 of the InRelease file as fetched (signature included)
    date: str  # the Release file's Date field, verbatim (RFC 2822)
    date_epoch: int  # Date as Unix seconds, used as the default SOURCE_DATE_EPOCH
    valid_until: str | None
    codename: str
    suite: str
    origin: str
    version: str  # e.g. "12.8"; "" when absent (security suite has none in some releases)


@dataclass(frozen=True)
class PackageRecord:
    """One stanza of a Packages index, with the fields the resolver and build need.

    Relationship fields are kept as the raw strings from the index; ``assay.debian.relations``
    parses them. ``source``/``source_version`` are filled from the ``Source:`` field (which may be
    ``name (version)``) or default to the binary's own name/version.
    """

    name: str
    version: str
    architecture: str  # the package's own Architecture: e.g. amd64, arm64 or all
    source: str
    source_version: str
    filename: str  # path relative to the repository URI, e.g. pool/main/o/openssl/...
    size: int
    sha256: str
    repo: RepoSource
    component: str
    depends: str = ""
    pre_depends: str = ""
    provides: str = ""
    conflicts: str = ""
    breaks: str = ""
    multi_arch: str = ""  # "", "same", "foreign", "allowed"
    essential: bool = False
    priority: str = ""
    section: str = ""
    maintainer: str = ""
    installed_size: int = 0
    homepage: str = ""
    description: str = ""  # first line only
    extra: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    @property
    def url(self) -> str:
        return f"{self.repo.uri}/{self.filename}"
