"""A fleet rescan (one SQL join over stored inventories) agrees with single scans."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from assay.sbom.model import Distro, Inventory, Package
from assay.vuln.db import AdvisoryDB
from assay.vuln.feeds import FEEDS
from assay.vuln.fleet import fleet_rescan
from assay.vuln.matcher import scan_inventory

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "vuln"


def deb(name: str, version: str, src: str = "", srcver: str = "") -> Package:
    return Package(
        name=name,
        version=version,
        ecosystem="deb",
        architecture="amd64",
        purl=f"pkg:deb/debian/{name}@{version}?arch=amd64",
        source_name=src,
        source_version=srcver,
    )


def test_fleet_rescan_matches_single_scans(tmp_path: Path) -> None:
    invs = [
        Inventory(
            "a",
            "sha256:" + "1" * 64,
            "amd64",
            Distro("debian", "12", "bookworm"),
            (
                deb("libssl3", "3.0.8-1+b1", "openssl", "3.0.8-1+b1"),
                deb("libc6", "2.36-9+deb12u4", "glibc"),
                deb("tar", "1.34+dfsg-1.2+deb12u1"),
                deb("passwd", "1:4.13+dfsg1-1", "shadow"),
                deb("mariadb-server", "1:10.6.16-0+deb12u1", "mariadb-10.6"),
                deb("xz-utils", "5.4.1-1"),
            ),
        ),
        Inventory(
            "b",
            "sha256:" + "2" * 64,
            "amd64",
            Distro("debian", "11", "bullseye"),
            (deb("libssl1.1", "1.1.1n-0+deb11u4", "openssl"),),
        ),
        Inventory(
            "c",
            "sha256:" + "3" * 64,
            "amd64",
            Distro("debian", "12", "bookworm"),
            (deb("libssl3", "3.0.13-1~deb12u1", "openssl"),),
        ),
    ]
    with AdvisoryDB(tmp_path / "v.db") as db:
        FEEDS["debian-tracker"].import_path(db, ASSETS / "tracker.json")
        expected = set()
        for inv in invs:
            db.store_inventory(inv.subject_digest, inv)
            for f in scan_inventory(db, inv, today=dt.date(2025, 1, 1)).findings:
                expected.add((inv.subject_digest, f.package, f.id, f.state, f.fixed_in))
        got = {(f.subject, f.package, f.vuln, f.state, f.fixed_in) for f in fleet_rescan(db)}
    assert got == expected
    assert len(got) > 8
    assert not any(s == "sha256:" + "3" * 64 and v == "CVE-2024-0727" for s, _, v, _, _ in got)


def test_sort_key_orders_exactly_like_dpkg() -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from assay.debian.version import compare_versions
    from assay.vuln.vkey import deb_sort_key

    part = st.text(alphabet="0123456789abz.+~", min_size=1, max_size=8)
    version = st.builds(
        lambda e, u, r: (f"{e}:" if e else "") + "1" + u + (f"-{r}" if r else ""),
        st.integers(0, 3),
        st.text(alphabet="0123456789abz.+~", max_size=8),
        st.one_of(st.just(""), part.filter(lambda s: "-" not in s)),
    )

    @settings(max_examples=400, deadline=None)
    @given(version, version)
    def check(a: str, b: str) -> None:
        ka, kb = deb_sort_key(a), deb_sort_key(b)
        assert ka is not None and kb is not None
        assert (ka > kb) - (ka < kb) == compare_versions(a, b), (a, b)

    check()
    fixed = [
        "1.0~rc1",
        "1.0",
        "1.0-1~deb12u1",
        "1.0-1",
        "1.0-1+b1",
        "1.0-1+deb12u1",
        "1.0a",
        "1.0.0",
        "1:0.1",
    ]
    assert sorted(fixed, key=lambda v: deb_sort_key(v) or b"") == fixed
    assert deb_sort_key("not a version") is None
