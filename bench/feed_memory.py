"""Benchmark: peak memory of ``assay db import`` on a realistic Debian tracker, beside a peer.

Writes a synthetic tracker in the published shape (~80 MB of JSON, under 10 MB gzipped; one
kernel-like package with 15,000 CVEs, see tests/fixtures/trackergen.py), then runs, each in its
own child process with its peak RSS read by ``os.wait4``:

* ``assay db import --debian-tracker`` (streamed, one CVE entry at a time);
* the peer: ``json.loads`` of the whole decompressed document (what the import did before, and
  what a small script does), which must hold every object at once.

Prints both peaks, their ratio and the 512 MB bound of issue 10.

    python bench/feed_memory.py [--sources 44000] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from fixtures.trackergen import write_tracker  # noqa: E402

LIMIT_MIB = 512
PEER = "import gzip, json, sys; json.loads(gzip.open(sys.argv[1]).read())"


def _measured(argv: list[str], cwd: Path) -> tuple[int, float, int]:
    """(exit code, seconds, peak RSS in MiB) of one child process."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    return os.waitstatus_to_exitcode(status), time.perf_counter() - start, usage.ru_maxrss >> 10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sources", type=int, default=44_000)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        work = Path(tmp)
        tracker = work / "tracker.json.gz"
        size = write_tracker(tracker, sources=args.sources)
        print(
            f"tracker: {size / 1e6:.0f} MB of JSON, {tracker.stat().st_size / 1e6:.1f} MB gzipped",
            flush=True,
        )
        code, secs, assay_mib = _measured(
            ["assay", "db", "import", "--db", "v.db", "--debian-tracker", str(tracker)], work
        )
        if code != 0:
            raise SystemExit(f"assay db import failed with exit {code}")
        print(f"assay db import (streamed): peak RSS {assay_mib} MiB, {secs:.1f} s", flush=True)
        code, secs, peer_mib = _measured([sys.executable, "-c", PEER, str(tracker)], work)
        print(f"peer json.loads of the whole document: peak RSS {peer_mib} MiB, {secs:.1f} s")
        print(
            f"ratio assay/peer: {assay_mib / peer_mib:.2f}; bound {LIMIT_MIB} MiB: "
            f"{'met' if assay_mib < LIMIT_MIB else 'EXCEEDED'}"
        )


if __name__ == "__main__":
    main()
