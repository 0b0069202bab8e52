"""assay's reproducibility predicate: an independent rebuild gave the same image digest.

``assay rebuild IMAGE --attest --sign-key KEY`` attaches one statement per platform image it
reproduced, its subject the platform manifest digest. The predicate (type
:data:`REPRODUCIBLE_PREDICATE_TYPE`)::

    {
      "rebuilder": {"id": "urn:…"},              # who rebuilt (the signing key vouches for it)
      "provenance": {"builderId": "…", "buildType": "…", "subjectDigest": "sha256:…"},
      "rebuild": {"platform": "linux/amd64", "expectedDigest": "sha256:…",
                  "rebuiltDigest": "sha256:…", "identical": true},
      "rebuiltOn": "2026-11-18T10:00:00Z"
    }

``expectedDigest`` is what the provenance names, ``rebuiltDigest`` what the rebuild produced;
only ``identical: true`` rebuilds are attested. A policy reads the claim through
:func:`parse_reproducible` and checks it names the very digest it verified.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "DEFAULT_REBUILDER_ID",
    "REPRODUCIBLE_PREDICATE_TYPE",
    "ReproducibleClaim",
    "parse_reproducible",
    "reproducible_predicate",
]

REPRODUCIBLE_PREDICATE_TYPE = "https://assay.dev/attestations/reproducible/v1"
DEFAULT_REBUILDER_ID = "urn:assay:rebuilder:local:v1"


@dataclass(frozen=True)
class ReproducibleClaim:
    rebuilder_id: str
    platform: str
    expected: str
    rebuilt: str
    identical: bool
    rebuilt_on: str


def reproducible_predicate(
    *,
    rebuilder_id: str,
    platform: str,
    expected: str,
    rebuilt: str,
    builder_id: str,
    build_type: str,
    rebuilt_on: str,
) -> dict[str, Any]:
    """The predicate for one reproduced platform image (``expected == rebuilt``)."""
    return {
        "rebuilder": {"id": rebuilder_id},
        "provenance": {"builderId": builder_id, "buildType": build_type, "subjectDigest": expected},
        "rebuild": {
            "platform": platform,
            "expectedDigest": expected,
            "rebuiltDigest": rebuilt,
            "identical": expected == rebuilt,
        },
        "rebuiltOn": rebuilt_on,
    }


def parse_reproducible(predicate: Any) -> ReproducibleClaim | None:
    """The claim of a (signature-verified) predicate, or None when it is malformed."""
    if not isinstance(predicate, dict):
        return None
    rebuilder = predicate.get("rebuilder")
    rebuild = predicate.get("rebuild")
    if not isinstance(rebuilder, dict) or not isinstance(rebuild, dict):
        return None
    fields = (
        rebuilder.get("id"),
        rebuild.get("platform"),
        rebuild.get("expectedDigest"),
        rebuild.get("rebuiltDigest"),
    )
    if not all(isinstance(f, str) and f for f in fields) or rebuild.get("identical") not in (
        True,
        False,
    ):
        return None
    on = predicate.get("rebuiltOn")
    return ReproducibleClaim(
        rebuilder_id=str(fields[0]),
        platform=str(fields[1]),
        expected=str(fields[2]),
        rebuilt=str(fields[3]),
        identical=rebuild["identical"] is True,
        rebuilt_on=on if isinstance(on, str) else "",
    )
