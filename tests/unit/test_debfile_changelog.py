"""Changelog reading (changelog.Debian.gz inside a .deb) and CVE extraction."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from debian.changelog import Changelog
from test_debfile_fixtures import f, sym, write_deb

from assay.debian.changelog import cves_by_version, parse_changelog, read_changelog
from assay.errors import InputError

TEXT = """\
openssl (3.0.22-1~deb12u2) bookworm-security; urgency=high

  * Non-maintainer upload by the LTS Team.
  * CVE-2026-84782 ("DTLS Retransmits")
  * Fixes cve-2025-0001 and CVE-2026-35189.

 -- Jane Doe <jane@example.org>  Wed, 21 Oct 2026 16:54:24 +0700

openssl (3.0.20-1~deb12u1) bookworm; urgency=medium

  * Import 3.0.20 (no CVE here, just CVE-ish words)

 -- John Roe <john@example.org>  Wed, 23 Sep 2026 10:52:17 +0700

Old-format junk that Policy allows at the end
"""


def test_parse_entries_and_cves() -> None:
    entries = parse_changelog(TEXT)
    assert [e.version for e in entries] == ["3.0.22-1~deb12u2", "3.0.20-1~deb12u1"]
    first = entries[0]
    assert first.source == "openssl" and first.distributions == ("bookworm-security",)
    assert first.urgency == "high" and first.maintainer == "Jane Doe <jane@example.org>"
    assert first.cves == ("CVE-2025-0001", "CVE-2026-35189", "CVE-2026-84782")
    assert first.date_epoch == 1792576464
    assert first.changes.startswith("* Non-maintainer upload")
    assert cves_by_version(entries) == {"3.0.22-1~deb12u2": first.cves}


def test_agrees_with_python_debian() -> None:
    ours = parse_changelog(TEXT)
    theirs = list(Changelog(TEXT))
    assert [e.version for e in ours] == [str(b.version) for b in theirs]
    assert [e.urgency for e in ours] == [b.urgency for b in theirs]
    assert [e.date for e in ours] == [b.date for b in theirs]


def test_read_from_deb(tmp_path: Path) -> None:
    deb = write_deb(
        tmp_path / "libssl3.deb",
        "libssl3",
        [f("./usr/share/doc/libssl3/changelog.Debian.gz", gzip.compress(TEXT.encode()))],
    )
    entries = read_changelog(deb, package="libssl3")
    assert entries[0].cves[0] == "CVE-2025-0001"


def test_symlinked_doc_dir_and_missing_changelog(tmp_path: Path) -> None:
    deb = write_deb(tmp_path / "a.deb", "liba", [sym("./usr/share/doc/liba", "a-common")])
    assert read_changelog(deb, package="liba") == []


def test_corrupt_gzip_is_input_error(tmp_path: Path) -> None:
    deb = write_deb(
        tmp_path / "b.deb", "b", [f("./usr/share/doc/b/changelog.Debian.gz", b"\x1f\x8bjunk")]
    )
    with pytest.raises(InputError, match="package b changelog"):
        read_changelog(deb, package="b")
