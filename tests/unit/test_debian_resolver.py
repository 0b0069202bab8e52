"""Resolver behaviour on hand-made Packages records (apt's choices; see test_lock_apt for apt)."""

from __future__ import annotations

import random

import pytest

from assay.debian.model import PackageRecord
from assay.debian.relations import parse_provides, parse_relations, satisfies
from assay.debian.resolver import CandidateIndex, resolve
from assay.errors import InputError, ResolutionError
from fixtures.debrecords import MAIN, SECURITY, record


def rec(name: str, version: str = "1.0", arch: str = "amd64", **kw: object) -> PackageRecord:
    return record(name, version, arch, **kw)  # type: ignore[arg-type]


def versions(res: object) -> dict[str, str]:
    return {p.name: p.version for p in res.packages}  # type: ignore[attr-defined]


# -- relations ---------------------------------------------------------------------------------


def test_parse_relations_groups_alternatives_and_constraints() -> None:
    groups = parse_relations("libc6 (>= 2.34), mawk | gawk (>> 1:5), python3:any, foo [!arm64]")
    assert [[str(a) for a in g] for g in groups] == [
        ["libc6 (>= 2.34)"],
        ["mawk", "gawk (>> 1:5)"],
        ["python3:any"],
        ["foo"],
    ]
    assert groups[3][0].applies_to("amd64") and not groups[3][0].applies_to("arm64")


def test_obsolete_operators_mean_or_equal() -> None:
    (rel,), (rel2,) = parse_relations("a (< 2), b (> 2)")
    assert rel.op == "<=" and rel2.op == ">="


@pytest.mark.parametrize("bad", ["a (>= )", "a (~= 1)", "A-Upper", "a (>= 1:)", "a,, |"])
def test_malformed_relations_are_input_errors(bad: str) -> None:
    with pytest.raises(InputError):
        parse_relations(bad)


def test_provides_only_allows_equals() -> None:
    assert parse_provides("libfoo-abi (= 2), awk")[0].version == "2"
    with pytest.raises(InputError, match="only use '='"):
        parse_provides("libfoo-abi (>= 2)")


@pytest.mark.parametrize(
    ("have", "op", "ref", "ok"),
    [
        ("1.0", "<<", "1.1", True),
        ("1.1", "<<", "1.1", False),
        ("1.1", "<=", "1.1", True),
        ("1.2", "<=", "1.1", False),
        ("1.1", "=", "1.1", True),
        ("1.1", "=", "1.1-0", True),  # an absent revision equals revision 0... per dpkg
        ("1.1", "=", "1:1.1", False),
        ("1.1", ">=", "1.1", True),
        ("1.1~rc1", ">=", "1.1", False),
        ("1.1+b1", ">>", "1.1", True),
        ("1.1", ">>", "1.1", False),
    ],
)
def test_each_operator(have: str, op: str, ref: str, ok: bool) -> None:
    assert satisfies(have, op, ref) is ok
    index = [rec("app", depends=f"lib ({op} {ref})"), rec("lib", have)]
    if ok:
        assert versions(resolve(index, ["app"], "amd64")) == {"app": "1.0", "lib": have}
    else:
        with pytest.raises(ResolutionError, match=r"app → lib .* only version"):
            resolve(index, ["app"], "amd64")


# -- closure -----------------------------------------------------------------------------------


def test_closure_follows_depends_and_pre_depends_only() -> None:
    index = [
        rec("app", pre_depends="libc6", depends="libx", extra={"Recommends": "docs"}),
        rec("libc6", "2.36-9"),
        rec("libx", depends="libc6 (>= 2.34)"),
        rec("docs"),
        rec("base-files", essential=True, priority="required"),
    ]
    res = resolve(index, ["app"], "amd64")
    assert res.names() == ("app", "libc6", "libx")  # no Recommends, no Essential
    assert res.depends_of("app") == ("libc6", "libx")
    assert res.edges == (("app", "libc6"), ("app", "libx"), ("libx", "libc6"))


def test_result_is_sorted_and_independent_of_input_order() -> None:
    index = [rec(n, depends=d) for n, d in [("z", "y, x"), ("y", "w"), ("x", "w"), ("w", "")]]
    first = resolve(index, ["z"], "amd64")
    for seed in range(5):
        shuffled = index[:]
        random.Random(seed).shuffle(shuffled)
        assert resolve(shuffled, ["z"], "amd64") == first
    assert first.names() == ("w", "x", "y", "z")


def test_other_architectures_are_ignored_and_all_is_included() -> None:
    index = [
        rec("app", arch="arm64", depends="nothing-here"),
        rec("app", arch="amd64", depends="data"),
        rec("data", arch="all"),
    ]
    res = resolve(index, ["app"], "amd64")
    assert [(p.name, p.architecture) for p in res.packages] == [("app", "amd64"), ("data", "all")]


# -- versions across suites -------------------------------------------------------------------


def test_highest_candidate_across_suites_wins() -> None:
    index = [
        rec("libssl3", "3.0.11-1~deb12u2", repo=MAIN),
        rec("libssl3", "3.0.15-1~deb12u1", repo=SECURITY),
        rec("libssl3", "3.0.9-1", repo=MAIN),
    ]
    res = resolve(index, ["libssl3"], "amd64")
    (pkg,) = res.packages
    assert pkg.version == "3.0.15-1~deb12u1" and pkg.repo.suite == "stable-security"


def test_same_version_in_two_suites_keeps_the_first_source() -> None:
    index = [rec("tzdata", "2024a", repo=MAIN), rec("tzdata", "2024a", repo=SECURITY)]
    assert resolve(index, ["tzdata"], "amd64").packages[0].repo == MAIN


def test_package_only_in_second_suite() -> None:
    index = [rec("app", depends="newlib (>= 2)", repo=MAIN), rec("newlib", "2.1", repo=SECURITY)]
    res = resolve(index, ["app"], "amd64")
    assert res.get("newlib") is not None and res.get("newlib").repo == SECURITY  # type: ignore[union-attr]


def test_candidate_only_is_considered_like_apt() -> None:
    # apt never falls back to an older version: the candidate 2.0 breaks "= 1.0".
    index = [rec("app", depends="lib (= 1.0)"), rec("lib", "1.0"), rec("lib", "2.0")]
    with pytest.raises(ResolutionError, match=r"app → lib \(= 1.0\) → only version 2.0"):
        resolve(index, ["app"], "amd64")
    # ...unless the request pins it, as `apt-get install lib=1.0` would.
    assert versions(resolve(index, ["app", "lib=1.0"], "amd64"))["lib"] == "1.0"


def test_pin_to_missing_version_names_the_available_ones() -> None:
    with pytest.raises(ResolutionError, match=r"version 9 of lib .*available: 1.0, 2.0"):
        resolve([rec("lib", "1.0"), rec("lib", "2.0")], ["lib=9"], "amd64")


# -- alternatives and virtual packages ---------------------------------------------------------


def test_alternatives_take_the_first_installable() -> None:
    index = [rec("app", depends="mawk | gawk"), rec("mawk"), rec("gawk")]
    assert resolve(index, ["app"], "amd64").names() == ("app", "mawk")
    index = [rec("app", depends="mawk | gawk"), rec("gawk")]
    assert resolve(index, ["app"], "amd64").names() == ("app", "gawk")


def test_alternative_with_unmet_dependency_is_skipped() -> None:
    # apt's look-ahead: x's own dependency has no candidate, so y is taken instead.
    index = [rec("app", depends="x | y"), rec("x", depends="missing"), rec("y")]
    assert resolve(index, ["app"], "amd64").names() == ("app", "y")


def test_alternative_with_too_old_version_is_skipped() -> None:
    index = [rec("app", depends="x (>= 2) | y"), rec("x", "1"), rec("y")]
    assert resolve(index, ["app"], "amd64").names() == ("app", "y")


def test_group_already_satisfied_by_a_marked_package_adds_nothing() -> None:
    index = [rec("app", depends="b | c"), rec("b"), rec("c")]
    # c is requested too and marked first (apt marks the command line before auto-install).
    assert resolve(index, ["c", "app"], "amd64").names() == ("app", "c")


def test_versioned_provides_satisfy_versioned_depends() -> None:
    index = [
        rec("foo-tool", depends="libfoo-abi (>= 2)"),
        rec("libfoo1", provides="libfoo-abi (= 2)"),
    ]
    res = resolve(index, ["foo-tool"], "amd64")
    assert res.names() == ("foo-tool", "libfoo1")
    assert res.why("libfoo1") == [["foo-tool", "libfoo1"]]


def test_unversioned_provides_do_not_satisfy_versioned_depends() -> None:
    index = [rec("foo-tool", depends="libfoo-abi (>= 2)"), rec("libfoo1", provides="libfoo-abi")]
    with pytest.raises(ResolutionError, match="no provider satisfies the version"):
        resolve(index, ["foo-tool"], "amd64")


def test_versioned_provides_too_low() -> None:
    index = [
        rec("foo-tool", depends="libfoo-abi (>= 3)"),
        rec("libfoo1", provides="libfoo-abi (= 2)"),
    ]
    with pytest.raises(ResolutionError):
        resolve(index, ["foo-tool"], "amd64")


def test_real_package_preferred_over_providers_then_priority() -> None:
    index = [
        rec("app", depends="awk"),
        rec("awk"),
        rec("mawk", provides="awk", priority="required"),
    ]
    assert resolve(index, ["app"], "amd64").names() == ("app", "awk")
    index = [
        rec("app", depends="awk"),
        rec("gawk", provides="awk", priority="optional"),
        rec("mawk", provides="awk", priority="required"),
    ]
    assert resolve(index, ["app"], "amd64").names() == ("app", "mawk")
    index = [
        rec("app", depends="awk"),
        rec("gawk", provides="awk", priority="optional", essential=True),
        rec("mawk", provides="awk", priority="required"),
    ]
    assert resolve(index, ["app"], "amd64").names() == ("app", "gawk")


def test_virtual_request_with_one_provider_takes_it_and_several_is_an_error() -> None:
    one = [rec("mawk", provides="awk")]
    assert resolve(one, ["awk"], "amd64").names() == ("mawk",)
    two = [rec("mawk", provides="awk"), rec("gawk", provides="awk")]
    with pytest.raises(ResolutionError, match="virtual package provided by gawk, mawk"):
        resolve(two, ["awk"], "amd64")


# -- multi-arch --------------------------------------------------------------------------------


def test_any_qualifier_needs_multi_arch_allowed() -> None:
    ok = [
        rec("tool", depends="python3:any (>= 3.11)"),
        rec("python3", "3.11.2", multi_arch="allowed"),
    ]
    assert resolve(ok, ["tool"], "amd64").names() == ("python3", "tool")
    bad = [rec("tool", depends="python3:any"), rec("python3", "3.11.2")]
    with pytest.raises(ResolutionError, match="not Multi-Arch: allowed"):
        resolve(bad, ["tool"], "amd64")


def test_native_and_own_arch_qualifiers() -> None:
    index = [rec("a", depends="b:native, c:amd64"), rec("b"), rec("c", multi_arch="same")]
    assert resolve(index, ["a"], "amd64").names() == ("a", "b", "c")
    foreign = [rec("a", depends="b:i386"), rec("b")]
    with pytest.raises(ResolutionError, match="architecture i386 is not configured"):
        resolve(foreign, ["a"], "amd64")


# -- conflicts ---------------------------------------------------------------------------------


def test_conflict_between_requested_packages_names_both() -> None:
    index = [rec("sysvinit-core", conflicts="systemd-sysv"), rec("systemd-sysv")]
    with pytest.raises(ResolutionError, match="sysvinit-core conflicts with systemd-sysv"):
        resolve(index, ["systemd-sysv", "sysvinit-core"], "amd64")
    with pytest.raises(ResolutionError, match="sysvinit-core conflicts with systemd-sysv"):
        resolve(index, ["sysvinit-core", "systemd-sysv"], "amd64")


def test_breaks_with_version_is_checked() -> None:
    index = [rec("new", breaks="old (<< 2)"), rec("old", "1")]
    with pytest.raises(ResolutionError, match="new breaks old"):
        resolve(index, ["old", "new"], "amd64")
    # The other direction (the breaker is marked first) names the same relation.
    with pytest.raises(ResolutionError, match=r"new breaks old \(old \(<< 2\)\)"):
        resolve(index, ["new", "old"], "amd64")
    fine = [rec("new", breaks="old (<< 2)"), rec("old", "2")]
    assert resolve(fine, ["old", "new"], "amd64").names() == ("new", "old")


def test_conflict_via_provides_and_self_conflict_ignored() -> None:
    # A package may conflict with a virtual name it provides itself (the usual
    # Provides/Conflicts/Replaces idiom); another provider of it is a real conflict.
    index = [
        rec("exim", provides="mail-transport-agent", conflicts="mail-transport-agent"),
        rec("postfix", provides="mail-transport-agent", conflicts="mail-transport-agent"),
    ]
    assert resolve(index, ["exim"], "amd64").names() == ("exim",)
    with pytest.raises(ResolutionError, match="conflicts with"):
        resolve(index, ["exim", "postfix"], "amd64")


def test_alternative_that_conflicts_is_avoided() -> None:
    index = [rec("app", depends="x | y"), rec("x", conflicts="base"), rec("y"), rec("base")]
    assert resolve(index, ["base", "app"], "amd64").names() == ("app", "base", "y")


# -- errors ------------------------------------------------------------------------------------


def test_unsatisfiable_chain_is_named() -> None:
    index = [
        rec(
            "python3.11-minimal",
            "3.11.2-6+deb12u6",
            arch="arm64",
            depends="libpython3.11-minimal (= 3.11.2-6+deb12u6)",
        ),
    ]
    with pytest.raises(ResolutionError) as info:
        resolve(index, ["python3.11-minimal"], "arm64")
    assert (
        "python3.11-minimal → libpython3.11-minimal (= 3.11.2-6+deb12u6) → not available for arm64"
        in str(info.value)
    )


def test_deep_chain_names_every_step() -> None:
    index = [rec("a", depends="b"), rec("b", depends="c (>= 2)"), rec("c", "1")]
    with pytest.raises(ResolutionError, match=r"a → b → c \(>= 2\) → only version 1"):
        resolve(index, ["a"], "amd64")


def test_failing_alternative_names_the_package_tried() -> None:
    index = [rec("a", depends="awk"), rec("mawk", "1.3", provides="awk", depends="libx (>= 2)")]
    index.append(rec("libx", "1"))
    with pytest.raises(ResolutionError, match=r"a → awk → mawk 1.3 → libx \(>= 2\) → only"):
        resolve(index, ["a"], "amd64")


def test_unknown_package_suggests_close_names() -> None:
    index = [rec("python3.11-minimal"), rec("libpython3.11-minimal"), rec("zlib1g")]
    with pytest.raises(ResolutionError, match=r"did you mean python3\.11-minimal"):
        resolve(index, ["python3.11-minimall"], "amd64")
    with pytest.raises(ResolutionError, match=r"not available for amd64$"):
        resolve(index, ["completely-different"], "amd64")


@pytest.mark.parametrize("bad", ["", "=1.0", "foo=", "foo=not a version"])
def test_malformed_request(bad: str) -> None:
    with pytest.raises(InputError):
        resolve([rec("foo")], [bad], "amd64")


def test_dependency_cycles_terminate() -> None:
    index = [rec("a", depends="b"), rec("b", depends="c"), rec("c", depends="a")]
    res = resolve(index, ["a"], "amd64")
    assert res.names() == ("a", "b", "c")
    assert res.why("c") == [["a", "b", "c"]]


def test_why_lists_every_chain_shortest_first() -> None:
    index = [rec("app", depends="libssl3, curl"), rec("curl", depends="libssl3"), rec("libssl3")]
    res = resolve(index, ["app"], "amd64")
    assert res.why("libssl3") == [["app", "libssl3"], ["app", "curl", "libssl3"]]
    assert res.why("app") == [["app"]]
    assert res.why("nope") == []


def test_candidate_index_reuse_does_not_leak_pins() -> None:
    index = CandidateIndex.build([rec("lib", "1.0"), rec("lib", "2.0")], "amd64")
    assert versions(resolve(index, ["lib=1.0"], "amd64")) == {"lib": "1.0"}
    assert versions(resolve(index, ["lib"], "amd64")) == {"lib": "2.0"}
