"""assay's resolution equals apt's on the real Debian mirror (host apt sources), amd64 and arm64.

apt runs in a throw-away configuration (tests/assets/resolver/aptsim.py, empty dpkg status) after
its own ``apt-get update``; assay loads the same repositories through RepoClient. The package
sets compared are the shipped examples and a few larger requests. Marked ``network``: skips
loudly when no sources are configured or the mirror is unreachable.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from assay.build.spec import ImageSpec
from assay.debian.model import PackageRecord, RepoSource
from assay.debian.repo import RepoClient
from assay.debian.resolver import resolve
from fixtures.assets import asset_module
from fixtures.examples import mirror_or_skip

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

aptsim = asset_module("resolver/aptsim.py", "aptsim")

pytestmark = [
    pytest.mark.network,
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("apt-get") is None, reason="apt-get not installed"),
]


@pytest.fixture(scope="module")
def mirror_apt(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, tuple[aptsim.AptRoot, list[RepoSource]]]]:
    sources = mirror_or_skip()
    yield {
        arch: (
            aptsim.apt_root(tmp_path_factory.mktemp(f"apt-mirror-{arch}"), sources, arch),
            sources,
        )
        for arch in ("amd64", "arm64")
    }


@pytest.mark.parametrize("arch", ["amd64", "arm64"])
@pytest.mark.parametrize("example", ["static", "base", "python", "python-dev"])
def test_examples_match_apt_on_the_real_mirror(
    mirror_apt: dict[str, tuple[aptsim.AptRoot, list[RepoSource]]], arch: str, example: str
) -> None:
    apt, sources = mirror_apt[arch]
    spec = ImageSpec.from_file(EXAMPLES / f"{example}.yaml")
    assert arch in spec.archs
    if arch not in _MIRROR_INDEX:  # parse each architecture's indexes once per run
        with RepoClient() as client:
            _MIRROR_INDEX[arch] = client.load(sources, [arch]).packages[arch]
    expected = apt.simulate(spec.package_requests())
    res = resolve(_MIRROR_INDEX[arch], spec.package_requests(), arch)
    got = {p.name: p.version for p in res.packages}
    assert got == expected, {
        "only apt": sorted(set(expected.items()) - set(got.items())),
        "only assay": sorted(set(got.items()) - set(expected.items())),
    }
    assert {"base-files", "tzdata", "netbase"} <= got.keys()
    # With the spec's `exclude` (packages only maintainer scripts need), the image is apt's
    # set minus what only the excluded packages pulled in: never more, never a different version.
    if spec.contents.exclude:
        slim = resolve(_MIRROR_INDEX[arch], spec.package_requests(), arch, spec.contents.exclude)
        slim_set = {(p.name, p.version) for p in slim.packages}
        assert slim_set <= set(expected.items())
        assert not slim_set & {(n, expected.get(n)) for n in spec.contents.exclude}
        assert {r.partition("=")[0] for r in spec.package_requests()} <= {n for n, _ in slim_set}


_MIRROR_INDEX: dict[str, tuple[PackageRecord, ...]] = {}


@pytest.mark.parametrize("arch", ["amd64", "arm64"])
@pytest.mark.parametrize(
    "packages",
    [["python3"], ["openssh-server"], ["postgresql"], ["git", "curl"], ["ca-certificates"]],
    ids=lambda p: "+".join(p),
)
def test_larger_sets_match_apt_on_the_real_mirror(
    mirror_apt: dict[str, tuple[aptsim.AptRoot, list[RepoSource]]], arch: str, packages: list[str]
) -> None:
    apt, sources = mirror_apt[arch]
    if arch not in _MIRROR_INDEX:
        with RepoClient() as client:
            _MIRROR_INDEX[arch] = client.load(sources, [arch]).packages[arch]
    expected = apt.simulate(packages)
    got = {p.name: p.version for p in resolve(_MIRROR_INDEX[arch], packages, arch).packages}
    assert got == expected, {
        "only apt": sorted(set(expected.items()) - set(got.items())),
        "only assay": sorted(set(got.items()) - set(expected.items())),
    }
