"""``assay build --push``: push the built image, then (with a key) sign and attest it.

The image index and every per-architecture manifest are signed (as ``cosign sign --recursive``
does). Each architecture's SBOMs (``spdxjson``, ``cyclonedx``) and SLSA provenance
(``slsaprovenance1``) are attached as signed attestations to that architecture's manifest, whose
digest is the provenance subject.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from assay._json import load_json_object
from assay.attest import remote
from assay.attest.keys import SigningKey
from assay.build.builder import BuildObserver, BuildResult
from assay.build.evidence import Evidence
from assay.errors import InputError, UsageError
from assay.oci.push import push_layout
from assay.oci.reference import parse_image_ref
from assay.oci.registry import RegistryClient

__all__ = ["ATTESTATION_TYPES", "publish"]

#: evidence kind -> cosign predicate type alias
ATTESTATION_TYPES = {"spdx": "spdxjson", "cyclonedx": "cyclonedx", "provenance": "slsaprovenance1"}


def _predicate(kind: str, raw: bytes) -> bytes:
    """cosign attaches a predicate; the provenance file is a whole statement, so unwrap it."""
    if kind != "provenance":
        return raw
    statement = load_json_object(raw, what="provenance statement")
    if not isinstance(statement.get("predicate"), dict):
        raise InputError("provenance statement has no 'predicate' object")
    return json.dumps(statement["predicate"], sort_keys=True, separators=(",", ":")).encode()


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
        targets = [digest] + [img.manifest.digest for img in result.images]
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
                remote.attest_image(client, ref, key, alias, _predicate(kind, ev.documents[kind]))
                out["attestations"].append(
                    {"arch": ev.arch, "digest": ev.manifest_digest, "type": alias}
                )
        return out
    finally:
        if own:
            client.close()
