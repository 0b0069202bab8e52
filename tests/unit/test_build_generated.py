"""Generated files that replace maintainer-script effects."""

from __future__ import annotations

import hashlib

import pytest

from assay.build.generated import (
    DEFAULT_ACCOUNTS,
    Accounts,
    Group,
    OsRelease,
    User,
    accounts_entries,
    ca_bundle_entries,
    md5sums_for,
    os_release_entries,
    os_release_for,
    status_stanza,
)
from assay.errors import UsageError
from assay.oci.entry import EntryType


def test_default_accounts_are_the_distroless_set() -> None:
    by = {e.path: e for e in accounts_entries(DEFAULT_ACCOUNTS)}
    users = [line.split(":") for line in by["etc/passwd"].data.decode().splitlines()]
    assert [(u[0], u[2], u[3], u[5], u[6]) for u in users] == [
        ("root", "0", "0", "/root", "/sbin/nologin"),
        ("nobody", "65534", "65534", "/nonexistent", "/sbin/nologin"),
        ("nonroot", "65532", "65532", "/home/nonroot", "/sbin/nologin"),
    ]
    groups = {g.split(":")[0]: g.split(":")[2] for g in by["etc/group"].data.decode().split()}
    assert groups["root"] == "0" and groups["nonroot"] == "65532" and groups["nobody"] == "65534"
    assert by["home/nonroot"].mode == 0o700 and by["home/nonroot"].uid == 65532
    assert "nonexistent" not in by and by["root"].mode == 0o700
    assert all(e.owner == "" for e in by.values())


@pytest.mark.parametrize(
    "users,groups",
    [
        ((User("a:b", 1, 1),), ()),
        ((User("a", 1, 1), User("a", 2, 2)), ()),
        ((User("a", 1, 1, home="relative"),), ()),
        ((User("a", 1, 1, gecos="x\nroot::0:0::/:/bin/sh"),), ()),
        ((), (Group("g", 1), Group("g", 2))),
    ],
)
def test_accounts_refuse_injection_and_duplicates(
    users: tuple[User, ...], groups: tuple[Group, ...]
) -> None:
    with pytest.raises(UsageError):
        Accounts(users=users, groups=groups)


def test_status_stanza_inserts_status_after_package() -> None:
    raw = b"Package: libssl3\nSource: openssl\nVersion: 3.0\nDescription: x\n more\n"
    assert status_stanza(raw) == (
        b"Package: libssl3\nStatus: install ok installed\nSource: openssl\nVersion: 3.0\n"
        b"Description: x\n more\n"
    )
    # an existing Status line (hostile or odd) is replaced, not duplicated
    assert status_stanza(b"Status: purge\nPackage: a") == (
        b"Package: a\nStatus: install ok installed\n"
    )


def test_md5sums_filter_and_compute() -> None:
    present = {"usr/bin/a": b"A", "etc/a.conf": b"C"}
    theirs = b"0cc175b9c0f1b6a831c399e269772661  usr/bin/a\nffff  usr/share/doc/a/changelog.gz\n"
    assert md5sums_for(theirs, present) == b"0cc175b9c0f1b6a831c399e269772661  usr/bin/a\n"
    computed = md5sums_for(b"", present, conffiles=["/etc/a.conf"])
    assert computed == f"{hashlib.md5(b'A').hexdigest()}  usr/bin/a\n".encode()


def test_ca_bundle_sorted_with_newlines() -> None:
    files = {
        "usr/share/ca-certificates/mozilla/B.crt": b"-----BEGIN CERTIFICATE-----\nB\n-----END",
        "usr/share/ca-certificates/mozilla/A_x.crt": b"-----BEGIN CERTIFICATE-----\nA\n",
        "usr/share/ca-certificates/mozilla/A.crt": b"-----BEGIN CERTIFICATE-----\nA0\n",
        "usr/share/ca-certificates/README": b"not a cert",
        "usr/share/doc/ca-certificates/x.crt": b"elsewhere",
    }
    bundle, conf = ca_bundle_entries(files)
    assert bundle.path == "etc/ssl/certs/ca-certificates.crt" and bundle.type is EntryType.FILE
    assert bundle.data == (
        b"-----BEGIN CERTIFICATE-----\nA0\n"
        b"-----BEGIN CERTIFICATE-----\nA\n"
        b"-----BEGIN CERTIFICATE-----\nB\n-----END\n"
    )
    assert conf.data.decode().splitlines()[-3:] == [
        "mozilla/A.crt",
        "mozilla/A_x.crt",
        "mozilla/B.crt",
    ]


def test_os_release_for_prefers_the_base_suite_and_fills_the_version() -> None:
    rels = [
        OsRelease("bookworm-security", ""),
        OsRelease("bookworm-updates", ""),
        OsRelease("bookworm", "12.8"),
    ]
    assert os_release_for(rels) == OsRelease("bookworm", "12.8")
    # no Version field anywhere (a fixture repository, a lock with only -security): from the name
    assert os_release_for([OsRelease("bookworm-security", "")]) == OsRelease("bookworm", "12")
    assert os_release_for([OsRelease("sid", "")]) == OsRelease("sid", "")
    assert os_release_for([]) is None
    assert os_release_for([OsRelease('x"\nID=evil', "1")]) is None


def test_generated_os_release_is_what_scanners_read() -> None:
    entries = os_release_entries(OsRelease("bookworm", "12.8"))
    text = next(e for e in entries if e.path == "usr/lib/os-release").data
    assert text == (
        b'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\n'
        b'VERSION_ID="12"\nVERSION="12 (bookworm)"\nVERSION_CODENAME=bookworm\nID=debian\n'
    )
    link = next(e for e in entries if e.path == "etc/os-release")
    assert link.type is EntryType.SYMLINK and link.link == "../usr/lib/os-release"
    with pytest.raises(UsageError, match="cannot be written"):
        os_release_entries(OsRelease("a b", "1"))
