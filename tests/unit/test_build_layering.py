"""Layer planning: ``none`` gives one layer; ``package`` gives the largest packages their own."""

from __future__ import annotations

from assay.build.layering import plan_layers
from assay.oci.entry import Entry, EntryType


def d(path: str, owner: str = "") -> Entry:
    return Entry(path, EntryType.DIR, 0o755, owner=owner)


def f(path: str, size: int, owner: str) -> Entry:
    return Entry(path, EntryType.FILE, 0o644, data=b"x" * size, owner=owner)


ENTRIES = [
    d("etc"),
    f("etc/passwd", 10, ""),
    d("tmp"),
    d("usr"),
    d("usr/lib", "libc6"),
    f("usr/lib/libc.so.6", 5000, "libc6"),
    Entry("usr/lib/libc-hard", EntryType.HARDLINK, 0o644, link="usr/lib/libc.so.6", owner="other"),
    f("usr/lib/libssl.so.3", 3000, "libssl3"),
    f("usr/lib/tiny", 5, "tiny"),
]


def paths(plan: object) -> set[str]:
    return {e.path for e in plan.entries}  # type: ignore[attr-defined]


def test_none_is_one_layer_with_everything() -> None:
    plans = plan_layers(ENTRIES, "none", 10)
    assert len(plans) == 1 and paths(plans[0]) == {e.path for e in ENTRIES}


def test_package_strategy_splits_the_largest_within_budget() -> None:
    plans = plan_layers(ENTRIES, "package", 3)
    assert [p.name for p in plans] == ["libc6", "libssl3", ""]
    libc, ssl, rest = plans
    # each layer carries the directories its files live in
    assert paths(libc) == {"usr", "usr/lib", "usr/lib/libc.so.6", "usr/lib/libc-hard"}
    assert paths(ssl) == {"usr", "usr/lib", "usr/lib/libssl.so.3"}
    assert {"etc/passwd", "usr/lib/tiny", "tmp"} <= paths(rest)
    # every non-directory path is in exactly one layer
    files = [e.path for p in plans for e in p.entries if e.type is not EntryType.DIR]
    assert sorted(files) == sorted(e.path for e in ENTRIES if e.type is not EntryType.DIR)


def test_budget_of_one_means_one_layer() -> None:
    assert len(plan_layers(ENTRIES, "package", 1)) == 1


def test_hardlink_travels_with_its_target() -> None:
    plans = plan_layers(ENTRIES, "package", 2)
    libc = next(p for p in plans if p.name == "libc6")
    assert "usr/lib/libc-hard" in paths(libc)
