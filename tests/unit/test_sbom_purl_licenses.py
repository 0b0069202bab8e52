"""purls exactly as syft writes them; DEP-5 and free-text licenses → SPDX expressions."""

from __future__ import annotations

import pytest

from assay.sbom.licenses import free_text_expression, license_refs, normalize_license, parse_dep5
from assay.sbom.purl import apk_purl, deb_purl, npm_purl, oci_purl, pypi_purl


@pytest.mark.parametrize(
    ("args", "kw", "expected"),
    [
        # strings below were produced by syft 1.18.1 for the same dpkg status entries
        (
            ("bison", "2:3.8.2+dfsg-1+b1", "amd64"),
            {"source_name": "bison", "source_version": "2:3.8.2+dfsg-1"},
            "pkg:deb/debian/bison@2:3.8.2%2Bdfsg-1%2Bb1?arch=amd64&distro=debian-12"
            "&upstream=bison%402:3.8.2%2Bdfsg-1",
        ),
        (
            ("automake", "1:1.16.5-1.3", "all"),
            {"source_name": "automake-1.16", "source_version": "1:1.16.5-1.3"},
            "pkg:deb/debian/automake@1:1.16.5-1.3?arch=all&distro=debian-12&upstream=automake-1.16",
        ),
        (
            ("libssl3", "3.0.22-1~deb12u1", "amd64"),
            {"source_name": "openssl", "source_version": "3.0.22-1~deb12u1"},
            "pkg:deb/debian/libssl3@3.0.22-1~deb12u1?arch=amd64&distro=debian-12&upstream=openssl",
        ),
        (
            ("base-files", "12.4+deb12u5", "amd64"),
            {"source_name": "base-files", "source_version": "12.4+deb12u5"},
            "pkg:deb/debian/base-files@12.4%2Bdeb12u5?arch=amd64&distro=debian-12",
        ),
        (
            ("comerr-dev", "2.1-1.47.0-2+b2", "amd64"),
            {"source_name": "e2fsprogs", "source_version": "1.47.0-2"},
            "pkg:deb/debian/comerr-dev@2.1-1.47.0-2%2Bb2?arch=amd64&distro=debian-12"
            "&upstream=e2fsprogs%401.47.0-2",
        ),
    ],
)
def test_deb_purl_matches_syft(
    args: tuple[str, str, str], kw: dict[str, str], expected: str
) -> None:
    assert deb_purl(*args, **kw, distro_version="12") == expected


def test_deb_purl_without_distro_version_has_no_distro_qualifier() -> None:
    assert deb_purl("a", "1", "amd64") == "pkg:deb/debian/a@1?arch=amd64"


def test_other_purls() -> None:
    assert (
        apk_purl("busybox-binsh", "1.36.1-r15", "x86_64", origin="busybox", distro_version="3.19.1")
        == "pkg:apk/alpine/busybox-binsh@1.36.1-r15?arch=x86_64&distro=alpine-3.19.1"
        "&upstream=busybox"
    )
    assert apk_purl("musl", "1.2.4-r4", "x86_64", origin="musl", distro_version="3.19.1") == (
        "pkg:apk/alpine/musl@1.2.4-r4?arch=x86_64&distro=alpine-3.19.1"
    )
    assert npm_purl("@scope/util", "2.0.1") == "pkg:npm/%40scope/util@2.0.1"
    assert pypi_purl("Foo_Bar", "1.0") == "pkg:pypi/foo-bar@1.0"
    digest = "sha256:" + "ab" * 32
    assert oci_purl(
        "python", digest, arch="amd64", repository_url="localhost:5000/base/python"
    ) == (
        f"pkg:oci/python@sha256%3A{'ab' * 32}?arch=amd64&repository_url=localhost:5000/base/python"
    )


DEP5 = b"""Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: x

Files: *
Copyright: someone
License: GPL-2+
 text

Files: a/*
Copyright: other
License: Expat

Files: b/*
Copyright: other
License: GPL-3+ with GCC-exception-3.1 or Artistic

Files: c/*
Copyright: other
License: public-domain

License: GPL-2+
 Standalone license paragraph repeating a name: counted once.
"""


def test_dep5_expression() -> None:
    expr = parse_dep5(DEP5)
    assert expr == (
        "GPL-2.0-or-later AND (GPL-3.0-or-later WITH GCC-exception-3.1 OR Artistic-1.0-Perl) "
        "AND LicenseRef-public-domain AND MIT"
    )
    assert license_refs(expr) == ["LicenseRef-public-domain"]


def test_dep5_absent_or_free_text_is_noassertion() -> None:
    assert parse_dep5(None) == ""
    assert parse_dep5(b"This is free text.\nCopyright 1999 Someone. GPL.\n") == ""


@pytest.mark.parametrize(
    ("name", "spdx"),
    [
        ("GPL-2+", "GPL-2.0-or-later"),
        ("GPL-2", "GPL-2.0-only"),
        ("LGPL-2.1+", "LGPL-2.1-or-later"),
        ("BSD-3-clause", "BSD-3-Clause"),
        ("GFDL-NIV-1.3+", "GFDL-1.3-no-invariants-or-later"),
        ("Apache-2.0", "Apache-2.0"),
        ("Zlib", "Zlib"),
        ("permissive", "LicenseRef-permissive"),
        ("Some Weird (License)", "LicenseRef-Some-Weird-License"),
    ],
)
def test_normalize_license(name: str, spdx: str) -> None:
    assert normalize_license(name) == spdx


def test_free_text_expression() -> None:
    assert free_text_expression("MIT") == "MIT"
    assert free_text_expression("MIT OR Apache-2.0") == "MIT OR Apache-2.0"
    assert free_text_expression("Apache 2.0") == "Apache-2.0"
    assert free_text_expression("UNKNOWN") == ""
    assert free_text_expression("BSD").startswith("LicenseRef-")


def test_license_lines_in_free_text_are_not_parsed() -> None:
    # Like python3.11's copyright file: not DEP-5, but with "License:" at a line start.
    text = b"Python is under the PSF License.\n\nLicense: By obtaining, using, and/or copying\n"
    assert parse_dep5(text) == ""


def test_and_terms_are_flattened_and_deduplicated() -> None:
    text = (
        b"Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\n"
        b"Files: *\nLicense: GPL-3+ and ISC\n\nFiles: x\nLicense: ISC\n"
    )
    assert parse_dep5(text) == "GPL-3.0-or-later AND ISC"


def test_prose_license_value_is_skipped() -> None:
    text = (
        b"Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\n"
        b"Files: *\nLicense: Permission is hereby granted, free of charge\n\n"
        b"Files: y\nLicense: MIT\n"
    )
    assert parse_dep5(text) == "MIT"
