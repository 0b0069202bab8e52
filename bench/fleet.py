"""Fleet benchmark for the evidence store: record N images x 500 packages, then time the fleet
rescan (first and steady state) and the fleet report, on SQLite and on PostgreSQL.

The advisory data is the same synthetic Debian tracker ``bench/scan.py`` generates (32,000
source packages, two CVEs each, three releases), imported through ``assay db import``'s code
path and copied into the store with ``sync_advisories``. Goals (issue 14): rescan of 10,000
images <= 10 s and fleet report <= 30 s on PostgreSQL.

Usage: python bench/fleet.py [--images 10000] [--backends sqlite,postgresql]
       [--postgres postgresql://assay:assay@127.0.0.1:5432/assay_test]
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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scan import make_inventory, make_tracker

from assay.store import fleet_report, open_store, rescan, sync_advisories
from assay.vuln.db import AdvisoryDB
from assay.vuln.feeds import FEEDS


def _reset_postgres(url: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS public CASCADE")
        conn.execute("CREATE SCHEMA public")


def run_backend(url: str, db: AdvisoryDB, installed: dict[str, str], n_images: int) -> None:
    with open_store(url) as store:
        t = time.perf_counter()
        rows = sync_advisories(store, db)
        print(f"  sync advisories: {rows} rows in {time.perf_counter() - t:.1f} s")
        rng = random.Random(11)
        t = time.perf_counter()
        store.record_images(make_inventory(f"fleet/{n}", installed, rng) for n in range(n_images))
        print(f"  recorded {n_images} images x 500 packages in {time.perf_counter() - t:.1f} s")
        t = time.perf_counter()
        first = rescan(store, now="2026-01-01T00:00:00Z")
        t_first = time.perf_counter() - t
        print(
            f"  fleet rescan (first: every finding new): {t_first:.2f} s, {first.open} open, "
            f"{first.new} new"
        )
        t = time.perf_counter()
        steady = rescan(store, now="2026-01-02T00:00:00Z")
        t_steady = time.perf_counter() - t
        print(
            f"  fleet rescan (steady state): {t_steady:.2f} s, {steady.open} open, "
            f"{steady.new} new, {steady.resolved} resolved  [goal <= 10 s]"
        )
        t = time.perf_counter()
        report = fleet_report(store, today="2026-06-01")
        t_report = time.perf_counter() - t
        totals = report.totals
        print(
            f"  fleet report: {t_report:.2f} s, {totals['images']} images, {totals['open']} "
            f"open, {totals['overdue']} overdue  [goal <= 30 s]"
        )
        print(
            "  RESULT "
            + json.dumps(
                {
                    "backend": store.dialect,
                    "images": n_images,
                    "rescan_first_s": round(t_first, 2),
                    "rescan_steady_s": round(t_steady, 2),
                    "report_s": round(t_report, 2),
                }
            )
        )


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--images", type=int, default=10000)
    ap.add_argument("--sources", type=int, default=32000)
    ap.add_argument("--backends", default="sqlite,postgresql")
    ap.add_argument(
        "--postgres",
        default=os.environ.get(
            "ASSAY_TEST_POSTGRES", "postgresql://assay:assay@127.0.0.1:5432/assay_test"
        ),
    )
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="assay-bench-fleet-"))
    doc, installed = make_tracker(args.sources, 2, "realistic")
    tracker = work / "tracker.json"
    tracker.write_text(json.dumps(doc))
    del doc
    with AdvisoryDB(work / "vuln.db") as db:
        FEEDS["debian-tracker"].import_path(db, tracker)
        for backend in args.backends.split(","):
            print(f"{backend}:")
            if backend == "sqlite":
                url = f"sqlite:///{work / 'store.db'}"
            else:
                _reset_postgres(args.postgres)
                url = args.postgres
            run_backend(url, db, installed, args.images)
    print(f"workdir: {work}")


if __name__ == "__main__":
    main()
