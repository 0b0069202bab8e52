"""Benchmark: assay build vs mmdebstrap --variant=extract for the same package set.

Prints, in one run:
  * assay's cold-cache (empty ASSAY_CACHE_DIR: indexes and .debs downloaded) and warm-cache
    build time for examples/python.yaml (amd64),
  * mmdebstrap --variant=extract --include=<the same locked packages> (to a tarball), cold and
    with the same .debs pre-seeded into its apt cache (warm),
  * the warm ratio assay / mmdebstrap (goal ≤ 0.5),
  * the compressed and uncompressed size of each example image (goals: static ≤ 1 MB,
    python ≤ 20 MB compressed).

The mirror is the host's apt sources (or ASSAY_DEBIAN_MIRROR) for both tools. Needs root for
mmdebstrap's default mode. Usage: python3 bench/build.py [--runs N]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _assay(*args: str, env: dict[str, str]) -> dict[str, object]:
    proc = subprocess.run(
        [sys.executable, "-m", "assay", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        sys.exit(f"assay {' '.join(args)} failed:\n{proc.stderr}")
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


def _timed(fn) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def _mirror_sources() -> list[str]:
    from assay.debian.sources import sources_from_env_or_host

    lines = []
    for s in sources_from_env_or_host():
        lines.append(f"deb {s.uri} {s.suite} {' '.join(s.components)}")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--runs", type=int, default=3, help="warm runs to take the best of")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="assay-bench-build-"))
    try:
        spec = work / "python.yaml"
        text = (
            (ROOT / "examples" / "python.yaml")
            .read_text()
            .replace("archs: [amd64, arm64]", "archs: [amd64]")
        )
        spec.write_text(text)
        cache = work / "cache"
        env = {"ASSAY_CACHE_DIR": str(cache)}
        cold, summary = _timed(
            lambda: _assay(
                "build", str(spec), "--dest", f"oci:{work}/cold:py", "-o", "json", "-q", env=env
            )
        )
        warm = min(
            _timed(
                lambda i=i: _assay(
                    "build",
                    str(spec),
                    "--dest",
                    f"oci:{work}/warm{i}:py",
                    "-o",
                    "json",
                    "-q",
                    env=env,
                )
            )[0]
            for i in range(args.runs)
        )

        def warm_without_layer_cache(i: int) -> float:
            shutil.rmtree(cache / "layers", ignore_errors=True)
            return _timed(
                lambda: _assay(
                    "build",
                    str(spec),
                    "--dest",
                    f"oci:{work}/nolc{i}:py",
                    "-o",
                    "json",
                    "-q",
                    env=env,
                )
            )[0]

        warm_nolc = min(warm_without_layer_cache(i) for i in range(args.runs))
        lock = json.loads((work / "python.lock.json").read_text())
        packages = [p["name"] for p in lock["packages"]["amd64"]]
        debs = [cache / "debs" / "sha256" / f"{p['sha256']}.deb" for p in lock["packages"]["amd64"]]

        mm = shutil.which("mmdebstrap")
        mm_cold = mm_warm = None
        if mm is None:
            print("mmdebstrap not installed (Debian package mmdebstrap): no peer measured")
        else:
            sources = "\n".join(_mirror_sources())
            suite = lock["sources"][0]["suite"]

            def run_mm(out: Path, seed: bool) -> None:
                cmd = [
                    mm,
                    "--quiet",
                    "--variant=extract",
                    "--architectures=amd64",
                    f"--include={','.join(packages)}",
                ]
                if seed:
                    seed_dir = work / "seed"
                    seed_dir.mkdir(exist_ok=True)
                    for d, p in zip(debs, lock["packages"]["amd64"], strict=True):
                        shutil.copyfile(d, seed_dir / Path(p["filename"]).name)
                    cmd.append(
                        f'--setup-hook=mkdir -p "$1/var/cache/apt/archives" && '
                        f'cp {seed_dir}/*.deb "$1/var/cache/apt/archives/"'
                    )
                cmd += [suite, str(out), "-"]
                subprocess.run(cmd, input=sources, text=True, check=True, capture_output=True)

            mm_cold, _ = _timed(lambda: run_mm(work / "mm-cold.tar", seed=False))
            mm_warm = min(
                _timed(lambda i=i: run_mm(work / f"mm-warm{i}.tar", seed=True))[0]
                for i in range(args.runs)
            )

        print(f"python.yaml (amd64, {len(packages)} packages)")
        print(f"  assay build        cold {cold:7.2f} s   warm {warm:7.2f} s")
        print(f"  assay build, warm but compressed-layer cache cleared: {warm_nolc:7.2f} s")
        if mm_cold is not None and mm_warm is not None:
            print(f"  mmdebstrap extract cold {mm_cold:7.2f} s   warm {mm_warm:7.2f} s")
            print(
                f"  ratio assay/mmdebstrap  cold {cold / mm_cold:.2f}×   warm {warm / mm_warm:.2f}×"
                f"   warm without layer cache {warm_nolc / mm_warm:.2f}×   (goal: warm ≤ 0.50×)"
            )
        print("image sizes (amd64):")
        for name in ("static", "base", "python", "python-dev"):
            s = work / f"{name}.yaml"
            s.write_text(
                (ROOT / "examples" / f"{name}.yaml")
                .read_text()
                .replace("archs: [amd64, arm64]", "archs: [amd64]")
            )
            out = _assay(
                "build", str(s), "--dest", f"oci:{work}/{name}:x", "-o", "json", "-q", env=env
            )
            img = out["images"][0]  # type: ignore[index]
            goal = {"static": 1_000_000, "python": 20_000_000}.get(name)
            verdict = ""
            if goal is not None:
                met = "met" if img["compressedSize"] <= goal else "NOT met"
                verdict = f"  (goal ≤ {goal / 1e6:.0f} MB compressed: {met})"
            print(
                f"  {name:11} compressed {img['compressedSize'] / 1e6:6.2f} MB   "
                f"uncompressed {img['uncompressedSize'] / 1e6:6.2f} MB   "
                f"{img['packages']} packages{verdict}"
            )
        del summary
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
