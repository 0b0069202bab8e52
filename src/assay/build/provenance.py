"""SLSA v1 provenance for assay builds, and reading it back for ``rebuild``.

The statement names exactly what went in: the spec (content, path, and the git source when the
spec lives in a checkout), every ``.deb`` (URI, sha256, purl, plus the lock fields needed to put
the lock back together) and every Release file. Because assay builds are reproducible, the
provenance alone is enough to rebuild: see ``docs/build-type.md``.

Timestamps here are real (``startedOn``/``finishedOn``); they live in the provenance only, never
in the image.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from assay import __version__
from assay._json import load_json
from assay.build.localinputs import RECORDED_ROLES, valid_recorded_path
from assay.errors import InputError

__all__ = [
    "BUILD_TYPE",
    "DEFAULT_BUILDER_ID",
    "PREDICATE_TYPE",
    "STATEMENT_TYPE",
    "GitSource",
    "ParsedProvenance",
    "Subject",
    "build_provenance",
    "git_head",
    "git_source_for",
    "parse_provenance",
]

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
#: Documented in docs/build-type.md. Bump the trailing version when parameters change meaning.
BUILD_TYPE = "urn:assay:build-type:debian-image:v1"
#: The default builder: a local, host-independent assay invocation.
DEFAULT_BUILDER_ID = "urn:assay:builder:local:v1"

_MAX_PROVENANCE = 64 * 1024 * 1024


@dataclass(frozen=True)
class Subject:
    name: str  # "index" or "linux/amd64"
    digest: str  # "sha256:<hex>"


@dataclass(frozen=True)
class GitSource:
    uri: str  # "git+https://…" (as SLSA names source repositories)
    commit: str
    path: str  # the spec's path relative to the checkout root


def _git(args: Sequence[str], cwd: Path) -> str:
    out = subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=30, check=False
    )
    return out.stdout.strip() if out.returncode == 0 else ""


def git_head(folder: Path) -> str:
    """The commit checked out in the git checkout ``folder`` ("" when it is none)."""
    try:
        return _git(["rev-parse", "HEAD"], folder)
    except (OSError, subprocess.SubprocessError):
        return ""


def git_source_for(spec_path: Path) -> GitSource | None:
    """The repository, commit and relative path of a spec inside a git checkout, else None."""
    folder = spec_path.resolve().parent
    try:
        top = _git(["rev-parse", "--show-toplevel"], folder)
    except (OSError, subprocess.SubprocessError):
        return None
    if not top:
        return None
    commit = _git(["rev-parse", "HEAD"], folder)
    if not commit:
        return None
    remote = _git(["config", "--get", "remote.origin.url"], folder)
    uri = f"git+{remote}" if remote else f"git+file://{top}"
    rel = spec_path.resolve().relative_to(Path(top).resolve()).as_posix()
    return GitSource(uri=uri, commit=commit, path=rel)


def _rfc3339(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _hex(digest: str) -> str:
    algo, _, value = digest.partition(":")
    if algo != "sha256" or len(value) != 64:
        raise InputError(f"expected a sha256 digest, got {digest!r}")
    return value


def build_provenance(
    *,
    subjects: Sequence[Subject],
    spec_path: str,
    spec_content: str,
    git: GitSource | None,
    lock: Mapping[str, Any],
    internal: Mapping[str, Any],
    builder_id: str,
    started: datetime,
    finished: datetime,
    byproducts: Sequence[Mapping[str, Any]] = (),
    invocation_id: str | None = None,
    files: Mapping[str, tuple[str, str]] | None = None,
) -> dict[str, Any]:
    """Assemble the in-toto statement (a plain dict, ready for canonical JSON).

    ``lock`` is the lock document as written to ``NAME.lock.json`` (``Lock.model_dump(by_alias=
    True)``, possibly cut down to one architecture); its packages become the
    ``.deb`` resolvedDependencies and its releases the Release-file ones. ``files`` (``{path:
    (role, sha256)}``, ``assay.build.localinputs.input_digests``) are the files the spec read
    from its directory, each a resolvedDependency of kind ``file``.
    """
    external: dict[str, Any] = {
        "spec": {"path": spec_path, "content": spec_content},
        "archs": sorted(lock.get("packages", {})),
    }
    if git is not None:
        external["source"] = {"uri": git.uri, "commit": git.commit, "path": git.path}
    deps: list[dict[str, Any]] = []
    for release in lock.get("releases", []):
        deps.append(
            {
                "uri": release["url"],
                "digest": {"sha256": release["sha256"]},
                "mediaType": "text/plain",
                "annotations": {
                    "kind": "release",
                    **{k: v for k, v in sorted(release.items()) if k not in {"url", "sha256"}},
                },
            }
        )
    for arch, packages in sorted(lock.get("packages", {}).items()):
        for pkg in packages:
            annotations = {k: v for k, v in sorted(pkg.items()) if k not in {"url", "sha256"}}
            annotations["kind"] = "deb"
            annotations["lockArch"] = arch
            deps.append(
                {
                    "uri": pkg["url"],
                    "digest": {"sha256": pkg["sha256"]},
                    "name": pkg.get("purl") or _deb_purl(pkg),
                    "mediaType": "application/vnd.debian.binary-package",
                    "annotations": annotations,
                }
            )
    base = lock.get("base")
    if base:
        # The image built on (``base:``): its reference and the digest it was pinned to.
        deps.append(
            {
                "uri": base["ref"],
                "digest": {"sha256": _hex(base["digest"])},
                "annotations": {"kind": "base-image", "manifests": dict(base["manifests"])},
            }
        )
    python = lock.get("python") or {}
    for arch, target in sorted(python.get("archs", {}).items()):
        for wheel in target["wheels"]:
            deps.append(
                {
                    # a wheel from a local wheelhouse is named by its file name
                    "uri": wheel["url"] or wheel["filename"],
                    "digest": {"sha256": wheel["sha256"]},
                    "name": f"pkg:pypi/{wheel['name']}@{wheel['version']}",
                    "mediaType": "application/zip",
                    "annotations": {
                        "kind": "wheel",
                        "lockArch": arch,
                        "filename": wheel["filename"],
                        "origin": wheel["origin"],
                        "size": wheel["size"],
                    },
                }
            )
    for path, (role, sha) in sorted((files or {}).items()):
        deps.append(
            {
                "uri": "file:" + quote(path),
                "digest": {"sha256": sha},
                "annotations": {"kind": "file", "path": path, "role": role},
            }
        )
    # The lock's python section (wheels included) stays in internalParameters.lock, from which
    # rebuild takes it back; the wheel dependencies above are for provenance readers.
    lock_meta = {k: v for k, v in sorted(lock.items()) if k not in {"packages", "releases", "base"}}
    return {
        "_type": STATEMENT_TYPE,
        "subject": [
            {"name": s.name, "digest": {"sha256": _hex(s.digest)}}
            for s in sorted(subjects, key=lambda s: (s.name != "index", s.name))
        ],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": external,
                "internalParameters": {
                    "assayVersion": __version__,
                    **dict(sorted(internal.items())),
                    "lock": lock_meta,
                },
                "resolvedDependencies": deps,
            },
            "runDetails": {
                "builder": {"id": builder_id, "version": {"assay": __version__}},
                "metadata": {
                    "invocationId": invocation_id or str(uuid.uuid4()),
                    "startedOn": _rfc3339(started),
                    "finishedOn": _rfc3339(finished),
                },
                "byproducts": list(byproducts),
            },
        },
    }


def _deb_purl(pkg: Mapping[str, Any]) -> str:
    version = quote(str(pkg["version"]), safe="")
    return f"pkg:deb/debian/{pkg['name']}@{version}?arch={pkg['architecture']}"


@dataclass(frozen=True)
class ParsedProvenance:
    """What ``rebuild`` needs from a provenance statement."""

    statement: dict[str, Any]
    subjects: tuple[Subject, ...]
    builder_id: str
    build_type: str
    spec_path: str
    spec_content: str
    source: Mapping[str, str] | None
    internal: Mapping[str, Any]
    lock: dict[str, Any]  # the lock document put back together from resolvedDependencies
    # {path: (role, sha256)}: the files the spec read from its directory (kind "file")
    files: Mapping[str, tuple[str, str]] = field(default_factory=dict)


def parse_provenance(data: bytes | Mapping[str, Any]) -> ParsedProvenance:
    """Validate an assay provenance statement and recover the lock from it.

    Raises InputError naming the first field that is missing or malformed.
    """
    if isinstance(data, bytes | bytearray):
        if len(data) > _MAX_PROVENANCE:
            raise InputError("provenance document is larger than 64 MiB; refusing to parse it")
        doc = load_json(data, what="provenance", max_size=_MAX_PROVENANCE)
    else:
        doc = dict(data)
    if not isinstance(doc, dict):
        raise InputError("provenance must be a JSON object (an in-toto statement)")

    def need(obj: Any, key: str, where: str, kind: type = dict) -> Any:
        if not isinstance(obj, dict) or key not in obj:
            raise InputError(f"provenance field {where}.{key} is missing")
        value = obj[key]
        if not isinstance(value, kind):
            raise InputError(f"provenance field {where}.{key} must be a {kind.__name__}")
        return value

    if doc.get("_type") != STATEMENT_TYPE:
        raise InputError(f"provenance _type is {doc.get('_type')!r}, expected {STATEMENT_TYPE!r}")
    if doc.get("predicateType") != PREDICATE_TYPE:
        raise InputError(
            f"provenance predicateType is {doc.get('predicateType')!r}, expected {PREDICATE_TYPE!r}"
        )
    subjects = []
    for i, s in enumerate(need(doc, "subject", "statement", list)):
        sha = need(need(s, "digest", f"subject[{i}]"), "sha256", f"subject[{i}].digest", str)
        subjects.append(Subject(name=str(s.get("name", "")), digest=f"sha256:{sha}"))
    if not subjects:
        raise InputError("provenance has no subject")
    pred = need(doc, "predicate", "statement")
    bdef = need(pred, "buildDefinition", "predicate")
    run = need(pred, "runDetails", "predicate")
    build_type = need(bdef, "buildType", "buildDefinition", str)
    external = need(bdef, "externalParameters", "buildDefinition")
    internal = need(bdef, "internalParameters", "buildDefinition")
    spec = need(external, "spec", "externalParameters")
    deps = need(bdef, "resolvedDependencies", "buildDefinition", list)
    builder_id = need(need(run, "builder", "runDetails"), "id", "runDetails.builder", str)

    lock_doc = internal.get("lock", {})
    if not isinstance(lock_doc, dict):
        raise InputError("provenance field internalParameters.lock must be a dict")
    lock: dict[str, Any] = dict(lock_doc)
    releases: list[dict[str, Any]] = []
    arch_list = external.get("archs", [])
    if not isinstance(arch_list, list) or not all(isinstance(a, str) for a in arch_list):
        raise InputError("provenance field externalParameters.archs must be a list of strings")
    archs: dict[str, list[dict[str, Any]]] = {a: [] for a in arch_list}
    files: dict[str, tuple[str, str]] = {}
    for i, dep in enumerate(deps):
        where = f"resolvedDependencies[{i}]"
        uri = need(dep, "uri", where, str)
        sha = need(need(dep, "digest", where), "sha256", f"{where}.digest", str)
        ann = dict(need(dep, "annotations", where))
        kind = ann.pop("kind", "")
        if kind == "release":
            releases.append({"url": uri, "sha256": sha, **ann})
        elif kind == "base-image":
            manifests = ann.get("manifests")
            if not isinstance(manifests, dict):
                raise InputError(f"{where}.annotations.manifests must be a dict")
            lock["base"] = {"ref": uri, "digest": f"sha256:{sha}", "manifests": manifests}
        elif kind == "deb":
            arch = str(ann.pop("lockArch", ""))
            if arch not in archs:
                raise InputError(f"{where} names architecture {arch!r} that the build did not")
            archs[arch].append({**ann, "url": uri, "sha256": sha})
        elif kind == "file":
            path = valid_recorded_path(ann.get("path"), f"{where}.annotations.path")
            role = ann.get("role")
            if role not in RECORDED_ROLES:
                raise InputError(f"{where}.annotations.role {role!r} is not a known file role")
            if len(sha) != 64 or not all(c in "0123456789abcdef" for c in sha):
                raise InputError(f"{where}.digest.sha256 is not a SHA-256 hex digest")
            if files.setdefault(path, (str(role), sha)) != (role, sha):
                raise InputError(f"{where} records {path} a second time, differently")
        elif kind != "wheel":  # wheels come back from internalParameters.lock.python
            raise InputError(
                f"{where}.annotations.kind is {kind!r}; expected 'deb', 'release', 'wheel', "
                "'base-image' or 'file'"
            )
    source = external.get("source")
    if source is not None and not (
        isinstance(source, dict) and all(isinstance(v, str) for v in source.values())
    ):
        raise InputError("provenance field externalParameters.source must map names to strings")
    lock["releases"] = releases
    lock["packages"] = {a: p for a, p in archs.items() if p or "base" in lock}
    return ParsedProvenance(
        statement=doc,
        subjects=tuple(subjects),
        builder_id=builder_id,
        build_type=build_type,
        spec_path=str(need(spec, "path", "externalParameters.spec", str)),
        spec_content=str(need(spec, "content", "externalParameters.spec", str)),
        source=source,
        internal=internal,
        lock=lock,
        files=files,
    )


def now() -> datetime:
    return datetime.now(UTC)
