"""The ``python:`` part of a lock: one pinned wheel per requirement and architecture.

The image's CPython version comes from the spec (``python.version``) or from the locked Debian
packages (``python3.11-minimal`` → 3.11); its glibc from the locked ``libc6`` (``2.36-9+deb12u9``
→ manylinux up to ``manylinux_2_36``). For each architecture every requirement whose marker
applies gets the best wheel (``assay.build.wheels.select_wheel``) from the wheelhouse
(``find-links``) or the index (PyPI's JSON API), and that wheel's SHA-256 must be one the
requirements file pins. :func:`python_problems` is the other direction — a lock never widens
trust: every wheel pin must match a requirement's name, version and one of its hashes.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from packaging.markers import InvalidMarker, Marker

from assay.build.lock import LockedPackage, LockedPython, LockedPythonArch, LockedWheel
from assay.build.spec import ImageSpec, Python
from assay.build.wheels import (
    MAX_REQUIREMENTS_BYTES,
    IndexFile,
    PinnedRequirement,
    PinnedWheel,
    parse_requirements,
    pypi_files,
    resolve_wheel,
    target_tags,
    wheelhouse_files,
)
from assay.errors import InputError, NetworkError, UsageError, VerificationError

if TYPE_CHECKING:  # pragma: no cover
    import httpx

__all__ = [
    "IndexClient",
    "PypiJsonIndex",
    "applies",
    "glibc_version",
    "lock_python",
    "python_problems",
    "python_version",
    "read_requirements",
    "site_layout",
    "verify_python_lock",
    "wheelhouse_dir",
]

_PY_PACKAGE = re.compile(r"^(?:lib)?python(3)\.(\d{1,2})(?:-minimal)?$")
_LIBC = re.compile(r"^(?:\d+:)?2\.(\d{1,3})(?:[-.+~].*)?$")
_MACHINE = {"amd64": "x86_64", "arm64": "aarch64", "ppc64el": "ppc64le", "s390x": "s390x"}
_MAX_INDEX_ANSWER = 16 << 20
_RELOCK = "run 'assay lock SPEC' to re-resolve it"


class IndexClient(Protocol):
    """Where wheels of an index come from: ``files(req)`` lists what it offers for ``req``."""

    def files(self, req: PinnedRequirement) -> dict[str, IndexFile]: ...


class PypiJsonIndex:
    """PyPI's JSON API (``INDEX/NAME/VERSION/json``) over assay's HTTP client (deadlines)."""

    def __init__(self, base: str, http: httpx.Client) -> None:
        self.base = base.rstrip("/")
        self.http = http

    def files(self, req: PinnedRequirement) -> dict[str, IndexFile]:
        from assay._json import load_json
        from assay.debian.fetch import http_get

        # The release's own document; an index (or mirror) that serves only the project's
        # document gets the same file list from its "releases" mapping.
        for url in (
            f"{self.base}/{req.name}/{req.version}/json",
            f"{self.base}/{req.name}/json",
        ):
            got = http_get(self.http, url, _MAX_INDEX_ANSWER)
            if got.status == 404:
                continue
            if got.status != 200:
                raise NetworkError(
                    f"cannot read {url}: HTTP {got.status}; check python.index and the network"
                )
            doc = load_json(got.body, what=f"index answer {url}", max_size=_MAX_INDEX_ANSWER)
            if url.endswith(f"/{req.version}/json"):
                return pypi_files(doc, req, url)
            releases = doc.get("releases") if isinstance(doc, dict) else None
            files = releases.get(str(req.version)) if isinstance(releases, dict) else None
            if files is None and isinstance(releases, dict):
                files = next((v for k, v in releases.items() if _same_version(k, req)), None)
            if files is not None:
                return pypi_files({"urls": files}, req, url)
        raise InputError(
            f"{req.name}=={req.version} is not on the index {self.base}; check the "
            "requirements file (or put the wheel in a find-links wheelhouse)"
        )


def _same_version(text: object, req: PinnedRequirement) -> bool:
    from packaging.version import InvalidVersion, Version

    try:
        return isinstance(text, str) and Version(text) == req.version
    except InvalidVersion:
        return False


def python_version(packages: Sequence[LockedPackage], declared: str | None) -> tuple[int, int]:
    """The image's CPython (MAJOR, MINOR): ``declared`` ("3.11") or the locked interpreter."""
    if declared:
        major, minor = declared.split(".")
        return int(major), int(minor)
    found = set()
    for p in packages:
        m = _PY_PACKAGE.match(p.name)
        if m:
            found.add((int(m.group(1)), int(m.group(2))))
    if len(found) != 1:
        what = "no python3.X package" if not found else f"several ({sorted(found)})"
        raise UsageError(
            f"python: cannot tell the image's Python version: the lock has {what}; add "
            "python3.X-minimal to contents.packages or set python.version"
        )
    return found.pop()


def glibc_version(packages: Sequence[LockedPackage]) -> tuple[int, int]:
    """The glibc (2, MINOR) of the locked ``libc6`` (manylinux wheels must not need more)."""
    libc = next((p for p in packages if p.name == "libc6"), None)
    m = _LIBC.match(libc.version) if libc else None
    if m is None:
        raise UsageError(
            "python: wheels need the image's glibc version, but the lock has no libc6 "
            "(add libc6 to contents.packages)"
        )
    return 2, int(m.group(1))


def site_layout(version: tuple[int, int]) -> dict[str, str]:
    """Where wheels go in a Debian image: ``/usr/local`` (Debian's python puts
    ``/usr/local/lib/python3.X/dist-packages`` on sys.path; ``/usr/lib/python3`` is dpkg's)."""
    x, y = version
    return {
        "site_packages": f"usr/local/lib/python{x}.{y}/dist-packages",
        "bin_dir": "usr/local/bin",
        "data_prefix": "usr/local",
        "interpreter": f"/usr/bin/python{x}.{y}",
    }


def _inside(spec_dir: Path, rel: str, what: str) -> Path:
    base = spec_dir.resolve()
    target = (base / rel).resolve()
    if not target.is_relative_to(base) or target == base:
        raise UsageError(
            f"python.{what}: {rel!r} resolves to {target}, outside the spec's directory {base}"
        )
    return target


def read_requirements(
    spec_dir: Path, python: Python
) -> tuple[bytes, tuple[PinnedRequirement, ...]]:
    """The requirements file's bytes (confined to the spec's directory) and its pins."""
    from assay._safefs import open_beneath

    base = spec_dir.resolve()
    target = _inside(spec_dir, python.requirements, "requirements")
    what = f"python.requirements {python.requirements!r}"
    try:
        with open_beneath(base, str(target.relative_to(base)), what, MAX_REQUIREMENTS_BYTES) as fh:
            raw = fh.read(MAX_REQUIREMENTS_BYTES + 1)
    except FileNotFoundError:
        raise UsageError(f"{what} does not exist (looked in {base})") from None
    except OSError as exc:
        raise UsageError(f"{what}: cannot read it ({exc.strerror or exc})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{what} is not UTF-8 text") from None
    return raw, parse_requirements(text, source=python.requirements)


def wheelhouse_dir(spec_dir: Path, python: Python, override: Path | None = None) -> Path | None:
    """``--find-links DIR`` when given, else the spec's ``find-links`` (inside its directory)."""
    if override is not None:
        return override
    if python.find_links is None:
        return None
    return _inside(spec_dir, python.find_links, "find-links")


def _environment(version: tuple[int, int], arch: str) -> dict[str, str]:
    x, y = version
    return {
        "python_version": f"{x}.{y}",
        "python_full_version": f"{x}.{y}.0",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "platform_machine": _MACHINE.get(arch, arch),
        "platform_system": "Linux",
        "sys_platform": "linux",
        "os_name": "posix",
    }


def applies(req: PinnedRequirement, version: tuple[int, int], arch: str) -> bool:
    """Whether ``req``'s environment marker holds for this image and architecture."""
    if not req.marker:
        return True
    try:
        return Marker(req.marker).evaluate(_environment(version, arch))
    except InvalidMarker as exc:
        raise InputError(f"{req.name}: cannot evaluate its marker {req.marker!r}: {exc}") from None


def lock_python(
    spec: ImageSpec,
    spec_dir: Path,
    packages: Mapping[str, Sequence[LockedPackage]],
    *,
    find_links: Path | None = None,
    index: IndexClient | None = None,
) -> LockedPython | None:
    """Pin a wheel for every applicable requirement and architecture of ``packages``.

    A requirement the wheelhouse holds any file of (wheel or sdist) is taken from the
    wheelhouse only; any other comes from the index (``index``, default PyPI's JSON API over
    assay's HTTP client). Raises InputError naming the requirement and architecture when no
    wheel fits (sdist only), and VerificationError when the chosen wheel's SHA-256 is not pinned.
    """
    py = spec.python
    if py is None:
        return None
    raw, reqs = read_requirements(spec_dir, py)
    house = wheelhouse_dir(spec_dir, py, find_links)
    local = wheelhouse_files(house) if house is not None else {}
    version = None
    archs: dict[str, LockedPythonArch] = {}
    owned_http = None
    offered: dict[str, dict[str, IndexFile]] = {}
    try:
        for arch, pkgs in packages.items():
            arch_version = python_version(pkgs, py.version)
            if version is not None and arch_version != version:
                raise UsageError(
                    f"python: {arch} has Python {arch_version}, another architecture {version}"
                )
            version = arch_version
            glibc = glibc_version(pkgs)
            tags = target_tags(version, arch, glibc)
            wheels = []
            for req in reqs:
                if not applies(req, version, arch):
                    continue
                origin = "find-links"
                try:
                    pinned = resolve_wheel(req, tags, local)
                except InputError as exc:
                    if _offers(req, local):  # the wheelhouse has it, but no wheel that fits
                        raise InputError(f"python ({arch}): {exc}") from None
                    if index is None:
                        from assay.debian.fetch import make_client

                        owned_http = make_client(timeout=60.0)
                        index = PypiJsonIndex(py.index, owned_http)
                    if req.name not in offered:
                        offered[req.name] = index.files(req)
                    origin = "index"
                    try:
                        pinned = resolve_wheel(req, tags, offered[req.name])
                    except InputError as exc:
                        raise InputError(f"python ({arch}): {exc}") from None
                wheels.append(_locked(pinned, origin, req))
            archs[arch] = LockedPythonArch(glibc=f"2.{glibc[1]}", wheels=wheels)
    finally:
        if owned_http is not None:
            owned_http.close()
    if version is None:
        return None
    return LockedPython(
        version=f"{version[0]}.{version[1]}",
        requirements=py.requirements,
        requirementsSha256=hashlib.sha256(raw).hexdigest(),
        index=py.index,
        archs=archs,
    )


def _offers(req: PinnedRequirement, files: Mapping[str, IndexFile]) -> bool:
    """Whether ``files`` hold any distribution (wheel or sdist) of exactly ``req``."""
    from packaging.utils import (
        InvalidSdistFilename,
        InvalidWheelFilename,
        parse_sdist_filename,
        parse_wheel_filename,
    )
    from packaging.version import InvalidVersion

    for filename in files:
        try:
            if filename.endswith(".whl"):
                name, version = parse_wheel_filename(filename)[:2]
            else:
                name, version = parse_sdist_filename(filename)
        except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion):
            continue
        if name == req.name and version == req.version:
            return True
    return False


def _locked(pinned: PinnedWheel, origin: str, req: PinnedRequirement) -> LockedWheel:
    from packaging.utils import parse_wheel_filename

    tags = sorted(str(t) for t in parse_wheel_filename(pinned.filename)[3])
    return LockedWheel(
        name=req.name,
        version=str(req.version),
        filename=pinned.filename,
        origin=origin,  # type: ignore[arg-type]
        url=pinned.url if origin == "index" else "",
        size=pinned.size,
        sha256=pinned.sha256,
        tags=tags,
    )


def python_problems(
    locked: LockedPython | None,
    spec: ImageSpec,
    spec_dir: Path,
    packages: Mapping[str, Sequence[LockedPackage]],
) -> list[str]:
    """One line per way the lock's ``python`` part is not vouched for by the spec's pinned
    requirements (empty: every wheel is a pinned requirement's, and every applicable one has
    its wheel). Reads the requirements file; no network."""
    py = spec.python
    if py is None:
        return ["the lock pins Python wheels but the spec has no python:"] if locked else []
    if locked is None:
        return ["the spec has python: but the lock pins no wheels"]
    raw, reqs = read_requirements(spec_dir, py)
    out: list[str] = []
    if locked.requirements_sha256 != hashlib.sha256(raw).hexdigest():
        out.append(f"{py.requirements} changed since the lock was made")
    if locked.index != py.index:
        out.append(f"python index is {locked.index} in the lock but {py.index} in the spec")
    by_name: dict[str, PinnedRequirement] = {str(r.name): r for r in reqs}
    for arch, pkgs in packages.items():
        target = locked.archs.get(arch)
        if target is None:
            out.append(f"{arch}: the lock pins no Python wheels for this architecture")
            continue
        version = python_version(pkgs, py.version)
        if f"{version[0]}.{version[1]}" != locked.version:
            out.append(f"python version is {locked.version} in the lock, {version} in the image")
        glibc = glibc_version(pkgs)
        if target.glibc != f"2.{glibc[1]}":
            out.append(f"{arch}: glibc is {target.glibc} in the lock, 2.{glibc[1]} in libc6")
        pinned = {w.name for w in target.wheels}
        for w in target.wheels:
            req = by_name.get(w.name)
            if req is None:
                out.append(f"{arch}: wheel {w.filename} is not a requirement of {py.requirements}")
            elif str(req.version) != w.version:
                out.append(
                    f"{arch}: wheel {w.filename} is version {w.version}, "
                    f"{py.requirements} pins {req.version}"
                )
            elif w.sha256 not in req.sha256:
                out.append(
                    f"{arch}: wheel {w.filename} has sha256 {w.sha256}, not one "
                    f"{py.requirements} pins for {req.name}"
                )
        for req in reqs:
            if req.name not in pinned and applies(req, version, arch):
                out.append(f"{arch}: requirement {req.name}=={req.version} has no wheel pinned")
    return out


def verify_python_lock(
    locked: LockedPython | None,
    spec: ImageSpec,
    spec_dir: Path,
    packages: Mapping[str, Sequence[LockedPackage]],
    what: str = "lock",
) -> None:
    """VerificationError naming the first wheel the spec's requirements do not vouch for."""
    problems = python_problems(locked, spec, spec_dir, packages)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise VerificationError(f"{what}: {problems[0]}{more}; {_RELOCK}")
