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
