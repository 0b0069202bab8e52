"""``contents.exclude``: packages never installed; a dependency on one (or on what it provides)
counts as met. Everything else resolves exactly as without the option."""

from __future__ import annotations

import pytest

from assay.debian.model import PackageRecord, RepoSource
from assay.debian.resolver import resolve
from assay.errors import ResolutionError

REPO = RepoSource("http://127.0.0.1:9/debian", "bookworm")


def rec(name: str, version: str = "1.0", **kw: object) -> PackageRecord:
    return PackageRecord(
        name=name,
        version=version,
        architecture="amd64",
        source=name,
        source_version=version,
        filename=f"pool/{name}.deb",
        size=1,
        sha256="0" * 64,
        repo=REPO,
        component="main",
        **kw,  # type: ignore[arg-type]
    )


INDEX = [
    rec("base-files", pre_depends="awk"),
    rec("mawk", provides="awk", depends="libc6", priority="required"),
    rec("gawk", provides="awk", depends="libc6, libmpfr6", priority="optional"),
    rec("libc6"),
    rec("libmpfr6"),
    rec("ca-certificates", depends="openssl (>= 1.1.1), debconf (>= 0.5) | debconf-2.0"),
    rec("openssl", "3.0.11-1", depends="libssl3"),
    rec("libssl3", depends="libc6"),
    rec("debconf", depends="perl-base"),
    rec("perl-base"),
]


def names(res: object) -> set[str]:
    return {p.name for p in res.packages}  # type: ignore[attr-defined]


def test_without_exclude_everything_is_pulled_in() -> None:
    res = resolve(INDEX, ["base-files", "ca-certificates"], "amd64")
    assert names(res) >= {"mawk", "libc6", "openssl", "libssl3", "debconf", "perl-base"}


def test_excluded_packages_and_their_provides_count_as_met() -> None:
    res = resolve(INDEX, ["base-files", "ca-certificates"], "amd64", ["mawk", "openssl", "debconf"])
    assert names(res) == {"base-files", "ca-certificates"}
    # no dependency edge points at a package that is not installed
    assert all(b in names(res) for _a, b in res.edges)


def test_exclude_does_not_hide_other_needs() -> None:
    index = [*INDEX, rec("app", depends="libssl3, mawk")]
    res = resolve(index, ["app"], "amd64", ["mawk"])
    assert names(res) == {"app", "libssl3", "libc6"}


def test_requested_and_excluded_is_an_error() -> None:
    with pytest.raises(ResolutionError, match="both requested and excluded"):
        resolve(INDEX, ["mawk"], "amd64", ["mawk"])
