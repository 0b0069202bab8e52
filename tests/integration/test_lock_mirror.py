"""The shipped examples lock against the real Debian mirror (host apt sources), amd64 and arm64.

Marked ``network``: skips loudly when no sources are configured or the mirror is unreachable.
The indexes are loaded once (through the real RepoClient: signed InRelease, hashed Packages) and
shared by every example.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

import pytest

from assay.build.lock import lock_path_for, lock_spec, read_lock, write_lock
from assay.build.spec import ImageSpec
from assay.debian.model import RepoSource
from assay.debian.repo import RepoClient, RepoIndex
from assay.debian.resolver import resolve
from assay.errors import ResolutionError
from fixtures.examples import mirror_or_skip

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

pytestmark = [pytest.mark.network, pytest.mark.slow]


class OnceClient:
    """The real RepoClient, loading each (sources, archs) pair only once per test module."""

    def __init__(self) -> None:
        self.client = RepoClient()
        self.cache: dict[tuple[tuple[RepoSource, ...], tuple[str, ...]], RepoIndex] = {}

    def load(self, sources: Sequence[RepoSource], archs: Sequence[str]) -> RepoIndex:
        key = (tuple(sources), tuple(archs))
        if key not in self.cache:
            self.cache[key] = self.client.load(sources, archs)
        return self.cache[key]


@pytest.fixture(scope="module")
def mirror() -> OnceClient:
    mirror_or_skip()
    client = OnceClient()
    yield client
    client.client.close()


@pytest.mark.parametrize("example", ["static", "base", "python", "python-dev"])
def test_example_locks_for_both_archs(mirror: OnceClient, example: str, tmp_path: Path) -> None:
    spec_path = tmp_path / f"{example}.yaml"
    shutil.copy(EXAMPLES / f"{example}.yaml", spec_path)
    spec = ImageSpec.from_file(spec_path)
    lock = lock_spec(spec, spec_path, mirror)
    write_lock(lock_path_for(spec_path), lock)
    again = read_lock(tmp_path / f"{example}.lock.json")
    assert again == lock
    assert again.archs == ["amd64", "arm64"]
    assert {r.codename for r in lock.releases} >= {"bookworm", "bookworm-security"}
    for arch in ("amd64", "arm64"):
        pkgs = {p.name: p for p in lock.packages[arch]}
        for request in spec.package_requests():
            assert request.partition("=")[0] in pkgs
        for name in spec.contents.exclude:
            assert name not in pkgs
        assert all(p.architecture in (arch, "all") for p in pkgs.values())
        assert all(p.url.startswith(("http://", "https://")) for p in pkgs.values())
        if "python3.11-minimal" in pkgs:
            # the distroless-python-sized budget: ≤ 20 MB of packages
            assert sum(p.size for p in pkgs.values()) < 20_000_000
            assert pkgs["libpython3.11-minimal"].version == pkgs["python3.11-minimal"].version


def test_security_fixes_are_taken(mirror: OnceClient) -> None:
    spec = ImageSpec.from_file(EXAMPLES / "base.yaml")
    index = mirror.load(spec.repo_sources(), spec.archs)
    res = resolve(index.packages["amd64"], ["libssl3"], "amd64")
    ssl = res.get("libssl3")
    assert ssl is not None
    same_name = [r for r in index.packages["amd64"] if r.name == "libssl3"]
    from assay.debian.version import version_key

    assert ssl.version == max((r.version for r in same_name), key=version_key)
    if any(r.repo.suite.endswith("-security") for r in same_name):
        assert ssl.repo.suite.endswith("-security")


def test_amd64_only_package_fails_on_arm64_with_a_chain(mirror: OnceClient) -> None:
    spec = ImageSpec.from_file(EXAMPLES / "base.yaml")
    index = mirror.load(spec.repo_sources(), spec.archs)
    # grub-pc exists for PC BIOS machines only (amd64/i386).
    assert resolve(index.packages["amd64"], ["grub-pc"], "amd64").get("grub-pc") is not None
    with pytest.raises(ResolutionError, match="grub-pc is not available for arm64"):
        resolve(index.packages["arm64"], ["grub-pc"], "arm64")
    with pytest.raises(ResolutionError, match=r"did you mean python3\.11-minimal"):
        resolve(index.packages["arm64"], ["python3.11-minimall"], "arm64")
