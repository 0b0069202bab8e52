"""The image spec model: the shipped examples load, and every mistake names its key."""

from __future__ import annotations

from pathlib import Path

import pytest

from assay.build.spec import ImageSpec
from assay.debian.model import RepoSource
from assay.errors import UsageError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

MINIMAL = "contents:\n  packages: [base-files]\n"


@pytest.mark.parametrize("name", ["static", "base", "python", "python-dev"])
def test_examples_load(name: str) -> None:
    spec = ImageSpec.from_file(EXAMPLES / f"{name}.yaml")
    assert spec.archs == ["amd64", "arm64"]
    assert spec.contents.repositories is None  # host sources / ASSAY_DEBIAN_MIRROR
    assert "base-files" in spec.package_requests()
    assert spec.accounts.run_as == "65532:65532"


def test_examples_name_no_mirror_host() -> None:
    for path in EXAMPLES.glob("*.yaml"):
        text = path.read_text()
        assert "://" not in text.replace("https://example.invalid", ""), path


def test_example_package_sets() -> None:
    static = ImageSpec.from_file(EXAMPLES / "static.yaml").package_requests()
    base = ImageSpec.from_file(EXAMPLES / "base.yaml").package_requests()
    python = ImageSpec.from_file(EXAMPLES / "python.yaml").package_requests()
    dev = ImageSpec.from_file(EXAMPLES / "python-dev.yaml")
    assert set(static) < set(base) < set(python)
    assert {"libc6", "libssl3"} <= set(base)
    assert "python3.11-minimal" in python
    assert dev.variant == "dev"
    assert dev.package_requests() == [*python, "busybox"]


def test_defaults() -> None:
    spec = ImageSpec.from_yaml(MINIMAL)
    assert spec.archs == ["amd64"]
    assert spec.variant == "default"
    assert spec.layering.strategy == "none"
    assert spec.sbom.embed is False
    assert spec.package_requests() == ["base-files"]


def test_full_spec() -> None:
    spec = ImageSpec.from_yaml(
        """
contents:
  repositories:
    - uri: http://127.0.0.1:8080/debian/
      suites: [stable, stable-security]
      components: [main, contrib]
      signed-by: /tmp/key.gpg
  keyring: [keys/extra.gpg, /abs/key.gpg]
  packages: [base-files, "libssl3=3.0.15-1~deb12u1"]
accounts:
  users: [{username: app, uid: 1000, gid: 1000, homedir: /app, shell: /bin/false}]
  groups: [{groupname: app, gid: 1000, members: [app]}]
  run-as: app
entrypoint: {command: /usr/bin/app --serve}
cmd: [--port, "8080"]
work-dir: /app
environment: {LANG: C.UTF-8, PORT: 8080}
annotations: {org.opencontainers.image.title: app}
paths:
  - {path: /app, type: directory, uid: 1000, gid: 1000, permissions: 0755}
  - {path: /app/conf, type: file, content: "x=1\\n", permissions: "0o600"}
  - {path: /usr/bin/sh, type: symlink, source: busybox}
archs: [arm64]
layering: {strategy: package, budget: 5}
source-date-epoch: 1700000000
setuid-allow: [/usr/bin/su]
sbom: {embed: true}
"""
    )
    assert spec.work_dir == "/app"
    assert spec.environment["PORT"] == "8080"
    assert [p.permissions for p in spec.paths] == [0o755, 0o600, 0o755]
    assert spec.source_date_epoch == 1700000000
    assert spec.keyring_paths(Path("/specs")) == [
        Path("/specs/keys/extra.gpg"),
        Path("/abs/key.gpg"),
    ]
    assert spec.repo_sources() == [
        RepoSource("http://127.0.0.1:8080/debian", "stable", ("main", "contrib"), "/tmp/key.gpg"),
        RepoSource(
            "http://127.0.0.1:8080/debian", "stable-security", ("main", "contrib"), "/tmp/key.gpg"
        ),
    ]


def test_sources_default_to_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASSAY_DEBIAN_MIRROR", "http://127.0.0.1:9/debian stable main")
    spec = ImageSpec.from_yaml(MINIMAL)
    assert [(s.uri, s.suite) for s in spec.repo_sources()] == [
        ("http://127.0.0.1:9/debian", "stable")
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("contents:\n  packges: [a]\n  packages: [b]\n", r"contents\.packges: unknown key"),
        ("contents:\n  packages: [b]\nentrypiont: x\n", r"entrypiont: unknown key"),
        ("archs: [amd64]\n", r"contents: required key is missing"),
        ("contents:\n  packages: []\n", r"contents\.packages"),
        ("contents:\n  packages: [Bad_Name]\n", r"contents\.packages\[0\]: 'Bad_Name'"),
        ("contents:\n  packages: [ab, ab=1]\n", r"listed more than once: ab"),
        ("contents:\n  packages: [ab]\narchs: [amd46]\n", r"archs\[0\]"),
        ("contents:\n  packages: [ab]\narchs: [amd64, amd64]\n", r"archs: .*more than once"),
        ("contents:\n  packages: [ab]\nvariant: debug\n", r"variant"),
        ("contents:\n  packages: [ab]\nvariant: dev\n", r"dev.packages is empty"),
        (
            "contents:\n  packages: [ab]\naccounts: {run-as: ghost}\n",
            r"accounts: .*run-as names user 'ghost'",
        ),
        (
            "contents:\n  packages: [ab]\npaths: [{path: rel, type: directory}]\n",
            r"paths\[0\]\.path: must be an absolute path",
        ),
        (
            "contents:\n  packages: [ab]\npaths: [{path: /x, type: symlink}]\n",
            r"paths\[0\]: .*needs 'source'",
        ),
        ("contents:\n  packages: [ab]\npaths: [{path: /x, type: fifo}]\n", r"paths\[0\]\.type"),
        ("contents:\n  packages: [ab]\nenvironment: {1X: y}\n", r"environment: .*'1X'"),
        ("contents:\n  packages: [ab]\nlayering: {budget: 0}\n", r"layering\.budget"),
        ("contents:\n  packages: [ab]\nsource-date-epoch: -1\n", r"source-date-epoch"),
        (
            "contents:\n  repositories: [{uri: ftp://x, suites: [s]}]\n  packages: [ab]\n",
            r"contents\.repositories\[0\]\.uri",
        ),
        ("- just\n- a list\n", r"expected a mapping"),
        ("contents: [\n", r"not valid YAML"),
        (
            "contents:\n  packages: [ab]\n  packages: [cd]\n",
            r"key 'packages' appears twice in one mapping \(line 3\)",
        ),
        ("contents:\n  packages: [ab=]\n", r"contents\.packages\[0\]"),
        ("contents:\n  packages: [ab]\n  exclude: [x=1]\n", r"contents\.exclude: 'x=1'"),
    ],
)
def test_errors_name_the_key(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message) as info:
        ImageSpec.from_yaml(text, "spec.yaml")
    assert str(info.value).startswith("spec.yaml: ")


def test_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot read spec"):
        ImageSpec.from_file(tmp_path / "nope.yaml")


def test_oversized_spec_is_refused() -> None:
    with pytest.raises(UsageError, match="larger than 1 MiB"):
        ImageSpec.from_yaml("#" * (2 << 20))


def test_spec_is_frozen() -> None:
    spec = ImageSpec.from_yaml(MINIMAL)
    with pytest.raises(Exception, match="frozen"):
        spec.variant = "dev"  # type: ignore[misc]
