"""Evidence written beside a built image: SBOMs and SLSA provenance, per architecture.

Files (in the evidence directory), named after the image so builds side by side do not collide:
``NAME-TAG-ARCH.spdx.json``, ``NAME-TAG-ARCH.cdx.json``, ``NAME-TAG-ARCH.provenance.json``, where
NAME is the image's name in its SBOM (the layout directory's or the archive's file name) and TAG
the output tag (``latest`` when none is given). E.g. ``oci:build/python:v1`` on amd64 gives
``python-v1-amd64.spdx.json``.

Each provenance statement's subject is the image index (multi-platform builds) and that
architecture's manifest (a single-platform build's tag names the manifest itself); its
resolvedDependencies are the Release files, that architecture's .debs and wheels, and the
files the spec read from its directory (``assay.build.localinputs``), so one file is enough to
rebuild and check one platform image.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from assay._atomic import atomic_write_bytes
from assay.build.builder import ArchImage, BuildResult
from assay.build.provenance import Subject, build_provenance, git_source_for
from assay.oci.jsonc import canonical_json
from assay.oci.reference import ImageRef

__all__ = [
    "EVIDENCE_SUFFIXES",
    "Evidence",
    "evidence_paths",
    "existing_outputs",
    "provenance_for",
    "write_evidence",
]

#: evidence kind -> file name suffix
EVIDENCE_SUFFIXES = {
    "spdx": ".spdx.json",
    "cyclonedx": ".cdx.json",
    "provenance": ".provenance.json",
}

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
    if doc.get("base"):
        doc["base"]["manifests"] = {arch: doc["base"]["manifests"][arch]}
    else:
        doc.pop("base", None)
    python = doc.pop("python", None)
    if python is not None:  # absent (not null) for images without Python wheels
        python["archs"] = {a: t for a, t in python["archs"].items() if a == arch}
        doc["python"] = python
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
    files: Mapping[str, tuple[str, str]] | None = None,
) -> dict[str, Any]:
    """The provenance statement of one architecture's image. ``files`` are the digests of the
    files the spec read from its directory (default: read them now, as the build did)."""
    if files is None:
        from assay.build.localinputs import input_digests

        files = input_digests(result.spec, result.spec_path.parent)
    subjects = [Subject(str(image.platform), image.manifest.digest)]
    if result.index.digest != image.manifest.digest:  # a multi-platform build's index
        subjects.insert(0, Subject("index", result.index.digest))
    return build_provenance(
        subjects=subjects,
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
        files=files,
    )


def evidence_paths(output: ImageRef, directory: Path, archs: Sequence[str]) -> dict[str, Path]:
    """``{"ARCH/KIND": path}`` of the evidence files a build of ``output`` writes."""
    from assay.sbom.source import image_short_name

    stem = f"{image_short_name(output)}-{output.tag or 'latest'}"
    return {
        f"{arch}/{kind}": directory / f"{stem}-{arch}{suffix}"
        for arch in archs
        for kind, suffix in EVIDENCE_SUFFIXES.items()
    }


def existing_outputs(output: ImageRef, evidence: Mapping[str, Path]) -> list[str]:
    """What a build of ``output`` with these evidence files would overwrite: the archive file,
    the layout's tag, and evidence files that exist."""
    from assay.oci.layout import OciLayout

    found: list[str] = []
    target = Path(output.path)
    if output.transport == "oci-archive" and (target.exists() or target.is_symlink()):
        found.append(str(target))
    elif output.transport == "oci" and (target / "index.json").is_file():
        tag = output.tag or "latest"
        if tag in OciLayout.open(target).tags():
            found.append(f"tag {tag} of {target}")
    found.extend(str(p) for p in evidence.values() if p.exists() or p.is_symlink())
    return found


def write_evidence(
    result: BuildResult,
    directory: Path,
    *,
    builder_id: str,
    started: datetime,
    finished: datetime,
) -> list[Evidence]:
    """Write SBOMs and provenance for every architecture of ``result`` into ``directory``
    (file names from ``evidence_paths``; the caller decides whether existing ones may go)."""
    from assay.build.localinputs import input_digests
    from assay.sbom.build import sboms_for_build

    paths = evidence_paths(result.output, directory, [i.arch for i in result.images])
    inputs = input_digests(result.spec, result.spec_path.parent)
    out: list[Evidence] = []
    for image in result.images:
        docs = sboms_for_build(result, image)
        files: dict[str, Path] = {}
        byproducts: list[dict[str, Any]] = []
        names = {kind: paths[f"{image.arch}/{kind}"].name for kind in ("spdx", "cyclonedx")}
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
            files=inputs,
        )
        raw = canonical_json(statement)
        path = paths[f"{image.arch}/provenance"]
        atomic_write_bytes(path, raw)
        files["provenance"] = path
        docs = {**docs, "provenance": raw}
        out.append(Evidence(image.arch, image.manifest.digest, files, docs))
    return out
