"""A small diffoscope for OCI images: what differs between two platform images, file by file.

Compares the image configs key by key and the merged filesystems path by path: type, mode,
owner, size, mtime, link target and SHA256 of the content.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from assay.oci.digest import Digest
from assay.oci.entry import Entry
from assay.oci.layer import apply_layers, read_layer
from assay.oci.model import Descriptor
from assay.oci.source import ImageManifest, ImageSource

__all__ = ["FileDiff", "ImageDiff", "diff_images", "diff_views", "flatten"]


@dataclass(frozen=True)
class FileDiff:
    path: str
    field: str  # "added", "removed", or the differing attribute
    expected: str
    actual: str

    def __str__(self) -> str:
        if self.field in ("added", "removed"):
            return f"{self.field:8} /{self.path}  {self.expected or self.actual}"
        return f"changed  /{self.path}  {self.field}: {self.expected} → {self.actual}"


@dataclass(frozen=True)
class ImageDiff:
    config: tuple[tuple[str, str, str], ...]  # (key, expected JSON, actual JSON)
    layers: tuple[tuple[int, str, str], ...]  # (index, expected digest, actual digest)
    files: tuple[FileDiff, ...]

    @property
    def empty(self) -> bool:
        return not (self.config or self.layers or self.files)

    def lines(self, limit: int = 200) -> list[str]:
        out = [f"config   {k}: {a} → {b}" for k, a, b in self.config]
        out += [f"layer    #{i}: {a} → {b}" for i, a, b in self.layers]
        out += [str(f) for f in self.files[:limit]]
        if self.layers and not self.files:
            out.append(
                "every file's type, mode, owner, size, mtime, link and content are identical: "
                "the layers differ only in tar metadata (header format, user/group names) or "
                "compression"
            )
        if len(self.files) > limit:
            out.append(f"… and {len(self.files) - limit} more file differences")
        return out


def _describe(e: Entry, sha256: str | None = None) -> dict[str, str]:
    return {
        "type": e.type.value,
        "mode": oct(e.mode),
        "owner": f"{e.uid}:{e.gid}",
        "size": str(e.size),
        "mtime": str(e.mtime),
        "link": e.link,
        "sha256": (sha256 if sha256 is not None else hashlib.sha256(e.data).hexdigest())
        if e.type.value == "file"
        else "",
    }


def diff_views(
    expected: Mapping[str, Entry],
    actual: Mapping[str, Entry],
    expected_sha256: Mapping[str, str] | None = None,
    actual_sha256: Mapping[str, str] | None = None,
) -> list[FileDiff]:
    """Differences path by path; file content is compared by the given SHA-256 maps (as
    ``flatten`` returns them) or, where a path has none, by hashing ``data``."""
    out: list[FileDiff] = []
    for path in sorted(set(expected) | set(actual), key=lambda p: p.split("/")):
        a, b = expected.get(path), actual.get(path)
        if a is None and b is not None:
            out.append(FileDiff(path, "added", "", f"{b.type.value} {b.size} bytes"))
        elif b is None and a is not None:
            out.append(FileDiff(path, "removed", f"{a.type.value} {a.size} bytes", ""))
        elif a is not None and b is not None:
            da = _describe(a, (expected_sha256 or {}).get(path))
            db = _describe(b, (actual_sha256 or {}).get(path))
            for key in da:
                if da[key] != db[key]:
                    out.append(FileDiff(path, key, da[key], db[key]))
    return out


def flatten(source: ImageSource, image: ImageManifest) -> tuple[dict[str, Entry], dict[str, str]]:
    """The merged filesystem of ``image`` and the SHA-256 of every file in it.

    File content is hashed while the layers stream (never held in memory); each layer is
    checked against its digest and its config diff_id.
    """
    hashes: dict[tuple[int, str], Any] = {}

    def layer(index: int, desc: Descriptor, diff: Digest) -> Iterator[Entry]:
        def sink(path: str, size: int) -> Any:
            h = hashlib.sha256()
            hashes[(index, path)] = h
            return h.update

        return read_layer(
            source.open_layer(desc),
            media_type=desc.media_type,
            diff_id=diff,
            what=f"layer {desc.digest}",
            sink=sink,
        )

    origins: dict[str, tuple[int, str]] = {}
    view = apply_layers(
        (
            layer(i, d, diff)
            for i, (d, diff) in enumerate(zip(image.layers, image.diff_ids, strict=True))
        ),
        origins=origins,
    )
    shas = {
        path: hashes[origin].hexdigest() for path, origin in origins.items() if origin in hashes
    }
    return view, shas


def _config_diff(
    a: Mapping[str, Any], b: Mapping[str, Any], prefix: str = ""
) -> list[tuple[str, str, str]]:
    out: list[tuple[str, str, str]] = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key), b.get(key)
        if va == vb:
            continue
        if isinstance(va, dict) and isinstance(vb, dict):
            out += _config_diff(va, vb, f"{prefix}{key}.")
        elif key == "diff_ids" or key == "history":
            continue  # shown through the layers and files
        else:
            out.append((f"{prefix}{key}", json.dumps(va), json.dumps(vb)))
    return out


def diff_images(
    expected_src: ImageSource,
    expected: ImageManifest,
    actual_src: ImageSource,
    actual: ImageManifest,
) -> ImageDiff:
    config = _config_diff(expected.config, actual.config)
    layers: list[tuple[int, str, str]] = [
        (i, str(a.digest), str(b.digest))
        for i, (a, b) in enumerate(zip(expected.layers, actual.layers, strict=False))
        if a.digest != b.digest
    ]
    if len(expected.layers) != len(actual.layers):
        layers.append((-1, f"{len(expected.layers)} layers", f"{len(actual.layers)} layers"))
    files: list[FileDiff] = []
    if layers:
        (a_view, a_sha), (b_view, b_sha) = (
            flatten(expected_src, expected),
            flatten(actual_src, actual),
        )
        files = diff_views(a_view, b_view, a_sha, b_sha)
    return ImageDiff(tuple(config), tuple(layers), tuple(files))
