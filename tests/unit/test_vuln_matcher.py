"""Matcher tests on fixture feeds written in the published formats (tests/assets/vuln)."""

from __future__ import annotations

import datetime as dt
import shutil
import zipfile
from pathlib import Path

import pytest

from assay.sbom.model import Distro, Inventory, Package
from assay.vuln.db import AdvisoryDB
from assay.vuln.ecosystems import semver_key, sort_key_for
from assay.vuln.feeds import FEEDS
from assay.vuln.matcher import osv_range_affected, scan_inventory, source_of
from assay.vuln.model import Finding, Severity, State
from fixtures.vulnfeeds import import_feeds

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "vuln"
BOOKWORM = Distro(id="debian", version_id="12", codename="bookworm")


def deb(
    name: str, version: str, src: str = "", srcver: str = "", files: tuple[str, ...] = ()
) -> Package:
    purl = f"pkg:deb/debian/{name}@{version}?arch=amd64&distro=debian-12"
    return Package(
        name=name,
        version=version,
        ecosystem="deb",
        purl=purl,
        architecture="amd64",
        source_name=src,
        source_version=srcver,
        files=files,
    )


def other(eco: str, name: str, version: str, locations: tuple[str, ...] = ()) -> Package:
    return Package(
        name=name,
        version=version,
        ecosystem=eco,
        purl=f"pkg:{eco}/{name}@{version}",
        locations=locations,
    )


@pytest.fixture
def db(tmp_path: Path) -> AdvisoryDB:
    d = AdvisoryDB(tmp_path / "vuln.db")
    import_feeds(d)
    yield d
    d.close()


def inventory(*pkgs: Package, distro: Distro | None = BOOKWORM) -> Inventory:
    return Inventory(
        subject_name="localhost:5000/base/python",
        subject_digest="sha256:" + "ab" * 32,
        architecture="amd64",
        distro=distro,
        packages=tuple(pkgs),
    )


def by(findings: tuple[Finding, ...], vid: str, package: str | None = None) -> list[Finding]:
    return [f for f in findings if vid in f.all_ids and (package is None or f.package == package)]


TODAY = dt.date(2025, 1, 1)


def test_resolved_fixed_later_is_affected_via_source_package(db: AdvisoryDB) -> None:
    # libssl3 (binary) from openssl (source) 3.0.8-1, binNMU'd: the tracker is keyed by source.
    res = scan_inventory(db, inventory(deb("libssl3", "3.0.8-1+b1", "openssl")), today=TODAY)
    [f] = by(res.findings, "CVE-2023-0464")
    assert f.state is State.AFFECTED
    assert f.fixed_in == "3.0.9-1"
    assert f.source_name == "openssl" and f.source_version == "3.0.8-1"
    assert f.package == "libssl3"
    # CVE-2024-0727 is fixed in 3.0.13-1~deb12u1 > 3.0.8-1 as well
    assert by(res.findings, "CVE-2024-0727")[0].fixed_in == "3.0.13-1~deb12u1"


def test_fixed_zero_and_not_affected_never_match(db: AdvisoryDB) -> None:
    res = scan_inventory(
        db, inventory(deb("libssl3", "3.0.8-1", "openssl"), deb("xz-utils", "5.4.1-1")), today=TODAY
    )
    assert not by(res.findings, "CVE-2022-3358")  # fixed_version "0"
    assert not by(res.findings, "CVE-2025-31115")  # <not-affected>


def test_tilde_ordering(db: AdvisoryDB) -> None:
    # installed 3.0.11-1~deb12u2 >= fixed 3.0.11-1~deb12u2 (CVE-2023-5678): not affected;
    # but < 3.0.13-1~deb12u1 (CVE-2024-0727): affected.
    res = scan_inventory(db, inventory(deb("libssl3", "3.0.11-1~deb12u2", "openssl")), today=TODAY)
    assert not by(res.findings, "CVE-2023-5678")
    assert not by(res.findings, "CVE-2023-0464")  # 3.0.11-1~deb12u2 > 3.0.9-1
    assert by(res.findings, "CVE-2024-0727")[0].state is State.AFFECTED


def test_epochs(db: AdvisoryDB) -> None:
    res = scan_inventory(db, inventory(deb("passwd", "1:4.13+dfsg1-1", "shadow")), today=TODAY)
    assert by(res.findings, "CVE-2023-4641")[0].fixed_in == "1:4.13+dfsg1-1+deb12u1"
    # fixed 4.14.0-1 has epoch 0 < installed epoch 1: not affected
    assert not by(res.findings, "CVE-2023-29383")


def test_binary_version_differs_from_source_version(db: AdvisoryDB) -> None:
    # Binary 2:1.0-1 built from source libfoo 1.5-3; the fix is in source 1.5-4.
    # Comparing the binary version would wrongly say "not affected".
    res = scan_inventory(db, inventory(deb("libfoo1", "2:1.0-1", "libfoo", "1.5-3")), today=TODAY)
    [f] = by(res.findings, "CVE-2024-11111")
    assert f.state is State.AFFECTED and f.fixed_in == "1.5-4"
    assert f.version == "2:1.0-1" and f.source_version == "1.5-3"
    assert f.severity is Severity.MEDIUM and f.severity_source == "debian"


def test_binnmu_suffix_stripped_when_no_source_version() -> None:
    assert source_of(deb("zlib1g", "1:1.2.13.dfsg-1+b1", "zlib")) == ("zlib", "1:1.2.13.dfsg-1")


def test_unimportant_is_negligible(db: AdvisoryDB) -> None:
    res = scan_inventory(db, inventory(deb("libc6", "2.36-9+deb12u4", "glibc")), today=TODAY)
    [f] = by(res.findings, "CVE-2010-4756")
    assert f.severity is Severity.NEGLIGIBLE and f.state is State.AFFECTED
    assert f.due_date == ""  # no FedRAMP deadline for negligible


def test_nodsa_ignored_and_postponed_are_wont_fix_with_reason(db: AdvisoryDB) -> None:
    res = scan_inventory(
        db,
        inventory(
            deb("libc6", "2.36-9+deb12u4", "glibc"), deb("libssl3", "3.0.11-1~deb12u2", "openssl")
        ),
        today=TODAY,
    )
    [ign] = by(res.findings, "CVE-2019-1010022")
    assert ign.state is State.WONT_FIX and "ignored" in ign.reason
    [post] = by(res.findings, "CVE-2024-2511")
    assert (
        post.state is State.WONT_FIX and "postponed" in post.reason and "Minor issue" in post.reason
    )


def test_undetermined_and_end_of_life_are_reported(db: AdvisoryDB) -> None:
    res = scan_inventory(
        db,
        inventory(
            deb("tar", "1.34+dfsg-1.2+deb12u1"),
            deb("mariadb-server", "1:10.6.16-0+deb12u1", "mariadb-10.6"),
        ),
        today=TODAY,
    )
    assert by(res.findings, "TEMP-0290435-0B57B5")[0].state is State.UNDETERMINED
    assert by(res.findings, "CVE-2023-22084")[0].state is State.END_OF_LIFE


def test_other_release_rows_do_not_apply(db: AdvisoryDB) -> None:
    bullseye = Distro(id="debian", version_id="11", codename="bullseye")
    res = scan_inventory(
        db, inventory(deb("libssl1.1", "1.1.1n-0+deb11u4", "openssl"), distro=bullseye), today=TODAY
    )
    assert [f.id for f in res.findings] == ["CVE-2023-0464"]
    assert res.findings[0].fixed_in == "1.1.1n-0+deb11u5"


def test_codename_from_version_id(db: AdvisoryDB) -> None:
    d = Distro(id="debian", version_id="12")
    res = scan_inventory(db, inventory(deb("libssl3", "3.0.8-1", "openssl"), distro=d), today=TODAY)
    assert by(res.findings, "CVE-2023-0464")


def test_kev_epss_cvss_and_due_dates(db: AdvisoryDB) -> None:
    res = scan_inventory(db, inventory(deb("libssl3", "3.0.8-1", "openssl")), today=TODAY)
    [f] = by(res.findings, "CVE-2023-0464")
    assert f.kev and f.kev_due == "2024-01-23"
    assert f.epss == pytest.approx(0.01212) and f.epss_percentile == pytest.approx(0.78231)
    assert f.first_seen == "2025-01-01"
    # KEV due date (2024-01-23) is earlier than any FedRAMP deadline from 2025-01-01
    assert f.due_date == "2024-01-23"
    # first-seen is kept: a later scan keeps the original date
    later = scan_inventory(
        db, inventory(deb("libssl3", "3.0.8-1", "openssl")), today=dt.date(2025, 3, 1)
    )
    assert by(later.findings, "CVE-2024-0727")[0].first_seen == "2025-01-01"


def test_pypi_aliases_merge_into_one_finding_with_cvss(db: AdvisoryDB) -> None:
    res = scan_inventory(db, inventory(other("pypi", "Jinja2", "3.1.2")), today=TODAY)
    assert len(res.findings) == 1
    f = res.findings[0]
    assert f.id == "CVE-2024-22195"
    assert set(f.aliases) == {"GHSA-h5c8-rqwp-cp95", "PYSEC-2024-9001"}
    assert f.fixed_in == "3.1.3"
    assert f.severity is Severity.MEDIUM and f.cvss_score == pytest.approx(5.4)
    assert f.severity_source == "osv"
    # FedRAMP moderate: 90 days from first seen
    assert f.due_date == "2025-04-01"
    assert not scan_inventory(db, inventory(other("pypi", "jinja2", "3.1.3")), today=TODAY).findings


def test_npm_semver_range_and_explicit_versions(db: AdvisoryDB) -> None:
    res = scan_inventory(
        db,
        inventory(other("npm", "lodash", "4.17.20"), other("npm", "event-stream", "3.3.6")),
        today=TODAY,
    )
    [lo] = by(res.findings, "CVE-2021-23337")
    assert lo.fixed_in == "4.17.21" and lo.severity is Severity.HIGH and lo.cvss_score == 7.2
    assert lo.due_date == "2025-01-31"
    [es] = by(res.findings, "GHSA-mh6f-8j2x-4483")
    assert es.severity is Severity.CRITICAL and es.severity_source == "osv"
    res2 = scan_inventory(
        db,
        inventory(other("npm", "lodash", "4.17.21"), other("npm", "event-stream", "3.3.5")),
        today=TODAY,
    )
    assert res2.findings == ()  # the withdrawn advisory for lodash never matches


@pytest.mark.parametrize(
    ("version", "hit"),
    [
        ("2.0.0-alpha.1", False),
        ("2.0.0-alpha.2", True),
        ("2.0.0-beta", True),
        ("2.0.0-rc.1", True),
        ("2.0.0-rc.2", False),
        ("2.0.0", False),
        ("1.9.9", False),
    ],
)
def test_semver_prerelease_and_last_affected(db: AdvisoryDB, version: str, hit: bool) -> None:
    res = scan_inventory(db, inventory(other("npm", "prerel-pkg", version)), today=TODAY)
    assert bool(res.findings) is hit


def test_python_package_owned_by_dpkg_is_not_double_counted(db: AdvisoryDB) -> None:
    dist = "/usr/lib/python3/dist-packages/urllib3-1.26.12.dist-info"
    owner = deb("python3-urllib3", "1.26.12-1", "python-urllib3", files=(dist, f"{dist}/METADATA"))
    py = other("pypi", "urllib3", "1.26.12", locations=(f"{dist}/METADATA",))
    res = scan_inventory(db, inventory(owner, py), today=TODAY)
    hits = by(res.findings, "CVE-2023-43804")
    assert [f.package for f in hits] == ["python3-urllib3"]
    assert hits[0].fixed_in == "1.26.12-1+deb12u1"
    assert any("owned by dpkg package python3-urllib3" in r for _, r in res.skipped)
    # The same Python package installed by pip (not owned) is matched through OSV, CVSS v4.
    pip = other(
        "pypi",
        "urllib3",
        "1.26.12",
        locations=("/usr/local/lib/python3.11/site-packages/urllib3-1.26.12.dist-info/METADATA",),
    )
    [f] = scan_inventory(db, inventory(pip), today=TODAY).findings
    assert (
        f.id == "CVE-2023-43804"
        and f.severity_source == "osv"
        and f.cvss_vector.startswith("CVSS:4.0/")
        and f.fixed_in == "1.26.17"
    )


def test_osv_zip_import_matches_same_as_directory(tmp_path: Path) -> None:
    z = tmp_path / "all.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for f in sorted((ASSETS / "osv").glob("*.json")):
            zf.write(f, f.name)
    with AdvisoryDB(tmp_path / "z.db") as d:
        assert FEEDS["osv"].import_path(d, z) == 7
        res = scan_inventory(d, inventory(other("npm", "lodash", "4.17.20")), today=TODAY)
        assert [f.id for f in res.findings] == ["CVE-2021-23337"]


def test_debian_via_osv_when_no_tracker_data(tmp_path: Path) -> None:
    osvdir = tmp_path / "osv"
    osvdir.mkdir()
    (osvdir / "DSA-5417-1.json").write_text(
        '{"id": "DSA-5417-1", "modified": "2023-05-30T00:00:00Z", "upstream": ["CVE-2023-2650"],'
        '"affected": [{"package": {"ecosystem": "Debian:12", "name": "openssl"},'
        '"ranges": [{"type": "ECOSYSTEM",'
        ' "events": [{"introduced": "0"}, {"fixed": "3.0.9-1"}]}]}]}'
    )
    with AdvisoryDB(tmp_path / "d.db") as d:
        FEEDS["osv"].import_path(d, osvdir)
        res = scan_inventory(d, inventory(deb("libssl3", "3.0.8-1+b2", "openssl")), today=TODAY)
        [f] = res.findings
        assert f.id == "CVE-2023-2650" and f.aliases == ("DSA-5417-1",) and f.fixed_in == "3.0.9-1"
        d11 = Distro(id="debian", version_id="11", codename="bullseye")
        assert not scan_inventory(
            d, inventory(deb("libssl3", "3.0.8-1", "openssl"), distro=d11)
        ).findings


def test_osv_range_walk_rules() -> None:
    key = sort_key_for("PyPI", "ECOSYSTEM")
    ev = [{"introduced": "1.0"}, {"last_affected": "1.4"}, {"introduced": "2.0"}, {"fixed": "2.1"}]
    assert [
        osv_range_affected(v, ev, key) for v in ("0.9", "1.0", "1.4", "1.4.1", "2.0.5", "2.1")
    ] == [
        False,
        True,
        True,
        False,
        True,
        False,
    ]
    assert semver_key("1.0.0-alpha") < semver_key("1.0.0-alpha.1") < semver_key("1.0.0-beta.2")
    assert semver_key("1.0.0-beta.11") < semver_key("1.0.0-rc.1") < semver_key("1.0.0")
    assert semver_key("1.0.0+build5") == semver_key("1.0.0")


def test_feed_files_that_are_not_feeds_are_refused(tmp_path: Path) -> None:
    from assay.errors import InputError

    bad = tmp_path / "x.json"
    bad.write_text('["not", "a", "tracker"]')
    with AdvisoryDB(tmp_path / "b.db") as d:
        with pytest.raises(InputError, match="top level"):
            FEEDS["debian-tracker"].import_path(d, bad)
        with pytest.raises(InputError, match="vulnerabilities"):
            FEEDS["kev"].import_path(d, bad)
        csvf = tmp_path / "e.csv"
        csvf.write_text("#model_version:v1\ncve,epss,percentile\nCVE-1,2.5,0.1\n")
        with pytest.raises(InputError, match=r"\[0, 1\]"):
            FEEDS["epss"].import_path(d, csvf)
        # a failed import leaves the previous data in place
        FEEDS["kev"].import_path(d, ASSETS / "kev.json")
        with pytest.raises(InputError):
            FEEDS["kev"].import_path(d, bad)
        assert d.counts()["kev"] == 2
    shutil.rmtree(tmp_path / "b.db", ignore_errors=True)


def test_uncomparable_version_is_reported_as_skipped(db: AdvisoryDB) -> None:
    res = scan_inventory(db, inventory(deb("libssl3", "not a version", "openssl")), today=TODAY)
    assert any("cannot compare" in reason for _, reason in res.skipped)
    # open issues need no comparison and are still reported
    assert by(res.findings, "CVE-2024-2511")


def test_alpine_apk_ordering() -> None:
    from assay.vuln.ecosystems import apk_key

    ordered = [
        "1.2",
        "1.2.1_alpha1",
        "1.2.1_rc2",
        "1.2.1",
        "1.2.1-r1",
        "1.2.1-r10",
        "1.2.1_p1",
        "1.2.1a",
        "1.2.2",
        "1.10.0",
    ]
    assert sorted(ordered, key=apk_key) == ordered
    key = sort_key_for("Alpine:v3.19", "ECOSYSTEM")
    ev = [{"introduced": "0"}, {"fixed": "3.1.4-r5"}]
    assert osv_range_affected("3.1.4-r4", ev, key)
    assert not osv_range_affected("3.1.4-r5", ev, key)
    with pytest.raises(ValueError):
        apk_key("not-a-version")


def test_alpine_records_apply_to_their_release_only(tmp_path: Path) -> None:
    d = tmp_path / "osv"
    d.mkdir()
    (d / "ALPINE-CVE-2024-0727.json").write_text(
        '{"id": "ALPINE-CVE-2024-0727", "modified": "2024-02-01T00:00:00Z",'
        ' "upstream": ["CVE-2024-0727"], "affected": ['
        '{"package": {"ecosystem": "Alpine:v3.19", "name": "openssl"}, "ranges": [{"type":'
        ' "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "3.1.4-r5"}]}]}]}'
    )
    with AdvisoryDB(tmp_path / "a.db") as a:
        FEEDS["osv"].import_path(a, d)
        pkg = other("apk", "openssl", "3.1.4-r4")
        v319 = Distro(id="alpine", version_id="3.19.1")
        [f] = scan_inventory(a, inventory(pkg, distro=v319), today=TODAY).findings
        assert f.id == "CVE-2024-0727" and f.fixed_in == "3.1.4-r5"
        v320 = Distro(id="alpine", version_id="3.20.0")
        assert not scan_inventory(a, inventory(pkg, distro=v320), today=TODAY).findings
