"""``assay lock SPEC``: resolve a spec to pinned packages and write ``SPEC.lock.json``."""

from __future__ import annotations

import json
import os
from enum import StrEnum
from pathlib import Path

import typer

from assay.cli import _console
from assay.errors import InputError, UsageError

__all__ = ["register"]


class LockOutput(StrEnum):
    text = "text"
    json = "json"


def _env_bool(name: str) -> bool:
    return os.environ.get(name, "").lower() in ("1", "true", "yes")


def lock_command(
    spec: Path = typer.Argument(
        ..., help="The image spec (YAML). The lock is written next to it as NAME.lock.json."
    ),
    why: str | None = typer.Option(
        None,
        "--why",
        metavar="PKG",
        help="Print the dependency chain(s) that pull PKG into the image (from the lock when "
        "it is up to date, else by resolving; nothing is written).",
        envvar="ASSAY_LOCK_WHY",
    ),
    arch: list[str] = typer.Option(
        [],
        "--arch",
        metavar="ARCH",
        help="Resolve only this architecture (repeatable; default: the spec's archs).",
        envvar="ASSAY_LOCK_ARCH",
    ),
    check: bool = typer.Option(
        False,
        "--check",
        help="Write nothing: exit 1 if the lock is missing, the spec changed, or its sources "
        "and pins differ from the spec's sources and the pinned signed indexes (each "
        "difference is named).",
        envvar="ASSAY_LOCK_CHECK",
    ),
    output: LockOutput = typer.Option(
        LockOutput.text,
        "--output",
        "-o",
        help="text: summary on stderr; json: also print the lock (or --why chains) on stdout.",
        envvar="ASSAY_LOCK_OUTPUT",
    ),
    find_links: Path | None = typer.Option(
        None,
        "--find-links",
        metavar="DIR",
        help="A local wheelhouse for the spec's python: requirements (instead of the spec's "
        "python.find-links); wheels not in it come from the index.",
        envvar="ASSAY_FIND_LINKS",
    ),
) -> None:
    """Resolve SPEC's packages against the signed Debian repositories and write the lock.

    Sources are the spec's contents.repositories, else ASSAY_DEBIAN_MIRROR, else the host's
    apt sources. Index files are cached (ASSAY_CACHE_DIR); a warm run only revalidates the
    signed InRelease files.

    Examples: `assay lock examples/python.yaml` writes examples/python.lock.json;
    `assay lock examples/python.yaml --why libssl3` shows what pulls libssl3 in;
    `assay lock examples/python.yaml --check` fails when the spec changed since, or when
    a source or pin in the lock is not what the spec and the signed indexes give.

    Exit codes: 0 ok; 1 resolution failed, a signature or hash check failed, or --check found
    a stale lock; 2 bad spec or arguments.
    """
    from assay.build.lock import (
        lock_matches_spec,
        lock_path_for,
        make_lock,
        read_lock,
        resolve_spec,
        with_python,
        write_lock,
    )
    from assay.build.spec import ImageSpec, read_spec

    lock_path = lock_path_for(spec)
    spec_bytes = read_spec(spec)

    if check:
        _check(spec, spec_bytes, lock_path, list(arch))
        return

    image = ImageSpec.from_yaml(spec_bytes, str(spec))
    archs = list(arch) or list(image.archs)
    unknown = [a for a in archs if a not in image.archs]
    if unknown:
        raise UsageError(
            f"--arch {', '.join(unknown)} is not in the spec's archs ({', '.join(image.archs)})"
        )

    if image.base is not None:
        if why is not None:
            raise UsageError("--why needs Debian packages; a spec with base: lists none")
        from assay.build.base import lock_base

        lock = lock_base(image, spec, spec_bytes, archs)
        write_lock(lock_path, lock)
        assert lock.base is not None
        _console.info(f"pinned base {image.base.ref} to {lock.base.digest}")
        _console.info(f"wrote {lock_path}")
        if output is LockOutput.json:
            _console.emit(lock.to_json())
        return

    if why is not None:
        found = _why_from_lock(lock_path, spec_bytes, archs, why)
        if found is None:
            found = _why_from_resolution(image, spec, archs, why)
        _print_why(found, why, archs, output)
        return

    from assay.debian.repo import RepoClient

    progress = None if _env_bool("ASSAY_QUIET") else _console.info
    with RepoClient(keyrings=image.keyring_paths(spec.parent), progress=progress) as client:
        sources, index, resolutions = resolve_spec(image, client, archs)
    requests = image.package_requests()

    lock = make_lock(spec, spec_bytes, requests, sources, index.releases, resolutions)
    lock = with_python(lock, image, spec.parent, find_links=find_links)
    if arch and lock_path.exists():
        # Keep the other architectures of an existing, still-matching lock.
        try:
            old = read_lock(lock_path)
        except InputError:
            old = None
        if old is not None and lock_matches_spec(old, spec_bytes):
            merged = dict(old.packages)
            merged.update(lock.packages)
            lock = lock.model_copy(update={"packages": dict(sorted(merged.items()))})
            if lock.python is not None and old.python is not None:
                py_archs = {**old.python.archs, **lock.python.archs}
                lock = lock.model_copy(
                    update={
                        "python": lock.python.model_copy(
                            update={"archs": dict(sorted(py_archs.items()))}
                        )
                    }
                )
    write_lock(lock_path, lock)
    for res in resolutions:
        size = sum(p.size for p in res.packages)
        _console.info(
            f"{res.arch}: {len(res.packages)} packages ({size / 1e6:.1f} MB of .deb files) "
            f"for {len(requests)} requested"
        )
        if lock.python is not None and res.arch in lock.python.archs:
            wheels = lock.python.archs[res.arch].wheels
            _console.info(
                f"{res.arch}: {len(wheels)} Python wheels for Python {lock.python.version} "
                f"({sum(w.size for w in wheels) / 1e6:.1f} MB)"
            )
    _console.info(f"wrote {lock_path}")
    if output is LockOutput.json:
        _console.emit(lock.to_json())


def _check(spec: Path, spec_bytes: bytes, lock_path: Path, archs: list[str]) -> None:
    """--check: the spec digest, the sources and every pin, re-resolved against the signed
    indexes the lock pins (cached: offline once they are). Exit 1 naming each difference."""
    from assay.build.lock import lock_matches_spec, read_lock
    from assay.build.lockcheck import check_lock
    from assay.build.spec import ImageSpec
    from assay.debian.repo import RepoClient

    if not lock_path.exists():
        _console.error(f"{lock_path} does not exist; run 'assay lock {spec}'")
        raise typer.Exit(1)
    lock = read_lock(lock_path)
    image = ImageSpec.from_yaml(spec_bytes, str(spec))
    unknown = [a for a in archs if a not in image.archs]
    if unknown:
        raise UsageError(
            f"--arch {', '.join(unknown)} is not in the spec's archs ({', '.join(image.archs)})"
        )
    if image.base is not None:
        from assay.build.base import open_base

        problems = [] if lock_matches_spec(lock, spec_bytes) else ["the spec changed since"]
        with open_base(image.base, spec.parent) as source:
            now = str(source.digest)
        if lock.base is None:
            problems.append("no base pinned")
        elif now != lock.base.digest:
            problems.append(f"base {image.base.ref} is now {now}, the lock pins {lock.base.digest}")
    else:
        progress = None if _env_bool("ASSAY_QUIET") else _console.info
        with RepoClient(keyrings=image.keyring_paths(spec.parent), progress=progress) as client:
            problems = check_lock(lock, image, spec, spec_bytes, client, archs or list(image.archs))
    if problems:
        for line in problems:
            _console.error(f"{lock_path}: {line}")
        _console.error(f"{lock_path} does not match {spec}; run 'assay lock {spec}'")
        raise typer.Exit(1)
    _console.info(f"{lock_path} matches {spec} and the signed indexes it pins")


# arch -> (version of PKG or None when not installed, chains)
_Why = dict[str, tuple[str | None, list[list[str]]]]


def _why_from_lock(lock_path: Path, spec_bytes: bytes, archs: list[str], why: str) -> _Why | None:
    """Answer --why from an up-to-date lock (no network), or None when there is none."""
    from assay.build.lock import lock_matches_spec, read_lock
    from assay.debian.resolver import dependency_chains

    if not lock_path.exists():
        return None
    try:
        lock = read_lock(lock_path)
    except InputError:
        return None
    if not lock_matches_spec(lock, spec_bytes) or not all(a in lock.packages for a in archs):
        return None
    roots = [r.partition("=")[0] for r in lock.requested]
    out: _Why = {}
    for a in archs:
        pkgs = lock.packages[a]
        version = next((p.version for p in pkgs if p.name == why), None)
        edges = [(p.name, d) for p in pkgs for d in p.depends]
        out[a] = (version, dependency_chains(edges, roots, why) if version else [])
    return out


def _why_from_resolution(image: object, spec: Path, archs: list[str], why: str) -> _Why:
    from assay.build.lock import resolve_spec
    from assay.build.spec import ImageSpec
    from assay.debian.repo import RepoClient

    assert isinstance(image, ImageSpec)
    progress = None if _env_bool("ASSAY_QUIET") else _console.info
    with RepoClient(keyrings=image.keyring_paths(spec.parent), progress=progress) as client:
        _sources, _index, resolutions = resolve_spec(image, client, archs)
    out: _Why = {}
    for res in resolutions:
        rec = res.get(why)
        out[res.arch] = (rec.version if rec else None, res.why(why))
    return out


def _print_why(found: _Why, why: str, archs: list[str], output: LockOutput) -> None:
    if not any(version for version, _ in found.values()):
        raise UsageError(f"{why} is not part of the resolved image ({', '.join(archs)})")
    if output is LockOutput.json:
        data = {a: chains for a, (_v, chains) in found.items()}
        _console.emit(json.dumps(data, indent=2) + "\n")
        return
    for a, (version, chains) in found.items():
        if version is None:
            typer.echo(f"{a}: {why} is not installed")
            continue
        typer.echo(f"{a}: {why} {version}")
        for chain in chains:
            typer.echo("  " + " → ".join(chain))


def register(app: typer.Typer) -> None:
    app.command(name="lock")(lock_command)
