"""Reading SPDX 2.3 / CycloneDX JSON SBOMs into an inventory for scanning."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assay.errors import InputError
from assay.vuln.sbom_input import read_sbom

DIGEST = "sha256:" + "ab" * 32
SSL = "pkg:deb/debian/libssl3@3.0.8-1%2Bb1?arch=amd64&upstream=openssl%403.0.8-1&distro=debian-12"
BASH = "pkg:deb/debian/bash@5.2.15-2%2Bb2?arch=amd64&upstream=bash&distro=debian-12"


def test_cyclonedx_purls_source_and_distro(tmp_path: Path) -> None:
    p = tmp_path / "bom.json"
    p.write_text(
        json.dumps(
            {
                "bomFormat": "CycloneDX",
                "specVersion": "1.6",
                "metadata": {
                    "component": {
                        "type": "container",
                        "name": "python",
                        "purl": f"pkg:oci/python@{DIGEST.replace(':', '%3A')}",
                    }
                },
                "components": [
                    {
                        "type": "library",
                        "purl": SSL,
                    },
                    {
                        "type": "library",
                        "purl": BASH,
                    },
                    {
                        "type": "library",
                        "purl": "pkg:pypi/jinja2@3.1.2",
                        "components": [{"type": "library", "purl": "pkg:npm/%40babel/core@7.0.0"}],
                    },
                    {"type": "library", "purl": "pkg:generic/thing@1"},
                    {"type": "library", "purl": "not a purl"},
                ],
            }
        )
    )
    inv = read_sbom(p)
    assert inv.subject_digest == DIGEST and inv.subject_name == "python"
    assert inv.distro is not None and (inv.distro.id, inv.distro.version_id) == ("debian", "12")
    by = {x.name: x for x in inv.packages}
    assert set(by) == {"libssl3", "bash", "jinja2", "@babel/core"}
    assert (by["libssl3"].source_name, by["libssl3"].source_version) == ("openssl", "3.0.8-1")
    assert by["libssl3"].version == "3.0.8-1+b1" and by["libssl3"].architecture == "amd64"
    assert by["bash"].source_name == "" and by["bash"].ecosystem == "deb"
    assert inv.architecture == "amd64"


def test_spdx_external_refs(tmp_path: Path) -> None:
    p = tmp_path / "s.json"
    p.write_text(
        json.dumps(
            {
                "spdxVersion": "SPDX-2.3",
                "name": "img",
                "packages": [
                    {
                        "name": "lodash",
                        "externalRefs": [
                            {
                                "referenceCategory": "PACKAGE-MANAGER",
                                "referenceType": "purl",
                                "referenceLocator": "pkg:npm/lodash@4.17.20",
                            },
                            {
                                "referenceCategory": "SECURITY",
                                "referenceType": "cpe23Type",
                                "referenceLocator": "cpe:2.3:a:lodash:lodash:4.17.20:*:*:*:*:*:*:*",
                            },
                        ],
                    }
                ],
            }
        )
    )
    inv = read_sbom(p)
    assert [(x.name, x.version, x.ecosystem) for x in inv.packages] == [
        ("lodash", "4.17.20", "npm")
    ]
    assert inv.distro is None


def test_not_an_sbom(tmp_path: Path) -> None:
    p = tmp_path / "x.json"
    p.write_text('{"hello": 1}')
    with pytest.raises(InputError, match="neither"):
        read_sbom(p)
    p.write_text("{")
    with pytest.raises(InputError, match="not valid JSON"):
        read_sbom(p)
    nested: dict = {"type": "library"}
    cur = nested
    for _ in range(40):
        cur["components"] = [{"type": "library"}]
        cur = cur["components"][0]
    p.write_text(json.dumps({"bomFormat": "CycloneDX", "components": [nested]}))
    with pytest.raises(InputError, match="nested too deeply"):
        read_sbom(p)
