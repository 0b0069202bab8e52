"""Property test: assay's version ordering agrees with the real ``dpkg --compare-versions``.

Versions come from a real Packages index (the host's apt lists when present, else the test
fixture's package set) and from a generator covering epochs, ``~``, ``+``, ``.``, letters and
revisions. dpkg is asked "a lt b" and "a eq b"; the two answers fix the order completely.
"""

from __future__ import annotations

import functools
import itertools
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from assay.debian.version import Version, compare_versions, parse_version, version_key

pytestmark = pytest.mark.skipif(shutil.which("dpkg") is None, reason="dpkg is not installed")

_LISTS = Path("/var/lib/apt/lists")


def _dpkg(a: str, op: str, b: str) -> bool:
    proc = subprocess.run(
        ["dpkg", "--compare-versions", a, op, b], capture_output=True, timeout=30, check=False
    )
    if proc.returncode not in (0, 1):
        raise AssertionError(f"dpkg failed on {a!r} {op} {b!r}: {proc.stderr.decode()}")
    return proc.returncode == 0


def dpkg_cmp(a: str, b: str) -> int:
    if _dpkg(a, "lt", b):
        return -1
    return 0 if _dpkg(a, "eq", b) else 1


def _read_index(path: Path) -> str:
    if path.suffix == ".lz4":
        if shutil.which("lz4") is None:
            return ""
        return subprocess.run(
            ["lz4", "-dc", str(path)], capture_output=True, timeout=120, check=True
        ).stdout.decode("utf-8", "replace")
    if path.suffix in (".gz", ".xz"):
        return ""
    return path.read_text("utf-8", "replace")


@functools.lru_cache(maxsize=1)
def real_versions() -> tuple[str, ...]:
    """Distinct Version fields of the host's Packages indexes (or the fixture's packages)."""
    found: set[str] = set()
    if _LISTS.is_dir():
        for path in sorted(_LISTS.glob("*_Packages*")):
            found.update(re.findall(r"^Version: (\S+)$", _read_index(path), re.M))
    if not found:
        from fixtures.debrepo import sample_suites

        found = {p.version for pkgs in sample_suites().values() for p in pkgs}
    return tuple(sorted(found))


_ALNUM = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
_SYMBOLS = ".+~"


@st.composite
def generated_versions(draw: st.DrawFn) -> str:
    """Valid Debian versions built from the characters dpkg orders specially."""
    chunk = st.one_of(
        st.integers(0, 30).map(str),
        st.integers(0, 10**12).map(str),  # long digit runs compare numerically
        st.text(_ALNUM, min_size=1, max_size=3),
        st.sampled_from(list(_SYMBOLS)),
        st.sampled_from(["~rc1", "~~", "~", "+b1", "+dfsg", ".0", "a", "Z", "00"]),
    )
    upstream = str(draw(st.integers(0, 20))) + "".join(draw(st.lists(chunk, max_size=5)))
    epoch = draw(st.one_of(st.just(""), st.integers(0, 3).map(lambda e: f"{e}:")))
    revision = draw(
        st.one_of(
            st.just(""),
            st.lists(chunk, min_size=1, max_size=3).map(lambda parts: "-" + "".join(parts)),
        )
    )
    # With a revision, upstream may itself contain '-'; with an epoch it may contain ':'.
    if revision and draw(st.booleans()):
        upstream += "-" + str(draw(st.integers(0, 9)))
    if epoch and draw(st.booleans()):
        upstream += ":" + str(draw(st.integers(0, 9)))
    return f"{epoch}{upstream}{revision}"


def real() -> st.SearchStrategy[str]:
    return st.sampled_from(real_versions())


_SETTINGS = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_SETTINGS
@given(st.one_of(real(), generated_versions()), st.one_of(real(), generated_versions()))
@example("1.0~rc1", "1.0")
@example("1.0", "1.0-0")
@example("1:0.1", "2.0")
@example("1.0a", "1.0+")
@example("1.0~", "1.0~~")
@example("2.36-9+deb12u4", "2.36-9+deb12u10")
@example("0001", "1")
def test_compare_matches_dpkg(a: str, b: str) -> None:
    assert compare_versions(a, b) == dpkg_cmp(a, b), (a, b)


@_SETTINGS
@given(st.lists(real(), min_size=2, max_size=6))
def test_real_versions_sort_like_dpkg(vs: list[str]) -> None:
    ordered = sorted(vs, key=version_key)
    for x, y in itertools.pairwise(ordered):
        assert dpkg_cmp(x, y) <= 0, (x, y)


@given(generated_versions())
@settings(max_examples=300, deadline=None)
def test_version_round_trips_and_orders_consistently(v: str) -> None:
    parsed = Version(v)
    epoch, upstream, revision = parse_version(v)
    assert (parsed.epoch, parsed.upstream, parsed.revision) == (epoch, upstream, revision)
    assert Version(str(parsed)) == parsed
    assert compare_versions(v, v) == 0


def test_real_index_was_used_when_available() -> None:
    vs = real_versions()
    assert len(vs) >= 10
    if any(_LISTS.glob("*_Packages")) or (
        shutil.which("lz4") and any(_LISTS.glob("*_Packages.lz4"))
    ):
        assert len(vs) > 1000, "expected thousands of versions from the host's apt lists"
