"""Benchmark: start-up cost of ``assay`` commands beside ``python3 -c pass`` in the same run.

Runs each command N times through the installed console script (this tree's ``src`` first on
PYTHONPATH) and prints, per command, the median wall time and the median CPU time (user+sys of
the child, which a busy machine distorts less than wall time), and both minus the same figures
for ``python3 -c pass``: what assay itself adds. ``verify`` against a closed port on 127.0.0.1
measures the start of a real verification up to its first connection attempt.

    python bench/startup.py [-n 15]

Goal: ``assay --help`` and the start of ``assay verify`` within 0.12 s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOAL_S = 0.12


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again when the socket is


def _once(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, _, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = 0  # reaped by wait4
    return wall, usage.ru_utime + usage.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=15, help="runs per command (median is shown)")
    args = parser.parse_args()

    exe = shutil.which("assay")
    if exe is None:
        sys.exit("the assay console script is not installed (pip install -e .)")
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    with tempfile.TemporaryDirectory() as tmp:
        pub = Path(tmp) / "cosign.pub"
        pub.write_text("not a key; verify fails after its first connection attempt\n")
        port = _closed_port()
        cases: list[tuple[str, list[str]]] = [
            ("python3 -c pass", [sys.executable, "-c", "pass"]),
            ("python3 -c 'import typer'", [sys.executable, "-c", "import typer"]),
            ("assay --version", [exe, "--version"]),
            ("assay --help", [exe, "--help"]),
            ("assay verify --help", [exe, "verify", "--help"]),
            (
                "assay verify (closed port)",
                [exe, "verify", f"127.0.0.1:{port}/x:1", "--key", str(pub)],
            ),
            ("assay scan --help", [exe, "scan", "--help"]),
            ("assay sbom --help", [exe, "sbom", "--help"]),
            ("assay build --help", [exe, "build", "--help"]),
            ("assay push --help", [exe, "push", "--help"]),
        ]
        for _, argv in cases:  # warm the page cache and .pyc files
            _once(argv, env)
        walls: dict[str, list[float]] = {name: [] for name, _ in cases}
        cpus: dict[str, list[float]] = {name: [] for name, _ in cases}
        for _ in range(args.n):  # interleaved, so load changes hit every command alike
            for name, argv in cases:
                wall, cpu = _once(argv, env)
                walls[name].append(wall)
                cpus[name].append(cpu)
    load = os.getloadavg()[0]
    base_wall = statistics.median(walls["python3 -c pass"])
    base_cpu = statistics.median(cpus["python3 -c pass"])
    cpus_n = os.cpu_count()
    print(f"start-up, median of {args.n} runs each (load average {load:.1f}, {cpus_n} CPUs)")
    print(f"{'command':32} {'wall s':>8} {'cpu s':>8} {'wall-py':>8} {'cpu-py':>8}")
    for name, _ in cases:
        wall, cpu = statistics.median(walls[name]), statistics.median(cpus[name])
        print(f"{name:32} {wall:8.3f} {cpu:8.3f} {wall - base_wall:8.3f} {cpu - base_cpu:8.3f}")
    for name in ("assay --help", "assay verify (closed port)"):
        cpu = statistics.median(cpus[name])
        verdict = "within" if cpu <= GOAL_S else "over"
        print(f"goal: {name} cpu {cpu:.3f} s is {verdict} {GOAL_S} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
