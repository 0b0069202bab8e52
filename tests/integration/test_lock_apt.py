"""assay's resolution equals apt's own choice for the same request.

apt runs in a throw-away configuration (tests/assets/resolver/aptsim.py): its own Dir::State,
Dir::Cache and sources, the fixture key as signed-by, one architecture, and an EMPTY dpkg status
so nothing counts as installed. For each request we compare ``apt-get install
--no-install-recommends -s`` with assay's resolution over the same signed indexes, as sets of
(name, version).

Fixture repositories are built here (real .debs, gpg-signed InRelease) and served on 127.0.0.1.
The real-mirror comparisons are in test_lock_apt_mirror.py.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from assay.debian.model import RepoSource
from assay.debian.repo import RepoClient
from assay.debian.resolver import resolve
from assay.errors import ResolutionError
from fixtures.assets import asset_module
from fixtures.debrepo import FakePkg, FakeRepo, TestKey, make_repo, sample_repo, serve, test_key

__all__ = ["sample_repo", "test_key"]  # pytest fixtures used below

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

aptsim = asset_module("resolver/aptsim.py", "aptsim")

pytestmark = pytest.mark.skipif(shutil.which("apt-get") is None, reason="apt-get not installed")


def assay_choice(
    client: RepoClient, sources: Sequence[RepoSource], arch: str, packages: Sequence[str]
) -> dict[str, str]:
    index = client.load(sources, [arch])
    res = resolve(index.packages[arch], packages, arch)
    return {p.name: p.version for p in res.packages}


def compare(
    apt: aptsim.AptRoot,
    client: RepoClient,
    sources: Sequence[RepoSource],
    arch: str,
    packages: Sequence[str],
) -> None:
    try:
        expected = apt.simulate(packages)
    except RuntimeError:
        expected = None
    if expected is None:
        with pytest.raises(ResolutionError):
            assay_choice(client, sources, arch, packages)
        return
    got = assay_choice(client, sources, arch, packages)
    assert got == expected, {
        "only apt": sorted(set(expected.items()) - set(got.items())),
        "only assay": sorted(set(got.items()) - set(expected.items())),
    }


# -- a repository written to trip resolvers up ---------------------------------------------------


def tricky_suites() -> dict[str, list[FakePkg]]:
    """Cases where a plausible resolver and apt differ; every list below is compared."""
    main = [
        FakePkg("libc6", "2.36-9", multi_arch="same", priority="required"),
        # alternatives: first installable wins; skip one whose own deps have no candidate
        FakePkg("alt-user", "1.0", depends="broken-alt | good-alt, libc6"),
        FakePkg("broken-alt", "1.0", depends="does-not-exist"),
        FakePkg("good-alt", "1.0"),
        # alternative whose version is too old
        FakePkg("old-first", "1.0", depends="oldie (>= 2) | fresh"),
        FakePkg("oldie", "1.5"),
        FakePkg("fresh", "1.0"),
        # virtual packages: several providers, Priority decides; a real package beats providers
        FakePkg("needs-mta", "1.0", depends="mail-transport-agent"),
        FakePkg("exim4-daemon", "4.96-1", provides="mail-transport-agent", priority="optional"),
        FakePkg("postfix", "3.7.6-0", provides="mail-transport-agent", priority="standard"),
        FakePkg("needs-awk", "1.0", depends="awk"),
        FakePkg("awk", "1.0"),
        FakePkg("mawk", "1.3.4", provides="awk", priority="required"),
        # versioned provides (and an unversioned one that must not count)
        FakePkg("needs-abi", "1.0", depends="libbar-abi-3 (>= 3.1)"),
        FakePkg("libbar3", "3.2-1", provides="libbar-abi-3 (= 3.2)"),
        FakePkg("libbar-compat", "1.0", provides="libbar-abi-3"),
        # an or-group satisfied by something marked earlier in the walk
        FakePkg("walker", "1.0", depends="first-dep, either-a | either-b"),
        FakePkg("first-dep", "1.0", depends="either-b"),
        FakePkg("either-a", "1.0"),
        FakePkg("either-b", "1.0"),
        # Pre-Depends, :any on a Multi-Arch: allowed package, ignored Recommends
        FakePkg("py-tool", "1.0", pre_depends="libc6", depends="python3:any (>= 3.11)"),
        FakePkg("python3", "3.11.2-1", multi_arch="allowed", recommends="python3-doc"),
        FakePkg("python3-doc", "3.11.2-1", arch="all"),
        # every version operator
        FakePkg("ops", "1.0", depends="o1 (<< 2), o2 (<= 2), o3 (= 2), o4 (>= 2), o5 (>> 2)"),
        FakePkg("o1", "1.9"),
        FakePkg("o2", "2"),
        FakePkg("o3", "2"),
        FakePkg("o4", "2"),
        FakePkg("o5", "2+b1"),
        # Essential is not pulled in implicitly
        FakePkg("base-files", "12.4", essential=True, priority="required"),
        # Breaks steer the choice of an alternative
        FakePkg("breaker", "1.0", breaks="fragile (<< 2)"),
        FakePkg("needs-fragile-or-sturdy", "1.0", depends="fragile | sturdy"),
        FakePkg("fragile", "1.0"),
        FakePkg("sturdy", "1.0"),
        # a newer version in the second suite
        FakePkg("libssl3", "3.0.11-1", multi_arch="same", depends="libc6 (>= 2.34)"),
        FakePkg("wants-new-ssl", "1.0", depends="libssl3 (>= 3.0.15)"),
    ]
    updates = [
        FakePkg("libssl3", "3.0.15-1~deb12u1", multi_arch="same", depends="libc6 (>= 2.34)"),
        FakePkg("updates-only", "1.0", depends="libssl3"),
    ]
    return {"stable": main, "stable-updates": updates}


TRICKY_REQUESTS = [
    ["alt-user"],
    ["old-first"],
    ["needs-mta"],
    ["needs-awk"],
    ["needs-abi"],
    ["walker"],
    ["py-tool"],
    ["ops"],
    ["base-files"],
    ["breaker", "needs-fragile-or-sturdy"],
    ["needs-fragile-or-sturdy", "breaker"],
    ["wants-new-ssl"],
    ["updates-only"],
    ["libssl3=3.0.11-1"],
    ["either-a", "walker"],
    ["walker", "either-a"],
    ["alt-user", "needs-mta", "needs-abi", "walker", "py-tool", "ops", "updates-only"],
]

SAMPLE_REQUESTS = [
    ["python3.11-minimal"],
    ["ca-certificates"],
    ["needs-awk"],
    ["foo-tool"],
    ["security-only"],
    ["openssl", "tzdata", "base-files"],
    ["gawk", "needs-awk"],
    ["sysvinit-core"],
    ["needs-amd64-only"],
]


@pytest.fixture(scope="module")
def tricky_repo(
    tmp_path_factory: pytest.TempPathFactory, test_key: TestKey
) -> Iterator[tuple[FakeRepo, str]]:
    repo = make_repo(
        tmp_path_factory.mktemp("tricky-repo"), tricky_suites(), archs=("amd64",), key=test_key
    )
    with serve(repo.root) as url:
        yield repo, url


@pytest.fixture(scope="module")
def tricky_apt(
    tmp_path_factory: pytest.TempPathFactory, tricky_repo: tuple[FakeRepo, str]
) -> tuple[aptsim.AptRoot, list[RepoSource]]:
    repo, url = tricky_repo
    sources = repo.sources(url)
    return aptsim.apt_root(tmp_path_factory.mktemp("apt-tricky"), sources, "amd64"), sources


@pytest.mark.parametrize("packages", TRICKY_REQUESTS, ids=lambda p: "+".join(p))
def test_tricky_repo_matches_apt(
    tricky_apt: tuple[aptsim.AptRoot, list[RepoSource]],
    packages: list[str],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    apt, sources = tricky_apt
    with RepoClient(cache_dir=tmp_path_factory.getbasetemp() / "tricky-cache") as client:
        compare(apt, client, sources, "amd64", packages)


@pytest.fixture(scope="module")
def sample_apt(
    tmp_path_factory: pytest.TempPathFactory, sample_repo: tuple[FakeRepo, str]
) -> dict[str, tuple[aptsim.AptRoot, list[RepoSource]]]:
    repo, url = sample_repo
    sources = repo.sources(url)
    return {
        arch: (
            aptsim.apt_root(tmp_path_factory.mktemp(f"apt-sample-{arch}"), sources, arch),
            sources,
        )
        for arch in ("amd64", "arm64")
    }


@pytest.mark.parametrize("arch", ["amd64", "arm64"])
@pytest.mark.parametrize("packages", SAMPLE_REQUESTS, ids=lambda p: "+".join(p))
def test_sample_repo_matches_apt(
    sample_apt: dict[str, tuple[aptsim.AptRoot, list[RepoSource]]],
    arch: str,
    packages: list[str],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    apt, sources = sample_apt[arch]
    with RepoClient(cache_dir=tmp_path_factory.getbasetemp() / "sample-cache") as client:
        compare(apt, client, sources, arch, packages)


def test_comparison_can_fail(
    tricky_apt: tuple[aptsim.AptRoot, list[RepoSource]],
) -> None:
    """apt really disagrees with a naive choice: the harness is not comparing x with x."""
    apt, _ = tricky_apt
    assert apt.simulate(["alt-user"]).get("good-alt") == "1.0"
    assert "broken-alt" not in apt.simulate(["alt-user"])
    assert apt.simulate(["needs-mta"]).keys() == {"needs-mta", "postfix"}
