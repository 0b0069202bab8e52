"""The lockfile: deterministic JSON, strict reading of hostile input, staleness detection."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from assay.build.lock import (
    Lock,
    lock_matches_spec,
    lock_path_for,
    lock_spec,
    read_lock,
    spec_digest,
    write_lock,
)
from assay.build.spec import ImageSpec
from assay.debian.model import PackageRecord, ReleaseInfo, RepoSource
from assay.errors import InputError, ResolutionError
from fixtures import debrecords
from fixtures.debrecords import MAIN, SECURITY, Index, record

SRC, SEC = MAIN, SECURITY

SPEC = b"""contents:
  repositories:
    - {uri: "http://127.0.0.1:1/debian", suites: [stable]}
    - {uri: "http://127.0.0.1:1/debian-security", suites: [stable-security]}
  packages: [app]
archs: [amd64, arm64]
"""


def rec(name: str, version: str, arch: str, repo: RepoSource = SRC, **kw: object) -> PackageRecord:
    fields: dict[str, object] = {
        "source": name,
        "filename": f"pool/main/{name[0]}/{name}/{name}_{version}_{arch}.deb",
        "size": len(name) * 100,
        "sha256": (name.encode().hex() * 64)[:64],
        "maintainer": "Tests <t@assay.invalid>",
    }
    return record(name, version, arch, repo, **{**fields, **kw})


def release(src: RepoSource, n: int) -> ReleaseInfo:
    return debrecords.release(src, n, version="12.8")


class StaticClient:
    """Stands in for RepoClient (which the integration tests exercise on a served repo)."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[RepoSource], list[str]]] = []

    def load(self, sources: Sequence[RepoSource], archs: Sequence[str]) -> Index:
        self.calls.append((list(sources), list(archs)))
        pkgs = {}
        for arch in archs:
            pkgs[arch] = (
                rec("app", "1.0", arch, depends="libssl3 (>= 3), tzdata"),
                rec("libssl3", "3.0.11-1", arch, source="openssl", multi_arch="same"),
                rec("libssl3", "3.0.15-1~deb12u1", arch, SEC, source="openssl", multi_arch="same"),
                rec("tzdata", "2024a-0+deb12u1", "all", multi_arch="foreign"),
            )
        return Index((release(SRC, 1), release(SEC, 2)), pkgs)


@pytest.fixture
def spec_file(tmp_path: Path) -> Path:
    path = tmp_path / "app.yaml"
    path.write_bytes(SPEC)
    return path


def make(spec_file: Path) -> Lock:
    return lock_spec(ImageSpec.from_file(spec_file), spec_file, StaticClient())


def test_lock_contents(spec_file: Path) -> None:
    lock = make(spec_file)
    assert lock.spec == "app.yaml"
    assert lock.spec_digest == spec_digest(SPEC)
    assert lock.archs == ["amd64", "arm64"]
    assert [s.suite for s in lock.sources] == ["stable", "stable-security"]
    # Releases are sorted by URL ("debian-security/…" sorts before "debian/dists/…").
    assert [r.url for r in lock.releases] == sorted(r.url for r in lock.releases)
    assert {r.suite: r.sha256 for r in lock.releases} == {
        "stable": f"{1:064x}",
        "stable-security": f"{2:064x}",
    }
    amd = {p.name: p for p in lock.packages["amd64"]}
    assert list(amd) == ["app", "libssl3", "tzdata"]
    assert amd["libssl3"].version == "3.0.15-1~deb12u1"  # security fix taken
    assert amd["libssl3"].suite == "stable-security"
    assert amd["libssl3"].repository == "http://127.0.0.1:1/debian-security"
    assert amd["libssl3"].source == "openssl"
    assert amd["libssl3"].url.endswith(amd["libssl3"].filename)
    assert amd["app"].depends == ["libssl3", "tzdata"]
    assert amd["tzdata"].architecture == "all"
    assert [p.architecture for p in lock.packages["arm64"]] == ["arm64", "arm64", "all"]


def test_json_is_deterministic_and_camel_case(spec_file: Path, tmp_path: Path) -> None:
    a, b = make(spec_file), make(spec_file)
    assert a.to_json() == b.to_json()
    data = json.loads(a.to_json())
    assert list(data) == [
        "lockVersion",
        "spec",
        "specDigest",
        "requested",
        "sources",
        "releases",
        "packages",
    ]
    pkg = data["packages"]["amd64"][1]
    assert list(pkg)[:6] == [
        "name",
        "version",
        "architecture",
        "source",
        "sourceVersion",
        "filename",
    ]
    assert {"url", "size", "sha256", "repository", "suite", "component", "multiArch"} <= set(pkg)
    assert set(data["releases"][0]) == {
        "url",
        "sha256",
        "date",
        "dateEpoch",
        "suite",
        "codename",
        "version",
    }
    assert a.to_json().endswith(b"}\n")


def test_write_read_round_trip(spec_file: Path) -> None:
    lock = make(spec_file)
    path = lock_path_for(spec_file)
    assert path.name == "app.lock.json"
    write_lock(path, lock)
    again = read_lock(path)
    assert again == lock
    assert again.to_json() == path.read_bytes()
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".tmp-")]


def test_lock_path_for() -> None:
    assert lock_path_for("examples/python.yaml") == Path("examples/python.lock.json")
    assert lock_path_for("x.yml") == Path("x.lock.json")
    assert lock_path_for("spec") == Path("spec.lock.json")


def test_staleness(spec_file: Path) -> None:
    lock = make(spec_file)
    assert lock_matches_spec(lock, SPEC)
    assert not lock_matches_spec(lock, SPEC + b"# edited\n")


def test_resolution_errors_propagate(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_bytes(SPEC.replace(b"[app]", b"[app, apq-tools]"))
    with pytest.raises(ResolutionError, match="apq-tools is not available"):
        lock_spec(ImageSpec.from_file(path), path, StaticClient())


# -- hostile or broken lock files -------------------------------------------------------------


def _mutate(spec_file: Path, tmp_path: Path, change: object) -> Path:
    data = json.loads(make(spec_file).to_json())
    change(data)  # type: ignore[operator]
    path = tmp_path / "x.lock.json"
    path.write_text(json.dumps(data))
    return path


def _pkg(data: dict[str, object]) -> dict[str, object]:
    return data["packages"]["amd64"][0]  # type: ignore[index,no-any-return]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: _pkg(d).update(filename="pool/../../etc/passwd.deb"), "filename"),
        (lambda d: _pkg(d).update(filename="/etc/x.deb"), "filename"),
        (lambda d: _pkg(d).update(filename="pool/x.tar"), "filename"),
        (lambda d: _pkg(d).update(sha256="abc"), "sha256"),
        (lambda d: _pkg(d).update(sha256="G" * 64), "sha256"),
        (lambda d: _pkg(d).update(name="../evil"), "name"),
        (lambda d: _pkg(d).update(version="1.0 ; rm"), "version"),
        (lambda d: _pkg(d).update(size=-1), "size"),
        (lambda d: _pkg(d).update(url="javascript:alert(1)"), "url"),
        (lambda d: _pkg(d).update(url="http://127.0.0.2/x/" + _pkg(d)["filename"]), "url is not"),
        (
            lambda d: _pkg(d).update(
                repository="http://127.0.0.2/x", url="http://127.0.0.2/x/" + _pkg(d)["filename"]
            ),
            "not a source",
        ),
        (lambda d: _pkg(d).update(surprise=1), "surprise"),
        (lambda d: _pkg(d).update(architecture="arm64"), "architecture arm64"),
        (lambda d: d["packages"]["amd64"].append(_pkg(d)), "more than once"),
        (lambda d: d.update(lockVersion=99), "lock version 99"),
        (lambda d: d.update(specDigest="0" * 63), "specDigest"),
        (lambda d: d.pop("releases"), "releases"),
    ],
)
def test_malformed_lock_is_an_input_error(
    spec_file: Path, tmp_path: Path, change: object, message: str
) -> None:
    path = _mutate(spec_file, tmp_path, change)
    with pytest.raises(InputError, match=message) as info:
        read_lock(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    "content", [b"", b"{", b"[]", b"\xff\xfe", b'"lock"', b'{"lockVersion": 1}']
)
def test_not_a_lock(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "x.lock.json"
    path.write_bytes(content)
    with pytest.raises(InputError):
        read_lock(path)


def test_oversized_lock_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.lock.json"
    with path.open("wb") as fh:
        fh.write(b" " * (65 << 20))
    with pytest.raises(InputError, match="larger than 64 MiB"):
        read_lock(path)


def test_missing_lock(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read lock"):
        read_lock(tmp_path / "none.lock.json")
