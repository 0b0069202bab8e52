"""RepoClient against a real signed fixture repository served on 127.0.0.1."""
# ruff: noqa: SIM117  (nested "with" keeps server, client and pytest.raises readable)

from __future__ import annotations

import hashlib
import shutil
import time
from pathlib import Path

import pytest

from assay.debian import repo as repo_mod
from assay.debian.model import PackageRecord, RepoSource
from assay.debian.repo import RepoClient, parse_packages
from assay.errors import InputError, NetworkError, UsageError, VerificationError
from fixtures.debrepo import (
    FakePkg,
    FakeRepo,
    TestKey,
    make_repo,
    other_key,
    rfc2822,
    sample_suites,
    serve,
    test_key,
)

__all__ = ["other_key", "test_key"]  # pytest fixtures imported for use here

ARCHS = ("amd64", "arm64")


def small_suites() -> dict[str, list[FakePkg]]:
    return {
        "stable": [
            FakePkg("hello", "1.0-1", arch=a, depends="libc6 (>= 2.36)", source="hello-src (1.0)")
            for a in ARCHS
        ]
        + [FakePkg("libc6", "2.36-9", arch=a, multi_arch="same") for a in ARCHS]
        + [FakePkg("data", "1.0", arch="all", multi_arch="foreign")],
        "stable-security": [FakePkg("libc6", "2.36-9+deb12u1", arch=a) for a in ARCHS],
    }


@pytest.fixture
def small_repo(tmp_path: Path, test_key: TestKey) -> FakeRepo:
    return make_repo(tmp_path / "repo", small_suites(), key=test_key)


def cache_files(cache: Path) -> list[str]:
    """Every regular file under the cache, relative, sorted."""
    if not cache.exists():
        return []
    return sorted(str(p.relative_to(cache)) for p in cache.rglob("*") if p.is_file())


def valid_cache_files(cache: Path) -> list[str]:
    """Cached files under a valid (non-temporary) name."""
    return [f for f in cache_files(cache) if not Path(f).name.startswith(".tmp-")]


def client(cache: Path, **kw: object) -> RepoClient:
    c = RepoClient(cache_dir=cache, **kw)  # type: ignore[arg-type]
    c.backoff = 0.01
    return c


# --- loading -----------------------------------------------------------------------------


def test_load_sample_repo_two_suites_two_archs(tmp_path: Path, test_key: TestKey) -> None:
    repo = make_repo(tmp_path / "repo", sample_suites(), key=test_key)
    with serve(repo.root) as url, client(tmp_path / "cache") as c:
        index = c.load(repo.sources(url), ARCHS)

    assert [r.suite for r in index.releases] == ["stable", "stable-security"]
    for rel, suite in zip(index.releases, repo.suites, strict=True):
        raw = repo.inrelease(suite).read_bytes()
        assert rel.sha256 == hashlib.sha256(raw).hexdigest()
        assert rel.url == f"{url}/dists/{suite}/InRelease"
        assert rel.codename == suite and rel.origin == "Assay Test"
        assert rel.date_epoch > time.time() - 3600

    for arch in ARCHS:
        recs = index.packages[arch]
        # Every listed stanza (sample_suites lists per suite and arch) came through, in order.
        expected = [
            (f["Package"], f["Version"], f["Architecture"])
            for suite in repo.suites
            for f in repo.records[suite][arch]
        ]
        assert [(r.name, r.version, r.architecture) for r in recs] == expected
        assert {r.architecture for r in recs} == {arch, "all"}
        ssl = [r for r in recs if r.name == "libssl3"]
        assert [(r.version, r.repo.suite) for r in ssl] == [
            ("3.0.11-1~deb12u2", "stable"),
            ("3.0.15-1~deb12u1", "stable-security"),
        ]
        assert all(r.source == "openssl" and r.multi_arch == "same" for r in ssl)
        for r in recs:
            deb = repo.deb(r.name, r.version, r.architecture)
            blob = deb.read_bytes()
            assert r.sha256 == hashlib.sha256(blob).hexdigest()
            assert r.size == len(blob)
            assert r.url == f"{url}/{deb.relative_to(repo.root)}"
            assert r.component == "main"
    names64 = {r.name for r in index.packages["arm64"]}
    assert "amd64-only" in {r.name for r in index.packages["amd64"]}
    assert "amd64-only" not in names64
    assert "security-only" in names64
    py = next(r for r in index.packages["amd64"] if r.name == "python3.11-minimal")
    assert py.depends == "libpython3.11-minimal (= 3.11.2-6+deb12u1), libssl3 (>= 3.0.0)"
    assert py.pre_depends == "libc6 (>= 2.36)"
    assert py.extra["Recommends"] == "tzdata"
    foo = next(r for r in index.packages["arm64"] if r.name == "libfoo1")
    assert foo.provides == "libfoo-abi (= 2)"
    base = next(r for r in index.packages["amd64"] if r.name == "base-files")
    assert base.essential
    conflict = next(r for r in index.packages["amd64"] if r.name == "sysvinit-core")
    assert conflict.conflicts == "systemd-sysv"


def test_source_field_with_version_and_gawk_epoch(small_repo: FakeRepo, tmp_path: Path) -> None:
    with serve(small_repo.root) as url, client(tmp_path / "cache") as c:
        recs = c.packages(small_repo.sources(url)[0], "arm64")
    hello = next(r for r in recs if r.name == "hello")
    assert (hello.source, hello.source_version) == ("hello-src", "1.0")
    libc = next(r for r in recs if r.name == "libc6")
    assert (libc.source, libc.source_version) == ("libc6", "2.36-9")
    assert {r.name for r in recs} == {"hello", "libc6", "data"}


def test_armored_keyring_and_client_keyrings(small_repo: FakeRepo, tmp_path: Path) -> None:
    with serve(small_repo.root) as url:
        src = RepoSource(uri=url, suite="stable", signed_by=str(small_repo.key.armored))
        with client(tmp_path / "c1") as c:
            assert c.release(src).suite == "stable"
        # signed_by absent: the client's keyrings are used.
        plain = RepoSource(uri=url, suite="stable")
        with client(tmp_path / "c2", keyrings=[small_repo.key.keyring]) as c:
            assert c.release(plain).codename == "stable"


def test_missing_keyring_is_a_usage_error(small_repo: FakeRepo, tmp_path: Path) -> None:
    with serve(small_repo.root) as url, client(tmp_path / "c") as c:
        src = RepoSource(uri=url, suite="stable", signed_by=str(tmp_path / "nope.gpg"))
        with pytest.raises(UsageError, match=r"nope\.gpg does not exist"):
            c.release(src)


# --- verification failures --------------------------------------------------------------


def test_tampered_release_is_rejected(small_repo: FakeRepo, tmp_path: Path) -> None:
    inrel = small_repo.inrelease("stable")
    raw = inrel.read_bytes()
    assert b"Label: Assay Test\n" in raw
    inrel.write_bytes(raw.replace(b"Label: Assay Test\n", b"Label: Assay Tesu\n"))
    cache = tmp_path / "cache"
    with serve(small_repo.root) as url, client(cache) as c:
        with pytest.raises(VerificationError) as info:
            c.load(small_repo.sources(url, ["stable"]), ARCHS)
    msg = str(info.value)
    assert f"{url}/dists/stable/InRelease" in msg
    assert "expected a good signature" in msg and "BAD signature" in msg
    assert valid_cache_files(cache) == []


def test_wrong_key_is_rejected(tmp_path: Path, test_key: TestKey, other_key: TestKey) -> None:
    repo = make_repo(tmp_path / "repo", small_suites(), key=other_key)
    cache = tmp_path / "cache"
    with serve(repo.root) as url, client(cache) as c:
        srcs = [RepoSource(uri=url, suite="stable", signed_by=str(test_key.keyring))]
        with pytest.raises(VerificationError) as info:
            c.load(srcs, ARCHS)
    msg = str(info.value)
    assert "/dists/stable/InRelease" in msg and str(test_key.keyring) in msg
    assert "key not in keyring" in msg
    assert valid_cache_files(cache) == []


def test_default_keyring_does_not_trust_test_key(small_repo: FakeRepo, tmp_path: Path) -> None:
    with serve(small_repo.root) as url, client(tmp_path / "c") as c:
        src = RepoSource(uri=url, suite="stable")
        with pytest.raises((VerificationError, UsageError)):
            c.release(src)
    assert valid_cache_files(tmp_path / "c") == []


def test_text_outside_signature_is_rejected(small_repo: FakeRepo, tmp_path: Path) -> None:
    inrel = small_repo.inrelease("stable")
    inrel.write_bytes(inrel.read_bytes() + b"\nPackage: evil\n")
    with serve(small_repo.root) as url, client(tmp_path / "c") as c:
        with pytest.raises(VerificationError, match="expected nothing after the signature"):
            c.release(small_repo.sources(url)[0])
    inrel.write_bytes(b"Origin: unsigned\n")
    with serve(small_repo.root) as url, client(tmp_path / "c") as c:
        with pytest.raises(VerificationError, match="clearsigned"):
            c.release(small_repo.sources(url)[0])
    assert valid_cache_files(tmp_path / "c") == []


def test_packages_hash_mismatch_is_rejected(small_repo: FakeRepo, tmp_path: Path) -> None:
    # Replace Packages.xz (and its by-hash copy) with a different, well-formed index.
    rel_text = (small_repo.dist("stable") / "Release").read_text()
    target = small_repo.packages_file("stable", "amd64", ".xz")
    listed = hashlib.sha256(target.read_bytes()).hexdigest()
    assert listed in rel_text
    import lzma

    evil = lzma.compress(b"Package: evil\nVersion: 1\n")
    target.write_bytes(evil)
    (target.parent / "by-hash" / "SHA256" / listed).write_bytes(evil)
    cache = tmp_path / "cache"
    with serve(small_repo.root) as url, client(cache) as c:
        with pytest.raises(VerificationError) as info:
            c.load(small_repo.sources(url, ["stable"]), ["amd64"])
    msg = str(info.value)
    found = hashlib.sha256(evil).hexdigest()
    assert "main/binary-amd64/by-hash/SHA256/" + listed in msg
    assert f"expected sha256 {listed}" in msg and f"found sha256 {found}" in msg
    assert "dists/stable/InRelease" in msg
    idx = cache / "indexes" / "sha256"
    assert not (idx / listed).exists() and not (idx / found).exists()
    assert [f for f in valid_cache_files(cache) if "sha256" in f] == []


def test_packages_too_large_is_rejected_without_caching(
    small_repo: FakeRepo, tmp_path: Path
) -> None:
    target = small_repo.packages_file("stable", "arm64", ".xz")
    listed = hashlib.sha256(target.read_bytes()).hexdigest()
    big = target.read_bytes() + b"\0" * 100_000
    (target.parent / "by-hash" / "SHA256" / listed).write_bytes(big)
    cache = tmp_path / "cache"
    with serve(small_repo.root) as url, client(cache) as c:
        with pytest.raises(VerificationError, match="size mismatch"):
            c.packages(small_repo.sources(url)[0], "arm64")
    assert not any("sha256" in f for f in valid_cache_files(cache))


def test_expired_valid_until_is_rejected(tmp_path: Path, test_key: TestKey) -> None:
    until = rfc2822(time.time() - 3600)
    repo = make_repo(tmp_path / "repo", small_suites(), key=test_key, valid_until=until)
    cache = tmp_path / "cache"
    with serve(repo.root) as url, client(cache) as c:
        with pytest.raises(VerificationError) as info:
            c.load(repo.sources(url), ARCHS)
    msg = str(info.value)
    assert "dists/stable" in msg and "InRelease" in msg
    assert "expired" in msg and until in msg and "found current time" in msg
    assert valid_cache_files(cache) == []


def test_valid_until_checked_against_injected_clock(tmp_path: Path, test_key: TestKey) -> None:
    until = rfc2822(time.time() + 7 * 86400)
    repo = make_repo(tmp_path / "repo", small_suites(), key=test_key, valid_until=until)
    with serve(repo.root) as url:
        with client(tmp_path / "c1") as c:
            assert c.release(repo.sources(url)[0]).valid_until == until
        # A cached InRelease is verified again each time: a later clock rejects it.
        future = time.time() + 30 * 86400
        with client(tmp_path / "c1", now=lambda: future) as c:
            with pytest.raises(VerificationError, match="expired"):
                c.release(repo.sources(url)[0])


def test_release_for_another_suite_is_rejected(tmp_path: Path, test_key: TestKey) -> None:
    repo = make_repo(tmp_path / "repo", small_suites(), key=test_key)
    # Serve the (validly signed) security Release under the name "stable": a replay.
    shutil.rmtree(repo.dist("stable"))
    shutil.copytree(repo.dist("stable-security"), repo.dist("stable"))
    with serve(repo.root) as url, client(tmp_path / "c") as c:
        with pytest.raises(VerificationError, match="expected a Release for suite 'stable'"):
            c.release(repo.sources(url)[0])


# --- caching -----------------------------------------------------------------------------


def test_warm_cache_downloads_no_packages(small_repo: FakeRepo, tmp_path: Path) -> None:
    log: list[str] = []
    cache = tmp_path / "cache"
    with serve(small_repo.root, log=log) as url:
        with client(cache) as c:
            first = c.load(small_repo.sources(url), ARCHS)
        cold = [p for p in log if "/binary-" in p]
        assert len(cold) == 4  # 2 suites x 2 archs
        assert all("/by-hash/SHA256/" in p for p in cold)
        log.clear()
        inrelease_files = sorted((cache / "indexes" / "inrelease").iterdir())
        stamps = [p.stat().st_mtime_ns for p in inrelease_files]
        messages: list[str] = []
        with client(cache, progress=messages.append) as c:
            second = c.load(small_repo.sources(url), ARCHS)
    # InRelease was revalidated (If-Modified-Since -> 304), not downloaded and rewritten.
    assert sum("(not modified)" in m for m in messages) == 2
    assert [p.stat().st_mtime_ns for p in inrelease_files] == stamps
    assert [p for p in log if "/binary-" in p] == []
    assert sorted(log) == ["/dists/stable-security/InRelease", "/dists/stable/InRelease"]
    assert second == first


def test_changed_inrelease_is_refetched(small_repo: FakeRepo, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    with serve(small_repo.root) as url:
        with client(cache) as c:
            old = c.release(small_repo.sources(url)[0])
        rel = small_repo.dist("stable") / "Release"
        rel.write_text(rel.read_text().replace("Label: Assay Test", "Label: Assay Test 2"))
        small_repo.resign("stable")
        future = time.time() + 10
        import os

        os.utime(small_repo.inrelease("stable"), (future, future))
        with client(cache) as c:
            new = c.release(small_repo.sources(url)[0])
    assert new.sha256 != old.sha256
    assert new.sha256 == hashlib.sha256(small_repo.inrelease("stable").read_bytes()).hexdigest()


def test_corrupt_cached_index_is_replaced(small_repo: FakeRepo, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    log: list[str] = []
    with serve(small_repo.root, log=log) as url:
        src = small_repo.sources(url)[0]
        with client(cache) as c:
            good = c.packages(src, "amd64")
        for f in (cache / "indexes" / "sha256").iterdir():
            data = bytearray(f.read_bytes())
            data[len(data) // 2] ^= 0xFF
            f.write_bytes(bytes(data))
        shutil.rmtree(cache / "indexes" / "parsed")  # else the parsed records are used
        log.clear()
        with client(cache) as c:
            again = c.packages(src, "amd64")
    assert again == good
    assert len([p for p in log if "/binary-amd64/" in p]) == 1


def test_parsed_records_are_cached_and_a_damaged_copy_is_ignored(
    small_repo: FakeRepo, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    log: list[str] = []
    said: list[str] = []
    with serve(small_repo.root, log=log) as url:
        src = small_repo.sources(url)[0]
        with client(cache) as c:
            good = c.packages(src, "amd64")
        parsed = list((cache / "indexes" / "parsed").iterdir())
        assert len(parsed) == 1
        log.clear()
        with client(cache, progress=said.append) as c:
            assert c.packages(src, "amd64") == good
        assert not [p for p in log if "/binary-amd64/" in p]
        assert any("parsed, cached by sha256" in m for m in said)
        # One flipped byte: the self-check refuses the copy, records come from the raw index.
        data = bytearray(parsed[0].read_bytes())
        data[-5] ^= 0xFF
        parsed[0].write_bytes(bytes(data))
        said.clear()
        with client(cache, progress=said.append) as c:
            assert c.packages(src, "amd64") == good
        assert not any("parsed, cached" in m for m in said)
        assert not [p for p in log if "/binary-amd64/" in p]


def test_without_by_hash_plain_names_are_used(tmp_path: Path, test_key: TestKey) -> None:
    repo = make_repo(tmp_path / "repo", small_suites(), key=test_key, by_hash=False)
    log: list[str] = []
    with serve(repo.root, log=log) as url, client(tmp_path / "c") as c:
        c.packages(repo.sources(url)[0], "amd64")
    assert [p for p in log if "binary" in p] == ["/dists/stable/main/binary-amd64/Packages.xz"]


def test_missing_by_hash_falls_back_and_missing_xz_falls_back_to_gz(
    small_repo: FakeRepo, tmp_path: Path
) -> None:
    shutil.rmtree(small_repo.packages_file("stable", "amd64").parent / "by-hash")
    small_repo.packages_file("stable", "amd64", ".xz").unlink()
    log: list[str] = []
    with serve(small_repo.root, log=log) as url, client(tmp_path / "c") as c:
        recs = c.packages(small_repo.sources(url)[0], "amd64")
    assert {r.name for r in recs} == {"hello", "libc6", "data"}
    tail = [p.rsplit("/", 1)[-1] for p in log if "binary" in p]
    assert tail[-1] == "Packages.gz"


# --- network errors ----------------------------------------------------------------------


def test_retries_on_5xx_then_succeeds(small_repo: FakeRepo, tmp_path: Path) -> None:
    faults = {"/dists/stable/InRelease": [503, 502]}
    log: list[str] = []
    with serve(small_repo.root, log=log, faults=faults) as url, client(tmp_path / "c") as c:
        assert c.release(small_repo.sources(url)[0]).suite == "stable"
    assert log.count("/dists/stable/InRelease") == 3


def test_persistent_5xx_is_a_network_error(small_repo: FakeRepo, tmp_path: Path) -> None:
    faults = {"/dists/stable/InRelease": [500] * 10}
    with serve(small_repo.root, faults=faults) as url, client(tmp_path / "c") as c:
        with pytest.raises(NetworkError) as info:
            c.release(small_repo.sources(url)[0])
    assert f"{url}/dists/stable/InRelease" in str(info.value)
    assert "ASSAY_DEBIAN_MIRROR" in str(info.value)


def test_unreachable_mirror(tmp_path: Path) -> None:
    src = RepoSource(uri="http://127.0.0.1:9", suite="stable")
    with client(tmp_path / "c") as c:
        with pytest.raises(NetworkError) as info:
            c.release(src)
    msg = str(info.value)
    assert "http://127.0.0.1:9/dists/stable/InRelease" in msg
    assert "ASSAY_DEBIAN_MIRROR" in msg and "apt sources" in msg


def test_unknown_suite_and_arch(small_repo: FakeRepo, tmp_path: Path) -> None:
    with serve(small_repo.root) as url, client(tmp_path / "c") as c:
        with pytest.raises(NetworkError, match=r"HTTP 404.*check the suite name"):
            c.release(RepoSource(uri=url, suite="nosuch", signed_by=str(small_repo.key.keyring)))
        with pytest.raises(UsageError, match="does not carry architecture 'riscv64'"):
            c.packages(small_repo.sources(url)[0], "riscv64")
        src = RepoSource(
            uri=url, suite="stable", components=("contrib",), signed_by=str(small_repo.key.keyring)
        )
        with pytest.raises(InputError, match=r"contrib/binary-amd64/Packages"):
            c.packages(src, "amd64")


# --- parser bounds -----------------------------------------------------------------------

SRC = RepoSource(uri="http://127.0.0.1", suite="s")
STANZA = (
    "Package: a\nVersion: 1\nArchitecture: amd64\nFilename: pool/a.deb\nSize: 3\n"
    "SHA256: " + "0" * 64 + "\n"
)


def test_parse_packages_bounds_and_required_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    assert [r.name for r in parse_packages(STANZA.encode(), SRC, "main")] == ["a"]
    huge = STANZA + "Description: x\n" + (" y" * 600_000) + "\n"
    with pytest.raises(InputError, match="stanza is larger than 1 MiB"):
        parse_packages(huge.encode(), SRC, "main", "idx")
    with pytest.raises(InputError, match="lacks the SHA256 field"):
        parse_packages(STANZA.replace("SHA256", "MD5sum").encode(), SRC, "main")
    with pytest.raises(InputError, match="invalid SHA256, Size or Filename"):
        parse_packages(STANZA.replace("pool/a.deb", "../../a.deb").encode(), SRC, "main")
    with pytest.raises(InputError, match="non-numeric Size"):
        parse_packages(STANZA.replace("Size: 3", "Size: x").encode(), SRC, "main")


def test_decompression_bound(
    small_repo: FakeRepo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(repo_mod, "MAX_INDEX", 200)
    with serve(small_repo.root) as url, client(tmp_path / "c") as c:
        with pytest.raises(InputError, match="decompressed index larger"):
            c.packages(small_repo.sources(url)[0], "amd64")


def test_decompressed_index_must_match_release(tmp_path: Path, test_key: TestKey) -> None:
    """The .xz matches the Release but what it expands to does not: rejected, nothing cached."""
    repo = make_repo(tmp_path / "repo", small_suites(), key=test_key)
    release = repo.dist("stable") / "Release"
    plain = repo.packages_file("stable", "amd64", "")
    real = hashlib.sha256(plain.read_bytes()).hexdigest()
    fake = hashlib.sha256(b"not the index").hexdigest()
    release.write_text(release.read_text().replace(real, fake))
    repo.resign("stable")
    cache = tmp_path / "cache"
    with serve(repo.root) as url, client(cache) as c:
        with pytest.raises(VerificationError) as info:
            c.packages(repo.sources(url)[0], "amd64")
    msg = str(info.value)
    assert "decompressed content does not match" in msg
    assert f"expected sha256 {fake}" in msg and f"found sha256 {real}" in msg
    assert not any("sha256" in f for f in valid_cache_files(cache))


def test_parse_packages_continuations_and_spacing() -> None:
    """Continuation lines, tabs and odd spacing give the same records as the plain layout."""
    plain = (
        STANZA
        + "Description: short\nTag: a::b, c::d\n\n"
        + STANZA.replace("Package: a", "Package: b")
    )
    odd = (
        STANZA.replace("Version: 1", "Version:   1  ")
        + "Description: short\n long line\n .\n more\nTag: a::b,\n\tc::d\n\n\n"
        + STANZA.replace("Package: a", "Package: b")
    )
    one = parse_packages(plain.encode(), SRC, "main")
    two = parse_packages(odd.encode(), SRC, "main")
    assert [(r.name, r.version, r.description) for r in two] == [
        ("a", "1", "short"),
        ("b", "1", ""),
    ]
    assert [(r.name, r.version, r.description) for r in one] == [
        (r.name, r.version, r.description) for r in two
    ]
    assert one[0].extra == {} and two[0].extra == {}
    rec = parse_packages((STANZA + "Recommends: x,\n y\n").encode(), SRC, "main")[0]
    assert rec.extra == {"Recommends": "x,\n y"}
    with pytest.raises(InputError, match="malformed line"):
        parse_packages((STANZA + "garbage line\n").encode(), SRC, "main")


def test_parse_leaves_garbage_collector_as_it_found_it() -> None:
    import gc

    assert gc.isenabled()
    parse_packages(STANZA.encode(), SRC, "main")
    assert gc.isenabled()
    gc.disable()
    try:
        parse_packages(STANZA.encode(), SRC, "main")
        assert not gc.isenabled()
    finally:
        gc.enable()
    with pytest.raises(InputError):
        parse_packages(b"garbage\n", SRC, "main")
    assert gc.isenabled()


def test_rollback_to_an_older_release_is_rejected(tmp_path: Path, test_key: TestKey) -> None:
    """A validly signed but older InRelease at the same URL (replay/freeze) is refused."""
    now = time.time()
    new_root, old_root = tmp_path / "new", tmp_path / "old"
    make_repo(new_root, small_suites(), key=test_key, date=rfc2822(now - 60))
    repo = make_repo(old_root, small_suites(), key=test_key, date=rfc2822(now - 7200))
    cache = tmp_path / "cache"
    serving = tmp_path / "serving"
    shutil.copytree(new_root, serving)
    with serve(serving) as url:
        with client(cache) as c:
            c.release(repo.sources(url)[0])
        shutil.rmtree(serving / "dists")
        shutil.copytree(old_root / "dists", serving / "dists")
        future = time.time() + 10
        import os

        os.utime(serving / "dists" / "stable" / "InRelease", (future, future))
        kept = sorted(p.read_bytes() for p in (cache / "indexes" / "inrelease").iterdir())
        with client(cache) as c:
            with pytest.raises(VerificationError) as info:
                c.release(repo.sources(url)[0])
    msg = str(info.value)
    assert "older than the one verified before" in msg
    assert rfc2822(now - 60) in msg and rfc2822(now - 7200) in msg
    # The newer verified InRelease stays cached; the older one did not replace it.
    assert sorted(p.read_bytes() for p in (cache / "indexes" / "inrelease").iterdir()) == kept


def test_parsed_records_behave_like_constructed_ones() -> None:
    import dataclasses

    rec = parse_packages((STANZA + "Depends: b\nRecommends: c\n").encode(), SRC, "main")[0]
    same = PackageRecord(**{f.name: getattr(rec, f.name) for f in dataclasses.fields(rec)})
    assert rec == same and hash(rec) == hash(same) and repr(rec) == repr(same)
    assert {rec, same} == {rec}
    assert dataclasses.replace(rec, version="2").version == "2"
    assert dataclasses.asdict(rec)["extra"] == {"Recommends": "c"}
    with pytest.raises(dataclasses.FrozenInstanceError):
        rec.version = "3"  # type: ignore[misc]
