"""Fleet benchmark for the evidence store: record N images x 500 packages, then time the fleet
rescan (first, steady state, after a small advisory change) and the fleet report, on SQLite
and on PostgreSQL, each beside its goal.

The advisory data is the same synthetic Debian tracker ``bench/scan.py`` generates (32,000
source packages, two CVEs each, three releases), imported through ``assay db import``'s code
path and copied into the store with ``sync_advisories``. Images draw 500 of those sources; one
package in ten carries one of two other versions of its source (an older or a newer security
update), so the fleet holds ~90,000 distinct source versions, not 32,000.

Timed, per back end:
* record: ``Store.record_images`` of every image (no goal);
* first rescan: every source version is new (no goal beyond the steady one);
* steady-state rescan: ``sync_advisories`` with an unchanged advisory DB, then ``rescan``
  (goal: rescan of 10,000 images <= 10 s on PostgreSQL, issue 14);
* after a small change: the tracker re-imported with 100 bookworm entries changed (50 status
  flips, 50 urgency changes), then ``sync_advisories`` and ``rescan`` (same goal, for both);
* fleet report: ``fleet_report`` (goal <= 30 s on PostgreSQL).

Usage: python bench/fleet.py [--images 10000] [--backends sqlite,postgresql]
       [--postgres postgresql://assay:assay@127.0.0.1:5432/assay_test] [--changes 100]
The PostgreSQL database is emptied first: point it at a scratch database.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scan import make_inventory, make_tracker

from assay.sbom.model import Inventory
from assay.store import Store, fleet_report, open_store, rescan, sync_advisories
from assay.vuln.db import AdvisoryDB
from assay.vuln.feeds import FEEDS

RESCAN_GOAL = 10.0
REPORT_GOAL = 30.0


def _reset_postgres(url: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS public CASCADE")
        conn.execute("CREATE SCHEMA public")


def fleet(installed: dict[str, str], n_images: int) -> Iterator[Inventory]:
    rng = random.Random(11)
    for n in range(n_images):
        inv = make_inventory(f"fleet/{n}", installed, rng)
        pkgs = []
        for p in inv.packages:
            if rng.random() < 0.1:
                base = p.source_version
                other = rng.choice((base + "+deb12u1", base.rsplit("-", 1)[0] + "-0"))
                p = replace(p, version=other, source_version=other)
            pkgs.append(p)
        yield replace(inv, packages=tuple(pkgs))


def change_tracker(path: Path, n: int, seed: int = 5) -> int:
    """Change ``n`` bookworm entries of the tracker file: half flip status, half urgency."""
    doc = json.loads(path.read_text())
    rng = random.Random(seed)
    entries = [(src, cve) for src in sorted(doc) for cve in sorted(doc[src]) if rng.random() < 0.01]
    for i, (src, cve) in enumerate(rng.sample(entries, n)):
        r = doc[src][cve]["releases"]["bookworm"]
        if i % 2:
            r["urgency"] = "high" if r.get("urgency") != "high" else "low"
        elif r["status"] == "resolved":
            r.update(status="open", urgency="medium")
            r.pop("fixed_version", None)
        else:
            r.update(status="resolved", fixed_version="0")
    path.write_text(json.dumps(doc))
    return n


def _line(label: str, took: float, detail: str, goal: float | None) -> None:
    mark = ""
    if goal is not None:
        mark = f"  [goal <= {goal:g} s: {'met' if took <= goal else 'NOT MET'}, {took / goal:.2f}x]"
    print(f"  {label:<38} {took:8.2f} s  {detail}{mark}")


def run_backend(
    url: str, db: AdvisoryDB, tracker: Path, installed: dict[str, str], n_images: int, changes: int
) -> dict[str, object]:
    with open_store(url) as store:
        t = time.perf_counter()
        rows = sync_advisories(store, db)
        _line("sync advisories (first)", time.perf_counter() - t, f"{rows} rows", None)
        t = time.perf_counter()
        store.record_images(fleet(installed, n_images), now="2026-01-01T00:00:00Z")
        t_record = time.perf_counter() - t
        versions = _scalar(store, "SELECT count(*) FROM fleet_packages")
        _line(
            "record",
            t_record,
            f"{n_images} images x 500 packages ({versions} distinct source versions)",
            None,
        )
        t = time.perf_counter()
        first = rescan(store, now="2026-01-01T00:00:00Z")
        t_first = time.perf_counter() - t
        _line(
            "first rescan (every version new)",
            t_first,
            f"{first.checked} versions matched, {first.open} open findings, {first.new} new",
            None,
        )
        t = time.perf_counter()
        sync_advisories(store, db)
        t_sync_same = time.perf_counter() - t
        t = time.perf_counter()
        steady = rescan(store, now="2026-01-02T00:00:00Z")
        t_steady = time.perf_counter() - t
        _line("sync advisories (unchanged)", t_sync_same, "", None)
        _line(
            "steady-state rescan",
            t_steady,
            f"{steady.checked} versions matched, {steady.open} open, {steady.new} new, "
            f"{steady.resolved} resolved",
            RESCAN_GOAL,
        )
        change_tracker(tracker, changes)
        FEEDS["debian-tracker"].import_path(db, tracker)
        t = time.perf_counter()
        sync_advisories(store, db)
        t_sync_change = time.perf_counter() - t
        t = time.perf_counter()
        changed = rescan(store, now="2026-01-03T00:00:00Z")
        t_changed = time.perf_counter() - t
        _line(f"sync advisories ({changes} changed)", t_sync_change, "", None)
        _line(
            f"rescan after {changes} advisories changed",
            t_changed,
            f"{changed.checked} versions matched, {changed.open} open, {changed.new} new, "
            f"{changed.resolved} resolved",
            RESCAN_GOAL,
        )
        _line(
            "  sync + rescan after the change",
            t_sync_change + t_changed,
            "",
            RESCAN_GOAL,
        )
        t = time.perf_counter()
        report = fleet_report(store, today="2026-06-01")
        t_report = time.perf_counter() - t
        totals = report.totals
        _line(
            "fleet report",
            t_report,
            f"{totals['images']} images, {totals['open']} open, {totals['overdue']} overdue",
            REPORT_GOAL,
        )
        return {
            "backend": store.dialect,
            "images": n_images,
            "source_versions": versions,
            "record_s": round(t_record, 2),
            "rescan_first_s": round(t_first, 2),
            "rescan_steady_s": round(t_steady, 2),
            "sync_changed_s": round(t_sync_change, 2),
            "rescan_changed_s": round(t_changed, 2),
            "report_s": round(t_report, 2),
        }


def _scalar(store: Store, sql: str) -> int:
    from sqlalchemy import text

    with store.engine.connect() as conn:
        return int(conn.execute(text(sql)).scalar_one())


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--images", type=int, default=10000)
    ap.add_argument("--sources", type=int, default=32000)
    ap.add_argument("--changes", type=int, default=100)
    ap.add_argument("--backends", default="sqlite,postgresql")
    ap.add_argument(
        "--postgres",
        default=os.environ.get(
            "ASSAY_TEST_POSTGRES", "postgresql://assay:assay@127.0.0.1:5432/assay_test"
        ),
    )
    args = ap.parse_args()
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    work = Path(tempfile.mkdtemp(prefix="assay-bench-fleet-"))
    doc, installed = make_tracker(args.sources, 2, "realistic")
    pristine = json.dumps(doc)
    del doc
    tracker = work / "tracker.json"
    results = []
    for backend in args.backends.split(","):
        print(f"{backend}:")
        tracker.write_text(pristine)
        with AdvisoryDB(work / f"vuln-{backend}.db") as db:
            FEEDS["debian-tracker"].import_path(db, tracker)
            if backend == "sqlite":
                url = f"sqlite:///{work / 'store.db'}"
            else:
                _reset_postgres(args.postgres)
                url = args.postgres
            results.append(run_backend(url, db, tracker, installed, args.images, args.changes))
    for r in results:
        print("RESULT " + json.dumps(r))
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"workdir: {work}")


if __name__ == "__main__":
    main()
