"""Python wheels for app images: hash-pinned requirements, wheel choice per target, installation.

No pip runs and none ends up in the image. A requirements file as ``pip-compile
--generate-hashes`` writes it pins every distribution to one version and its allowed SHA-256s;
:func:`select_wheel` picks the best wheel for the image's CPython version, glibc and architecture
(``packaging.tags`` order; musllinux wheels never fit a Debian base); :func:`install_wheel` unpacks
a verified wheel into file entries (site-packages, ``.dist-info`` with a rewritten ``RECORD`` and
``INSTALLER`` = ``assay``, console-script launchers, no ``.pyc``) that a layer writer can take
as they are. Wheels are outside input: names, sizes, the archive's own ``RECORD`` and every path
are checked before anything is returned.
"""

from __future__ import annotations

import base64
import configparser
import csv
import hashlib
import io
import posixpath
import re
import stat
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import NamedTuple
from urllib.parse import urljoin

from packaging.requirements import InvalidRequirement
from packaging.requirements import Requirement as _PkgRequirement
from packaging.tags import Tag, compatible_tags, cpython_tags
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    NormalizedName,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from assay.errors import InputError, VerificationError
from assay.oci.entry import Entry, EntryType

MAX_INDEX_FILES = 10_000
_HEX64 = re.compile(r"[0-9a-f]{64}")

__all__ = [
    "IndexFile",
    "InstalledFile",
    "PinnedRequirement",
    "PinnedWheel",
    "install_wheel",
    "layer_entries",
    "parse_requirements",
    "pypi_files",
    "resolve_wheel",
    "select_wheel",
    "target_tags",
    "verified_wheel",
    "wheelhouse_files",
]

MAX_REQUIREMENTS_BYTES = 1 << 20
MAX_WHEEL_BYTES = 512 << 20
MAX_WHEEL_ENTRIES = 100_000
MAX_UNPACKED_BYTES = 2 << 30
MAX_METADATA_BYTES = 1 << 20

# Debian architecture -> the machine name in manylinux platform tags.
_MACHINES = {"amd64": "x86_64", "arm64": "aarch64", "ppc64el": "ppc64le", "s390x": "s390x"}
# Legacy manylinux aliases and the glibc they stand for (PEP 600).
_LEGACY = {(2, 17): "manylinux2014", (2, 12): "manylinux2010", (2, 5): "manylinux1"}
_LEGACY_MACHINES = {(2, 17): None, (2, 12): {"x86_64", "i686"}, (2, 5): {"x86_64", "i686"}}
_HASH = re.compile(r"--hash=sha256:([0-9a-f]{64})")
_SCRIPT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_ENTRY_POINT = re.compile(r"([A-Za-z_][\w.]*)\s*:\s*([A-Za-z_][\w.]*)(\s*\[[^\]]*\])?")


@dataclass(frozen=True)
class PinnedRequirement:
    """``name==version`` with the SHA-256 digests its wheel may have."""

    name: NormalizedName
    version: Version
    sha256: frozenset[str]
    marker: str = ""


@dataclass(frozen=True)
class InstalledFile:
    """One file of an installed wheel: a relative image path, its bytes and its mode."""

    path: str
    data: bytes
    mode: int


def parse_requirements(text: str, *, source: str = "requirements") -> tuple[PinnedRequirement, ...]:
    """The pinned requirements of a ``--generate-hashes`` requirements file, sorted by name.

    Every line must be ``name==version`` (optionally with extras and a marker) with at least one
    ``--hash=sha256:…``; options, URLs, ranges and duplicates are input errors.
    """
    if len(text.encode()) > MAX_REQUIREMENTS_BYTES:
        raise InputError(
            f"{source}: larger than {MAX_REQUIREMENTS_BYTES} bytes; is it the right file?"
        )
    out: dict[NormalizedName, PinnedRequirement] = {}
    logical = re.sub(r"\\\r?\n", " ", text)
    for n, raw in enumerate(logical.splitlines(), 1):
        line = raw.split(" #", 1)[0].strip() if not raw.lstrip().startswith("#") else ""
        if not line:
            continue
        hashes = frozenset(_HASH.findall(line))
        spec = _HASH.sub(" ", line).strip()
        if "--hash=" in spec:
            raise InputError(
                f"{source}:{n}: only sha256 hashes are accepted (--hash=sha256:64 hex digits)"
            )
        if spec.startswith("-") or "--" in spec:
            raise InputError(
                f"{source}:{n}: options are not supported ({spec.split()[0]}); "
                "list only 'name==version --hash=sha256:…' lines (pip-compile --generate-hashes)"
            )
        try:
            req = _PkgRequirement(spec)
        except InvalidRequirement as e:
            raise InputError(f"{source}:{n}: not a requirement: {e}") from None
        pins = list(req.specifier)
        if req.url or len(pins) != 1 or pins[0].operator != "==" or "*" in pins[0].version:
            raise InputError(
                f"{source}:{n}: {req.name} is not pinned to one version; write {req.name}==VERSION "
                "(pip-compile --generate-hashes does)"
            )
        if not hashes:
            raise InputError(
                f"{source}:{n}: {req.name} has no --hash=sha256:…; generate the file with "
                "pip-compile --generate-hashes"
            )
        name = canonicalize_name(req.name)
        if name in out:
            raise InputError(f"{source}:{n}: {name} is listed twice; keep one pin")
        try:
            version = Version(pins[0].version)
        except InvalidVersion:
            raise InputError(f"{source}:{n}: {pins[0].version!r} is not a version") from None
        marker = str(req.marker) if req.marker else ""
        out[name] = PinnedRequirement(name, version, hashes, marker)
    return tuple(out[k] for k in sorted(out))


def target_tags(python: tuple[int, int], arch: str, glibc: tuple[int, int]) -> list[Tag]:
    """Wheel tags a CPython ``python`` on Debian ``arch`` with ``glibc`` accepts, best first."""
    machine = _MACHINES.get(arch)
    if machine is None:
        raise InputError(
            f"no Python wheel platform for architecture {arch!r}; use one of {sorted(_MACHINES)}"
        )
    if glibc[0] != 2:
        raise InputError(f"glibc {glibc[0]}.{glibc[1]} is not a glibc 2.x")
    platforms: list[str] = []
    for minor in range(glibc[1], 4, -1):
        platforms.append(f"manylinux_2_{minor}_{machine}")
        legacy = _LEGACY.get((2, minor))
        allowed = _LEGACY_MACHINES.get((2, minor))
        if legacy and (allowed is None or machine in allowed):
            platforms.append(f"{legacy}_{machine}")
    platforms.append(f"linux_{machine}")
    abi = f"cp{python[0]}{python[1]}"
    tags = list(cpython_tags(python, [abi, "abi3", "none"], platforms))
    tags += [t for t in compatible_tags(python, abi, platforms) if t not in tags]
    return tags


def select_wheel(req: PinnedRequirement, filenames: Iterable[str], tags: Sequence[Tag]) -> str:
    """The best wheel file name for ``req`` among ``filenames`` (an index's or a wheelhouse's)."""
    rank = {t: i for i, t in enumerate(tags)}
    best: tuple[int, str] | None = None
    sdists = 0
    for filename in filenames:
        if filename.endswith(".whl"):
            try:
                name, version, _build, wtags = parse_wheel_filename(filename)
            except (InvalidWheelFilename, InvalidVersion):
                continue
            if name != req.name or version != req.version:
                continue
            score = min((rank[t] for t in wtags if t in rank), default=None)
            if score is not None and (best is None or (score, filename) < best):
                best = (score, filename)
        elif filename.endswith((".tar.gz", ".zip")):
            try:
                sname, sversion = parse_sdist_filename(filename)
            except (InvalidSdistFilename, InvalidVersion):
                continue
            sdists += sname == req.name and sversion == req.version
    if best is not None:
        return best[1]
    if sdists:
        raise InputError(
            f"{req.name}=={req.version} has only a source distribution here; assay installs wheels "
            "only: build one (pip wheel) into a --find-links wheelhouse and pin its hash"
        )
    raise InputError(
        f"no wheel of {req.name}=={req.version} fits {tags[0] if tags else 'the target'}; "
        "pin a version that ships one for this Python and architecture"
    )


def verified_wheel(path: Path, req: PinnedRequirement) -> bytes:
    """The bytes of wheel ``path`` once its SHA-256 is one that ``req`` pins."""
    with path.open("rb") as f:
        data = f.read(MAX_WHEEL_BYTES + 1)
    if len(data) > MAX_WHEEL_BYTES:
        raise InputError(f"{path.name}: larger than {MAX_WHEEL_BYTES} bytes")
    digest = hashlib.sha256(data).hexdigest()
    if digest not in req.sha256:
        raise VerificationError(
            f"{path.name}: sha256 {digest} is not pinned for {req.name}=={req.version}; "
            "the file changed or the requirements file is stale "
            "(re-run pip-compile --generate-hashes)"
        )
    return data


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def _safe_member(name: str, wheel: str) -> str:
    parts = name.split("/")
    if (
        not name
        or name.startswith("/")
        or "\\" in name
        or "\0" in name
        or any(p in ("", ".", "..") for p in parts[:-1] + ([parts[-1]] if parts[-1] else []))
    ):
        raise InputError(f"{wheel}: unsafe path {name!r} in the wheel; refusing it")
    return name


def _read_members(data: bytes, wheel: str) -> dict[str, tuple[bytes, bool]]:
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise InputError(f"{wheel}: not a zip archive; is it a wheel?") from None
    infos = zf.infolist()
    if len(infos) > MAX_WHEEL_ENTRIES:
        raise InputError(f"{wheel}: more than {MAX_WHEEL_ENTRIES} entries")
    total = 0
    members: dict[str, tuple[bytes, bool]] = {}
    for info in infos:
        name = _safe_member(info.filename, wheel)
        mode = info.external_attr >> 16
        if info.is_dir():
            continue
        if stat.S_IFMT(mode) not in (0, stat.S_IFREG):
            raise InputError(f"{wheel}: {name} is not a regular file (links are refused)")
        total += info.file_size
        if total > MAX_UNPACKED_BYTES:
            raise InputError(f"{wheel}: unpacks to more than {MAX_UNPACKED_BYTES} bytes")
        if name in members:
            raise InputError(f"{wheel}: {name} appears twice")
        with zf.open(info) as f:
            content = f.read(info.file_size + 1)
        if len(content) != info.file_size:
            raise InputError(f"{wheel}: {name} does not match its declared size")
        members[name] = (content, bool(mode & 0o111))
    return members


def _check_record(members: dict[str, tuple[bytes, bool]], dist_info: str, wheel: str) -> None:
    record = members.get(f"{dist_info}/RECORD")
    if record is None:
        raise InputError(f"{wheel}: no {dist_info}/RECORD")
    listed: dict[str, str] = {}
    for row in csv.reader(io.StringIO(record[0].decode("utf-8", "strict"))):
        if row:
            listed[row[0]] = row[1] if len(row) > 1 else ""
    for name, (content, _exe) in members.items():
        if name == f"{dist_info}/RECORD" or name.startswith(f"{dist_info}/RECORD."):
            continue
        want = listed.get(name)
        if want is None:
            raise VerificationError(
                f"{wheel}: {name} is not listed in RECORD; the wheel was altered"
            )
        if want != _record_hash(content):
            raise VerificationError(
                f"{wheel}: {name} does not match its RECORD hash; the wheel was altered"
            )


def _launcher(interpreter: str, module: str, attr: str) -> bytes:
    head, _, rest = attr.partition(".")
    call = f"{head}.{rest}" if rest else head
    return (
        f"#!{interpreter}\n"
        "import sys\n"
        f"from {module} import {head}\n"
        "if __name__ == '__main__':\n"
        f"    sys.exit({call}())\n"
    ).encode()


def _entry_points(text: bytes, wheel: str) -> list[tuple[str, str, str]]:
    if len(text) > MAX_METADATA_BYTES:
        raise InputError(f"{wheel}: entry_points.txt is too large")
    parser = configparser.ConfigParser(interpolation=None, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    try:
        parser.read_string(text.decode("utf-8", "strict"))
    except (configparser.Error, UnicodeDecodeError) as e:
        raise InputError(f"{wheel}: unreadable entry_points.txt: {e}") from None
    out = []
    for section in ("console_scripts", "gui_scripts"):
        if not parser.has_section(section):
            continue
        for name, value in parser.items(section):
            m = _ENTRY_POINT.fullmatch(value.strip())
            if not _SCRIPT_NAME.fullmatch(name) or m is None:
                raise InputError(f"{wheel}: bad entry point {name!r} = {value!r}")
            out.append((name, m.group(1), m.group(2)))
    return out


def install_wheel(
    data: bytes,
    req: PinnedRequirement,
    *,
    wheel: str,
    site_packages: str,
    bin_dir: str,
    data_prefix: str,
    interpreter: str,
) -> tuple[InstalledFile, ...]:
    """The files of wheel ``data`` (already verified) installed as an image would hold them.

    ``site_packages``/``bin_dir``/``data_prefix`` are image paths without a leading slash (for
    Debian's python3: ``usr/local/lib/python3.11/dist-packages``, ``usr/local/bin``, ``usr/local``).
    Compiled ``.pyc`` files are left out; the output is sorted and depends only on the inputs.
    """
    name, version, _b, _t = parse_wheel_filename(wheel)
    if name != req.name or version != req.version:
        raise InputError(f"{wheel}: is not {req.name}=={req.version}")
    members = _read_members(data, wheel)
    dist_infos = {m.split("/", 1)[0] for m in members if m.split("/", 1)[0].endswith(".dist-info")}
    if len(dist_infos) != 1:
        raise InputError(f"{wheel}: expected one .dist-info directory, found {len(dist_infos)}")
    dist_info = dist_infos.pop()
    stem = dist_info[: -len(".dist-info")]
    dname, _, dversion = stem.rpartition("-")
    if canonicalize_name(dname) != req.name or Version(dversion) != req.version:
        raise InputError(f"{wheel}: {dist_info} does not belong to {req.name}=={req.version}")
    wheel_meta = members.get(f"{dist_info}/WHEEL", (b"", False))[0].decode("utf-8", "replace")
    if not re.search(r"^Wheel-Version: 1\.\d+\s*$", wheel_meta, re.M):
        raise InputError(f"{wheel}: missing or unsupported Wheel-Version (assay reads 1.x)")
    _check_record(members, dist_info, wheel)

    sp = PurePosixPath(site_packages)
    files: dict[str, InstalledFile] = {}

    def put(path: PurePosixPath, content: bytes, mode: int) -> None:
        key = str(path)
        if key in files:
            raise InputError(f"{wheel}: two files install to /{key}")
        files[key] = InstalledFile(key, content, mode)

    data_dir = f"{stem}.data/"
    for member, (content, exe) in sorted(members.items()):
        if member == f"{dist_info}/RECORD" or member.startswith(f"{dist_info}/RECORD."):
            continue
        if member.endswith((".pyc", ".pyo")):
            continue
        mode = 0o755 if exe else 0o644
        if member.startswith(data_dir):
            scheme, _, rel = member[len(data_dir) :].partition("/")
            if scheme in ("purelib", "platlib"):
                put(sp / rel, content, mode)
            elif scheme == "scripts":
                if content.startswith(b"#!python"):
                    content = b"#!" + interpreter.encode() + content[len(b"#!python") :]
                put(PurePosixPath(bin_dir) / rel, content, 0o755)
            elif scheme == "data":
                put(PurePosixPath(data_prefix) / rel, content, mode)
            else:
                raise InputError(f"{wheel}: unsupported wheel data scheme {scheme!r} ({member})")
        else:
            put(sp / member, content, mode)

    ep = members.get(f"{dist_info}/entry_points.txt")
    for script, module, attr in _entry_points(ep[0], wheel) if ep else []:
        put(PurePosixPath(bin_dir) / script, _launcher(interpreter, module, attr), 0o755)
    put(sp / dist_info / "INSTALLER", b"assay\n", 0o644)

    rows = []
    for key, f in sorted(files.items()):
        rows.append(
            f"{posixpath.relpath(key, site_packages)},{_record_hash(f.data)},{len(f.data)}\n"
        )
    rows.append(f"{dist_info}/RECORD,,\n")
    put(sp / dist_info / "RECORD", "".join(sorted(rows)).encode(), 0o644)
    return tuple(files[k] for k in sorted(files))


@dataclass(frozen=True)
class PinnedWheel:
    """The wheel chosen for one requirement and target: what a lock records."""

    name: NormalizedName
    version: Version
    filename: str
    url: str
    sha256: str
    size: int


class IndexFile(NamedTuple):
    """One file an index or a wheelhouse offers: where it is, its SHA-256 and its size."""

    url: str
    sha256: str
    size: int


def pypi_files(doc: object, req: PinnedRequirement, base: str = "") -> dict[str, IndexFile]:
    """``{filename: (url, sha256, size)}`` from PyPI's JSON API answer for
    ``/pypi/NAME/VERSION/json``. Relative file URLs (mirrors such as bandersnatch write them)
    are taken relative to ``base``, the document's own URL; every file URL must be https.

    The document is outside input: every field used is type-checked; yanked files are left out.
    """
    what = f"PyPI's answer for {req.name}=={req.version}"
    urls = doc.get("urls") if isinstance(doc, dict) else None
    if not isinstance(urls, list) or len(urls) > MAX_INDEX_FILES:
        raise InputError(f"{what} has no usable 'urls' list; is the index PyPI's JSON API?")
    out: dict[str, IndexFile] = {}
    for entry in urls:
        if not isinstance(entry, dict) or entry.get("yanked") is True:
            continue
        filename, url, digests = entry.get("filename"), entry.get("url"), entry.get("digests")
        sha = digests.get("sha256") if isinstance(digests, dict) else None
        size = entry.get("size")
        if not (isinstance(filename, str) and isinstance(url, str) and isinstance(sha, str)):
            raise InputError(f"{what}: a file entry lacks filename, url or digests.sha256")
        if base and isinstance(url, str) and "://" not in url:
            url = urljoin(base, url)
        if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= 1 << 40:
            raise InputError(f"{what}: file entry {filename!r} has no usable size")
        if (
            "/" in filename
            or "\\" in filename
            or not url.startswith("https://")
            or any(c.isspace() for c in url)
            or not _HEX64.fullmatch(sha)
        ):
            raise InputError(f"{what}: malformed file entry {filename!r}")
        out[filename] = IndexFile(url, sha, size)
    return out


def wheelhouse_files(directory: Path) -> dict[str, IndexFile]:
    """``{filename: (file URL, sha256)}`` for the wheels and sdists directly in ``directory``.

    Only regular files count (a symlink could point anywhere); subdirectories are not searched.
    """
    if not directory.is_dir():
        raise InputError(f"wheelhouse {directory} is not a directory; pass --find-links DIR")
    out: dict[str, IndexFile] = {}
    for entry in sorted(directory.iterdir()):
        if not entry.name.endswith((".whl", ".tar.gz", ".zip")):
            continue
        st = entry.lstat()
        if not stat.S_ISREG(st.st_mode):
            raise InputError(f"wheelhouse entry {entry} is not a regular file; copy the file in")
        if st.st_size > MAX_WHEEL_BYTES:
            raise InputError(f"wheelhouse entry {entry} is larger than {MAX_WHEEL_BYTES} bytes")
        digest = hashlib.sha256(entry.read_bytes()).hexdigest()
        out[entry.name] = IndexFile(entry.resolve().as_uri(), digest, st.st_size)
    return out


def resolve_wheel(
    req: PinnedRequirement, tags: Sequence[Tag], files: dict[str, IndexFile]
) -> PinnedWheel:
    """The wheel for ``req`` among an index's or wheelhouse's ``files``; its hash must be pinned."""
    filename = select_wheel(req, files, tags)
    url, sha, size = files[filename]
    if sha not in req.sha256:
        raise VerificationError(
            f"{filename}: the index lists sha256 {sha}, which is not pinned for {req.name}=="
            f"{req.version}; regenerate the requirements with --generate-hashes or check the index"
        )
    if size > MAX_WHEEL_BYTES:
        raise InputError(f"{filename}: {size} bytes, over the {MAX_WHEEL_BYTES}-byte wheel limit")
    return PinnedWheel(req.name, req.version, filename, url, sha, size)


def layer_entries(installed: Iterable[tuple[str, Iterable[InstalledFile]]]) -> list[Entry]:
    """Layer entries for installed wheels (``(distribution name, files)`` pairs), with their
    parent directories; each file's owner is its distribution. Two distributions writing one
    path is refused by the layer writer, which names both."""
    entries: list[Entry] = []
    dirs: set[str] = set()
    for owner, files in installed:
        for f in files:
            entries.append(Entry(f.path, EntryType.FILE, f.mode, data=f.data, owner=owner))
            parent = PurePosixPath(f.path).parent
            while str(parent) not in (".", "") and str(parent) not in dirs:
                dirs.add(str(parent))
                parent = parent.parent
    entries += [Entry(d, EntryType.DIR, 0o755) for d in sorted(dirs)]
    return entries
