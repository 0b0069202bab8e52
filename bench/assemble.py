"""Benchmark: rootfs assembly of python3.11-minimal's package set against dpkg-deb extraction.

Both sides unpack the same .deb files in the same run:

* assay: ``assay.build.rootfs.assemble`` — read each .deb, decode data.tar, build the in-memory
  tree, generate passwd/status.d/CA bundle/ld.so.cache; "cold" without the unpack cache, "warm"
  with a filled unpack cache (decoded tars kept as zstd, so xz is not decoded again);
* peer:  ``dpkg-deb -x`` of each .deb into one directory — the extraction step that
  ``mmdebstrap --variant=extract`` performs (without its apt setup and download).

Also printed: the share of assay's cold time spent in xz/zstd decoding (decompression alone,
measured separately). Medians of ``--runs`` runs; ratios assay/peer.

The .deb files come from ``--debs DIR`` / ``ASSAY_TEST_DEB_DIR`` / the host's apt cache, else
``apt-get download`` (host apt sources) into a temporary directory.

    python bench/assemble.py [--debs DIR] [--runs 5]
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from assay.build.rootfs import assemble
from assay.debian.debfile import open_deb, read_data_member
from assay.debian.version import compare_versions

PACKAGES = [
    "gcc-12-base",
    "libgcc-s1",
    "libc6",
    "base-files",
    "netbase",
    "tzdata",
    "media-types",
    "zlib1g",
    "libexpat1",
    "libssl3",
    "openssl",
    "ca-certificates",
    "libpython3.11-minimal",
    "python3.11-minimal",
]


@dataclass(frozen=True)
class Pkg:
    name: str


def pick(directory: Path) -> list[Path] | None:
    out = []
    for name in PACKAGES:
        cands = [p for a in ("amd64", "all") for p in directory.glob(f"{name}_*_{a}.deb")]
        if not cands:
            return None

        def ver(p: Path) -> str:
            return p.name.split("_")[1].replace("%3a", ":")

        out.append(
            max(cands, key=functools.cmp_to_key(lambda a, b: compare_versions(ver(a), ver(b))))
        )
    return out


def find_debs(arg: str | None, tmp: Path) -> list[Path]:
    for d in (arg, os.environ.get("ASSAY_TEST_DEB_DIR"), "/var/cache/apt/archives"):
        if d and Path(d).is_dir() and (got := pick(Path(d))):
            return got
    subprocess.run(["apt-get", "download", *PACKAGES], cwd=tmp, check=True, capture_output=True)
    got = pick(tmp)
    if got is None:
        sys.exit("could not find or download the packages")
    return got


def median_time(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--debs")
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="assay-bench-") as tmp_s:
        tmp = Path(tmp_s)
        debs = find_debs(args.debs, tmp)
        pairs = [(Pkg(open_deb(p).package), p) for p in debs]
        cache = tmp / "unpack-cache"

        def cold() -> None:
            assemble(pairs, arch="amd64")

        def warm() -> None:
            assemble(pairs, arch="amd64", unpack_cache=cache)

        def decode_only() -> None:
            for _, p in pairs:
                read_data_member(p, package=p.name)

        def peer() -> None:
            out = Path(tempfile.mkdtemp(dir=tmp))
            for p in debs:
                subprocess.run(["dpkg-deb", "-x", str(p), str(out)], check=True)
            shutil.rmtree(out)

        warm()  # fill the unpack cache
        t_cold = median_time(cold, args.runs)
        t_warm = median_time(warm, args.runs)
        t_dec = median_time(decode_only, args.runs)
        t_peer = median_time(peer, args.runs)
        result = assemble(pairs, arch="amd64")
        size = sum(e.size for e in result.entries)
        print(f"packages: {len(debs)}  entries: {len(result.entries)}  bytes: {size / 1e6:.1f} MB")
        print(f"assay assemble, cold (xz decode):      {t_cold:.3f} s")
        print(f"assay assemble, warm (unpack cache):   {t_warm:.3f} s")
        print(f"  of cold: data.tar decoding alone     {t_dec:.3f} s ({t_dec / t_cold:.0%})")
        print(f"dpkg-deb -x of each .deb (peer):       {t_peer:.3f} s")
        print(f"ratio cold/peer: {t_cold / t_peer:.2f}   warm/peer: {t_warm / t_peer:.2f}")


if __name__ == "__main__":
    main()
