"""Checks that read the verified image's files: setuid/setgid modes and a live vulnerability scan.

The layers are verified evidence: the platform manifests are fetched by the digest the
signature covers, each layer blob is checked against the manifest's digest as it downloads and
against the config's diff_id as it is read. Blobs are downloaded only when a policy asks for
one of these checks, at most once per image and decision (a temporary directory removed with
:meth:`ImageLayers.close`), and read through the one layer reader (``assay.oci.layer``) and
merged with ``apply_layers`` exactly as a runtime applies them (whiteouts, later chmods).
"""

from __future__ import annotations

import datetime as _dt
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TypeVar

from assay.errors import AssayError, NetworkError
from assay.oci.digest import parse_digest
from assay.oci.entry import Entry, EntryType
from assay.oci.layer import apply_layers, read_layer
from assay.oci.registry import RegistryClient
from assay.policy.evidence import ImageEvidence, PlatformImage, download_layers, platform_images
from assay.sbom.layers import LayerInput
from assay.vuln.model import Finding, ScanResult

__all__ = ["ImageLayers", "LayerProblem", "LiveScan", "SpecialFile"]

T = TypeVar("T")

SPECIAL_BITS = 0o6000  # setuid | setgid


class LayerProblem(Exception):
    """The layers could not be read: ``error`` (registry) or ``fail`` (bad evidence)."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class SpecialFile:
    platform: str
    path: str  # without the leading "/"
    mode: int  # permission bits (0o7777)


@dataclass(frozen=True)
class SpecialFiles:
    files: tuple[SpecialFile, ...]
    scanned: int  # regular files in the merged filesystems
    platforms: tuple[str, ...]
    evidence: tuple[str, ...]  # layer digests read


@dataclass(frozen=True)
class LiveScan:
    """A scan of the image's packages, run now with the local advisory DB."""

    result: ScanResult  # findings of every platform; subject: the image digest
    packages: int
    platforms: tuple[str, ...]
    evidence: tuple[str, ...]  # layer digests read
    db_path: str


class ImageLayers:
    """Lazily fetched layers of one verified image (not shared across decisions)."""

    def __init__(
        self, client: RegistryClient, image: ImageEvidence, pool: ThreadPoolExecutor
    ) -> None:
        self._client = client
        self._image = image
        self._pool = pool
        self._lock = threading.Lock()
        self._dir: Path | None = None
        self._platforms: list[PlatformImage] | None = None
        self._paths: dict[str, Path] = {}
        self._memo: dict[str, object] = {}

    def close(self) -> None:
        with self._lock:
            if self._dir is not None:
                shutil.rmtree(self._dir, ignore_errors=True)
                self._dir = None

    # ------------------------------------------------------------------ fetching
    def _guard(self, key: str, make: Callable[[], T]) -> T:
        """Memoise ``make`` (result or LayerProblem) under ``key``."""
        with self._lock:
            if key not in self._memo:
                try:
                    self._memo[key] = make()
                except LayerProblem as exc:
                    self._memo[key] = exc
                except NetworkError as exc:
                    self._memo[key] = LayerProblem("error", f"cannot fetch the layers: {exc}")
                except AssayError as exc:
                    self._memo[key] = LayerProblem("fail", f"the image layers are invalid: {exc}")
            value = self._memo[key]
        if isinstance(value, LayerProblem):
            raise value
        return value  # type: ignore[return-value]

    def _inputs(self, platform: PlatformImage) -> list[LayerInput]:
        missing = [layer for layer in platform.layers if layer.digest not in self._paths]
        if missing:
            if self._dir is None:
                self._dir = Path(tempfile.mkdtemp(prefix="assay-policy-layers-"))
            self._paths.update(
                download_layers(
                    self._client, self._image.repository, missing, self._dir, self._pool
                )
            )

        def opener(path: Path) -> Callable[[], AbstractContextManager[BinaryIO]]:
            return lambda: path.open("rb")

        return [
            LayerInput(
                open=opener(self._paths[layer.digest]),
                media_type=layer.media_type,
                diff_id=parse_digest(layer.diff_id),
                what=f"layer {layer.digest}",
            )
            for layer in platform.layers
        ]

    def _all_platforms(self) -> list[PlatformImage]:
        if self._platforms is None:
            self._platforms = platform_images(self._client, self._image)
        return self._platforms

    # ------------------------------------------------------------------ checks
    def special_files(self) -> SpecialFiles:
        """Regular files with the setuid or setgid bit, in each platform's merged filesystem."""
        return self._guard("setuid", self._special_files)

    def _special_files(self) -> SpecialFiles:
        found: list[SpecialFile] = []
        scanned = 0
        evidence: list[str] = []
        platforms = self._all_platforms()
        for p in platforms:
            inputs = self._inputs(p)
            evidence.extend(layer.digest for layer in p.layers)
            view = apply_layers(
                (_entries(layer) for layer in inputs), what=f"image {p.digest} layer"
            )
            for path, e in view.items():
                if e.type is EntryType.FILE:
                    mode = e.mode
                elif e.type is EntryType.HARDLINK:
                    # one inode: the bits of the file it names count too
                    target = view.get(e.link)
                    mode = e.mode | (target.mode if target is not None else 0)
                else:
                    continue
                scanned += 1
                if mode & SPECIAL_BITS:
                    found.append(SpecialFile(p.platform, path, mode & 0o7777))
        found.sort(key=lambda f: (f.path, f.platform))
        return SpecialFiles(
            tuple(found),
            scanned,
            tuple(p.platform for p in platforms),
            tuple(dict.fromkeys(evidence)),
        )

    def live_scan(self, db_path: Path, now: float) -> LiveScan:
        """Catalogue each platform's packages and match them against the local advisory DB."""
        return self._guard("live-scan", lambda: self._live_scan(db_path, now))

    def _live_scan(self, db_path: Path, now: float) -> LiveScan:
        import dataclasses

        from assay.sbom.catalog import catalog_view, wants_any
        from assay.sbom.catalogers import default_catalogers
        from assay.sbom.layers import view_of_layers
        from assay.vuln.db import AdvisoryDB
        from assay.vuln.scanner import ScanOptions, run_scan

        if not db_path.is_file():
            raise LayerProblem(
                "error",
                f"no local advisory database at {db_path}; run `assay db update` "
                "(or set ASSAY_VULN_DB) so a live scan can run",
            )
        catalogers = default_catalogers()
        wants = wants_any(catalogers)
        today = _dt.datetime.fromtimestamp(now, _dt.UTC).date()
        platforms = self._all_platforms()
        results: list[ScanResult] = []
        evidence: list[str] = []
        packages = 0
        with AdvisoryDB(db_path, create=False) as db:
            for p in platforms:
                view = view_of_layers(self._inputs(p), wants)
                evidence.extend(layer.digest for layer in p.layers)
                inventory = catalog_view(
                    view,
                    subject_name=f"{self._image.host}/{self._image.repository}",
                    subject_digest=p.digest,
                    architecture=p.platform.split("/")[1],
                    catalogers=catalogers,
                    repository=f"{self._image.host}/{self._image.repository}",
                )
                packages += len(inventory.packages)
                options = ScanOptions(today=today, record_first_seen=False, show_negligible=True)
                results.append(run_scan(db, inventory, options))
        seen: dict[tuple[str, str, str, str], Finding] = {}
        for r in results:
            for f in r.findings:
                seen.setdefault((str(f.id), f.package, f.version, f.purl), f)
        merged = dataclasses.replace(
            results[0], subject_digest=self._image.digest, findings=tuple(seen.values())
        )
        return LiveScan(
            merged,
            packages,
            tuple(p.platform for p in platforms),
            tuple(dict.fromkeys(evidence)),
            str(db_path),
        )


def _entries(layer: LayerInput) -> Iterator[Entry]:
    with layer.open() as stream:
        yield from read_layer(
            stream, media_type=layer.media_type, diff_id=layer.diff_id, what=layer.what
        )
