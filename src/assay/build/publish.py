"""``assay build --push``: push the built image, then (with a key) sign and attest it.

The image index and every per-architecture manifest are signed (as ``cosign sign --recursive``
does). Each architecture's SBOMs (``spdxjson``, ``cyclonedx``) and SLSA provenance
(``slsaprovenance1``) are attached as signed attestations to that architecture's manifest, whose
digest is the provenance subject.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from assay.attest import remote
from assay.attest.intoto import predicate_from_file
from assay.attest.keys import SigningKey
from assay.build.builder import BuildObserver, BuildResult
from assay.build.evidence import Evidence
from assay.errors import UsageError
from assay.oci.push import push_layout
from assay.oci.reference import parse_image_ref
from assay.oci.registry import RegistryClient

__all__ = ["ATTESTATION_TYPES", "publish"]

#: evidence kind -> cosign predicate type alias
ATTESTATION_TYPES = {"spdx": "spdxjson", "cyclonedx": "cyclonedx", "provenance": "slsaprovenance1"}


def publish(
    result: BuildResult,
    evidence: Sequence[Evidence],
    destination: str,
    *,
    key: SigningKey | None,
    insecure: bool = False,
    observer: BuildObserver | None = None,
    client: RegistryClient | None = None,
) -> dict[str, Any]:
    """Push ``result`` (built into an OCI layout) to ``destination``; sign and attest with key."""
    if result.layout is None:
        raise UsageError("--push needs an oci:DIR output (an oci-archive cannot be pushed here)")
    dest = parse_image_ref(destination)
    if not dest.is_registry:
        raise UsageError(f"--push {destination}: give a registry reference HOST/REPO[:TAG]")
    own = client is None
    client = client or RegistryClient(dest.registry, insecure=insecure)
    try:
        if observer:
            observer.stage(f"pushing to {dest}")
        digest = push_layout(result.layout, result.output.tag or "latest", dest, client)
        out: dict[str, Any] = {
            "reference": f"{dest.registry}/{dest.repository}@{digest}",
            "digest": digest,
            "signed": [],
            "attestations": [],
        }
        if key is None:
            return out
        targets = list(dict.fromkeys([digest] + [img.manifest.digest for img in result.images]))
        for target in targets:
            ref = remote.ImageRef(dest.registry, dest.repository, None, target)
            if observer:
                observer.stage(f"signing {target}")
            remote.sign_image(client, ref, key)
            out["signed"].append(target)
        for ev in evidence:
            ref = remote.ImageRef(dest.registry, dest.repository, None, ev.manifest_digest)
            for kind, alias in ATTESTATION_TYPES.items():
                if kind not in ev.documents:
                    continue
                if observer:
                    observer.stage(f"attesting {alias} for {ev.arch}")
                # the provenance file is a whole Statement: attest its predicate
                body = predicate_from_file(ev.documents[kind], alias, f"{kind} of {ev.arch}")
                remote.attest_image(client, ref, key, body.predicate_type, body.data)
                out["attestations"].append(
                    {"arch": ev.arch, "digest": ev.manifest_digest, "type": alias}
                )
        return out
    finally:
        if own:
            client.close()
