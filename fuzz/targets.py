"""Fuzz entry points: one per parser of outside documents, each with seed documents.

A target takes bytes and either returns or raises ``AssayError``; any other exception is a bug.
Used by the hypothesis tests (tests/unit/test_fuzz_docs.py) and the campaign script
(fuzz/fuzz_docs.py).
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_D = "sha256:" + "a" * 64
_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


@dataclass(frozen=True)
class Target:
    name: str
    run: Callable[[bytes], object]
    make_seeds: Callable[[], tuple[bytes, ...]]

    @functools.cached_property
    def seeds(self) -> tuple[bytes, ...]:
        """The seed documents, made on first use (some need a signing key: scrypt, ~0.5 s)."""
        return self.make_seeds()


def _j(doc: Any) -> bytes:
    return json.dumps(doc).encode()


# Scratch files and the advisory DB of the feed targets live in memory where the system offers
# it (/dev/shm): the per-execution file write and SQLite commit then cost no disk sync.
_TMP = Path(
    tempfile.mkdtemp(
        prefix="assay-fuzz-", dir="/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    )
)
atexit.register(shutil.rmtree, _TMP, ignore_errors=True)
_counter = [0]


def _file(data: bytes, suffix: str) -> Path:
    """A scratch file holding ``data`` (targets whose API takes a path)."""
    _counter[0] += 1
    path = _TMP / f"in-{_counter[0] % 4}{suffix}"
    path.write_bytes(data)
    return path


# -- OCI ------------------------------------------------------------------------------------


def _oci_manifest(data: bytes) -> object:
    from assay.oci.model import parse_manifest

    return parse_manifest(data)


def _oci_index(data: bytes) -> object:
    from assay.oci.model import parse_index

    return parse_index(data)


def _oci_config(data: bytes) -> object:
    from assay.oci.model import parse_config

    return parse_config(data)


_MANIFEST_SEED = _j(
    {
        "schemaVersion": 2,
        "mediaType": _MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": _D,
            "size": 2,
        },
        "layers": [
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": _D, "size": 9}
        ],
        "annotations": {"a": "b"},
    }
)
_INDEX_SEED = _j(
    {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {
                "mediaType": _MANIFEST,
                "digest": _D,
                "size": 3,
                "platform": {"architecture": "amd64", "os": "linux"},
            }
        ],
    }
)
_CONFIG_SEED = _j(
    {
        "architecture": "amd64",
        "os": "linux",
        "config": {"User": "0:0", "Env": ["PATH=/bin"], "Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": [_D]},
        "history": [{"created": "2024-01-01T00:00:00Z"}],
    }
)

# -- lock and spec --------------------------------------------------------------------------


def _lock(data: bytes) -> object:
    from assay.build.lock import read_lock

    return read_lock(_file(data, ".lock.json"))


def _spec(data: bytes) -> object:
    from assay.build.spec import ImageSpec

    return ImageSpec.from_yaml(data, "fuzz.yaml")


_SPEC_SEED = b"""contents:
  packages: &p [base-files, python3=3.11.2-1]
  exclude: [perl]
archs: [amd64, arm64]
source-date-epoch: 1700000000
environment: {LANG: C.UTF-8, N: 1}
dev:
  packages: *p
"""


def _lock_seed() -> bytes:
    h = "b" * 64
    pkg = {
        "name": "base-files",
        "version": "12.4+deb12u5",
        "architecture": "amd64",
        "source": "base-files",
        "sourceVersion": "12.4+deb12u5",
        "filename": "pool/main/b/base-files/base-files_12.4+deb12u5_amd64.deb",
        "url": "http://127.0.0.1/debian/pool/main/b/base-files/base-files_12.4+deb12u5_amd64.deb",
        "size": 70000,
        "sha256": h,
        "repository": "http://127.0.0.1/debian",
        "suite": "bookworm",
        "component": "main",
        "depends": ["libc6"],
        "multiArch": "foreign",
        "essential": True,
        "priority": "required",
    }
    return _j(
        {
            "lockVersion": 1,
            "spec": "s.yaml",
            "specDigest": h,
            "requested": ["base-files"],
            "sources": [
                {"uri": "http://127.0.0.1/debian", "suite": "bookworm", "components": ["main"]}
            ],
            "releases": [
                {
                    "url": "http://127.0.0.1/debian/dists/bookworm/InRelease",
                    "sha256": h,
                    "date": "Sat, 10 Feb 2024 00:00:00 UTC",
                    "dateEpoch": 1707523200,
                    "suite": "bookworm",
                    "codename": "bookworm",
                }
            ],
            "packages": {"amd64": [pkg]},
        }
    )


# -- feeds ----------------------------------------------------------------------------------

_DB: list[Any] = []


def _db() -> Any:
    if not _DB:
        from assay.vuln.db import AdvisoryDB

        _DB.append(AdvisoryDB(_TMP / "vuln.db"))
    return _DB[0]


def _feed(name: str, suffix: str) -> Callable[[bytes], object]:
    def run(data: bytes) -> object:
        from assay.vuln.feeds import FEEDS

        return FEEDS[name].import_path(_db(), _file(data, suffix), "fuzz")

    return run


_TRACKER_SEED = _j(
    {
        "openssl": {
            "CVE-2024-0001": {
                "description": "x",
                "releases": {
                    "bookworm": {
                        "status": "resolved",
                        "fixed_version": "1:3.0.11-1~deb12u2",
                        "urgency": "medium",
                    }
                },
            }
        }
    }
)
_OSV_SEED = _j(
    {
        "id": "PYSEC-1",
        "modified": "2024-01-01T00:00:00Z",
        "aliases": ["CVE-2024-0001"],
        "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
        "affected": [
            {
                "package": {"ecosystem": "PyPI", "name": "requests"},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2"}]}],
                "versions": ["1.0"],
            }
        ],
    }
)
_KEV_SEED = _j(
    {"vulnerabilities": [{"cveID": "CVE-2024-0001", "dateAdded": "2024-01-01", "dueDate": "x"}]}
)
_NVD_SEED = _j(
    {
        "format": "NVD_CVE",
        "version": "2.0",
        "timestamp": "2024-07-01T12:00:00.000",
        "vulnerabilities": [
            {
                "cve": {
                    "id": "CVE-2024-0001",
                    "lastModified": "2024-06-01T00:00:00.000",
                    "vulnStatus": "Analyzed",
                    "metrics": {
                        "cvssMetricV31": [
                            {
                                "source": "nvd@nist.gov",
                                "type": "Primary",
                                "cvssData": {
                                    "version": "3.1",
                                    "vectorString": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
                                    "baseScore": 9.8,
                                },
                            }
                        ]
                    },
                }
            },
            {"cve": {"id": "CVE-2024-0002", "vulnStatus": "Rejected"}},
        ],
    }
)
_EPSS_SEED = (
    b"#model_version:v2023.03.01,score_date:2024-01-01\n"
    b"cve,epss,percentile\nCVE-2024-0001,0.1,0.5\n"
)

# -- VEX, SBOM input, scan results -----------------------------------------------------------


def _vex(data: bytes) -> object:
    from assay.vuln.vex import VexDocument

    return VexDocument.from_json(data)


_VEX_SEED = _j(
    {
        "@context": "https://openvex.dev/ns/v0.2.0",
        "@id": "https://example.invalid/vex/1",
        "author": "t",
        "timestamp": "2024-01-01T00:00:00Z",
        "version": 1,
        "statements": [
            {
                "vulnerability": {"name": "CVE-2024-0001", "aliases": ["GHSA-x"]},
                "products": [
                    {
                        "@id": "pkg:oci/x",
                        "identifiers": {"purl": "pkg:oci/x"},
                        "hashes": {"sha-256": "a" * 64},
                        "subcomponents": [{"@id": "pkg:deb/debian/foo@1"}],
                    }
                ],
                "status": "not_affected",
                "justification": "component_not_present",
            }
        ],
    }
)


def _sbom(data: bytes) -> object:
    from assay.vuln.sbom_input import read_sbom

    return read_sbom(_file(data, ".json"))


_SPDX_SEED = _j(
    {
        "spdxVersion": "SPDX-2.3",
        "name": "x",
        "packages": [
            {
                "name": "foo",
                "externalRefs": [
                    {
                        "referenceType": "purl",
                        "referenceLocator": "pkg:deb/debian/foo@1.0-1?arch=amd64&distro=debian-12",
                    }
                ],
            }
        ],
    }
)
_CDX_SEED = _j(
    {
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "metadata": {"component": {"name": "img", "type": "container"}},
        "components": [
            {"type": "operating-system", "name": "debian", "version": "12"},
            {"type": "library", "name": "foo", "purl": "pkg:pypi/foo@1.0"},
        ],
    }
)


def _scan_result(data: bytes) -> object:
    from assay._json import load_json
    from assay.vuln.formats.json_format import result_from_json

    return result_from_json(load_json(data, what="scan result"))


_RESULT_SEED = _j(
    {
        "schema": "https://assay.dev/schemas/scan/v1",
        "subject": {"name": "img", "digest": _D},
        "findings": [
            {
                "id": "CVE-2024-0001",
                "package": {"name": "foo", "version": "1", "purl": "pkg:deb/debian/foo@1"},
                "state": "affected",
                "severity": "high",
                "cvss": {"score": 7.5},
            }
        ],
        "summary": {"hidden_negligible": 0},
    }
)

# -- evidence: DSSE, bundles, statements, simple signing, provenance --------------------------

_KEY: list[Any] = []


def _key() -> Any:
    if not _KEY:
        from assay.attest import keys

        pem, _ = keys.generate_keypair(b"")
        _KEY.append(keys.load_private_key(pem, b""))
    return _KEY[0]


def _statement_seed() -> bytes:
    return _j(
        {
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": "x", "digest": {"sha256": "a" * 64}}],
            "predicateType": "https://slsa.dev/provenance/v1",
            "predicate": {"buildDefinition": {"buildType": "x"}, "runDetails": {}},
        }
    )


def _dsse(data: bytes) -> object:
    from assay.attest.dsse import Envelope
    from assay.attest.verify import check_attestation_envelope

    env = Envelope.from_json(data)
    return check_attestation_envelope(env, _D, _key().public, "fuzz")


def _dsse_seed() -> bytes:
    from assay.attest.dsse import sign_envelope

    return bytes(sign_envelope(_key(), _statement_seed()).to_json())


def _bundle(data: bytes) -> object:
    from assay.attest import bundle

    doc = bundle.parse_bundle(data)
    return bundle.verify_bundle_with_key(doc, _key().public)


def _bundle_seed() -> bytes:
    from assay.attest import bundle
    from assay.attest.dsse import sign_envelope

    env = sign_envelope(_key(), _statement_seed())
    return bytes(bundle.build_key_bundle(env, _key().public))


def _statement(data: bytes) -> object:
    from assay.attest.intoto import parse_statement

    return parse_statement(data)


def _simplesigning(data: bytes) -> object:
    from assay.attest.simplesigning import parse_payload, parse_signature_manifest

    parse_signature_manifest(data)
    return parse_payload(data)


_SIMPLESIGNING_SEED = _j(
    {
        "critical": {
            "identity": {"docker-reference": "r/x"},
            "image": {"docker-manifest-digest": _D},
            "type": "cosign container image signature",
        },
        "optional": {"creator": "x"},
        "layers": [{"mediaType": "m", "digest": _D, "size": 1, "annotations": {"a": "b"}}],
    }
)


def _provenance(data: bytes) -> object:
    from assay.build.provenance import parse_provenance

    return parse_provenance(data)


def _provenance_seed() -> bytes:
    digest = {"sha256": "a" * 64}
    return _j(
        {
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": "x", "digest": digest}],
            "predicateType": "https://slsa.dev/provenance/v1",
            "predicate": {
                "buildDefinition": {
                    "buildType": "https://assay.dev/build/v1",
                    "externalParameters": {
                        "spec": {"path": "s.yaml", "content": "contents: {}"},
                        "archs": ["amd64"],
                    },
                    "internalParameters": {"lock": {"lockVersion": 1}},
                    "resolvedDependencies": [
                        {
                            "uri": "http://127.0.0.1/d/InRelease",
                            "digest": digest,
                            "annotations": {"kind": "release", "suite": "bookworm"},
                        },
                        {
                            "uri": "http://127.0.0.1/d/pool/f.deb",
                            "digest": digest,
                            "annotations": {"kind": "deb", "lockArch": "amd64", "name": "f"},
                        },
                    ],
                },
                "runDetails": {"builder": {"id": "https://assay.dev/x"}, "metadata": {}},
            },
        }
    )


def _debian_version(data: bytes) -> object:
    from assay.debian.version import version_key

    return version_key(data.decode("utf-8", "replace"))


def _image_ref(data: bytes) -> object:
    from assay.oci.reference import parse_image_ref

    return parse_image_ref(data.decode("utf-8", "replace"))


def _registry_token(data: bytes) -> object:
    """The registry error body and token/manifest readers of oci.registry."""
    from assay.oci.registry import FetchedManifest

    return FetchedManifest(data, _MANIFEST, _D).json()


def all_targets() -> dict[str, Target]:
    targets = [
        Target("oci-manifest", _oci_manifest, lambda: (_MANIFEST_SEED,)),
        Target("oci-index", _oci_index, lambda: (_INDEX_SEED,)),
        Target("oci-config", _oci_config, lambda: (_CONFIG_SEED,)),
        Target("registry-manifest", _registry_token, lambda: (_MANIFEST_SEED, _INDEX_SEED)),
        Target("lock", _lock, lambda: (_lock_seed(),)),
        Target("spec", _spec, lambda: (_SPEC_SEED,)),
        Target("feed-tracker", _feed("debian-tracker", ".json"), lambda: (_TRACKER_SEED,)),
        Target("feed-osv", _feed("osv", ".json"), lambda: (_OSV_SEED, b"[" + _OSV_SEED + b"]")),
        Target("feed-kev", _feed("kev", ".json"), lambda: (_KEV_SEED,)),
        Target("feed-epss", _feed("epss", ".csv"), lambda: (_EPSS_SEED,)),
        Target("feed-nvd", _feed("nvd", ".json"), lambda: (_NVD_SEED,)),
        Target("openvex", _vex, lambda: (_VEX_SEED,)),
        Target("sbom-input", _sbom, lambda: (_SPDX_SEED, _CDX_SEED)),
        Target("scan-result", _scan_result, lambda: (_RESULT_SEED,)),
        Target("dsse", _dsse, lambda: (_dsse_seed(),)),
        Target("bundle", _bundle, lambda: (_bundle_seed(),)),
        Target("intoto-statement", _statement, lambda: (_statement_seed(),)),
        Target("simple-signing", _simplesigning, lambda: (_SIMPLESIGNING_SEED,)),
        Target("provenance", _provenance, lambda: (_provenance_seed(),)),
        Target("debian-version", _debian_version, lambda: (b"1:2.30.2-1+deb12u1~bpo1", b"0.9~rc1")),
        Target(
            "image-ref",
            _image_ref,
            lambda: (b"docker-archive:x.tar:@0", b"127.0.0.1:5000/a/b:v@" + _D.encode()),
        ),
    ]
    return {t.name: t for t in targets}
