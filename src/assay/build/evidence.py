"""Evidence written beside a built image: SBOMs and SLSA provenance, per architecture.

Files (in the evidence directory):
``sbom-<arch>.spdx.json``, ``sbom-<arch>.cdx.json``, ``provenance-<arch>.json``.

Each provenance statement's subject is the image index and that architecture's manifest; its
resolvedDependencies are the Release files and that architecture's .debs, so one file is
enough to rebuild and check one platform image.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from assay._atomic import atomic_write_bytes
from assay.build.builder import ArchImage, BuildResult
from assay.build.provenance import Subject, build_provenance, git_source_for
from assay.oci.jsonc import canonical_json

__all__ = ["Evidence", "provenance_for", "write_evidence"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Evidence:
    arch: str
    manifest_digest: str
    files: dict[str, Path]  # kind ("spdx", "cyclonedx", "provenance") -> path
    documents: dict[str, bytes]  # kind -> bytes as written


def _lock_for_arch(result: BuildResult, arch: str) -> dict[str, Any]:
    doc: dict[str, Any] = result.lock.model_dump(by_alias=True, mode="json")
    doc["packages"] = {arch: doc["packages"][arch]}
    return doc


def provenance_for(
    result: BuildResult,
    image: ArchImage,
    *,
    builder_id: str,
    started: datetime,
    finished: datetime,
    byproducts: list[dict[str, Any]],
    invocation_id: str | None = None,
) -> dict[str, Any]:
    return build_provenance(
        subjects=[
            Subject("index", result.index.digest),
            Subject(str(image.platform), image.manifest.digest),
        ],
        spec_path=str(result.spec_path),
        spec_content=result.spec_bytes.decode("utf-8"),
        git=git_source_for(result.spec_path),
        lock=_lock_for_arch(result, image.arch),
        internal={
            "sourceDateEpoch": result.source_date_epoch,
            "compression": result.compression,
        },
        builder_id=builder_id,
        started=started,
        finished=finished,
        byproducts=byproducts,
        invocation_id=invocation_id,
    )


def write_evidence(
    result: BuildResult,
    directory: Path,
    *,
    builder_id: str,
    started: datetime,
    finished: datetime,
) -> list[Evidence]:
    """Write SBOMs and provenance for every architecture of ``result`` into ``directory``."""
    from assay.sbom.build import sboms_for_build

    out: list[Evidence] = []
    for image in result.images:
        docs = sboms_for_build(result, image)
        files: dict[str, Path] = {}
        byproducts: list[dict[str, Any]] = []
        names = {"spdx": f"sbom-{image.arch}.spdx.json", "cyclonedx": f"sbom-{image.arch}.cdx.json"}
        media = {"spdx": "application/spdx+json", "cyclonedx": "application/vnd.cyclonedx+json"}
        for kind, data in sorted(docs.items()):
            path = directory / names[kind]
            atomic_write_bytes(path, data)
            files[kind] = path
            byproducts.append(
                {
                    "name": names[kind],
                    "digest": {"sha256": hashlib.sha256(data).hexdigest()},
                    "mediaType": media[kind],
                }
            )
        statement = provenance_for(
            result,
            image,
            builder_id=builder_id,
            started=started,
            finished=finished,
            byproducts=byproducts,
        )
        raw = canonical_json(statement)
        path = directory / f"provenance-{image.arch}.json"
        atomic_write_bytes(path, raw)
        files["provenance"] = path
        docs = {**docs, "provenance": raw}
        out.append(Evidence(image.arch, image.manifest.digest, files, docs))
    return out
