"""Loading and validating policy documents: errors name file, document and field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from assay.errors import UsageError
from assay.policy import load_policies

HEAD = (
    "apiVersion: policy.sigstore.dev/v1alpha1\nkind: ClusterImagePolicy\nmetadata:\n  name: NAME\n"
)
STATIC = "spec:\n  images: [{glob: '**'}]\n  authorities: [{static: {action: pass}}]\n"


def head(name: str) -> str:
    return HEAD.replace("NAME", name)


KEY = """\
-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEZxAfzrQG1EbWyCI8LiSB7YgSFXoI
FNGTyQGKHFc6/H8TQumT9VLS78pUwtv3w7EfKoyFZoP32KrO7nzUy2q6Cw==
-----END PUBLIC KEY-----
"""


def _write(tmp: Path, text: str, name: str = "p.yaml") -> Path:
    path = tmp / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            "spec:\n  images: []\n  authorities: [{static: {action: pass}}]\n",
            "#1: spec.images: must list at least one glob",
        ),
        (
            "spec:\n  images: [{glob: '**'}]\n  authorities: []\n",
            "#1: spec.authorities: must list at least one authority",
        ),
        (
            "spec:\n  images: [{glob: '**'}]\n  authorities: [{static: {action: maybe}}]\n",
            "#1: spec.authorities[0].static.action: 'maybe': must be pass or fail",
        ),
        (
            "spec:\n  images: [{glob: '**'}]\n  authorities: [{key: {}, static: {action: pass}}]\n",
            "#1: spec.authorities[0]: expected exactly one, got both or neither",
        ),
        (
            "spec:\n  images: [{glob: '**'}]\n  authorities: [{key: {data: x, kms: y}}]\n",
            "#1: spec.authorities[0].key: expected exactly one",
        ),
        (
            "spec:\n  images: [{glob: '**'}]\n  authorities: [{keyless: {url: x}}]\n",
            "#1: spec.authorities[0].keyless.identities: Invalid value",
        ),
        (
            "spec:\n  images: [{glob: '**'}]\n  authorities:\n  - keyless:\n"
            "      identities: [{issuer: a, subjectRegExp: '('}]\n",
            "#1: spec.authorities[0].keyless.identities[0].subjectRegExp: invalid regular",
        ),
        (
            STATIC + "  mode: audit\n",
            "#1: spec.mode: 'audit': must be enforce or warn",
        ),
        (
            STATIC + "  extra: 1\n",
            "#1: spec.extra: unknown field",
        ),
        (
            "spec:\n  images: [{glob: '**'}]\n  authorities:\n  - key: {data: x}\n"
            "    attestations:\n    - {name: a, predicateType: x, policy: {type: js, data: y}}\n",
            "attestations[0].policy.type: 'js': only rego and cue are allowed",
        ),
    ],
)
def test_invalid_cip_names_the_field(tmp_path: Path, spec: str, message: str) -> None:
    path = _write(tmp_path, head("bad") + spec)
    with pytest.raises(UsageError) as info:
        load_policies([path])
    assert str(path) in str(info.value)
    assert message in str(info.value)


def test_second_document_is_named(tmp_path: Path) -> None:
    good = (
        head("a") + "spec:\n  images: [{glob: '**'}]\n  authorities: [{static: {action: pass}}]\n"
    )
    bad = head("b") + "spec:\n  images: [{glob: '['}]\n  authorities: [{static: {action: pass}}]\n"
    path = _write(tmp_path, good + "---\n" + bad)
    with pytest.raises(UsageError, match=r"p\.yaml#2: spec\.images\[0\]\.glob: invalid value: \["):
        load_policies([path])


def test_directory_multi_doc_and_digest(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    _write(tmp_path / "d", head("one") + STATIC + "---\n" + head("two") + STATIC, "a.yaml")
    _write(tmp_path / "d", head("three") + STATIC, "b.yml")
    _write(tmp_path / "d", "not a policy", "README.md")
    loaded = load_policies([tmp_path / "d"])
    assert loaded.names == ("one", "two", "three")
    assert loaded.digest.startswith("sha256:") and len(loaded.digest) == 71
    again = load_policies([tmp_path / "d"])
    assert again.digest == loaded.digest
    _write(tmp_path / "d", head("three") + STATIC.replace("pass", "fail"), "b.yml")
    assert load_policies([tmp_path / "d"]).digest != loaded.digest


def test_duplicates_aliases_and_wrong_kinds(tmp_path: Path) -> None:
    doc = (
        head("same")
        + "spec:\n  images: [{glob: '**'}]\n  authorities: [{static: {action: pass}}]\n"
    )
    with pytest.raises(UsageError, match="defined twice"):
        load_policies([_write(tmp_path, doc + "---\n" + doc)])
    bomb = "a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]\n"
    with pytest.raises(UsageError, match="aliases"):
        load_policies([_write(tmp_path, bomb)])
    with pytest.raises(UsageError, match="is not a policy"):
        load_policies([_write(tmp_path, "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\n")])
    with pytest.raises(UsageError, match="no such policy file"):
        load_policies([tmp_path / "missing.yaml"])
    big = tmp_path / "big.yaml"
    big.write_text("#" * (1 << 20) + "\n")
    with pytest.raises(UsageError, match="larger than 1 MiB"):
        load_policies([big])


def test_image_policy_require(tmp_path: Path) -> None:
    text = (
        "apiVersion: assay.dev/v1alpha1\nkind: ImagePolicy\nmetadata: {name: regulated}\n"
        "spec:\n  images: [{glob: '**'}]\n  require:\n    runAsNonRoot: true\n"
        "    vulnerabilities: {maxSeverity: High, noKEV: true, maxScanAgeDays: 7}\n"
        "    signatures:\n      minKeys: 2\n      keys:\n      - |\n"
        + "".join(f"        {line}\n" for line in KEY.splitlines())
    )
    with pytest.raises(UsageError, match=r"require\.signatures\.minKeys: must be between 1 and 1"):
        load_policies([_write(tmp_path, text)])
    ok = load_policies([_write(tmp_path, text.replace("minKeys: 2", "minKeys: 1"))])
    req = ok.policies[0].require
    assert req.run_as_non_root and req.no_kev and req.max_severity == "high"
    assert req.max_scan_age_days == 7 and req.min_keys == 1
    with pytest.raises(UsageError, match=r"require\.vulnerabilities\.maxSeverity"):
        load_policies([_write(tmp_path, text.replace("High", "severe"))])
    cip_with_require = head("x") + "spec:\n  images: [{glob: '**'}]\n  require: {}\n"
    with pytest.raises(UsageError, match=r"spec\.require: unknown field"):
        load_policies([_write(tmp_path, cip_with_require)])


def test_image_policy_require_layers_and_reproducible(tmp_path: Path) -> None:
    base = (
        "apiVersion: assay.dev/v1alpha1\nkind: ImagePolicy\nmetadata: {name: files}\n"
        "spec:\n  images: [{glob: '**'}]\n  require:\n"
    )

    def load(body: str) -> Any:
        return load_policies([_write(tmp_path, base + body)]).policies[0].require

    req = load("    setuid: {allow: [/usr/bin/su]}\n    vulnerabilities: {source: either}\n")
    assert req.setuid_allow == ("/usr/bin/su",) and req.vulnerability_source == "either"
    assert load("    runAsNonRoot: true\n").vulnerability_source == "attestation"
    assert load("    reproducible: true\n").reproducible
    req = load("    reproducible: {rebuilderId: urn:x}\n")
    assert req.reproducible and req.rebuilder_ids == ("urn:x",)
    for body, field in (
        ("    vulnerabilities: {source: maybe}\n", r"vulnerabilities\.source: 'maybe'"),
        ("    setuid: {allow: [/usr/../bin/su]}\n", r"setuid\.allow\[0\]"),
        ("    setuid: {allow: ['/']}\n", r"setuid\.allow\[0\]"),
        ("    reproducible: yes please\n", r"require\.reproducible: must be true or false"),
        ("    reproducible: {builder: x}\n", r"require\.reproducible\.builder: unknown field"),
    ):
        with pytest.raises(UsageError, match=field):
            load(body)


def test_source_oci_must_be_a_repository(tmp_path: Path) -> None:
    text = (
        head("src")
        + "spec:\n  images: [{glob: '**'}]\n  authorities:\n  - key: {data: x}\n"
        + "    source: [{oci: 'registry.local:5000/repo:tag'}]\n"
    )
    with pytest.raises(UsageError, match=r"source\[0\]\.oci: .* is not a repository"):
        load_policies([_write(tmp_path, text)])
