"""Benchmark: the bounded JSON loader (assay._json.load_json) against plain ``json.loads``.

Both decode the same documents in the same run: a wide, feed-like document (many small objects
and integers, like the Debian tracker JSON), a manifest-sized one, and one with long digit runs
in strings (the slow path that checks every integer's length). Medians of ``--runs`` runs;
the ratio is loader/peer (the price of the depth walk, duplicate-key and number checks).

    PYTHONPATH=src python bench/json_loader.py [--runs 5] [--size 200000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

from assay._json import load_json


def _median(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--size", type=int, default=200_000, help="objects in the wide document")
    args = parser.parse_args()
    wide = {
        f"pkg{i}": {
            f"CVE-2024-{i:05d}": {
                "description": "text " * 8,
                "releases": {"bookworm": {"status": "resolved", "fixed_version": "1.2-3", "n": i}},
            }
        }
        for i in range(args.size)
    }
    docs = {
        "feed-like": json.dumps(wide).encode(),
        "manifest": json.dumps(
            {"schemaVersion": 2, "layers": [{"digest": "sha256:" + "a" * 64, "size": 7}] * 20}
        ).encode(),
        "long-digit-strings": json.dumps(
            [{"id": "7" * 64, "n": i} for i in range(args.size // 4)]
        ).encode(),
    }
    print(f"{'document':20} {'bytes':>12} {'json.loads':>12} {'load_json':>12} {'ratio':>7}")
    for name, raw in docs.items():
        reps = 1 if len(raw) > 1 << 20 else 2000
        peer = _median(lambda r=raw, n=reps: [json.loads(r) for _ in range(n)], args.runs)
        ours = _median(
            lambda r=raw, n=reps: [load_json(r, what="b", max_size=1 << 30) for _ in range(n)],
            args.runs,
        )
        print(
            f"{name:20} {len(raw):12d} {peer / reps:12.6f} {ours / reps:12.6f} {ours / peer:7.2f}"
        )


if __name__ == "__main__":
    main()
