"""Reproduce an image from its SLSA provenance alone, and check provenance like slsa-verifier.

``rebuild``: the spec content and the lock (every .deb and Release file by digest) come from the
provenance; the .debs are fetched by digest into a fresh temporary cache (from the recorded URI
or a ``--snapshot-mirror``); the build runs with the recorded SOURCE_DATE_EPOCH and options; the
resulting manifest digest must equal the provenance subject. When it does not, the two images are
compared file by file (``layerdiff``).

What rebuild trusts: the provenance (verify its signature first, ``verify-attestation``). Its
lock must name only repositories its recorded spec names, and every pin must be listed so in the
signed index of the InRelease it pins (checked against the spec's keyring, else the default
one), as for ``assay build``. Two exceptions: a recorded spec that names no repositories used
its builder's host sources, so the lock's own sources stand in for them (the signed-index check
still applies); with ``--snapshot-mirror`` (old versions whose indexes are gone) only the
sources are checked, and the .debs are trusted by the digests the provenance records.

A spec that reads files from its directory (``paths[].source``, ``app:``, ``python:``, relative
keyrings, a relative base or its key: ``assay.build.localinputs``) needs ``source_dir``, the
checkout it came from. The spec's directory in it is the directory of the recorded
``externalParameters.source.path`` (recorded when the spec was in a git checkout), else
``source_dir`` itself. The spec that is built is still the recorded one (a different copy in the
checkout is only noted); every file and tree it reads must resolve inside ``source_dir`` and have
the SHA-256 the provenance records (and, for the requirements file, the lock's
``requirementsSha256``), else VerificationError naming it. Wheels come from the recorded lock's
pins (URL or ``find-links`` file name, and SHA-256) as in a build; a local base image must have
the digest the lock pins.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from pydantic import ValidationError

from assay.build.builder import PLATFORMS, BuildObserver, BuildOptions, build_image
from assay.build.layerdiff import ImageDiff, diff_images
from assay.build.localinputs import LocalInput, digest_local_input, local_inputs
from assay.build.lock import Lock
from assay.build.provenance import BUILD_TYPE, ParsedProvenance, parse_provenance
from assay.build.spec import ImageSpec
from assay.errors import InputError, NetworkError, UsageError, VerificationError
from assay.oci.reference import ImageRef, parse_image_ref
from assay.oci.source import ImageSource, open_local_image

__all__ = [
    "ProvenanceCheck",
    "RebuildResult",
    "check_local_inputs",
    "check_provenance",
    "rebuild_from_provenance",
    "source_spec_dir",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProvenanceCheck:
    """Expected values for ``verify-provenance``; None means "not checked"."""

    builder_id: str
    source_uri: str | None = None
    source_commit: str | None = None


def check_provenance(
    statement: Mapping[str, Any], image_digest: str, expect: ProvenanceCheck
) -> ParsedProvenance:
    """Check a (signature-verified) provenance statement; raise VerificationError naming the
    field, the expected and the actual value."""
    try:
        prov = parse_provenance(dict(statement))
    except InputError as exc:
        raise VerificationError(f"provenance is malformed: {exc}") from exc
    digests = [s.digest for s in prov.subjects]
    if image_digest not in digests:
        raise VerificationError(
            f"subject: expected {image_digest}, provenance names {', '.join(digests)}"
        )
    if prov.build_type != BUILD_TYPE:
        raise VerificationError(
            f"buildDefinition.buildType: expected {BUILD_TYPE}, got {prov.build_type}"
        )
    if prov.builder_id != expect.builder_id:
        raise VerificationError(
            f"runDetails.builder.id: expected {expect.builder_id}, got {prov.builder_id}"
        )
    source = prov.source or {}
    if expect.source_uri is not None:
        got = source.get("uri", "")
        if _norm_uri(got) != _norm_uri(expect.source_uri):
            raise VerificationError(
                f"externalParameters.source.uri: expected {expect.source_uri}, "
                f"got {got or '(none)'}"
            )
    if expect.source_commit is not None:
        got = source.get("commit", "")
        if got != expect.source_commit:
            raise VerificationError(
                f"externalParameters.source.commit: expected {expect.source_commit}, "
                f"got {got or '(none)'}"
            )
    return prov


def _norm_uri(uri: str) -> str:
    uri = uri.strip()
    if not uri.startswith("git+"):
        uri = "git+" + uri
    return uri.removesuffix("/").removesuffix(".git")


@dataclass
class RebuildResult:
    arch: str
    expected: str  # manifest digest named by the provenance
    actual: str  # manifest digest the rebuild produced
    compared: bool = False  # an image was given to compare with
    image: str | None = None  # its manifest digest for this architecture (None: it has none)
    diff: ImageDiff | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def identical(self) -> bool:
        """The rebuild equals the provenance subject and, when an image was given, that image.

        An image that was given but has no manifest for this architecture is never identical.
        """
        if self.expected != self.actual:
            return False
        return self.image == self.actual if self.compared else True


def _expected_digest(prov: ParsedProvenance, arch: str) -> str:
    for s in prov.subjects:
        if s.name.startswith(f"linux/{_oci_arch(arch)}"):
            return s.digest
    manifests = [s for s in prov.subjects if s.name != "index"]
    if len(manifests) == 1:
        return manifests[0].digest
    raise InputError(f"provenance has no subject for linux/{arch}")


def _oci_arch(arch: str) -> str:
    return PLATFORMS[arch].architecture if arch in PLATFORMS else arch


def rebuild_from_provenance(
    prov: ParsedProvenance,
    *,
    original: ImageRef | None = None,
    snapshot_mirror: str | None = None,
    seed_cache: Path | None = None,
    observer: BuildObserver | None = None,
    workdir: Path | None = None,
    source_dir: Path | None = None,
) -> list[RebuildResult]:
    """Rebuild every architecture the provenance covers; compare with its subject digests.

    ``original`` (an image reference) is the image the rebuild must reproduce: each rebuilt
    manifest digest is compared with the provenance subject *and* with ``original``'s manifest for
    that architecture; it is also used for the file-level diff on a mismatch. ``source_dir`` is
    the checkout the spec came from, needed when the spec reads files beside it (UsageError
    naming the first such file without it; VerificationError naming a file whose digest differs).
    """
    if prov.build_type != BUILD_TYPE:
        raise VerificationError(
            f"buildDefinition.buildType is {prov.build_type}; assay can rebuild only {BUILD_TYPE}"
        )
    try:
        lock = Lock.model_validate(prov.lock)
    except ValidationError as exc:  # the recorded lock is malformed
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"])
        raise InputError(
            f"provenance resolvedDependencies do not form a valid lock: {where}: {first['msg']}"
        ) from None
    if not any(lock.packages.values()) and lock.base is None:
        raise InputError(
            "provenance resolvedDependencies name no .deb packages; nothing to rebuild"
        )
    internal = prov.internal
    epoch = internal.get("sourceDateEpoch")
    if not isinstance(epoch, int):
        raise InputError("provenance internalParameters.sourceDateEpoch is missing")
    compression = str(internal.get("compression", "gzip"))
    if compression not in ("gzip", "zstd"):
        raise InputError(f"provenance internalParameters.compression {compression!r} is unknown")
    if snapshot_mirror:
        base = snapshot_mirror.rstrip("/")
        lock = lock.model_copy(
            update={
                "packages": {
                    a: [p.model_copy(update={"url": f"{base}/{p.filename}"}) for p in pkgs]
                    for a, pkgs in lock.packages.items()
                }
            }
        )
    name = _spec_name(prov.spec_path)
    spec_bytes = prov.spec_content.encode("utf-8")
    spec = ImageSpec.from_yaml(spec_bytes, f"the spec recorded in the provenance ({name})")
    needed = local_inputs(spec)
    pre_notes: list[str] = []
    spec_dir: Path | None = None
    if source_dir is None:
        if needed:
            raise UsageError(
                f"the recorded spec reads {needed[0].label} from its directory; pass --source DIR "
                f"(the checkout it came from{_source_hint(prov, ': ')})"
            )
    else:
        spec_dir = source_spec_dir(source_dir, prov)
        check_local_inputs(spec, spec_dir, source_dir, prov, lock, pre_notes)
        _note_checkout(spec_dir / name, spec_bytes, source_dir, prov, pre_notes)
    tmp = Path(tempfile.mkdtemp(prefix="assay-rebuild-", dir=workdir))
    results: list[RebuildResult] = []
    try:
        if spec_dir is None:
            spec_path = tmp / name
            spec_path.write_bytes(spec_bytes)
        else:
            # build_image takes the recorded bytes; the path only says where its files are
            spec_path = spec_dir / name
        cache = tmp / "cache"
        debs = _seed(lock, seed_cache, cache) if seed_cache else {}
        for arch in sorted(lock.packages):
            out_dir = tmp / f"out-{arch}"
            try:
                result = build_image(
                    spec_path,
                    ImageRef(transport="oci", path=str(out_dir), tag="rebuild"),
                    options=BuildOptions(
                        source_date_epoch=epoch,
                        compression=compression,  # type: ignore[arg-type]
                        cache_dir=cache,
                        archs=[arch],
                        write_lock=False,
                        debs=debs,
                        lock_check="sources" if snapshot_mirror else "full",
                        host_sources_from_lock=True,
                    ),
                    lock=lock,
                    spec_bytes=spec_bytes,
                    observer=observer,
                )
            except NetworkError as exc:
                if snapshot_mirror:
                    raise
                raise NetworkError(
                    f"{exc}. The mirror may no longer serve a version the provenance names: "
                    "rebuild with --snapshot-mirror URI (an archive that keeps old versions; "
                    "each package's Filename is appended to it)"
                ) from exc
            image = result.images[0]
            rr = RebuildResult(arch, _expected_digest(prov, arch), image.manifest.digest)
            rr.notes.extend(pre_notes)
            if original is not None:
                rr.compared = True
                rr.image = _original_digest(original, rr.expected, arch, rr.notes)
            if not rr.identical:
                base = rr.image or rr.expected
                rr.diff = _diff(original, base, out_dir, arch, rr.notes)
            results.append(rr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return results


def _spec_name(recorded: str) -> str:
    """The spec's file name from ``externalParameters.spec.path`` (outside input)."""
    name = PurePosixPath(recorded).name
    if not name or name in (".", "..") or "\0" in name or "\\" in name or len(name) > 255:
        raise InputError(
            f"provenance externalParameters.spec.path {recorded[:200]!r} names no spec file"
        )
    return name


def _source_hint(prov: ParsedProvenance, lead: str) -> str:
    src = prov.source or {}
    uri, commit = src.get("uri"), src.get("commit")
    if not isinstance(uri, str) or not uri:
        return ""
    return f"{lead}{uri}" + (f" at {commit}" if isinstance(commit, str) and commit else "")


def source_spec_dir(source_dir: Path, prov: ParsedProvenance) -> Path:
    """The spec's directory inside the checkout ``source_dir``: the directory of the recorded
    ``source.path`` (the spec's path in its git checkout), else ``source_dir`` itself."""
    root = source_dir.resolve()
    if not root.is_dir():
        raise UsageError(f"--source {source_dir} is not a directory")
    rel = (prov.source or {}).get("path")
    if rel is None:
        return root
    where = "provenance externalParameters.source.path"
    if not isinstance(rel, str) or "\0" in rel or "\\" in rel or len(rel) > 4096:
        raise InputError(f"{where} must be a relative path")
    parent = PurePosixPath(rel).parent
    if parent.is_absolute() or ".." in parent.parts:
        raise InputError(f"{where} {rel!r} is not a path inside a checkout")
    spec_dir = (root / parent).resolve()
    if not spec_dir.is_relative_to(root):
        raise VerificationError(
            f"{parent} in --source {source_dir} resolves to {spec_dir}, outside it (a symlink)"
        )
    if not spec_dir.is_dir():
        raise UsageError(
            f"--source {source_dir} has no directory {parent} (where the spec {rel} was); "
            "give the root of the checkout the spec came from"
        )
    return spec_dir


def check_local_inputs(
    spec: ImageSpec,
    spec_dir: Path,
    source_dir: Path,
    prov: ParsedProvenance,
    lock: Lock,
    notes: list[str],
) -> None:
    """Every file ``spec`` reads must resolve inside ``source_dir`` and have the SHA-256 the
    provenance (and, for the requirements file, the lock) records.

    VerificationError naming the first file that differs; a file the provenance records no
    digest for (provenance written before assay recorded them) gets a note: then only the
    rebuilt image's digest vouches for it.
    """
    root = source_dir.resolve()
    commit = (prov.source or {}).get("commit")
    hint = f"; check out commit {commit}" if isinstance(commit, str) and commit else ""
    for item in local_inputs(spec):
        if PurePosixPath(item.path).is_absolute():
            raise UsageError(
                f"{item.label} is an absolute path; a rebuild finds only files the spec names "
                "relative to its directory"
            )
        target = (spec_dir / item.path).resolve()
        if not target.is_relative_to(root):
            raise VerificationError(
                f"{item.label} resolves to {target}, outside --source {source_dir}"
            )
        shown = target.relative_to(root).as_posix()
        if not item.recorded:  # its content is pinned by the lock (wheels, a local base)
            if not target.exists():
                raise UsageError(f"{item.label}: --source {source_dir} has no {shown}")
            continue
        got = digest_local_input(spec, spec_dir, item)
        kind = "tree" if item.is_tree else "file"
        for who, want in _recorded(item, prov, lock):
            if got != want:
                raise VerificationError(
                    f"{shown} in --source {source_dir} is not the {kind} the image was built "
                    f"from ({item.label}): sha256 {got}, {who} records {want}{hint}"
                )
        if not _recorded(item, prov, lock):
            notes.append(
                f"{item.label}: the provenance records no digest of it; only the rebuilt "
                "image's digest vouches for it"
            )


def _recorded(item: LocalInput, prov: ParsedProvenance, lock: Lock) -> list[tuple[str, str]]:
    out = []
    if item.path in prov.files:
        out.append(("the provenance", prov.files[item.path][1]))
    if item.role == "python.requirements" and lock.python is not None:
        out.append(("the recorded lock's requirementsSha256", lock.python.requirements_sha256))
    return out


def _note_checkout(
    spec_file: Path, spec_bytes: bytes, source_dir: Path, prov: ParsedProvenance, notes: list[str]
) -> None:
    """Say when the checkout's copy of the spec, or its commit, is not the recorded one."""
    from assay._safefs import read_regular

    try:  # a regular file of at most a spec's size (never a FIFO or device)
        differs = read_regular(spec_file, 1 << 20, str(spec_file)) != spec_bytes
    except (OSError, InputError):  # absent, or not a spec: nothing to compare
        differs = False
    if differs:
        notes.append(
            f"{spec_file} differs from the spec the provenance records; the recorded spec was "
            "rebuilt"
        )
    commit = (prov.source or {}).get("commit")
    if isinstance(commit, str) and commit:
        from assay.build.provenance import git_head

        head = git_head(source_dir)
        if head and head != commit:
            notes.append(f"--source {source_dir} is at commit {head}, the provenance at {commit}")


def _seed(lock: Lock, seed: Path, cache: Path) -> dict[str, Path]:
    """Copy .debs (and wheels) we already have (by digest) into the fresh cache. The build
    trusts these paths, so every copy is hashed (and its size checked) here, after copying."""
    from assay.debian.fetch import DebCache
    from assay.oci.digest import digest_file

    if lock.python is not None:
        _seed_wheels(lock, seed, cache)

    found: dict[str, Path] = {}
    src_cache = DebCache(seed)
    dst = cache / "seed"
    dst.mkdir(parents=True, exist_ok=True)
    try:
        for pkgs in lock.packages.values():
            for p in pkgs:
                src = src_cache.path_for(p.sha256)
                if p.sha256 in found or not src.is_file():
                    continue
                target = dst / f"{p.sha256}.deb"
                shutil.copyfile(src, target)
                if digest_file(target) == (f"sha256:{p.sha256}", p.size):
                    found[p.sha256] = target
                else:
                    target.unlink()
    finally:
        src_cache.close()
    return found


def _seed_wheels(lock: Lock, seed: Path, cache: Path) -> None:
    from assay.debian.fetch import DebCache

    assert lock.python is not None
    wheels = {w.sha256: w for t in lock.python.archs.values() for w in t.wheels}
    with (
        DebCache(seed, kind="wheels", suffix=".whl") as src,
        DebCache(cache, kind="wheels", suffix=".whl") as dst,
    ):
        for w in wheels.values():
            path = src.path_for(w.sha256)
            if path.is_file() and not path.is_symlink():
                try:
                    dst.add_file(path, w.sha256, w.size)  # hashed while copied
                except VerificationError:
                    log.warning("cached wheel %s is damaged; fetching it again", path)


def _original_digest(original: ImageRef, expected: str, arch: str, notes: list[str]) -> str | None:
    """The manifest digest of ``original`` for ``arch`` (None, with a note, when it has none).

    A registry or layout that cannot be read is an error: the comparison fails closed.
    """
    import assay.oci.push  # noqa: F401  (registers the docker:// opener)

    with open_local_image(original) as orig:
        img = _platform(orig, expected, arch)
        if img is None:
            notes.append(f"{original} has no manifest for linux/{_oci_arch(arch)}")
            return None
        if img.digest != expected:
            notes.append(
                f"{original} is {img.digest} for linux/{_oci_arch(arch)}, "
                f"not the provenance subject {expected}"
            )
        return str(img.digest)


def _diff(
    original: ImageRef | None, expected: str, out_dir: Path, arch: str, notes: list[str]
) -> ImageDiff | None:
    if original is None:
        notes.append("no original image given: cannot show a file-level diff")
        return None
    import assay.oci.push  # noqa: F401  (registers the docker:// opener)

    try:
        with (
            open_local_image(original) as orig,
            open_local_image(parse_image_ref(f"oci:{out_dir}:rebuild")) as new,
        ):
            expected_img = _platform(orig, expected, arch)
            if expected_img is None:
                notes.append(f"the original image has no manifest {expected}")
                return None
            new_img = new.manifests()[0]
            return diff_images(orig, expected_img, new, new_img)
    except Exception as exc:  # the diff is a courtesy; the mismatch stands either way
        notes.append(f"could not diff against {original}: {exc}")
        return None


def _platform(source: ImageSource, digest: str, arch: str) -> Any:
    for img in source.manifests():
        if img.digest == digest:
            return img
    for img in source.manifests():
        if img.platform.architecture == _oci_arch(arch):
            return img
    return None
