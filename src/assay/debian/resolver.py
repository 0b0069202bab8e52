"""Dependency resolution over a Packages index, making the choices apt makes.

The algorithm follows apt's ``pkgDepCache::MarkInstall`` for a system with nothing installed:

* every package name has one **candidate**: its highest version across all suites (so the
  security suite's fixes win), unless the request pins ``name=version``;
* the requested packages are marked first, then their ``Pre-Depends`` and ``Depends`` are walked
  depth-first in field order;
* a dependency group already satisfied by a marked package is skipped; otherwise the possible
  solutions are the candidates satisfying each alternative in order (the named package's own
  candidate, then candidates that ``Provides`` it — versioned provides satisfy versioned
  dependencies), each alternative's solutions ordered like apt's ``CompareProviders`` (the real
  package first, then Essential, then Priority), and the first one that can be installed wins;
* a solution whose own dependencies cannot be met by any candidate is skipped (apt's
  ``IsInstallOkDependenciesSatisfiableByCandidates``), as is one that conflicts with, or breaks,
  a package already marked;
* ``Recommends`` and ``Suggests`` are not followed and Essential packages are not added.

Resolution is for one architecture at a time: records of that architecture and ``all`` take part,
``:any`` is satisfied only by ``Multi-Arch: allowed`` packages (or by providers), ``:native`` and
an explicit qualifier naming the architecture mean the package itself, and any other qualifier is
unsatisfiable (no foreign architectures are configured).

Everything is ordered by name or by field order, so the result is deterministic.
"""

from __future__ import annotations

import contextlib
import difflib
import gc
import re
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from assay.debian.model import PackageRecord
from assay.debian.relations import Relation, parse_provides, parse_relations
from assay.debian.version import version_key
from assay.errors import InputError, ResolutionError

__all__ = ["CandidateIndex", "Resolution", "dependency_chains", "resolve"]

_PROVIDED_NAME = re.compile(r"(?:^|,)\s*([^\s,(:]+)")
_PRIORITY = {"required": 1, "important": 2, "standard": 3, "optional": 4, "extra": 5}
_MAX_DEPTH = 500


@dataclass(frozen=True)
class Resolution:
    """The packages chosen for one architecture, and why each is there."""

    arch: str
    requested: tuple[str, ...]
    packages: tuple[PackageRecord, ...]  # sorted by name
    edges: tuple[tuple[str, str], ...]  # (package, dependency it pulled in), sorted

    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.packages)

    def get(self, name: str) -> PackageRecord | None:
        for p in self.packages:
            if p.name == name:
                return p
        return None

    def depends_of(self, name: str) -> tuple[str, ...]:
        """Names of the chosen packages that ``name``'s dependencies resolved to."""
        return tuple(child for parent, child in self.edges if parent == name)

    def why(self, name: str, limit: int = 20) -> list[list[str]]:
        """Dependency chains from a requested package down to ``name`` (shortest first).

        Each chain is a list of package names starting at a requested package and ending at
        ``name``. A requested package yields ``[[name]]``. Unknown names yield ``[]``.
        """
        if self.get(name) is None:
            return []
        return dependency_chains(self.edges, self.requested, name, limit)


def dependency_chains(
    edges: Iterable[tuple[str, str]],
    requested: Iterable[str],
    name: str,
    limit: int = 20,
    max_steps: int = 100_000,
) -> list[list[str]]:
    """Chains ``[requested, …, name]`` through ``edges`` (parent → child), shortest first.

    Stops after ``limit`` chains or ``max_steps`` partial paths, so a dense graph cannot make
    it run away.
    """
    parents: dict[str, list[str]] = {}
    for parent, child in edges:
        parents.setdefault(child, []).append(parent)
    roots = set(requested)
    chains: list[list[str]] = []
    # Breadth-first from ``name`` upwards, so shorter chains come first.
    queue: deque[list[str]] = deque([[name]])
    steps = 0
    while queue and len(chains) < limit and steps < max_steps:
        steps += 1
        path = queue.popleft()
        head = path[0]
        if head in roots:
            chains.append(path)
            continue
        for parent in sorted(parents.get(head, [])):
            if parent not in path:
                queue.append([parent, *path])
    return chains


@dataclass(frozen=True, slots=True)
class _Provider:
    record: PackageRecord
    name: str  # the provided (virtual) name
    version: str | None  # provided version, None for an unversioned Provides


class CandidateIndex:
    """Candidates of one architecture, indexed by name and (lazily) by provided name.

    Build it once and pass it to ``resolve`` to resolve several requests against one index.
    """

    def __init__(
        self,
        arch: str,
        candidates: dict[str, PackageRecord],
        records: Sequence[PackageRecord] = (),
    ) -> None:
        self.arch = arch
        self.candidates = candidates
        self._records = records
        self._provider_names: dict[str, list[PackageRecord]] | None = None
        self._providers: dict[str, list[_Provider]] = {}

    @classmethod
    def build(cls, records: Sequence[PackageRecord], arch: str) -> CandidateIndex:
        candidates: dict[str, PackageRecord] = {}
        get = candidates.get
        with _gc_paused():
            for rec in records:
                a = rec.architecture
                if a != arch and a != "all":
                    continue
                best = get(rec.name)
                # Highest version wins; on a tie the record seen first (first source) stays.
                if best is None or (
                    rec.version != best.version
                    and version_key(rec.version) > version_key(best.version)
                ):
                    candidates[rec.name] = rec
        return cls(arch, candidates, records)

    def copy(self) -> CandidateIndex:
        other = CandidateIndex(self.arch, dict(self.candidates), self._records)
        other._provider_names = self._provider_names
        other._providers = dict(self._providers)
        return other

    def versions(self, name: str) -> list[PackageRecord]:
        """Every record of ``name`` for this architecture (all suites, all versions)."""
        return [
            r
            for r in self._records
            if r.name == name and (r.architecture == self.arch or r.architecture == "all")
        ]

    def _names_providing(self) -> dict[str, list[PackageRecord]]:
        # A cheap scan of every candidate's Provides for the names only; the full parse (with
        # validation) happens for the few names a resolution actually looks up.
        if self._provider_names is None:
            with _gc_paused():
                self._provider_names = _scan_provides(self.candidates.values())
        return self._provider_names

    def providers_of(self, name: str) -> list[_Provider]:
        """Candidates whose Provides names ``name`` (with the provided version)."""
        got = self._providers.get(name)
        if got is None:
            got = []
            for rec in sorted(self._names_providing().get(name, ()), key=lambda r: r.name):
                for rel in parse_provides(rec.provides):
                    if rel.name == name:
                        got.append(_Provider(rec, rel.name, rel.version))
            self._providers[name] = got
        return got

    def provided_names(self) -> list[str]:
        return list(self._names_providing())

    def pin(self, name: str, version: str) -> None:
        """Make ``name``'s candidate the given version (``apt-get install name=version``)."""
        recs = self.versions(name)
        for rec in recs:
            if version_key(rec.version) == version_key(version):
                if self.candidates.get(name) is not rec:
                    self.candidates[name] = rec
                    self._provider_names = None
                    self._providers = {}
                return
        have = ", ".join(sorted({r.version for r in recs}))
        raise ResolutionError(
            f"version {version} of {name} is not available for {self.arch}"
            + (f" (available: {have})" if have else "")
        )


def _scan_provides(candidates: Iterable[PackageRecord]) -> dict[str, list[PackageRecord]]:
    names: dict[str, list[PackageRecord]] = {}
    get = names.get
    find = _PROVIDED_NAME.findall
    for rec in candidates:
        if not rec.provides:
            continue
        for pname in find(rec.provides):
            lst = get(pname)
            if lst is None:
                names[pname] = [rec]
            elif lst[-1] is not rec:
                lst.append(rec)
    return names


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic GC while building indexes over ~10^5 records.

    The objects created are not garbage, but their allocation triggers full collections that
    walk every record in memory; pausing makes index building several times faster.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _prio(rec: PackageRecord) -> int:
    return _PRIORITY.get(rec.priority, 0)


class _Resolver:
    def __init__(self, index: CandidateIndex, exclude: frozenset[str] = frozenset()) -> None:
        self.index = index
        self.exclude = exclude
        self.arch = index.arch
        self.marked: dict[str, PackageRecord] = {}
        self.marked_provides: dict[str, list[_Provider]] = {}
        # name -> (marked package, its Conflicts/Breaks relation on that name, the kind)
        self.marked_negative: dict[str, list[tuple[PackageRecord, Relation, str]]] = {}

    # -- satisfaction -------------------------------------------------------------------------

    def _qualifier_ok(self, rel: Relation, rec: PackageRecord) -> bool:
        q = rel.arch_qualifier
        if q is None or q == "native" or q == self.arch:
            return True
        if q == "any":
            return rec.multi_arch == "allowed"
        return False

    def satisfied_by_marked(self, rel: Relation) -> PackageRecord | None:
        rec = self.marked.get(rel.name)
        if rec is not None and self._qualifier_ok(rel, rec) and rel.version_ok(rec.version):
            return rec
        if rel.arch_qualifier not in (None, "any", "native", self.arch):
            return None
        for prov in self.marked_provides.get(rel.name, ()):
            if rel.version_ok(prov.version):
                return prov.record
        return None

    def solutions(self, rel: Relation) -> list[PackageRecord]:
        """Candidates that satisfy ``rel``, in apt's CompareProviders order."""
        out: list[PackageRecord] = []
        cand = self.index.candidates.get(rel.name)
        if cand is not None and self._qualifier_ok(rel, cand) and rel.version_ok(cand.version):
            out.append(cand)
        if rel.arch_qualifier in (None, "any", "native", self.arch):
            for prov in self.index.providers_of(rel.name):
                if rel.version_ok(prov.version) and prov.record not in out:
                    out.append(prov.record)
        if len(out) > 1:
            out.sort(
                key=lambda r: (
                    r.name != rel.name,
                    not r.essential,
                    r.extra.get("Important", "").lower() != "yes",
                    _prio(r),
                    r.name,
                )
            )
        return out

    def _groups(self, rec: PackageRecord) -> list[tuple[Relation, ...]]:
        groups: list[tuple[Relation, ...]] = []
        for text in (rec.pre_depends, rec.depends):
            if not text:
                continue
            for group in parse_relations(text):
                alts = tuple(a for a in group if a.applies_to(self.arch))
                if self.exclude and any(self._excluded(a) for a in alts):
                    continue  # an excluded package counts as present: the group is met
                if alts:
                    groups.append(alts)
        return groups

    def _excluded(self, rel: Relation) -> bool:
        """Whether an excluded package is, or provides, what ``rel`` names."""
        if rel.name in self.exclude:
            return True
        return any(p.record.name in self.exclude for p in self.index.providers_of(rel.name))

    def _negatives(self, rec: PackageRecord) -> list[tuple[str, Relation]]:
        out: list[tuple[str, Relation]] = []
        for kind, text in (("conflicts with", rec.conflicts), ("breaks", rec.breaks)):
            if not text:
                continue
            for group in parse_relations(text):
                for rel in group:
                    if rel.applies_to(self.arch):
                        out.append((kind, rel))
        return out

    def _provided(self, rec: PackageRecord) -> list[_Provider]:
        if not rec.provides:
            return []
        return [_Provider(rec, r.name, r.version) for r in parse_provides(rec.provides)]

    def conflict_of(self, rec: PackageRecord) -> str | None:
        """Describe a Conflicts/Breaks between ``rec`` and a marked package, or None."""
        for kind, rel in self._negatives(rec):
            other = self.marked.get(rel.name)
            if other is not None and other is not rec and rel.version_ok(other.version):
                return f"{rec.name} {kind} {other.name} ({kind.split()[0]}: {rel})"
            for prov in self.marked_provides.get(rel.name, ()):
                if prov.record is not rec and rel.version_ok(prov.version):
                    return (
                        f"{rec.name} {kind} {prov.record.name}, which provides {rel.name}"
                        f" ({kind.split()[0]}: {rel})"
                    )
        targets: list[tuple[str, str | None, bool]] = [(rec.name, rec.version, True)]
        targets += [(rel.name, rel.version, False) for rel in parse_provides(rec.provides)]
        for target, version, real in targets:
            for other, rel, kind in self.marked_negative.get(target, ()):
                if other is rec:
                    continue
                if rel.version_ok(version):
                    via = "" if real else f", which {rec.name} provides"
                    return f"{other.name} {kind} {target}{via} ({rel})"
        return None

    # -- marking ------------------------------------------------------------------------------

    def _mark(self, rec: PackageRecord) -> None:
        self.marked[rec.name] = rec
        for prov in self._provided(rec):
            self.marked_provides.setdefault(prov.name, []).append(prov)
        for kind, rel in self._negatives(rec):
            self.marked_negative.setdefault(rel.name, []).append((rec, rel, kind))

    def _unmark(self, rec: PackageRecord) -> None:
        if self.marked.get(rec.name) is rec:
            del self.marked[rec.name]
        for key, provs in list(self.marked_provides.items()):
            kept = [p for p in provs if p.record is not rec]
            if kept:
                self.marked_provides[key] = kept
            else:
                del self.marked_provides[key]
        for key, negs in list(self.marked_negative.items()):
            kept_n = [n for n in negs if n[0] is not rec]
            if kept_n:
                self.marked_negative[key] = kept_n
            else:
                del self.marked_negative[key]

    def explain_unsatisfiable(self, rel: Relation) -> str:
        cand = self.index.candidates.get(rel.name)
        if cand is not None:
            if not self._qualifier_ok(rel, cand):
                if rel.arch_qualifier == "any":
                    return f"{rel.name} is not Multi-Arch: allowed, so {rel} cannot be met"
                return f"architecture {rel.arch_qualifier} is not configured"
            return f"only version {cand.version} is available"
        if self.index.providers_of(rel.name):
            return "no provider satisfies the version constraint"
        return f"not available for {self.arch}"

    def installable_by_candidates(self, rec: PackageRecord) -> list[str] | None:
        """apt's one-level look-ahead: every dependency group has some candidate."""
        for group in self._groups(rec):
            if any(self.satisfied_by_marked(a) or self.solutions(a) for a in group):
                continue
            alt = group[0]
            return [" | ".join(str(a) for a in group), self.explain_unsatisfiable(alt)]
        return None

    def mark_install(self, rec: PackageRecord, depth: int) -> list[str] | None:
        """Mark ``rec`` and its dependencies. Return None, or the failing chain below ``rec``."""
        if self.marked.get(rec.name) is rec:
            return None
        if depth > _MAX_DEPTH:
            return [f"dependency chain deeper than {_MAX_DEPTH}"]
        fail = self.installable_by_candidates(rec)
        if fail is not None:
            return fail
        clash = self.conflict_of(rec)
        if clash is not None:
            return [clash]
        self._mark(rec)
        for group in self._groups(rec):
            if any(self.satisfied_by_marked(a) for a in group):
                continue
            seen: list[PackageRecord] = []
            for alt in group:
                for sol in self.solutions(alt):
                    if sol not in seen:
                        seen.append(sol)
            first_fail: list[str] | None = None
            ok = False
            for sol in seen:
                if self.index.candidates.get(sol.name) is not sol:
                    continue
                sub = self.mark_install(sol, depth + 1)
                if sub is None:
                    ok = True
                    break
                if first_fail is None:
                    # Name the chosen package only when the group does not already say it.
                    plain = len(group) == 1 and group[0].name == sol.name
                    first_fail = sub if plain else [f"{sol.name} {sol.version}", *sub]
            if not ok:
                # Like apt, only this package is taken back; what its other dependencies
                # pulled in stays marked.
                self._unmark(rec)
                text = " | ".join(str(a) for a in group)
                if first_fail is None:
                    return [text, self.explain_unsatisfiable(group[0])]
                return [text, *first_fail]
        return None


def _parse_request(text: str) -> tuple[str, str | None]:
    text = text.strip()
    name, sep, version = text.partition("=")
    name = name.strip()
    if not name or (sep and not version.strip()):
        raise InputError(f"malformed package request {text!r}; expected NAME or NAME=VERSION")
    if sep:
        version_key(version.strip())  # validates
        return name, version.strip()
    return name, None


def _suggest(name: str, index: CandidateIndex) -> str:
    pool = list(index.candidates) + index.provided_names()
    close = difflib.get_close_matches(name, pool, n=3, cutoff=0.75)
    if not close:
        return ""
    return "; did you mean " + " or ".join(close) + "?"


def resolve(
    index_for_arch: Sequence[PackageRecord] | CandidateIndex,
    requests: Sequence[str],
    arch: str,
    exclude: Sequence[str] = (),
) -> Resolution:
    """Resolve ``requests`` (``NAME`` or ``NAME=VERSION``) against one architecture's index.

    ``exclude`` names packages that are never installed: a dependency that one of them could
    satisfy counts as met. assay never runs maintainer scripts, so packages that only those
    scripts need (debconf, an awk, dpkg itself) can be left out this way, as distroless does.

    Raises ResolutionError naming the failing chain, or suggesting close names for an unknown
    package; InputError for a malformed request.
    """
    if isinstance(index_for_arch, CandidateIndex):
        index = index_for_arch.copy()
    else:
        index = CandidateIndex.build(index_for_arch, arch)
    parsed = [_parse_request(r) for r in requests]
    excluded = frozenset(exclude)
    both = sorted(excluded & {name for name, _ in parsed})
    if both:
        raise ResolutionError(f"{', '.join(both)} is both requested and excluded")
    for name, version in parsed:
        if version is not None:
            if name not in index.candidates:
                raise ResolutionError(
                    f"package {name} is not available for {arch}{_suggest(name, index)}"
                )
            index.pin(name, version)

    res = _Resolver(index, excluded)
    roots: list[PackageRecord] = []
    for name, _version in parsed:
        cand = index.candidates.get(name)
        if cand is None:
            provs = sorted({p.record.name for p in index.providers_of(name)})
            if len(provs) == 1:
                cand = index.candidates[provs[0]]
            elif provs:
                raise ResolutionError(
                    f"{name} is a virtual package provided by {', '.join(provs)}; "
                    "request one of them explicitly"
                )
            else:
                raise ResolutionError(
                    f"package {name} is not available for {arch}{_suggest(name, index)}"
                )
        roots.append(cand)

    # Mark the requested packages first (apt marks the command line before auto-installing),
    # checking conflicts among them.
    for rec in roots:
        clash = res.conflict_of(rec)
        if clash is not None:
            raise ResolutionError(f"cannot install {rec.name}: {clash}")
        res._mark(rec)
    for rec in roots:
        res._unmark(rec)
        fail = res.mark_install(rec, 0)
        if fail is not None:
            raise ResolutionError(
                f"cannot install {rec.name} for {arch}: " + " → ".join([rec.name, *fail])
            )

    # Final consistency check: no Conflicts/Breaks among everything chosen.
    chosen = dict(sorted(res.marked.items()))
    for rec in chosen.values():
        res._unmark(rec)
        clash = res.conflict_of(rec)
        res._mark(rec)
        if clash is not None:
            raise ResolutionError(f"the resolved set is inconsistent: {clash}")

    edges: set[tuple[str, str]] = set()
    for rec in chosen.values():
        for group in res._groups(rec):
            for alt in group:
                sat = res.satisfied_by_marked(alt)
                if sat is not None:
                    if sat.name != rec.name:
                        edges.add((rec.name, sat.name))
                    break
    return Resolution(
        arch=arch,
        requested=tuple(r.name for r in roots),
        packages=tuple(chosen.values()),
        edges=tuple(sorted(edges)),
    )
