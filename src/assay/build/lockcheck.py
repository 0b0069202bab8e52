"""A lock never widens trust: check a lock against its spec's sources and the signed indexes.

A lock is outside input (anyone who can edit ``NAME.lock.json`` could otherwise make a build ship
any file). Before a build uses a lock that it did not resolve itself:

* every source the lock names must be a repository the spec names (or, when the spec names none,
  the ``ASSAY_DEBIAN_MIRROR`` / host apt sources it falls back to), with the same suite and
  components; every Release it pins must be one of those sources' InRelease URLs;
* every pinned Release's recorded Date, Suite, Codename and Version must be the verified ones
  (they feed SOURCE_DATE_EPOCH and the generated os-release);
* every locked package must be listed, with exactly the lock's version, architecture, Filename,
  size, SHA256 (and the other fields the lock copies from the index), in the Packages index of
  its repository, suite and component, as listed by the InRelease the lock pins, whose signature
  verifies against the spec's keyring (:meth:`RepoClient.load` with ``pins``).

Anything else is a :class:`VerificationError` naming the package or source and what disagrees.
``lock_differences`` compares a lock with a fresh resolution for ``assay lock --check``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

from assay.build.lock import Lock, LockedPackage, LockedSource, locked_package
from assay.build.spec import ImageSpec
from assay.debian.model import PackageRecord, ReleaseInfo, RepoSource
from assay.errors import VerificationError

__all__ = [
    "check_lock",
    "check_lock_sources",
    "load_pinned_index",
    "lock_differences",
    "package_problems",
    "release_problems",
    "verify_lock",
]

_RELOCK = "the lock was edited or is corrupt; run 'assay lock SPEC' to re-resolve it"


class _Index(Protocol):
    @property
    def releases(self) -> tuple[ReleaseInfo, ...]: ...
    @property
    def packages(self) -> dict[str, tuple[PackageRecord, ...]]: ...


class _PinnedClient(Protocol):
    def load(
        self,
        sources: Sequence[RepoSource],
        archs: Sequence[str],
        pins: Mapping[str, str] | None = None,
    ) -> _Index: ...


def _inrelease_url(uri: str, suite: str) -> str:
    return f"{uri}/dists/{suite}/InRelease"


def _key(s: LockedSource | RepoSource) -> tuple[str, str, tuple[str, ...]]:
    return (s.uri, s.suite, tuple(s.components))


def check_lock_sources(lock: Lock, spec_sources: Sequence[RepoSource]) -> list[RepoSource]:
    """The spec's sources the lock uses (with the spec's keyrings), in the lock's order.

    Raises VerificationError when the lock names a source, a Release or a package repository the
    spec does not.
    """
    by_key = {_key(s): s for s in spec_sources}
    named = ", ".join(f"{s.uri} {s.suite}" for s in spec_sources) or "none"
    used: list[RepoSource] = []
    for ls in lock.sources:
        found = by_key.get(_key(ls))
        if found is None:
            raise VerificationError(
                f"lock source {ls.uri} {ls.suite} ({' '.join(ls.components)}) is not a "
                f"repository the spec names (it names: {named}); {_RELOCK}"
            )
        used.append(found)
    urls = {_inrelease_url(s.uri, s.suite): s for s in used}
    for rel in lock.releases:
        if rel.url not in urls:
            raise VerificationError(
                f"lock release {rel.url} is not the InRelease of a source the spec names; {_RELOCK}"
            )
    pinned = {r.url for r in lock.releases}
    for url in urls:
        if url not in pinned:
            raise VerificationError(f"lock pins no InRelease sha256 for {url}; {_RELOCK}")
    sources = {(s.uri, s.suite): s for s in used}
    for arch, pkgs in lock.packages.items():
        for p in pkgs:
            src = sources.get((p.repository, p.suite))
            if src is None or p.component not in src.components:
                raise VerificationError(
                    f"{arch}: package {p.name} comes from {p.repository} {p.suite}/"
                    f"{p.component}, which is not a source the lock and spec name; {_RELOCK}"
                )
    return used


def load_pinned_index(
    lock: Lock, spec_sources: Sequence[RepoSource], client: _PinnedClient, archs: Sequence[str]
) -> _Index:
    """Check the lock's sources, then load the signed indexes of exactly the pinned Releases."""
    used = check_lock_sources(lock, spec_sources)
    return client.load(used, archs, pins=lock.release_sha256s())


# The fields a LockedPackage copies from its index stanza (``depends`` is the resolution's).
_FIELDS = (
    "version",
    "architecture",
    "filename",
    "size",
    "sha256",
    "source",
    "source_version",
    "maintainer",
    "multi_arch",
    "essential",
    "priority",
)


_RELEASE_FIELDS = ("date", "date_epoch", "suite", "codename", "version")


def release_problems(lock: Lock, index: _Index) -> list[str]:
    """One line per pinned Release whose recorded fields (Date, Suite, Codename, Version: they
    feed SOURCE_DATE_EPOCH and os-release) are not what the verified Release says."""
    verified = {r.url: r for r in index.releases}
    out: list[str] = []
    for rel in lock.releases:
        got = verified.get(rel.url)
        if got is None:
            out.append(f"release {rel.url}: not among the verified Releases")
            continue
        for name in _RELEASE_FIELDS:
            if name == "version" and not rel.version:
                continue  # locks written before assay recorded it; os-release then uses codename
            if getattr(rel, name) != getattr(got, name):
                out.append(
                    f"release {rel.url}: {name} is {getattr(rel, name)!r} in the lock but "
                    f"{getattr(got, name)!r} in the signed Release"
                )
    return out


def package_problems(lock: Lock, index: _Index, archs: Sequence[str]) -> list[str]:
    """One line per locked package that the signed index does not list exactly as locked."""
    problems: list[str] = []
    for arch in archs:
        listed: dict[tuple[str, str, str, str], list[PackageRecord]] = {}
        for rec in index.packages.get(arch, ()):
            listed.setdefault((rec.repo.uri, rec.repo.suite, rec.component, rec.name), []).append(
                rec
            )
        for p in lock.packages.get(arch, []):
            where = f"{p.repository} {p.suite}/{p.component} binary-{arch}"
            recs = listed.get((p.repository, p.suite, p.component, p.name), [])
            if not recs:
                problems.append(
                    f"{arch}: package {p.name}: no signed index lists it (looked in {where})"
                )
                continue
            if any(_differs(p, r) == [] for r in recs):
                continue
            best = next((r for r in recs if r.version == p.version), recs[0])
            diffs = "; ".join(
                f"{name} is {got!r} in the lock but {want!r} in the signed index"
                for name, got, want in _differs(p, best)
            )
            problems.append(f"{arch}: package {p.name} {p.version}: {diffs} ({where})")
    return problems


def _differs(p: LockedPackage, rec: PackageRecord) -> list[tuple[str, object, object]]:
    want = locked_package(rec, p.depends)
    return [
        (name, getattr(p, name), getattr(want, name))
        for name in _FIELDS
        if getattr(p, name) != getattr(want, name)
    ]


def verify_lock(
    lock: Lock,
    spec_sources: Sequence[RepoSource],
    client: _PinnedClient,
    archs: Sequence[str],
    what: str = "lock",
) -> None:
    """Raise VerificationError unless every package of ``archs`` is vouched for by a signed
    index of a source the spec names (see the module docstring)."""
    index = load_pinned_index(lock, spec_sources, client, archs)
    problems = release_problems(lock, index) + package_problems(lock, index, archs)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise VerificationError(f"{what}: {problems[0]}{more}; {_RELOCK}")


def verified_stamp(
    lock: Lock, sources: Sequence[RepoSource], archs: Sequence[str], keyrings: Sequence[Path]
) -> str:
    """A content key for a successful ``verify_lock``: the lock's bytes, the sources it was
    checked against, the architectures and the bytes of every keyring that vouched for them.

    The build keeps an empty stamp file under this key in assay's cache after a check passes, so
    an unchanged lock is not re-verified on every warm build; any edit to the lock, the spec's
    sources or a keyring gives another key, and the full check runs again.
    """
    from assay.debian.sources import DEFAULT_KEYRING

    h = hashlib.sha256()
    h.update(b"assay-lockcheck-v1\0" + lock.to_json() + b"\0")
    rings: set[Path] = set()
    for s in sources:
        h.update(f"{s.uri}\0{s.suite}\0{','.join(s.components)}\0{s.signed_by or ''}\0".encode())
        if s.signed_by:
            rings.update(Path(x) for x in s.signed_by.split(",") if x)
    rings.update(keyrings or [DEFAULT_KEYRING])
    h.update(("\0".join(archs) + "\0").encode())
    for ring in sorted(rings):
        try:
            data = ring.read_bytes()
        except OSError:
            data = b"<missing>"
        h.update(str(ring).encode() + b"\0" + hashlib.sha256(data).digest())
    return h.hexdigest()


def lock_differences(old: Lock, new: Lock, archs: Sequence[str]) -> list[str]:
    """What a fresh resolution ``new`` gives differently from ``old``, one line each."""
    out: list[str] = []
    old_src = {_key(s) for s in old.sources}
    new_src = {_key(s) for s in new.sources}
    for uri, suite, comps in sorted(old_src - new_src):
        out.append(f"source {uri} {suite} ({' '.join(comps)}) is in the lock, not in the spec")
    for uri, suite, comps in sorted(new_src - old_src):
        out.append(f"source {uri} {suite} ({' '.join(comps)}) is in the spec, not in the lock")
    old_rel, new_rel = old.release_sha256s(), new.release_sha256s()
    for url in sorted(set(old_rel) | set(new_rel)):
        if old_rel.get(url) != new_rel.get(url):
            out.append(
                f"release {url}: sha256 {old_rel.get(url) or '(none)'} in the lock, "
                f"{new_rel.get(url) or '(none)'} resolved"
            )
    for arch in archs:
        a = {p.name: p for p in old.packages.get(arch, [])}
        b = {p.name: p for p in new.packages.get(arch, [])}
        for name in sorted(set(a) | set(b)):
            pa, pb = a.get(name), b.get(name)
            if pb is None:
                out.append(f"{arch}: package {name} is in the lock but not in the resolution")
            elif pa is None:
                out.append(f"{arch}: package {name} is resolved but missing from the lock")
            elif pa != pb:
                fields = [
                    f"{f} {getattr(pa, f)!r} -> {getattr(pb, f)!r}"
                    for f in (*_FIELDS, "url", "repository", "suite", "component", "depends")
                    if getattr(pa, f) != getattr(pb, f)
                ]
                out.append(f"{arch}: package {name}: " + ", ".join(fields))
    return out


def check_lock(
    lock: Lock,
    spec: ImageSpec,
    spec_path: Path | str,
    spec_bytes: bytes,
    client: _PinnedClient,
    archs: Sequence[str],
) -> list[str]:
    """Everything ``assay lock --check`` finds wrong with ``lock``, one line each (empty: ok).

    The spec digest, the sources, every pin against the pinned signed indexes, and a fresh
    resolution of the spec against those same indexes compared pin by pin. Raises
    VerificationError (a source the spec does not name) or NetworkError (pinned files neither
    cached nor served) when it cannot get that far.
    """
    from assay.build.lock import make_lock, spec_digest
    from assay.debian.resolver import resolve

    out: list[str] = []
    if lock.spec_digest != spec_digest(spec_bytes):
        return [
            f"stale: the spec changed since it was locked (spec sha256 "
            f"{spec_digest(spec_bytes)}, the lock records {lock.spec_digest})"
        ]
    spec_sources = spec.repo_sources()
    have = {_key(s) for s in lock.sources}
    for s in spec_sources:
        if _key(s) not in have:
            out.append(
                f"source {s.uri} {s.suite} ({' '.join(s.components)}) is in the spec, "
                "not in the lock"
            )
    missing = [a for a in archs if a not in lock.packages]
    out.extend(f"{a}: the lock has no packages for this architecture" for a in missing)
    archs = [a for a in archs if a in lock.packages]
    index = load_pinned_index(lock, spec_sources, client, archs)
    out.extend(release_problems(lock, index))
    out.extend(package_problems(lock, index, archs))
    requests = spec.package_requests()
    if list(lock.requested) != requests:
        out.append(f"requested packages are {requests} in the spec, {lock.requested} in the lock")
    resolutions = [
        resolve(index.packages.get(a, ()), requests, a, spec.contents.exclude) for a in archs
    ]
    used = check_lock_sources(lock, spec_sources)
    fresh = make_lock(spec_path, spec_bytes, requests, used, index.releases, resolutions)
    out.extend(lock_differences(lock, fresh, archs))
    if spec.python is not None or lock.python is not None:
        from assay.build.pylock import python_problems

        packages = {a: lock.packages[a] for a in archs}
        out.extend(python_problems(lock.python, spec, Path(spec_path).parent, packages))
    return list(dict.fromkeys(out))
