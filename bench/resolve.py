"""Benchmark: spec → lock for examples/python.yaml (warm index cache) against apt-get -s.

Both sides answer the same question over the same repositories (the spec's sources: the host's
apt sources or ASSAY_DEBIAN_MIRROR) for every architecture the spec lists:

* assay: ``assay lock SPEC`` as a process (the installed console script, ``bench/_script.py``:
  interpreter start, InRelease revalidation and gpgv verification, reading the cached Packages
  indexes, resolving, writing the lock), and the same work in-process (library only, no
  interpreter start);
* apt:   ``apt-get install --no-install-recommends -s PACKAGES`` in a throw-away configuration
  per architecture (empty dpkg status, warm ``pkgcache.bin``), one process per architecture.

Each side is warmed up once, then timed ``--runs`` times; medians are printed with the ratio
assay/apt (goal: ≤ 1.0). Needs the network for the first (warm-up) run only.

    python bench/resolve.py [--spec examples/python.yaml] [--runs 5]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _script import console_script, script_env

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def _aptsim():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(
        "aptsim", ROOT / "tests" / "assets" / "resolver" / "aptsim.py"
    )
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules["aptsim"] = mod
    spec.loader.exec_module(mod)
    return mod


def _cpu() -> float:
    """CPU seconds of this process (all threads) plus its finished children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def median_time(fn, runs: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """Median wall-clock and CPU seconds of ``runs`` calls (CPU is steadier on a busy machine)."""
    walls, cpus = [], []
    for _ in range(runs):
        c0, t0 = _cpu(), time.perf_counter()
        fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(_cpu() - c0)
    return statistics.median(walls), statistics.median(cpus)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--spec", type=Path, default=ROOT / "examples" / "python.yaml")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--work", type=Path, default=None, help="keep apt roots here (default: tmp)")
    args = ap.parse_args()

    from assay.build.lock import lock_path_for, lock_spec, write_lock
    from assay.build.spec import ImageSpec
    from assay.debian.repo import RepoClient

    aptsim = _aptsim()
    work = args.work or Path(tempfile.mkdtemp(prefix="assay-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    # Work on a copy of the spec so the benchmark never rewrites the shipped lock.
    spec_copy = work / args.spec.name
    spec_copy.write_bytes(args.spec.read_bytes())
    spec = ImageSpec.from_file(spec_copy)
    sources = spec.repo_sources()
    packages = spec.package_requests()
    print(f"spec: {args.spec} ({len(packages)} requested, archs {', '.join(spec.archs)})")

    # apt: one throw-away root per architecture, updated once, warmed once.
    apt_roots = []
    for arch in spec.archs:
        root = aptsim.AptRoot(
            work / f"apt-{arch}",
            [aptsim.AptSource(s.uri, s.suite, s.components, s.signed_by) for s in sources],
            arch,
        )
        if not root.packages_files():
            root.update()
        root.simulate(packages)
        apt_roots.append(root)

    def run_apt() -> None:
        for root in apt_roots:
            root.simulate(packages)

    # assay: warm the index cache once (downloads on a cold cache), then time.
    def run_lib() -> None:
        with RepoClient(keyrings=spec.keyring_paths(spec_copy.parent)) as client:
            lock = lock_spec(spec, spec_copy, client)
        write_lock(lock_path_for(spec_copy), lock)

    env = script_env(work / "pyc", dict(os.environ, ASSAY_QUIET="1"))
    exe = console_script()

    def run_cli() -> None:
        subprocess.run([exe, "lock", str(spec_copy)], check=True, capture_output=True, env=env)

    run_lib()
    apt_t, apt_c = median_time(run_apt, args.runs)
    lib_t, lib_c = median_time(run_lib, args.runs)
    cli_t, cli_c = median_time(run_cli, args.runs)
    start_t, start_c = median_time(
        lambda: subprocess.run([exe, "--version"], check=True, capture_output=True, env=env),
        args.runs,
    )
    print(f"{'':34} {'wall':>7} {'ratio':>6}   {'cpu':>7} {'ratio':>6}")
    rows = [
        (f"apt-get install -s ({len(apt_roots)} archs)", apt_t, apt_c),
        ("assay lock (process)", cli_t, cli_c),
        ("assay lock (in-process library)", lib_t, lib_c),
        ("  console script start (--version)", start_t, start_c),
    ]
    for label, wall, cpu in rows:
        print(f"{label:34} {wall:6.2f}s {wall / apt_t:5.2f}x   {cpu:6.2f}s {cpu / apt_c:5.2f}x")
    print("goal: assay lock / apt-get -s <= 1.0 (median of", args.runs, "runs, warm caches)")


if __name__ == "__main__":
    main()
