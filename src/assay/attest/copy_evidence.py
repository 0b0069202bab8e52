"""Carry an image's evidence to another repository, as ``cosign copy`` does.

For each image digest (an index and its platform manifests keep their digests when copied), the
evidence found in the source repository is copied to the destination unchanged, so signatures
still verify there: cosign's tags ``sha256-<hex>.sig`` / ``.att`` / ``.sbom`` and the OCI 1.1
referrers of the digest (Sigstore bundles and other artifacts; on a registry without the
referrers API the destination's fallback tag is updated). Kinds, as ``cosign copy --only``:
``sig`` (signatures: ``.sig`` and signature bundles), ``att`` (attestations: ``.att`` and other
bundles) and ``sbom`` (``.sbom`` and SBOM referrers).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from assay.attest import bundle as _bundle
from assay.attest.intoto import SIGN_PREDICATE_TYPE
from assay.attest.simplesigning import cosign_tag
from assay.errors import InputError, UsageError
from assay.oci.model import Descriptor
from assay.oci.push import Progress, copy_image
from assay.oci.reference import ImageRef
from assay.oci.registry import NotFoundError, RegistryClient

__all__ = ["EVIDENCE_KINDS", "CopiedEvidence", "copy_evidence", "parse_kinds"]

log = logging.getLogger(__name__)

EVIDENCE_KINDS = ("sig", "att", "sbom")
_MAX_REFERRERS = 100
_PREDICATE_ANNOTATION = "dev.sigstore.bundle.predicateType"


@dataclass(frozen=True)
class CopiedEvidence:
    """One piece of evidence carried (or skipped, with ``skipped`` saying why)."""

    kind: str  # sig | att | sbom
    subject: str  # the image digest it is about
    digest: str  # the evidence manifest's digest
    where: str  # the cosign tag, or "referrer"
    skipped: str = ""

    def to_json(self) -> dict[str, str]:
        doc = {"kind": self.kind, "subject": self.subject, "digest": self.digest}
        doc["where"] = self.where
        if self.skipped:
            doc["skipped"] = self.skipped
        return doc


def parse_kinds(text: str) -> frozenset[str]:
    """``sig,att,sbom`` (any subset, comma separated) → the set of kinds."""
    kinds = {k.strip() for k in text.split(",") if k.strip()}
    unknown = sorted(kinds - set(EVIDENCE_KINDS))
    if unknown or not kinds:
        raise UsageError(
            f"--only {text!r}: give a comma-separated list of {', '.join(EVIDENCE_KINDS)}"
        )
    return frozenset(kinds)


def _referrer_kind(desc: Descriptor) -> str:
    artifact = desc.artifact_type or ""
    if artifact in _bundle.BUNDLE_MEDIA_TYPES_ACCEPTED:
        predicate = (desc.annotations or {}).get(_PREDICATE_ANNOTATION, "")
        return "sig" if predicate == SIGN_PREDICATE_TYPE else "att"
    if "spdx" in artifact or "cyclonedx" in artifact:
        return "sbom"
    if "signature" in artifact:  # e.g. notation's application/vnd.cncf.notary.signature
        return "sig"
    return "att"


def copy_evidence(
    src_client: RegistryClient,
    src_repository: str,
    dst_client: RegistryClient,
    dst_repository: str,
    subjects: Sequence[str],
    kinds: Collection[str] = EVIDENCE_KINDS,
    progress: Progress | None = None,
) -> list[CopiedEvidence]:
    """Copy the evidence of each digest in ``subjects`` (of the kinds asked for).

    Evidence manifests and their blobs are verified against their digests as they are copied;
    a referrer that does not name the digest as its subject is skipped (and reported).
    """
    out: list[CopiedEvidence] = []
    src_host, dst_host = src_client.host, dst_client.host
    for subject in dict.fromkeys(subjects):
        for kind in EVIDENCE_KINDS:
            if kind not in kinds:
                continue
            tag = cosign_tag(subject, kind)
            if not src_client.manifest_exists(src_repository, tag):
                continue
            result = copy_image(
                src_client,
                ImageRef(transport="docker", registry=src_host, repository=src_repository, tag=tag),
                dst_client,
                ImageRef(transport="docker", registry=dst_host, repository=dst_repository, tag=tag),
                progress,
            )
            out.append(CopiedEvidence(kind, subject, result.digest, tag))
        referrers = src_client.referrers(src_repository, subject)
        for i, desc in enumerate(referrers):
            kind = _referrer_kind(desc)
            if kind not in kinds:
                continue
            if i >= _MAX_REFERRERS:
                out.append(
                    CopiedEvidence(
                        kind, subject, desc.digest, "referrer", f"over {_MAX_REFERRERS} referrers"
                    )
                )
                continue
            try:
                fetched = src_client.get_manifest(src_repository, desc.digest)
                named = fetched.json().get("subject")
                if not isinstance(named, dict) or named.get("digest") != subject:
                    out.append(
                        CopiedEvidence(
                            kind, subject, desc.digest, "referrer", "does not name this subject"
                        )
                    )
                    continue
                result = copy_image(
                    src_client,
                    ImageRef(
                        transport="docker",
                        registry=src_host,
                        repository=src_repository,
                        digest=desc.digest,
                    ),
                    dst_client,
                    ImageRef(transport="docker", registry=dst_host, repository=dst_repository),
                    progress,
                )
            except NotFoundError:
                out.append(CopiedEvidence(kind, subject, desc.digest, "referrer", "not found"))
                continue
            except InputError as exc:  # not a manifest assay can copy: reported, not copied
                out.append(CopiedEvidence(kind, subject, desc.digest, "referrer", str(exc)))
                continue
            out.append(CopiedEvidence(kind, subject, result.digest, "referrer"))
    return out
