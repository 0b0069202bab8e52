"""build.lockcheck on hand-made locks: every way a lock can name more than the spec trusts.

(The served, signed repository cases run in tests/integration/test_lock_trust.py.)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

import pytest

from assay.build.lock import Lock, make_lock
from assay.build.lockcheck import (
    check_lock_sources,
    lock_differences,
    package_problems,
    verify_lock,
)
from assay.debian.model import PackageRecord, RepoSource
from assay.debian.resolver import resolve
from assay.errors import VerificationError
from fixtures.debrecords import MAIN, Index, record, release

SRC = MAIN
EVIL = RepoSource("http://127.0.0.1:2/evil", "stable", ("main",))


def rec(name: str, version: str = "1.0", sha: str = "a", size: int = 100) -> PackageRecord:
    return record(name, version, size=size, sha256=sha * 64)


class PinnedIndex:
    """Stands in for RepoClient.load(pins=...) (the real one is exercised on a served repo)."""

    def __init__(self, records: Sequence[PackageRecord]) -> None:
        self.records = tuple(records)
        self.pins: list[Mapping[str, str] | None] = []

    def load(
        self,
        sources: Sequence[RepoSource],
        archs: Sequence[str],
        pins: Mapping[str, str] | None = None,
    ) -> Index:
        self.pins.append(pins)
        return Index((release(SRC),), {a: self.records for a in archs})


def lock_of(records: Sequence[PackageRecord], sources: Sequence[RepoSource] = (SRC,)) -> Lock:
    res = resolve(records, [r.name for r in records], "amd64")
    return make_lock("x.yaml", b"spec", [r.name for r in records], sources, [release(SRC)], [res])


def test_an_untampered_lock_verifies_against_its_pins() -> None:
    index = PinnedIndex([rec("hello")])
    verify_lock(lock_of(index.records), [SRC], index, ["amd64"])
    assert index.pins == [{f"{SRC.uri}/dists/stable/InRelease": release(SRC).sha256}]


def test_a_source_the_spec_does_not_name_is_refused() -> None:
    lock = lock_of([rec("hello")], sources=(SRC, EVIL))
    with pytest.raises(VerificationError, match=r"lock source http://127\.0\.0\.1:2/evil stable"):
        check_lock_sources(lock, [SRC])


def test_other_components_releases_and_missing_pins_are_refused() -> None:
    lock = lock_of([rec("hello")])
    pkgs = lock.packages["amd64"]
    other = lock.model_copy(
        update={"packages": {"amd64": [pkgs[0].model_copy(update={"component": "non-free"})]}}
    )
    with pytest.raises(VerificationError, match=r"amd64: package hello comes from .*non-free"):
        check_lock_sources(other, [SRC])
    moved = lock.model_copy(
        update={"releases": [lock.releases[0].model_copy(update={"url": "http://x/InRelease"})]}
    )
    with pytest.raises(VerificationError, match=r"lock release http://x/InRelease"):
        check_lock_sources(moved, [SRC])
    unpinned = lock.model_copy(update={"releases": []})
    with pytest.raises(VerificationError, match="lock pins no InRelease sha256"):
        check_lock_sources(unpinned, [SRC])


def test_a_pin_the_signed_index_does_not_list_names_each_difference() -> None:
    signed = [rec("hello", sha="a", size=100)]
    edited = lock_of([rec("hello", sha="b", size=666)])
    [line] = package_problems(edited, PinnedIndex(signed).load([SRC], ["amd64"]), ["amd64"])
    assert line.startswith("amd64: package hello 1.0: ")
    assert "size is 666 in the lock but 100 in the signed index" in line
    assert f"sha256 is {'b' * 64!r} in the lock but {'a' * 64!r}" in line
    with pytest.raises(VerificationError, match=r"package hello 1\.0: size is 666"):
        verify_lock(edited, [SRC], PinnedIndex(signed), ["amd64"])
    absent = lock_of([rec("evil")])
    with pytest.raises(VerificationError, match="package evil: no signed index lists it"):
        verify_lock(absent, [SRC], PinnedIndex(signed), ["amd64"])


def test_lock_differences_name_sources_releases_and_packages() -> None:
    old = lock_of([rec("hello"), rec("extra")])
    new = lock_of([replace(rec("hello"), version="2.0")])
    new = new.model_copy(
        update={"releases": [new.releases[0].model_copy(update={"sha256": "2" * 64})]}
    )
    diffs = lock_differences(old, new, ["amd64"])
    assert any(d.startswith("release ") and "2" * 64 in d for d in diffs)
    assert "amd64: package extra is in the lock but not in the resolution" in diffs
    assert any(d.startswith("amd64: package hello: version '1.0' -> '2.0'") for d in diffs)
    assert lock_differences(old, old, ["amd64"]) == []


def test_edited_release_fields_are_refused() -> None:
    """Date, Suite, Codename and Version feed SOURCE_DATE_EPOCH and os-release: a lock cannot
    make them up."""
    index = PinnedIndex([rec("hello")])
    lock = lock_of(index.records)
    for field, value in (("version", "13.0"), ("date_epoch", 1), ("codename", "trixie")):
        edited = lock.model_copy(
            update={"releases": [lock.releases[0].model_copy(update={field: value})]}
        )
        with pytest.raises(VerificationError, match=f"{field} is {value!r} in the lock but"):
            verify_lock(edited, [SRC], index, ["amd64"])
