"""``assay build``: spec + lock → fetched .debs → rootfs → layers → OCI image(s) → evidence.

Everything that goes into the image is a function of the spec, the lock (every .deb by digest)
and SOURCE_DATE_EPOCH, so two builds anywhere give the same digests. Output is all-or-nothing:
the layout is built in a staging directory and committed at the end (``oci.layout``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from assay.build import generated
from assay.build.base import BaseUse, base_created_epoch
from assay.build.layercache import cached_layer
from assay.build.layering import plan_layers
from assay.build.lock import (
    Lock,
    LockedPackage,
    lock_matches_spec,
    lock_path_for,
    read_lock,
    write_lock,
)
from assay.build.rootfs import AssemblyResult, assemble
from assay.build.spec import ImageSpec, read_spec
from assay.errors import InputError, UsageError
from assay.oci import mediatypes as mt
from assay.oci.archive import write_oci_archive
from assay.oci.entry import Entry, EntryType
from assay.oci.layer import LayerBlob
from assay.oci.layout import OciLayout, staged_layout
from assay.oci.model import Descriptor, Platform, history_entry, image_config, image_index, rfc3339
from assay.oci.model import image_manifest as make_manifest
from assay.oci.reference import ImageRef, parse_image_ref

if TYPE_CHECKING:  # pragma: no cover
    from assay.oci.source import ImageSource

__all__ = [
    "ArchImage",
    "BuildObserver",
    "BuildOptions",
    "BuildResult",
    "build_image",
    "dependency_order",
    "resolve_source_date_epoch",
]

log = logging.getLogger(__name__)

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
#: Go's and Debian's names for the architectures assay builds.
PLATFORMS: Mapping[str, Platform] = {
    "amd64": Platform("linux", "amd64"),
    "arm64": Platform("linux", "arm64", "v8"),
    "armhf": Platform("linux", "arm", "v7"),
    "i386": Platform("linux", "386"),
    "ppc64el": Platform("linux", "ppc64le"),
    "s390x": Platform("linux", "s390x"),
    "riscv64": Platform("linux", "riscv64"),
}


class BuildObserver(Protocol):
    """Progress reporting without UI code in the library (the CLI renders it)."""

    def stage(self, message: str) -> None: ...

    def progress(self, task: str, done: int, total: int) -> None: ...


class _Quiet:
    def stage(self, message: str) -> None:
        log.info("%s", message)

    def progress(self, task: str, done: int, total: int) -> None:
        pass


@dataclass(frozen=True)
class BuildOptions:
    source_date_epoch: int | None = None  # overrides spec and lock
    compression: Literal["gzip", "zstd"] = "gzip"
    cache_dir: Path | None = None
    archs: Sequence[str] | None = None  # a subset of the spec's archs (rebuild uses one)
    lock_path: Path | None = None  # default: NAME.lock.json beside the spec
    write_lock: bool = True  # write a missing lock beside the spec
    debs: Mapping[str, Path] | None = None  # sha256 -> local .deb (rebuild's fresh cache)
    # How a lock the build did not resolve itself is checked (build.lockcheck): "full" = its
    # sources are the spec's and every package is listed so in the pinned signed indexes;
    # "sources" = only the former (rebuild --snapshot-mirror, where old indexes are gone).
    lock_check: Literal["full", "sources"] = "full"
    # rebuild: a spec that names no repositories used its builder's host sources, which this
    # machine cannot know; take the lock's own sources as those (the keyring check still holds).
    host_sources_from_lock: bool = False
    find_links: Path | None = None  # a wheelhouse for python: (default: the spec's find-links)


@dataclass(frozen=True)
class ArchImage:
    arch: str
    platform: Platform
    manifest: Descriptor
    config: Descriptor
    layers: tuple[LayerBlob, ...]
    packages: tuple[LockedPackage, ...]
    assembly: AssemblyResult = field(repr=False, compare=False)
    #: ``base:`` builds: the base layers under ``layers`` (which are then only the new ones)
    base: BaseUse | None = field(default=None, repr=False, compare=False)
    # The Python wheels installed (assay.build.pyinstall.InstalledWheel), in their own layer.
    wheels: tuple[Any, ...] = field(default=(), repr=False, compare=False)

    @property
    def compressed_size(self) -> int:
        below = sum(d.size for d in self.base.layers) if self.base else 0
        return below + sum(layer.size for layer in self.layers)

    @property
    def uncompressed_size(self) -> int:
        return sum(layer.uncompressed_size for layer in self.layers)


@dataclass(frozen=True)
class BuildResult:
    # What the output tag names: the image index of a multi-platform build, or — for a single
    # platform — that platform's manifest itself (so syft, umoci and trivy read the layout as is)
    index: Descriptor
    images: tuple[ArchImage, ...]
    source_date_epoch: int
    lock: Lock
    spec: ImageSpec
    spec_path: Path
    spec_bytes: bytes
    output: ImageRef
    compression: str
    layout: Path | None  # the committed OCI layout (None for oci-archive output)
    lock_written: bool = False


def resolve_source_date_epoch(
    spec: ImageSpec,
    lock: Lock,
    override: int | None,
    env: Mapping[str, str] | None = None,
    *,
    fallback: int | None = None,
) -> int:
    """--source-date-epoch, else $SOURCE_DATE_EPOCH, else the spec's, else the newest Release
    Date in the lock, else ``fallback`` (a base image's ``created``). Never the wall clock."""
    if override is not None:
        return override
    env = os.environ if env is None else env
    raw = env.get("SOURCE_DATE_EPOCH", "").strip()
    if raw:
        if not raw.isdigit():
            raise UsageError(f"SOURCE_DATE_EPOCH={raw!r} is not a non-negative integer")
        return int(raw)
    if spec.source_date_epoch is not None:
        return spec.source_date_epoch
    dates = [r.date_epoch for r in lock.releases]
    if not dates and fallback is not None:
        return fallback
    if not dates:
        raise UsageError(
            "cannot choose SOURCE_DATE_EPOCH: the lock names no Release files; set "
            "source-date-epoch in the spec or SOURCE_DATE_EPOCH"
        )
    return max(dates)


def dependency_order(packages: Sequence[LockedPackage]) -> list[LockedPackage]:
    """Dependencies before dependents (as dpkg would unpack them); ties and cycles by name."""
    by_name = {p.name: p for p in packages}
    deps = {p.name: sorted(d for d in p.depends if d in by_name and d != p.name) for p in packages}
    done: set[str] = set()
    order: list[LockedPackage] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in done or name in visiting:
            return  # a cycle: broken where it closes, deterministically
        visiting.add(name)
        for dep in deps[name]:
            visit(dep)
        visiting.discard(name)
        done.add(name)
        order.append(by_name[name])

    for name in sorted(by_name):
        visit(name)
    return order


def _split_command(value: str | list[str] | None, what: str) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, list):
        return [str(v) for v in value]
    try:
        return shlex.split(value)
    except ValueError as exc:
        raise UsageError(f"{what}: cannot split {value!r}: {exc}") from None


def accounts_for(spec: ImageSpec) -> tuple[generated.Accounts, str]:
    """The image's users/groups and the ``User`` (uid:gid) it runs as."""
    acc = spec.accounts
    if not acc.users and not acc.groups:
        accounts = generated.DEFAULT_ACCOUNTS
    else:
        users = [
            generated.User(
                u.username,
                u.uid,
                u.gid if u.gid is not None else u.uid,
                u.homedir or (f"/home/{u.username}" if u.uid else "/root"),
                u.shell or generated.NOLOGIN,
                gecos=u.username,
            )
            for u in acc.users
        ]
        groups = [generated.Group(g.groupname, g.gid, tuple(g.members)) for g in acc.groups]
        have_users = {u.name for u in users}
        have_groups = {g.name for g in groups}
        for u in generated.DEFAULT_ACCOUNTS.users:
            if u.name == "root" and "root" not in have_users:
                users.insert(0, u)
        for g in generated.DEFAULT_ACCOUNTS.groups:
            if g.name == "root" and "root" not in have_groups:
                groups.insert(0, g)
        accounts = generated.Accounts(tuple(users), tuple(groups))
    run_as = acc.run_as or "65532:65532"
    if ":" not in run_as and not run_as.isdigit():
        match = [u for u in accounts.users if u.name == run_as]
        if not match:
            raise UsageError(
                f"accounts.run-as names user {run_as!r}, which accounts does not define"
            )
        run_as = f"{match[0].uid}:{match[0].gid}"
    elif run_as.isdigit():
        uid = int(run_as)
        gids = [u.gid for u in accounts.users if u.uid == uid]
        run_as = f"{uid}:{gids[0] if gids else uid}"
    return accounts, run_as


def _spec_paths(spec: ImageSpec, spec_dir: Path, mtime: int) -> list[Entry]:
    out: list[Entry] = []
    for p in spec.paths:
        path = p.path.strip("/")
        if p.type == "directory" and p.source:
            from assay.build.appfiles import read_tree

            out.extend(
                read_tree(
                    spec_dir,
                    p.source,
                    p.path,
                    what=f"paths: {p.path}",
                    uid=p.uid,
                    gid=p.gid,
                    mtime=mtime,
                    top_mode=p.permissions,
                )
            )
        elif p.type == "directory":
            out.append(Entry(path, EntryType.DIR, p.permissions, p.uid, p.gid, mtime))
        elif p.type == "file":
            if p.content is not None:
                data = p.content.encode()
            else:
                data = read_path_source(spec_dir, p.source or "", p.path)
            out.append(Entry(path, EntryType.FILE, p.permissions, p.uid, p.gid, mtime, data))
        elif p.type == "symlink":
            out.append(
                Entry(path, EntryType.SYMLINK, 0o777, p.uid, p.gid, mtime, link=p.source or "")
            )
        else:
            out.append(
                Entry(
                    path,
                    EntryType.HARDLINK,
                    p.permissions,
                    p.uid,
                    p.gid,
                    mtime,
                    link=(p.source or "").strip("/"),
                )
            )
    return out


#: The most ``paths[].source`` may read for one file.
MAX_PATH_SOURCE = 128 << 20


def read_path_source(spec_dir: Path, source: str, dest: str) -> bytes:
    """The content of a ``paths[].source`` file, confined to the spec's directory.

    The path (relative to the spec's directory, or absolute inside it) must resolve inside that
    directory: no ``..`` out of it, no symlink pointing out of it. It must be a regular file
    (not a directory, FIFO, device or socket) of at most 128 MiB. UsageError naming it otherwise.
    """
    from assay._safefs import open_beneath
    from assay.build.appfiles import confined_source

    base = spec_dir.resolve()
    rel = confined_source(spec_dir, source, f"paths: {dest}")
    what = f"paths: {dest}: source {source!r}"
    try:
        with open_beneath(base, rel, what, MAX_PATH_SOURCE) as fh:
            data = fh.read(MAX_PATH_SOURCE + 1)
    except FileNotFoundError:
        raise UsageError(f"{what} does not exist (looked in {base})") from None
    except InputError as exc:
        raise UsageError(str(exc)) from None
    except OSError as exc:
        raise UsageError(f"{what}: cannot read it ({exc.strerror or exc})") from None
    if len(data) > MAX_PATH_SOURCE:
        raise UsageError(f"{what} is over the {MAX_PATH_SOURCE}-byte limit")
    return data


def load_lock_for(
    spec: ImageSpec,
    spec_path: Path,
    spec_bytes: bytes,
    options: BuildOptions,
    resolve: Callable[[], Lock],
) -> tuple[Lock, bool]:
    """Use the lock beside the spec when it matches; resolve (and write it) when it is missing."""
    path = options.lock_path or lock_path_for(spec_path)
    if path.exists():
        lock = read_lock(path)
        if not lock_matches_spec(lock, spec_bytes):
            raise UsageError(
                f"{path} does not match {spec_path} (the spec changed since it was locked); "
                f"run `assay lock {spec_path}` to update it"
            )
        return lock, False
    lock = resolve()
    if options.write_lock:
        write_lock(path, lock)
        return lock, True
    return lock, False


@dataclass(frozen=True)
class _Build:
    """What every step of one build reads: the spec, where it lives, its lock (``what`` names
    the lock in messages), the architectures built, the options and the observer."""

    spec: ImageSpec
    spec_path: Path
    lock: Lock
    archs: tuple[str, ...]
    options: BuildOptions
    what: str
    obs: BuildObserver

    @property
    def spec_dir(self) -> Path:
        return Path(self.spec_path).parent


@dataclass(frozen=True)
class _Target:
    """Where the architectures' images are written: the layout, a scratch directory, the
    build's SOURCE_DATE_EPOCH and the user the image runs as."""

    layout: OciLayout
    workdir: Path
    epoch: int
    run_as: str


def build_image(
    spec_path: Path,
    output: ImageRef,
    *,
    options: BuildOptions = BuildOptions(),
    lock: Lock | None = None,
    spec_bytes: bytes | None = None,
    observer: BuildObserver | None = None,
) -> BuildResult:
    """Build the spec's image for each architecture and commit it to ``output``."""
    from assay.debian.fetch import DebCache

    obs = observer or _Quiet()
    if output.transport not in ("oci", "oci-archive"):
        raise UsageError(
            f"cannot build to {output}: use oci:DIR[:TAG] or oci-archive:FILE[:TAG] "
            "(push with `assay push` or `assay build --push`)"
        )
    spec_bytes = spec_bytes if spec_bytes is not None else read_spec(spec_path)
    spec = ImageSpec.from_yaml(spec_bytes, str(spec_path))
    lock_written = False
    resolved: list[bool] = []

    def resolve() -> Lock:
        resolved.append(True)
        if spec.base is not None:
            from assay.build.base import lock_base

            obs.stage(f"pinning the base image {spec.base.ref} (no lock yet)")
            return lock_base(spec, Path(spec_path), spec_bytes)
        return _resolve(spec, spec_path, spec_bytes, obs, options.find_links)

    what = "the lock given to the build"
    if lock is None:
        what = str(options.lock_path or lock_path_for(spec_path))
        lock, lock_written = load_lock_for(spec, spec_path, spec_bytes, options, resolve)
    archs = list(options.archs) if options.archs else list(spec.archs)
    for arch in archs:
        if arch not in lock.packages:
            raise UsageError(f"the lock has no packages for {arch}; run `assay lock {spec_path}`")
        if arch not in PLATFORMS:
            raise UsageError(f"unsupported architecture {arch!r}")
    build = _Build(spec, Path(spec_path), lock, tuple(archs), options, what, obs)
    if not resolved and spec.base is not None:
        from assay.build.base import check_base_lock

        check_base_lock(spec, lock, archs, what)
    elif not resolved:
        _verify_lock(build)
    python = _python_inputs(build)
    stack = contextlib.ExitStack()
    try:
        base_source = None
        fallback = None
        if spec.base is not None:
            base_source = stack.enter_context(
                _pinned_base(spec, spec_path, lock, bool(resolved), obs)
            )
            fallback = base_created_epoch(base_source.manifests())
        epoch = resolve_source_date_epoch(spec, lock, options.source_date_epoch, fallback=fallback)

        wanted = {p.sha256: p for a in archs for p in lock.packages[a]}
        local = dict(options.debs or {})
        missing = [
            (p.url, p.sha256, p.size) for sha, p in sorted(wanted.items()) if sha not in local
        ]
        obs.stage(f"fetching {len(wanted)} packages")
        with DebCache(options.cache_dir) as cache:
            paths = cache.fetch_all(missing, progress=lambda d, t: obs.progress("fetch", d, t))
        paths.update(local)

        if spec.base is None:
            accounts, run_as = accounts_for(spec)
        else:  # the base's /etc/passwd stays; run-as (UID[:GID]) only overrides the config's User
            accounts, run_as = generated.DEFAULT_ACCOUNTS, spec.accounts.run_as or ""
        tag = output.tag or "latest"
        workdir = Path(tempfile.mkdtemp(prefix="assay-build-"))
        images: list[ArchImage] = []
        try:
            with _output_layout(output, workdir, epoch) as layout:
                target = _Target(layout, workdir, epoch, run_as)
                index = _build_all(
                    build, target, paths, accounts, images, python=python, base=base_source
                )
                layout.tag(tag, index)
            layout_path = Path(output.path) if output.transport == "oci" else None
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        return BuildResult(
            index=index,
            images=tuple(images),
            source_date_epoch=epoch,
            lock=lock,
            spec=spec,
            spec_path=Path(spec_path),
            spec_bytes=spec_bytes,
            output=output,
            compression=options.compression,
            layout=layout_path,
            lock_written=lock_written,
        )
    finally:
        stack.close()


@contextlib.contextmanager
def _pinned_base(
    spec: ImageSpec, spec_path: Path, lock: Lock, just_locked: bool, obs: BuildObserver
) -> Iterator[ImageSource]:
    """The base image the lock pins, its signature checked (unless locking just did)."""
    from assay.build.base import open_base, verify_base

    assert spec.base is not None and lock.base is not None
    spec_dir = Path(spec_path).parent
    obs.stage(f"opening the base image {spec.base.ref}")
    with open_base(spec.base, spec_dir, digest=lock.base.digest) as source:
        if not just_locked and spec.base.verify is not None:
            obs.stage("verifying the base image's signature")
            verify_base(spec.base, spec_dir, lock.base.digest)
        yield source


def _entrypoint(spec: ImageSpec) -> list[str] | None:
    value = (
        spec.entrypoint.command
        if spec.entrypoint and not isinstance(spec.entrypoint, list)
        else spec.entrypoint
    )
    return _split_command(value, "entrypoint")  # type: ignore[arg-type]


def _build_arch_on_base(
    build: _Build, target: _Target, arch: str, source: ImageSource
) -> ArchImage:
    """One architecture of a ``base:`` build: the base's layers as they are, then the new ones
    (``paths``, then ``app``), and the base's config with the spec laid over it."""
    from assay.build.base import base_config, reused_layer, select_platform, with_parents

    spec, lock, epoch = build.spec, build.lock, target.epoch
    assert spec.base is not None and lock.base is not None
    platform = PLATFORMS[arch]
    image = select_platform(source.manifests(), platform, spec.base.ref)
    if str(image.digest) != lock.base.manifests[arch]:
        from assay.errors import VerificationError

        raise VerificationError(
            f"base {spec.base.ref}: the {platform} manifest is {image.digest}, the lock pins "
            f"{lock.base.manifests[arch]}"
        )
    build.obs.stage(f"copying {len(image.layers)} base layers for {arch}")
    below = tuple(reused_layer(d) for d in image.layers)
    for desc in image.layers:
        if not target.layout.has_blob(desc.digest):
            with source.open_layer(desc) as stream:
                target.layout.put_blob_stream(stream, desc.digest, desc.size)  # type: ignore[arg-type]
    layers = _NewLayers(build, target)
    new_entries: list[Entry] = []
    paths = _spec_paths(spec, build.spec_dir, epoch)
    if paths:
        paths = with_parents(paths, epoch)
        layers.add(paths, "paths")
        new_entries += paths
    if spec.app is not None:
        app = _app_entries(build, epoch, lower=paths)
        layers.add(app, f"app files {spec.app.source}")
        new_entries += app
    config_doc = base_config(
        image.config,
        user=target.run_as or None,
        env=spec.environment,
        entrypoint=_entrypoint(spec),
        cmd=_split_command(spec.cmd, "cmd"),
        working_dir=spec.work_dir,
        labels=spec.annotations,
        created=rfc3339(epoch),
        diff_ids=[b.diff_id for b in layers.blobs],
        history=layers.history,
    )
    annotations = {
        "org.opencontainers.image.created": rfc3339(epoch),
        "org.opencontainers.image.base.digest": str(image.digest),
        **spec.annotations,
    }
    ref = parse_image_ref(spec.base.ref)
    if ref.is_registry:
        annotations["org.opencontainers.image.base.name"] = ref.name + (
            f":{ref.tag}" if ref.tag else ""
        )
    config, manifest = _put_image(
        target.layout, config_doc, [*below, *layers.descriptors()], annotations, platform
    )
    inventory = _catalog_base(target.layout, image, below, arch, epoch)
    return ArchImage(
        arch=arch,
        platform=platform,
        manifest=manifest,
        config=config,
        layers=tuple(layers.blobs),
        packages=(),
        assembly=AssemblyResult(entries=new_entries, owners={}, setuid_dropped=[], warnings=[]),
        base=BaseUse(spec.base.ref, lock.base.digest, str(image.digest), below, inventory),
    )


def _put_image(
    layout: OciLayout,
    config_doc: dict[str, Any],
    layers: Sequence[Descriptor],
    annotations: Mapping[str, str],
    platform: Platform,
) -> tuple[Descriptor, Descriptor]:
    """Write one architecture's config and manifest; return their descriptors (the manifest's
    with its platform)."""
    config = layout.put_json(config_doc, mt.OCI_CONFIG)
    manifest_doc = make_manifest(config, layers, dict(annotations))
    return config, layout.put_json(manifest_doc, mt.OCI_MANIFEST).with_platform(platform)


def _catalog_base(
    layout: OciLayout,
    image: Any,
    below: Sequence[Descriptor],
    arch: str,
    epoch: int,
) -> Any:
    """The packages in the base's layers (read back from ``layout``), for the build SBOM."""
    import functools

    from assay.sbom.catalog import catalog_view, reduce_any, wants_any
    from assay.sbom.catalogers import default_catalogers
    from assay.sbom.fs import Selection
    from assay.sbom.layers import LayerInput, view_of_layers

    cats = default_catalogers()
    view = view_of_layers(
        [
            LayerInput(
                open=functools.partial(layout.open_blob, d.digest, d.size),
                media_type=d.media_type,
                diff_id=diff_id,
                what=f"base layer {d.digest}",
            )
            for d, diff_id in zip(below, image.diff_ids, strict=True)
        ],
        Selection(wants_any(cats), reduce_any(cats)),
    )
    return catalog_view(
        view,
        subject_name="base",
        subject_digest=str(image.digest),
        architecture=arch,
        catalogers=cats,
        created=rfc3339(epoch),
    )


@contextlib.contextmanager
def _output_layout(output: ImageRef, workdir: Path, epoch: int) -> Iterator[OciLayout]:
    """A layout to build into, committed to ``output`` only when the block succeeds."""
    if output.transport == "oci":
        with staged_layout(Path(output.path)) as layout:
            yield layout
        return
    layout = OciLayout.create(workdir / "layout")
    yield layout
    write_oci_archive(layout.path, Path(output.path), mtime=epoch)


def _cache_root(options: BuildOptions) -> Path:
    from assay.cachedir import cache_dir

    return options.cache_dir or cache_dir()


def _unpack_cache(options: BuildOptions) -> Path:
    """Decoded data.tar members (zstd, keyed by the sha256 of the compressed member)."""
    return _cache_root(options) / "unpacked"


def _resolve(
    spec: ImageSpec,
    spec_path: Path,
    spec_bytes: bytes,
    obs: BuildObserver,
    find_links: Path | None = None,
) -> Lock:
    from assay.build.lock import lock_spec
    from assay.debian.repo import RepoClient

    obs.stage("resolving packages (no lock yet)")
    with RepoClient(keyrings=spec.keyring_paths(Path(spec_path).parent)) as client:
        return lock_spec(spec, spec_path, client, spec_bytes, find_links=find_links)


@dataclass(frozen=True)
class _PythonInputs:
    """What the wheel layer needs: the pinned requirements and ``{sha256: cached wheel}``."""

    requirements: tuple[Any, ...]
    paths: Mapping[str, Path]


def _python_inputs(build: _Build) -> _PythonInputs | None:
    """Check the lock's wheel pins against the spec's requirements file (always: it is cheap
    and a lock must never widen trust), then fetch and verify the wheels into the cache."""
    spec, lock, archs = build.spec, build.lock, build.archs
    if spec.python is None and lock.python is None:
        return None
    from assay.build.pyinstall import fetch_wheels
    from assay.build.pylock import read_requirements, verify_python_lock, wheelhouse_dir

    spec_dir = build.spec_dir
    packages = {a: lock.packages[a] for a in archs}
    verify_python_lock(lock.python, spec, spec_dir, packages, what=build.what)
    assert spec.python is not None and lock.python is not None  # checked just above
    _raw, reqs = read_requirements(spec_dir, spec.python)
    count = len({w.sha256 for a in archs for w in lock.python.archs[a].wheels})
    build.obs.stage(f"fetching {count} Python wheels")
    paths = fetch_wheels(
        lock.python,
        archs,
        build.options.cache_dir,
        wheelhouse_dir(spec_dir, spec.python, build.options.find_links),
        progress=lambda d, t: build.obs.progress("wheels", d, t),
    )
    return _PythonInputs(reqs, paths)


def _verify_lock(build: _Build) -> None:
    """A lock read from outside must not widen trust (see ``build.lockcheck``)."""
    from assay.build.lockcheck import check_lock_sources, verify_lock
    from assay.debian.model import RepoSource

    spec, lock, options = build.spec, build.lock, build.options
    if options.host_sources_from_lock and spec.contents.repositories is None:
        sources = [RepoSource(s.uri, s.suite, tuple(s.components)) for s in lock.sources]
    else:
        sources = spec.repo_sources()
    if options.lock_check == "sources":
        check_lock_sources(lock, sources)
        return
    from assay._atomic import atomic_write_bytes
    from assay.build.lockcheck import verified_stamp
    from assay.cachedir import cache_dir
    from assay.debian.repo import RepoClient

    keyrings = spec.keyring_paths(build.spec_dir)
    stamp = cache_dir() / "lockcheck" / verified_stamp(lock, sources, build.archs, keyrings)
    if stamp.is_file():
        build.obs.stage("lock already checked against the signed package indexes (cached)")
        return
    build.obs.stage("checking the lock against the signed package indexes")
    with RepoClient(keyrings=keyrings) as client:
        verify_lock(lock, sources, client, build.archs, what=build.what)
    stamp.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(stamp, b"")


def _build_all(
    build: _Build,
    target: _Target,
    debs: Mapping[str, Path],
    accounts: generated.Accounts,
    images: list[ArchImage],
    base: ImageSource | None = None,
    python: _PythonInputs | None = None,
) -> Descriptor:
    """Build every architecture; return what the tag should name.

    One architecture: its manifest (with its platform), written directly under the tag — the
    layout tools such as syft's ``oci-dir:`` and umoci expect. Several: an image index.
    """
    manifests: list[Descriptor] = []
    for arch in build.archs:
        if base is not None:
            image = _build_arch_on_base(build, target, arch, base)
        else:
            image = _build_arch(build, target, arch, debs, accounts, python)
        images.append(image)
        manifests.append(image.manifest)
    if len(manifests) == 1:
        return manifests[0]
    created = rfc3339(target.epoch)
    index_doc = image_index(manifests, {"org.opencontainers.image.created": created})
    return target.layout.put_json(index_doc, mt.OCI_INDEX)


@dataclass
class _NewLayers:
    """The layers one architecture's build writes (or takes from the layer cache) into the
    layout, in order, with their history entries."""

    build: _Build
    target: _Target
    blobs: list[LayerBlob] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)

    def add(self, entries: Sequence[Entry], comment: str) -> None:
        """Write one layer of ``entries``; its history says ``assay build: {comment}``."""
        epoch = self.target.epoch
        blob = cached_layer(
            entries,
            self.target.workdir / "layers",
            _cache_root(self.build.options),
            source_date_epoch=epoch,
            compression=self.build.options.compression,
        )
        self.target.layout.put_blob_file(blob.path, blob.digest, blob.size, move=True, verify=False)
        self.blobs.append(blob)
        self.history.append(history_entry(epoch, f"assay build: {comment}", "assay"))

    def descriptors(self) -> list[Descriptor]:
        return [
            Descriptor(media_type=b.media_type, digest=b.digest, size=b.size) for b in self.blobs
        ]


def _app_entries(build: _Build, epoch: int, lower: Sequence[Entry]) -> list[Entry]:
    """The spec's ``app`` files, laid over the directories of the layers below them."""
    from assay.build.appfiles import app_entries

    assert build.spec.app is not None
    dirs = {e.path: e for e in lower if e.type is EntryType.DIR}
    return app_entries(build.spec.app, build.spec_dir, epoch, dirs)


def _build_arch(
    build: _Build,
    target: _Target,
    arch: str,
    debs: Mapping[str, Path],
    accounts: generated.Accounts,
    python: _PythonInputs | None = None,
) -> ArchImage:
    spec, lock, epoch, obs = build.spec, build.lock, target.epoch, build.obs
    ordered = dependency_order(lock.packages[arch])
    obs.stage(f"assembling {arch} rootfs from {len(ordered)} packages")
    result = assemble(
        [(p, debs[p.sha256]) for p in ordered],
        arch=arch,
        accounts=accounts,
        setuid_allow=[s.lstrip("/") for s in spec.setuid_allow],
        extra_paths=_spec_paths(spec, build.spec_dir, epoch),
        release=generated.os_release_for(lock.releases),
        mtime=epoch,
        progress=lambda d, t: obs.progress(f"assemble {arch}", d, t),
        unpack_cache=_unpack_cache(build.options),
    )
    entries = result.entries
    wheels: tuple[Any, ...] = ()
    wheel_entries: list[Entry] = []
    if python is not None and lock.python is not None:
        from assay.build.pyinstall import wheel_layer

        wheel_entries, wheels = wheel_layer(
            lock.python, arch, dict(python.paths), python.requirements, epoch
        )
    if spec.sbom.embed:
        from assay.build.embed import SBOM_DIR, embedded_spdx

        doc = embedded_spdx(
            result,
            lock.packages[arch],
            name=Path(build.spec_path).stem,
            arch=arch,
            source_date_epoch=epoch,
            wheels=wheels,
        )
        have = {e.path for e in entries}
        dirs = [
            Entry(p, EntryType.DIR, 0o755, mtime=epoch)
            for p in ("var", "var/lib", "var/lib/db", SBOM_DIR)
            if p not in have
        ]
        entries = [*entries, *dirs, doc]
    plans = plan_layers(entries, spec.layering.strategy, spec.layering.budget)
    layers = _NewLayers(build, target)
    for i, plan in enumerate(plans, 1):
        obs.stage(f"writing {arch} layer {i}/{len(plans)}")
        what = f"package {plan.name}" if plan.name else f"{len(ordered)} Debian packages"
        layers.add(plan.entries, what)
    if wheels:
        obs.stage(f"writing {arch} layer of {len(wheels)} Python packages")
        layers.add(wheel_entries, f"{len(wheels)} Python packages (wheels)")
    if spec.app is not None:
        app = _app_entries(build, epoch, lower=entries)
        obs.stage(f"writing {arch} app layer ({len(app)} entries)")
        layers.add(app, f"app files {spec.app.source}")
    env = {"PATH": DEFAULT_PATH}
    if any(p.name == "ca-certificates" for p in ordered):
        env["SSL_CERT_FILE"] = CA_BUNDLE
    env.update(spec.environment)
    platform = PLATFORMS[arch]
    config_doc = image_config(
        arch=platform.architecture,
        variant=platform.variant,
        user=target.run_as,
        env=[f"{k}={v}" for k, v in env.items()],
        entrypoint=_entrypoint(spec),
        cmd=_split_command(spec.cmd, "cmd"),
        working_dir=spec.work_dir or "",
        labels=spec.annotations or None,
        created=epoch,
        diff_ids=[b.diff_id for b in layers.blobs],
        history=layers.history,
    )
    annotations = {"org.opencontainers.image.created": rfc3339(epoch), **spec.annotations}
    config, manifest = _put_image(
        target.layout, config_doc, layers.descriptors(), annotations, platform
    )
    return ArchImage(
        arch=arch,
        platform=platform,
        manifest=manifest,
        config=config,
        layers=tuple(layers.blobs),
        packages=tuple(lock.packages[arch]),
        assembly=result,
        wheels=wheels,
    )
