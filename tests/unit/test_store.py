"""The evidence store on SQLite and on a real PostgreSQL server: migrations, images, the fleet
rescan (checked against the single-scan matcher and the advisory DB's own fleet join), first-seen
and FedRAMP due dates, resolution, the fleet report, decisions and bundles."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from assay.errors import AssayError, NetworkError, UsageError
from assay.sbom.model import Distro, Inventory, Package
from assay.store import fleet_report, open_store, rescan, sync_advisories
from assay.store.migrations import LATEST
from assay.vuln.db import AdvisoryDB
from assay.vuln.feeds import FEEDS
from assay.vuln.matcher import scan_inventory
from fixtures.postgres import postgres_url, reset

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "vuln"
D1, D2, D3 = ("sha256:" + c * 64 for c in "123")


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    url = postgres_url()
    try:
        reset(url)
    except Exception as exc:  # the server is part of the test environment: fail, don't skip
        pytest.fail(
            f"PostgreSQL at {url.split('@')[-1]} is not usable ({exc}); run "
            "`bash scripts/postgres.sh` (scripts/setup.sh does)",
            pytrace=False,
        )
    yield url
    reset(url)


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


def inventories() -> list[Inventory]:
    return [
        Inventory(
            "acme/a",
            D1,
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
            "acme/b",
            D2,
            "amd64",
            Distro("debian", "11", "bullseye"),
            (deb("libssl1.1", "1.1.1n-0+deb11u4", "openssl"),),
        ),
        Inventory(
            "acme/c",
            D3,
            "amd64",
            Distro("debian", "12", "bookworm"),
            (deb("libssl3", "3.0.13-1~deb12u1", "openssl"),),
        ),
    ]


@pytest.fixture
def advisory_db(tmp_path: Path) -> Iterator[AdvisoryDB]:
    with AdvisoryDB(tmp_path / "vuln.db") as db:
        FEEDS["debian-tracker"].import_path(db, ASSETS / "tracker.json")
        yield db


def test_migrations_create_once_and_refuse_newer(store_url: str) -> None:
    with open_store(store_url) as s:
        assert s.images() == []
    with open_store(store_url) as s:  # reopening applies nothing twice
        from sqlalchemy import text

        with s.engine.begin() as conn:
            versions = conn.execute(text("SELECT version FROM assay_schema_version")).all()
            assert [v for (v,) in versions] == list(range(1, LATEST + 1))
            conn.execute(
                text("INSERT INTO assay_schema_version VALUES (:v, '2099-01-01T00:00:00Z')"),
                {"v": LATEST + 1},
            )
    with pytest.raises(UsageError, match="newer than this assay"):
        open_store(store_url)


def test_rescan_agrees_with_single_scans(store_url: str, advisory_db: AdvisoryDB) -> None:
    expected = set()
    for inv in inventories():
        for f in scan_inventory(advisory_db, inv, today=dt.date(2025, 1, 1)).findings:
            expected.add((inv.subject_digest, f.package, f.id, str(f.state), f.fixed_in))
    with open_store(store_url) as s:
        for inv in inventories():
            s.record_image(inv)
        assert sync_advisories(s, advisory_db) > 0
        summary = rescan(s, now="2025-01-01T00:00:00Z")
        from sqlalchemy import text

        with s.engine.connect() as conn:
            got = {
                (d, p, v, st, fx)
                for d, p, v, st, fx in conn.execute(
                    text(
                        "SELECT i.digest, f.package, f.vuln, f.state, f.fixed_in FROM findings f "
                        "JOIN images i ON i.id = f.image_id"
                    )
                )
            }
    assert got == expected
    assert len(got) > 8 and summary.open == len(got) and summary.new == len(got)
    assert not any(d == D3 and v == "CVE-2024-0727" for d, _, v, _, _ in got)


def test_first_seen_kept_resolution_and_due_dates(store_url: str, advisory_db: AdvisoryDB) -> None:
    invs = inventories()
    with open_store(store_url) as s:
        for inv in invs:
            s.record_image(inv)
        sync_advisories(s, advisory_db)
        rescan(s, now="2025-01-01T00:00:00Z")
        second = rescan(s, now="2025-02-01T00:00:00Z")
        assert second.new == 0 and second.resolved == 0
        # image a is rebuilt with openssl fixed: its openssl findings are resolved, others stay
        fixed = Inventory(
            invs[0].subject_name,
            D1,
            "amd64",
            invs[0].distro,
            tuple(
                deb("libssl3", "3.0.15-1~deb12u1", "openssl") if p.name == "libssl3" else p
                for p in invs[0].packages
            ),
        )
        s.record_image(fixed)
        third = rescan(s, now="2025-03-01T00:00:00Z")
        assert third.resolved > 0
        from sqlalchemy import text

        with s.engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT f.package, f.vuln, f.severity, f.first_seen, f.due_date, "
                    "f.resolved_at, f.kev_due FROM findings f JOIN images i ON i.id = f.image_id "
                    "WHERE i.digest = :d"
                ),
                {"d": D1},
            ).all()
    by = {(p, v): (sev, fs, due, res, kev) for p, v, sev, fs, due, res, kev in rows}
    still = {
        (f.package, f.id)
        for f in scan_inventory(advisory_db, fixed, today=dt.date(2025, 3, 1)).findings
    }
    gone = {k for k in by if k not in still}
    assert gone and all(k[0] == "libssl3" for k in gone)
    assert all(by[k][3] == "2025-03-01T00:00:00Z" for k in gone)
    assert all(by[k][3] is None for k in still)
    assert all(by[k][1] == "2025-01-01T00:00:00Z" for k in by)  # first seen survives rescans
    days = {"critical": 30, "high": 30, "medium": 90, "low": 180}
    for sev, _fs, due, _res, kev in by.values():
        base = (
            (dt.date(2025, 1, 1) + dt.timedelta(days=days[sev])).isoformat() if sev in days else ""
        )
        want = min(x for x in (base, kev) if x) if (base or kev) else ""
        assert due == want, (sev, due, want, kev)


def test_fleet_report_counts(store_url: str, advisory_db: AdvisoryDB) -> None:
    with open_store(store_url) as s:
        for inv in inventories():
            s.record_image(inv)
        sync_advisories(s, advisory_db)
        rescan(s, now="2025-01-01T00:00:00Z")
        early = fleet_report(s, today="2025-01-02")
        late = fleet_report(s, today="2026-01-01")
    assert {r.digest for r in early.images} == {D1, D2, D3}
    a = next(r for r in early.images if r.digest == D1)
    assert a.packages == 6 and a.open > 0 and a.overdue == 0
    assert a.open >= a.critical + a.high + a.medium + a.low
    assert a.oldest_open == "2025-01-01"
    a_late = next(r for r in late.images if r.digest == D1)
    dated = a_late.critical + a_late.high + a_late.medium + a_late.low
    assert a_late.overdue >= dated > 0  # a year on, every finding with a deadline is overdue
    assert early.totals["images"] == 3 and early.top and early.top[0][2] >= 1
    assert early.to_dict()["totals"]["open"] == sum(r.open for r in early.images)


def test_decisions_and_bundles_round_trip(store_url: str) -> None:
    doc = {
        "allowed": False,
        "images": [
            {
                "reference": "reg/acme/app:1",
                "digest": D1,
                "result": "deny",
                "status": "fail",
                "message": "failed policy: p: no matching signatures",
            }
        ],
    }
    with open_store(store_url) as s:
        s.record_decision(doc, policy_digest="sha256:" + "9" * 64, source="cli")
        s.record_bundle(D1, "sha256:" + "8" * 64, 1234, "app-evidence.tar")
        got = s.decisions(D1)
        with pytest.raises(UsageError):
            s.record_decision({"images": 5}, policy_digest="", source="cli")
    assert len(got) == 1 and got[0].result == "deny" and got[0].source == "cli"
    assert got[0].document["message"].startswith("failed policy")


def test_bad_urls_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="unsupported store URL"):
        open_store("mysql://x/y")
    (tmp_path / "d").mkdir()
    with pytest.raises(UsageError, match="not a regular file"):
        open_store(str(tmp_path / "d"))
    with pytest.raises(NetworkError, match="cannot open the store") as info:
        open_store("postgresql://nobody:x@127.0.0.1:9/none")
    assert "\n" not in str(info.value) and "x@" not in str(info.value)
    assert isinstance(info.value, AssayError)


def test_synced_severity_is_nvds_as_in_a_single_scan(tmp_path: Path) -> None:
    from sqlalchemy import text

    from assay.vuln.feeds import NvdFeed

    inv = inventories()
    with AdvisoryDB(tmp_path / "vuln.db") as db, open_store(f"sqlite:///{tmp_path / 's.db'}") as s:
        FEEDS["debian-tracker"].import_path(db, ASSETS / "tracker.json")
        NvdFeed().import_path(db, ASSETS / "nvd" / "cves-page.json")
        single = {
            f.id: f.severity.value
            for i in inv
            for f in scan_inventory(db, i, record_first_seen=False).findings
        }
        sync_advisories(s, db)
        with s.engine.connect() as conn:
            synced = dict(
                conn.execute(
                    text("SELECT vuln, severity FROM advisories WHERE release='bookworm'")
                ).fetchall()
            )
    # NVD Primary v3.1 5.3 over a Secondary v4.0 8.7; 7.5 for CVE-2023-0464
    assert synced["CVE-2023-5678"] == "medium" and synced["CVE-2023-0464"] == "high"
    assert synced["CVE-2019-1010022"] == "critical"  # Debian urgency "low"
    for vuln in ("CVE-2023-5678", "CVE-2023-0464"):
        assert single[vuln] == synced[vuln]  # the fleet rates as a single scan does
