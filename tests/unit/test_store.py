"""The evidence store on SQLite and on a real PostgreSQL server: migrations, images, the fleet
rescan (checked against the single-scan matcher and the advisory DB's own fleet join), first-seen
and FedRAMP due dates, resolution, the fleet report, decisions and bundles."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from assay.errors import AssayError, NetworkError, UsageError
from assay.sbom.model import Distro, Inventory, Package
from assay.store import Store, fleet_report, open_store, rescan, sync_advisories
from assay.store.migrations import LATEST
from assay.vuln.db import AdvisoryDB
from assay.vuln.feeds import FEEDS
from assay.vuln.matcher import scan_inventory
from fixtures.postgres import store_url

__all__ = ["store_url"]  # the fixture: sqlite and postgresql

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "vuln"
D1, D2, D3 = ("sha256:" + c * 64 for c in "123")


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


REC = "2024-12-31T00:00:00Z"  # when the test images are recorded


def _findings(s: Store) -> dict[tuple[str, str, str], tuple[Any, ...]]:
    """(digest, package, vuln) -> (state, fixed_in, severity, first_seen, due_date,
    resolved_at, kev_due), read through the findings view."""
    from sqlalchemy import text

    with s.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT i.digest, f.package, f.vuln, f.state, f.fixed_in, f.severity, "
                "f.first_seen, f.due_date, f.resolved_at, f.kev_due FROM findings f "
                "JOIN images i ON i.id = f.image_id"
            )
        ).all()
    return {(r[0], r[1], r[2]): tuple(r[3:]) for r in rows}


def _single(db: AdvisoryDB, invs: list[Inventory]) -> set[tuple[str, str, str, str, str]]:
    return {
        (inv.subject_digest, f.package, f.id, str(f.state), f.fixed_in)
        for inv in invs
        for f in scan_inventory(db, inv, record_first_seen=False).findings
    }


def _open(found: dict[tuple[str, str, str], tuple[Any, ...]]) -> set[tuple[str, ...]]:
    return {(*k, v[0], v[1]) for k, v in found.items() if v[5] is None}


def test_rescan_agrees_with_single_scans(store_url: str, advisory_db: AdvisoryDB) -> None:
    expected = _single(advisory_db, inventories())
    with open_store(store_url) as s:
        for inv in inventories():
            s.record_image(inv, now=REC)
        assert sync_advisories(s, advisory_db) > 0
        summary = rescan(s, now="2025-01-01T00:00:00Z")
        got = _open(_findings(s))
    assert got == expected
    assert len(got) > 8 and summary.open == len(got) and summary.new == len(got)
    assert summary.checked == 8  # distinct (release, source, version) of the three images
    assert not any(d == D3 and v == "CVE-2024-0727" for d, _, v, _, _ in got)


def _change_advisories(db: AdvisoryDB) -> None:
    """A tracker update: one CVE fixed below what the images carry, one urgency raised, one
    new open CVE."""
    from assay.vuln.vkey import deb_sort_key

    with db.transaction() as conn:
        conn.execute(
            "UPDATE debian SET status='resolved', fixed_version='3.0.0-1', fixed_key=?, "
            "nodsa='', nodsa_reason='' WHERE source='openssl' AND vuln='CVE-2024-2511' "
            "AND release='bookworm'",
            (deb_sort_key("3.0.0-1"),),
        )
        conn.execute("UPDATE debian SET urgency='high' WHERE vuln='CVE-2010-4756'")
        conn.execute(
            "INSERT INTO debian VALUES ('bookworm', 'xz-utils', 'CVE-2099-0001', 'open', '', "
            "'medium', '', '', NULL)"
        )


def test_incremental_rescan_follows_advisory_changes(
    store_url: str, advisory_db: AdvisoryDB
) -> None:
    invs = inventories()
    with open_store(store_url) as s:
        for inv in invs:
            s.record_image(inv, now=REC)
        sync_advisories(s, advisory_db)
        first = rescan(s, now="2025-01-01T00:00:00Z")
        sync_advisories(s, advisory_db)  # nothing changed: nothing to match again
        second = rescan(s, now="2025-02-01T00:00:00Z")
        assert (second.checked, second.new, second.resolved) == (0, 0, 0)
        assert second.open == first.open
        _change_advisories(advisory_db)
        sync_advisories(s, advisory_db)
        third = rescan(s, now="2025-03-01T00:00:00Z")
        found = _findings(s)
    # only the source versions whose advisories changed were matched again: openssl 3.0.8-1
    # and 3.0.13-1~deb12u1, glibc 2.36-9+deb12u4, xz-utils 5.4.1-1
    assert third.checked == 4
    assert _open(found) == _single(advisory_db, invs)  # the same as full single scans
    resolved = {k for k, v in found.items() if v[5] is not None}
    assert resolved == {(D1, "libssl3", "CVE-2024-2511"), (D3, "libssl3", "CVE-2024-2511")}
    assert third.resolved == 2 and third.new == 1
    assert all(found[k][5] == "2025-03-01T00:00:00Z" for k in resolved)
    new = found[(D1, "xz-utils", "CVE-2099-0001")]
    assert new[3] == "2025-03-01T00:00:00Z" and new[4] == "2025-05-30"  # medium: +90 days
    raised = found[(D1, "libc6", "CVE-2010-4756")]
    assert raised[2] == "high" and raised[4] == "2025-01-31"  # first seen kept, due re-rated
    assert all(v[3] == "2025-01-01T00:00:00Z" for k, v in found.items() if k[2] != "CVE-2099-0001")
    days = {"critical": 30, "high": 30, "medium": 90, "low": 180}
    for _st, _fx, sev, fs, due, _res, kev in found.values():
        seen = dt.date.fromisoformat(fs[:10])
        base = (seen + dt.timedelta(days=days[sev])).isoformat() if sev in days else ""
        want = min(x for x in (base, kev) if x) if (base or kev) else ""
        assert due == want, (sev, due, want, kev)


def test_later_image_first_seen_and_re_recording(store_url: str, advisory_db: AdvisoryDB) -> None:
    invs = inventories()
    with open_store(store_url) as s:
        s.record_image(invs[0], now=REC)
        sync_advisories(s, advisory_db)
        rescan(s, now="2025-01-01T00:00:00Z")
        # another image with the same packages, recorded later: no source version is new to
        # the fleet, its findings are first seen when it was recorded
        twin = Inventory("acme/twin", D2, "amd64", invs[0].distro, invs[0].packages)
        s.record_image(twin, now="2025-02-10T00:00:00Z")
        summary = rescan(s, now="2025-02-11T00:00:00Z")
        assert summary.checked == 0 and summary.new == 0
        found = _findings(s)
        twins = {k[1:]: v for k, v in found.items() if k[0] == D2}
        assert twins and {k[1:] for k in found if k[0] == D1} == set(twins)
        assert {v[3] for v in twins.values()} == {"2025-02-10T00:00:00Z"}
        shadow = twins[("passwd", "CVE-2023-4641")]
        assert shadow[2] == "low" and shadow[4] == "2025-08-09"  # from the twin's first seen
        # recording the same image again (a second `scan --store`) changes nothing
        s.record_image(twin, now="2025-02-12T00:00:00Z")
        assert rescan(s, now="2025-02-13T00:00:00Z").checked == 0
        assert _findings(s) == found
        from sqlalchemy import text

        with s.engine.connect() as conn:
            uses = dict(
                conn.execute(text("SELECT source, uses FROM fleet_packages")).all()  # type: ignore[arg-type]
            )
        assert uses["openssl"] == 2 and uses["xz-utils"] == 2


def test_migration_from_findings_table_keeps_first_seen(
    store_url: str, advisory_db: AdvisoryDB
) -> None:
    """A v2 store (per-image findings table) migrates to matches; dates carry over, and the
    next rescan re-derives every match."""
    from sqlalchemy import create_engine, inspect, text

    from assay.store import migrations, schema
    from assay.store._store import _engine_url
    from assay.vuln.vkey import deb_sort_key

    engine = create_engine(_engine_url(store_url)[0])
    blob = "BYTEA" if engine.dialect.name == "postgresql" else "BLOB"
    with engine.begin() as conn:  # what steps 1-2 of an older assay left
        unchanged = [schema.advisories, schema.kev, schema.decisions, schema.bundles]
        schema.metadata.create_all(conn, tables=[*unchanged, schema.remediation])
        conn.execute(
            text(
                "CREATE TABLE images (id INTEGER PRIMARY KEY, digest VARCHAR(80) UNIQUE, "
                "name TEXT, release VARCHAR(40), architecture VARCHAR(40), "
                "first_recorded VARCHAR(32), last_recorded VARCHAR(32))"
            )
        )
        conn.execute(
            text(
                "CREATE TABLE inventory (image_id INTEGER, name TEXT, version TEXT, "
                "ecosystem VARCHAR(16), purl TEXT, source_name TEXT, source_version TEXT, "
                f"source_key {blob})"
            )
        )
        conn.execute(text("CREATE INDEX inventory_source ON inventory (source_name)"))
        conn.execute(
            text(
                "CREATE TABLE findings (image_id INTEGER, package TEXT, vuln VARCHAR(64), "
                "state VARCHAR(20), severity VARCHAR(16), fixed_in TEXT, reason TEXT, "
                "kev_due VARCHAR(32), first_seen VARCHAR(32), changed_at VARCHAR(32), "
                "due_date VARCHAR(32), resolved_at VARCHAR(32))"
            )
        )
        schema.schema_version.create(conn)
        for v in (1, 2):
            conn.execute(schema.schema_version.insert().values(version=v, applied_at=REC))
        conn.execute(
            text("INSERT INTO images VALUES (1, :d, 'acme/a', 'bookworm', 'amd64', :r, :r)"),
            {"d": D1, "r": "2024-05-01T00:00:00Z"},
        )
        conn.execute(
            text(
                "INSERT INTO inventory VALUES (1, 'libssl3', '3.0.8-1', 'deb', 'p', 'openssl', "
                "'3.0.8-1', :k)"
            ),
            {"k": deb_sort_key("3.0.8-1")},
        )
        conn.execute(
            text(
                "INSERT INTO findings VALUES (1, 'libssl3', 'CVE-2023-0464', 'affected', "
                "'high', '3.0.9-1', '', '', '2024-06-01T00:00:00Z', '2024-06-01T00:00:00Z', "
                "'2024-07-01', NULL)"
            )
        )
    engine.dispose()
    with open_store(store_url) as s:
        with s.engine.connect() as conn:
            versions = conn.execute(text("SELECT max(version) FROM assay_schema_version"))
            assert versions.scalar_one() == migrations.LATEST
            pending = conn.execute(text("SELECT source, uses, pending FROM fleet_packages"))
            assert pending.all() == [("openssl", 1, 1)]
            indexes = {i["name"] for i in inspect(conn).get_indexes("inventory")}
            assert "inventory_source" not in indexes
        assert [i.packages for i in s.images()] == [1]
        found = _findings(s)
        sync_advisories(s, advisory_db)
        summary = rescan(s, now="2025-01-01T00:00:00Z")
        after = _findings(s)
    assert summary.checked == 1
    assert after[(D1, "libssl3", "CVE-2023-0464")][2:4] == ("unknown", "2024-06-01T00:00:00Z")
    assert {k[2] for k, v in after.items() if v[3] == "2025-01-01T00:00:00Z"} == {
        "CVE-2024-0727",
        "CVE-2023-5678",
        "CVE-2024-2511",
    }
    assert found == {
        (D1, "libssl3", "CVE-2023-0464"): (
            "affected",
            "3.0.9-1",
            "high",
            "2024-06-01T00:00:00Z",
            "2024-07-01",
            None,
            "",
        )
    }


def test_fleet_report_counts(store_url: str, advisory_db: AdvisoryDB) -> None:
    with open_store(store_url) as s:
        for inv in inventories():
            s.record_image(inv, now=REC)
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


def test_fleet_report_equals_the_findings_view(store_url: str, advisory_db: AdvisoryDB) -> None:
    """The report sums per source version; the view has one row per finding with its due
    date: both must say the same, at every date (images recorded at different times, a KEV
    entry, a match first seen later)."""
    from sqlalchemy import text

    invs = inventories()
    with advisory_db.transaction() as conn:
        conn.execute(
            "INSERT INTO kev VALUES ('CVE-2023-0464', '2025-01-10', '2025-01-31', '', '', '', '')"
        )
    with open_store(store_url) as s:
        s.record_image(invs[0], now=REC)
        s.record_image(invs[1], now="2025-03-15T10:00:00Z")
        sync_advisories(s, advisory_db)
        rescan(s, now="2025-01-01T00:00:00Z")
        twin = Inventory("acme/twin", D3, "amd64", invs[0].distro, invs[0].packages[:3])
        s.record_image(twin, now="2025-06-20T00:00:00Z")
        _change_advisories(advisory_db)
        sync_advisories(s, advisory_db)
        rescan(s, now="2025-04-01T00:00:00Z")
        with s.engine.connect() as conn:
            view = conn.execute(
                text(
                    "SELECT i.digest, f.vuln, f.severity, f.kev_due, f.first_seen, f.due_date "
                    "FROM findings f JOIN images i ON i.id = f.image_id "
                    "WHERE f.resolved_at IS NULL AND f.state <> 'end-of-life'"
                )
            ).all()
        reports = {day: fleet_report(s, today=day) for day in _DAYS}
    assert any(kev for _, _, _, kev, _, _ in view)
    for day, report in reports.items():
        for row in report.images:
            mine = [r for r in view if r[0] == row.digest]
            sev = [r[2] for r in mine]
            dues = [r[5] for r in mine if r[5]]
            want = (
                len(mine),
                sev.count("critical"),
                sev.count("high"),
                sev.count("medium"),
                sev.count("low"),
                sum(1 for r in mine if r[3]),
                sum(1 for d in dues if d < day),
                min((r[4][:10] for r in mine), default=""),
                min(dues, default=""),
            )
            got = (
                row.open,
                row.critical,
                row.high,
                row.medium,
                row.low,
                row.kev,
                row.overdue,
                row.oldest_open,
                row.next_due,
            )
            assert got == want, (day, row.digest)
        by_vuln: dict[str, set[str]] = {}
        for r in view:
            by_vuln.setdefault(r[1], set()).add(r[0])
        expected = sorted(((-len(d), v) for v, d in by_vuln.items()))[: len(report.top)]
        assert [(v, n) for v, _, n, _ in report.top] == [(v, -n) for n, v in expected]
    assert {r.overdue > 0 for r in reports["2026-01-01"].images} == {True}


_DAYS = ("2025-01-02", "2025-02-01", "2025-04-15", "2025-07-01", "2026-01-01")


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
