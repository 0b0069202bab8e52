"""``assay run``: unpack an image for the host architecture and run it with runc.

For smoke tests and demos, not a container runtime: one process, no network (a fresh network
namespace with only a loopback device), read-only root with a tmpfs on /tmp, the image's user,
no capabilities beyond runc's defaults, and ``noNewPrivileges``. The exit code is passed through.
"""

from __future__ import annotations

import json
import os
import platform as host_platform
import shutil
import stat
import subprocess
import tempfile
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from assay._json import load_json_object
from assay.errors import InputError, UsageError
from assay.oci.entry import Entry, EntryType
from assay.oci.layer import apply_layers, read_layer
from assay.oci.reference import ImageRef
from assay.oci.source import ImageManifest, ImageSource, open_local_image

__all__ = [
    "fill_rootfs",
    "host_arch",
    "run_image",
    "select_platform",
    "unpack_image",
    "unpack_rootfs",
]

_MACHINE_TO_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le"}


def host_arch() -> str:
    machine = host_platform.machine()
    return _MACHINE_TO_ARCH.get(machine, machine)


def _nothing(path: str) -> bool:
    return False


def select_platform(source: ImageSource, arch: str | None = None) -> ImageManifest:
    arch = arch or host_arch()
    images = source.manifests()
    for image in images:
        if image.platform.os == "linux" and image.platform.architecture == arch:
            return image
    have = ", ".join(str(i.platform) for i in images) or "none"
    raise UsageError(f"the image has no linux/{arch} platform (it has: {have})")


MAX_UNPACKED = 4 << 30  # bytes of file content ``assay run`` writes to disk


def _safe_parent(root: Path, rel: str) -> Path:
    """The on-disk parent of ``rel`` under ``root``, creating missing directories (a layer need
    not list them); refuse if any component is not a real directory."""
    cur = root
    for part in rel.split("/")[:-1]:
        cur = cur / part
        try:
            st = os.lstat(cur)
        except FileNotFoundError:
            # A layer need not list its directories; create them as runtimes do (0755).
            os.mkdir(cur, 0o755)
            continue
        if not stat.S_ISDIR(st.st_mode):
            raise InputError(f"refusing to write {rel!r}: {cur} is not a directory inside the root")
    return cur


def unpack_rootfs(view: Mapping[str, Entry], root: Path) -> None:
    """Write a merged layer view to ``root`` (an empty directory), owners and modes included.

    Files whose content was not read (``content_size`` set) are created empty, to be filled by
    ``fill_rootfs``. Devices and FIFOs are recorded in the view but never created.
    """
    am_root = os.geteuid() == 0
    dir_modes: list[tuple[Path, int]] = []
    links: list[tuple[Path, Entry]] = []
    for path in sorted(view, key=lambda p: p.split("/")):
        e = view[path]
        parent = _safe_parent(root, path)
        target = parent / path.rsplit("/", 1)[-1]
        if e.type is EntryType.DIR:
            if not target.is_dir() or target.is_symlink():
                os.mkdir(target, 0o700)
            dir_modes.append((target, e.mode))
        elif e.type is EntryType.FILE:
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(e.data)
            os.chmod(target, e.mode & 0o7777)
        elif e.type is EntryType.SYMLINK:
            os.symlink(e.link, target)
        elif e.type is EntryType.HARDLINK:
            links.append((target, e))  # once every file exists
            continue
        else:
            continue  # devices and fifos are not unpacked
        if am_root:
            os.lchown(target, e.uid, e.gid)
    for target, e in links:
        src = _safe_parent(root, e.link) / e.link.rsplit("/", 1)[-1]
        if src.is_symlink() or not src.is_file():
            raise InputError(f"hardlink {e.path!r} points at {e.link!r}, which is not a file")
        os.link(src, target)
    for target, mode in reversed(dir_modes):
        os.chmod(target, mode & 0o7777)


def fill_rootfs(
    source: ImageSource,
    image: ImageManifest,
    view: Mapping[str, Entry],
    origins: Mapping[str, tuple[int, str]],
    root: Path,
) -> None:
    """Stream the content of every file of ``view`` from its layer into ``root`` (a second
    pass over the layers; nothing is held in memory)."""
    needed: dict[int, dict[str, str]] = {}
    for path, (index, member) in origins.items():
        e = view.get(path)
        if e is not None and e.type is EntryType.FILE and e.content_size:
            needed.setdefault(index, {})[member] = path
    for index, members in sorted(needed.items()):
        desc, diff = image.layers[index], image.diff_ids[index]
        current: list[Any] = []

        def sink(member: str, size: int) -> Any:
            path = members.get(member)  # noqa: B023 - used before the loop moves on
            if path is None:
                return None
            target = _safe_parent(root, path) / path.rsplit("/", 1)[-1]
            fd = os.open(target, os.O_WRONLY | os.O_TRUNC | os.O_NOFOLLOW)
            fh = os.fdopen(fd, "wb")
            current.append(fh)  # noqa: B023
            return fh.write

        try:
            for _ in read_layer(
                source.open_layer(desc),
                media_type=desc.media_type,
                diff_id=diff,
                what=f"layer {desc.digest}",
                sink=sink,
            ):
                while current:
                    current.pop().close()
        finally:
            while current:
                current.pop().close()


def unpack_image(
    source: ImageSource, image: ImageManifest, root: Path, *, max_unpacked: int = MAX_UNPACKED
) -> dict[str, Entry]:
    """Unpack ``image`` into the empty directory ``root`` as a runtime would; return the view.

    Two passes over the layers: the merged tree without file content (so the size bound is
    checked before anything is written), then each file's content streamed to disk.
    """
    origins: dict[str, tuple[int, str]] = {}
    view = apply_layers(
        (
            read_layer(
                source.open_layer(d),
                media_type=d.media_type,
                diff_id=diff,
                what=f"layer {d.digest}",
                want_data=_nothing,
            )
            for d, diff in zip(image.layers, image.diff_ids, strict=True)
        ),
        origins=origins,
    )
    total = sum(e.size for e in view.values() if e.type is EntryType.FILE)
    if total > max_unpacked:
        raise InputError(
            f"the image unpacks to {total} bytes of files, over the {max_unpacked}-byte limit "
            "of assay run; refusing it (it looks malformed or hostile)"
        )
    unpack_rootfs(view, root)
    fill_rootfs(source, image, view, origins, root)
    return view


def _user(config: Mapping[str, Any], root: Path) -> tuple[int, int]:
    user = str(config.get("User") or "0:0")
    name, _, group = user.partition(":")

    def lookup(file: str, key: str, field: int) -> int:
        if key.isdigit():
            return int(key)
        try:
            for line in (root / "etc" / file).read_text().splitlines():
                parts = line.split(":")
                if parts[0] == key and len(parts) > field:
                    return int(parts[field])
        except OSError:
            pass
        raise UsageError(f"image user {user!r}: {key!r} is not in /etc/{file}")

    uid = lookup("passwd", name, 2)
    gid = lookup("group", group, 2) if group else uid
    return uid, gid


def _runc_config(
    bundle: Path, config: Mapping[str, Any], args: Sequence[str], entrypoint: str | None = None
) -> None:
    subprocess.run(["runc", "spec", "--bundle", str(bundle)], check=True, capture_output=True)
    spec_path = bundle / "config.json"
    spec = load_json_object(spec_path.read_bytes(), what="runc spec")
    uid, gid = _user(config, bundle / "rootfs")
    if entrypoint is not None:
        argv = [entrypoint, *args]
    else:
        cmd = list(args) if args else list(config.get("Cmd") or [])
        argv = list(config.get("Entrypoint") or []) + cmd
    if not argv:
        raise UsageError("the image has no entrypoint or cmd; pass a command after --")
    process = spec["process"]
    process["terminal"] = False
    process["args"] = argv
    process["env"] = list(config.get("Env") or [])
    process["cwd"] = config.get("WorkingDir") or "/"
    process["user"] = {"uid": uid, "gid": gid}
    spec["root"] = {"path": "rootfs", "readonly": True}
    spec["hostname"] = "assay-run"
    spec["mounts"].append(
        {
            "destination": "/tmp",
            "type": "tmpfs",
            "source": "tmpfs",
            "options": ["nosuid", "nodev", "mode=1777", "size=65536k"],
        }
    )
    namespaces = {n["type"] for n in spec["linux"]["namespaces"]}
    if "network" not in namespaces:  # no network: a namespace with only loopback
        spec["linux"]["namespaces"].append({"type": "network"})
    spec_path.write_text(json.dumps(spec, indent=2))


def run_image(
    ref: ImageRef,
    args: Sequence[str],
    *,
    arch: str | None = None,
    keep: Path | None = None,
    timeout: float | None = None,
    entrypoint: str | None = None,
    max_unpacked: int = MAX_UNPACKED,
) -> int:
    """Run ``ref`` for the host arch with runc; return the container's exit code.

    The image is unpacked by streaming each layer to disk (never into memory); more than
    ``max_unpacked`` bytes of file content is refused before anything is written.
    """
    if shutil.which("runc") is None:
        raise UsageError("runc is not installed (Debian package runc); assay run needs it")
    if os.geteuid() != 0:
        raise UsageError("assay run needs root to start runc (rootless runc is not set up)")
    bundle = keep or Path(tempfile.mkdtemp(prefix="assay-run-"))
    try:
        with open_local_image(ref) as source:
            image = select_platform(source, arch)
            config = image.config.get("config") or {}
            (bundle / "rootfs").mkdir(parents=True, exist_ok=False)
            unpack_image(source, image, bundle / "rootfs", max_unpacked=max_unpacked)
        _runc_config(bundle, config, args, entrypoint)
        container = f"assay-{uuid.uuid4().hex[:12]}"
        proc = subprocess.run(
            ["runc", "run", "--bundle", str(bundle), container], timeout=timeout, check=False
        )
        subprocess.run(["runc", "delete", "--force", container], capture_output=True, check=False)
        return proc.returncode
    finally:
        if keep is None:
            shutil.rmtree(bundle, ignore_errors=True)
