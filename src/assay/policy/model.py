"""Policy documents as frozen values: ClusterImagePolicy (v1alpha1/v1beta1) and ImagePolicy.

Only :mod:`assay.policy.load` builds them, after validating every field; the engine reads them.
Unsupported-but-valid settings (``secretRef``, ``kms``, CUE policies, remote policies…) are kept
as they are so the engine can report them as an ``error`` result with a reason instead of
refusing the whole document.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "Attestation",
    "Authority",
    "Identity",
    "KeyAuthority",
    "KeylessAuthority",
    "MatchResource",
    "Policy",
    "PolicyCode",
    "Require",
    "Source",
    "StaticAuthority",
]

Mode = Literal["enforce", "warn"]


@dataclass(frozen=True)
class PolicyCode:
    """``policy:`` of an attestation or of a whole CIP: Rego (evaluated) or CUE (unsupported)."""

    type: str  # "rego" | "cue"
    data: str = ""
    remote_url: str = ""
    remote_sha256: str = ""
    config_map: str = ""
    fetch_config_file: bool = False
    include_spec: bool = False
    include_object_meta: bool = False
    include_type_meta: bool = False


@dataclass(frozen=True)
class Attestation:
    name: str
    predicate_type: str  # as written (URI or cosign short name)
    policy: PolicyCode | None = None


@dataclass(frozen=True)
class KeyAuthority:
    data: str = ""  # inline PEM
    secret_ref: str = ""
    kms: str = ""
    hash_algorithm: str = "sha256"


@dataclass(frozen=True)
class Identity:
    issuer: str = ""
    subject: str = ""
    issuer_regexp: str = ""
    subject_regexp: str = ""


@dataclass(frozen=True)
class KeylessAuthority:
    url: str = ""
    identities: tuple[Identity, ...] = ()
    trust_root_ref: str = ""
    ca_cert: bool = False
    insecure_ignore_sct: bool = False


@dataclass(frozen=True)
class StaticAuthority:
    action: Literal["pass", "fail"]
    message: str = ""


@dataclass(frozen=True)
class Source:
    oci: str = ""
    tag_prefix: str = ""
    pull_secrets: tuple[str, ...] = ()


@dataclass(frozen=True)
class Authority:
    name: str
    key: KeyAuthority | None = None
    keyless: KeylessAuthority | None = None
    static: StaticAuthority | None = None
    sources: tuple[Source, ...] = ()
    attestations: tuple[Attestation, ...] = ()
    signature_format: str = "simplesigning"  # or "bundle"
    ctlog: bool = False
    rfc3161: bool = False


@dataclass(frozen=True)
class MatchResource:
    resource: str = ""
    group: str = ""
    version: str = ""
    match_labels: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Require:
    """assay ImagePolicy ``require:`` — declarative checks over verified evidence."""

    run_as_non_root: bool = False
    no_shell: bool = False
    no_package_manager: bool = False
    max_severity: str = ""  # findings above this severity fail
    no_kev: bool = False
    vex_applied: bool = False
    max_scan_age_days: int | None = None
    max_db_age_days: int | None = None
    # where findings come from: a verified scan attestation, a live scan of the verified layers
    # with the local advisory DB, or the attestation when there is one and a live scan otherwise
    vulnerability_source: Literal["attestation", "live", "either"] = "attestation"
    sbom: tuple[str, ...] = ()  # accepted formats: "spdx", "cyclonedx"
    sbom_ntia: bool = False  # the SBOM must carry the NTIA minimum elements
    builder_ids: tuple[str, ...] = ()
    source_uris: tuple[str, ...] = ()
    max_image_age_days: int | None = None
    reproducible: bool = False  # a verified rebuild attestation for every platform image
    rebuilder_ids: tuple[str, ...] = ()  # accepted rebuilder ids (any when empty)
    setuid_allow: tuple[str, ...] | None = None
    min_keys: int = 0
    keys: tuple[str, ...] = ()  # PEM public keys for k-of-n
    controls: tuple[tuple[str, tuple[str, ...]], ...] = ()  # check -> extra control ids

    def enabled(self) -> bool:
        return self != Require()


@dataclass(frozen=True)
class Policy:
    """One ClusterImagePolicy or ImagePolicy document."""

    name: str
    kind: str  # "ClusterImagePolicy" | "ImagePolicy"
    api_version: str
    where: str  # "FILE#N" for messages
    globs: tuple[str, ...]
    authorities: tuple[Authority, ...]
    mode: Mode = "enforce"
    match: tuple[MatchResource, ...] = ()
    policy: PolicyCode | None = None
    require: Require = field(default_factory=Require)
    canonical: str = ""  # canonical JSON of the document (for PolicySet.digest)
    raw: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
