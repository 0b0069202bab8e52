"""The repository client and .deb cache against the real Debian mirror from the apt sources.

Marked ``network``; skips with a loud reason when no source is configured or the mirror is
unreachable. The mirror comes from ASSAY_DEBIAN_MIRROR or the host's apt sources only.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from assay.debian.fetch import DebCache
from assay.debian.model import RepoSource
from assay.debian.repo import RepoClient, RepoIndex
from assay.errors import NetworkError
from fixtures.examples import mirror_or_skip

pytestmark = [pytest.mark.network, pytest.mark.slow]

ARCHS = ("amd64", "arm64")


@pytest.fixture(scope="module")
def mirror(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[RepoSource], Path, RepoIndex]:
    sources = mirror_or_skip()
    cache = tmp_path_factory.mktemp("mirror-cache")
    try:
        with RepoClient(cache_dir=cache) as client:
            index = client.load(sources, ARCHS)
    except NetworkError as exc:
        pytest.skip(f"NETWORK TEST SKIPPED: the Debian mirror is unreachable: {exc}")
    return sources, cache, index


def test_host_sources_load_for_both_archs(
    mirror: tuple[list[RepoSource], Path, RepoIndex],
) -> None:
    sources, _, index = mirror
    assert len(index.releases) == len(sources)
    for rel, src in zip(index.releases, sources, strict=True):
        assert rel.source == src
        assert src.suite in (rel.suite, rel.codename)
        assert len(rel.sha256) == 64
    for arch in ARCHS:
        recs = index.packages[arch]
        assert len(recs) > 20_000, f"only {len(recs)} records for {arch}"
        assert {r.architecture for r in recs} <= {arch, "all"}
        names = {r.name for r in recs}
        for must in ("libc6", "libssl3", "base-files", "tzdata", "ca-certificates"):
            assert must in names, f"{must} missing for {arch}"
        libc = [r for r in recs if r.name == "libc6"]
        assert all(r.architecture == arch and r.source == "glibc" for r in libc)
        assert all(r.filename.startswith("pool/") and len(r.sha256) == 64 for r in libc)


def test_warm_load_downloads_no_index(mirror: tuple[list[RepoSource], Path, RepoIndex]) -> None:
    sources, cache, first = mirror
    messages: list[str] = []
    try:
        with RepoClient(cache_dir=cache, progress=messages.append) as client:
            again = client.load(sources, ARCHS)
    except NetworkError as exc:
        pytest.skip(f"NETWORK TEST SKIPPED: the Debian mirror became unreachable: {exc}")
    fetched = [m for m in messages if (m.startswith("Get ") and "Packages" in m) or "by-hash" in m]
    assert fetched == []
    assert {a: len(r) for a, r in again.packages.items()} == {
        a: len(r) for a, r in first.packages.items()
    }


def test_fetch_a_real_deb(mirror: tuple[list[RepoSource], Path, RepoIndex], tmp_path: Path) -> None:
    _, _, index = mirror
    # The smallest arch-specific package in the index, to keep traffic low.
    rec = min(
        (r for r in index.packages["arm64"] if r.architecture == "arm64"), key=lambda r: r.size
    )
    try:
        with DebCache(cache_dir=tmp_path) as cache:
            path = cache.fetch_all([(rec.url, rec.sha256, rec.size)])[rec.sha256]
    except NetworkError as exc:
        pytest.skip(f"NETWORK TEST SKIPPED: the Debian mirror is unreachable: {exc}")
    blob = path.read_bytes()
    assert blob.startswith(b"!<arch>\ndebian-binary")
    assert hashlib.sha256(blob).hexdigest() == rec.sha256
