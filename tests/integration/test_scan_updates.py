"""``scan --updates`` against a real signed repository served on 127.0.0.1 with real .debs whose
``changelog.Debian.gz`` is in Debian's format; and (network) the real libssl3 case."""

from __future__ import annotations

import gzip
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from assay.sbom.model import Distro, Inventory, Package
from assay.vuln.db import AdvisoryDB
from assay.vuln.feeds import FEEDS
from assay.vuln.updates import changelog_cves, check_updates, read_changelog
from fixtures.debrepo import FakePkg, make_repo, serve, test_key  # noqa: F401
from fixtures.examples import bookworm_sources_or_skip

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "vuln"
BOOKWORM = Distro("debian", "12", "bookworm")

CHANGELOG_NEW = """\
openssl (3.0.13-1~deb12u1) bookworm-security; urgency=medium

  * Non-maintainer upload by the Security Team.
  * CVE-2023-5678 (Generating excessively long X9.42 DH keys or checking
    excessively long X9.42 DH keys or parameters may be very slow).
  * CVE-2023-6129 (POLY1305 MAC implementation corrupts vector registers on
    PowerPC).
  * CVE-2024-0727 (PKCS12 Decoding crashes).

 -- Sebastian Andrzej Siewior <sebastian@breakpoint.cc>  Sat, 03 Feb 2024 14:16:43 +0100

openssl (3.0.11-1~deb12u2) bookworm; urgency=medium

  * Add CVE-2023-5363 (Incorrect cipher key & IV length processing).

 -- Sebastian Andrzej Siewior <sebastian@breakpoint.cc>  Wed, 25 Oct 2023 22:20:26 +0200

openssl (3.0.11-1~deb12u1) bookworm-security; urgency=medium

  * CVE-2023-4807 (POLY1305 MAC implementation corrupts XMM registers on
    Windows).

 -- Sebastian Andrzej Siewior <sebastian@breakpoint.cc>  Tue, 19 Sep 2023 20:55:49 +0200
"""


def _deb(name: str, version: str, **source: str) -> Package:
    """An amd64 Debian package of an inventory (``source``: source_name, source_version)."""
    purl = f"pkg:deb/debian/{name}@{version}?arch=amd64"
    return Package(
        name=name, version=version, ecosystem="deb", architecture="amd64", purl=purl, **source
    )


def _inventory(*packages: Package, distro: Distro | None = BOOKWORM) -> Inventory:
    return Inventory(
        subject_name="t",
        subject_digest="",
        architecture="amd64",
        distro=distro,
        packages=packages,
    )


def _pkg(version: str, changelog: str) -> FakePkg:
    return FakePkg(
        "libssl3",
        version,
        source="openssl",
        files={
            "usr/lib/x86_64-linux-gnu/libssl.so.3": b"\x7fELF fake",
            "usr/share/doc/libssl3/changelog.Debian.gz": gzip.compress(changelog.encode(), mtime=0),
        },
    )


def test_changelog_cves_between_versions() -> None:
    cves, entries = changelog_cves(CHANGELOG_NEW, "3.0.11-1~deb12u2")
    assert cves == ("CVE-2023-5678", "CVE-2023-6129", "CVE-2024-0727") and entries == 1
    cves, entries = changelog_cves(CHANGELOG_NEW, "3.0.11-1~deb12u1")
    assert "CVE-2023-5363" in cves and "CVE-2023-4807" not in cves and entries == 2
    assert changelog_cves(CHANGELOG_NEW, "3.0.13-1~deb12u1") == ((), 0)


def test_updates_from_served_signed_repo(tmp_path: Path, test_key) -> None:  # noqa: F811
    old_log = CHANGELOG_NEW.split("\n\n", 3)[-1]  # only the entries up to 3.0.11-1~deb12u2
    repo = make_repo(
        tmp_path / "repo",
        {
            "bookworm": [_pkg("3.0.11-1~deb12u2", old_log), FakePkg("base-files", "12.4")],
            "bookworm-security": [_pkg("3.0.13-1~deb12u1", CHANGELOG_NEW)],
        },
        archs=("amd64",),
        key=test_key,
    )
    inv = _inventory(
        _deb("libssl3", "3.0.11-1~deb12u2", source_name="openssl"), _deb("base-files", "12.4")
    )
    log: list[str] = []
    with serve(repo.root, log=log) as url:
        infos = check_updates(inv, repo.sources(url), cache_dir=tmp_path / "cache")
    assert [(i.package, i.installed, i.candidate, i.suite) for i in infos] == [
        ("libssl3", "3.0.11-1~deb12u2", "3.0.13-1~deb12u1", "bookworm-security")
    ]
    assert infos[0].cves == ("CVE-2023-5678", "CVE-2023-6129", "CVE-2024-0727")
    assert any(p.endswith(".deb") for p in log)  # the candidate .deb was really fetched
    # the changelog reader finds the file in the real .deb
    deb = repo.deb("libssl3", "3.0.13-1~deb12u1", "amd64")
    text = read_changelog(deb, "libssl3")
    assert text is not None and text.startswith("openssl (3.0.13-1~deb12u1)")


def test_package_without_changelog_is_reported_not_dropped(tmp_path: Path, test_key) -> None:  # noqa: F811
    repo = make_repo(
        tmp_path / "repo", {"stable": [FakePkg("hello", "2.0")]}, archs=("amd64",), key=test_key
    )
    inv = _inventory(_deb("hello", "1.0"), distro=None)
    with serve(repo.root) as url:
        [info] = check_updates(inv, repo.sources(url), cache_dir=tmp_path / "cache")
    assert info.candidate == "2.0" and info.cves == () and "changelog.Debian.gz" in info.note


@pytest.mark.network
def test_real_mirror_libssl3_older_than_security_suite(tmp_path: Path) -> None:
    """An image locked to bookworm's libssl3 reports the CVEs of the security suite's changelog.

    Needs the host's apt sources (or ASSAY_DEBIAN_MIRROR) to reach a real Debian mirror with a
    bookworm-security suite.
    """
    from assay.debian.repo import RepoClient
    from assay.debian.sources import sources_from_env_or_host
    from assay.errors import AssayError

    try:
        sources = [s for s in sources_from_env_or_host() if s.suite.startswith("bookworm")]
    except AssayError as exc:
        pytest.skip(f"no Debian sources configured: {exc}")
    if not any(s.suite == "bookworm-security" for s in sources) or not any(
        s.suite == "bookworm" for s in sources
    ):
        pytest.skip("SKIPPED LOUDLY: host apt sources lack bookworm and bookworm-security")
    base = [s for s in sources if s.suite == "bookworm"]
    try:
        with RepoClient(cache_dir=tmp_path / "c") as client:
            idx = client.load(base, ["amd64"])
    except AssayError as exc:
        pytest.skip(f"SKIPPED LOUDLY: Debian mirror unreachable: {exc}")
    old = next(r for r in idx.packages["amd64"] if r.name == "libssl3")
    inv = _inventory(
        _deb("libssl3", old.version, source_name=old.source, source_version=old.source_version)
    )
    infos = check_updates(inv, sources, cache_dir=tmp_path / "c")
    if not infos:
        pytest.skip("bookworm-security has no newer libssl3 than bookworm right now")
    assert infos[0].cves, f"expected CVE ids in the newer libssl3 changelog: {infos[0]}"
    assert all(c.startswith("CVE-") for c in infos[0].cves)


@pytest.mark.network
@pytest.mark.slow
def test_real_built_image_with_older_libssl3_reports_security_cves(tmp_path: Path) -> None:
    """Build an image locked to bookworm's libssl3 (no security suite), then `scan --updates`
    against bookworm-security lists the CVEs named by the newer libssl3's changelog."""
    import json

    pytest.importorskip("assay.build.lock", reason="SKIPPED LOUDLY: the image builder is missing")
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from test_scan_cli import assay as run_assay

    main, sec = bookworm_sources_or_skip()
    spec = tmp_path / "ssl.yaml"
    spec.write_text("contents:\n  packages: [libssl3]\narchs: [amd64]\n")
    env = dict(
        os.environ,
        ASSAY_DEBIAN_MIRROR=f"{main.uri} bookworm main",
        ASSAY_CACHE_DIR=str(tmp_path / "cache"),
        ASSAY_VULN_DB=str(tmp_path / "v.db"),
    )
    r = run_assay("build", str(spec), "--dest", f"oci:{tmp_path / 'out'}:ssl", env=env)
    if r.returncode != 0 and ("unreachable" in r.stderr or "cannot" in r.stderr):
        pytest.skip(f"SKIPPED LOUDLY: Debian mirror unreachable: {r.stderr.strip()[:300]}")
    assert r.returncode == 0, r.stderr
    with AdvisoryDB(tmp_path / "v.db") as db:  # scan needs a DB; the tracker fixture will do
        FEEDS["debian-tracker"].import_path(db, ASSETS / "tracker.json")
    r = run_assay(
        "scan",
        f"oci:{tmp_path / 'out'}:ssl",
        "--arch",
        "amd64",
        "--updates",
        "--updates-source",
        f"{sec.uri} bookworm-security main",
        "-o",
        "json",
        env=env,
    )
    assert r.returncode == 0, r.stderr
    updates = {u["package"]: u for u in json.loads(r.stdout)["updates"]}
    if "libssl3" not in updates:
        pytest.skip("bookworm-security offers no newer libssl3 than bookworm right now")
    assert updates["libssl3"]["cves"], updates["libssl3"]
    assert all(c.startswith("CVE-") for c in updates["libssl3"]["cves"])
