"""Benchmark: ``assay push`` against ``skopeo copy`` pushing an OCI layout to a local registry.

The bench starts a real docker-registry on 127.0.0.1 (the test fixture) and, ``--repeat`` times
and for each tool, writes a fresh two-platform image layout of random content (``--layers``
layers of ``--mib`` MiB per platform plus one shared layer), then:

  * cold: pushes it to a new repository (every blob uploaded — fresh content, so neither tool
    can mount or skip anything);
  * warm: pushes the same image again to the same repository (nothing to upload).

``assay push`` (the installed console script, see ``bench/_script.py``) and ``skopeo copy`` run
as child processes; the assay library (``push_image``)
is also timed in-process, without interpreter start-up. Medians of wall time; ratios against
skopeo (< 1 means assay is faster).

    python bench/push.py [--layers 3] [--mib 16] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from _script import console_script, script_env  # noqa: E402

from assay.oci import mediatypes as mt  # noqa: E402
from assay.oci.layout import OciLayout  # noqa: E402
from assay.oci.push import push_image  # noqa: E402
from assay.oci.reference import parse_image_ref  # noqa: E402
from assay.oci.registry import RegistryClient  # noqa: E402
from fixtures.ociimage import put_tar_index  # noqa: E402
from fixtures.registry import start_registry  # noqa: E402


def build_layout(path: Path, layers: int, mib: int) -> None:
    lay = OciLayout.create(path)
    shared = lay.put_blob(os.urandom(mib << 20), mt.OCI_LAYER_TAR)
    per_arch = {}
    for arch in ("amd64", "arm64"):
        own = [lay.put_blob(os.urandom(mib << 20), mt.OCI_LAYER_TAR) for _ in range(layers)]
        per_arch[arch] = [shared, *own]
    lay.tag("bench", put_tar_index(lay, per_arch))


def timed(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, env=env, timeout=600)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--layers", type=int, default=3)
    ap.add_argument("--mib", type=int, default=16)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    if not shutil.which("skopeo"):
        sys.exit("bench/push.py: skopeo is not installed (apt-get install skopeo)")
    work = Path(tempfile.mkdtemp(prefix="assay-bench-push-"))
    try:
        auth = work / "auth.json"
        auth.write_text('{"auths":{}}')
        env = {**os.environ, "REGISTRY_AUTH_FILE": str(auth)}
        assay_env = script_env(work / "pyc", env)
        assay = [console_script()]
        total = 0
        with start_registry(work / "registry") as reg:

            def assay_cmd(layout: Path, repo: str) -> list[str]:
                return [*assay, "push", "-q", f"oci:{layout}:bench", f"{reg.host}/{repo}:v1"]

            def skopeo_cmd(layout: Path, repo: str) -> list[str]:
                return [
                    "skopeo", "copy", "--all", "--preserve-digests", "--dest-tls-verify=false",
                    f"oci:{layout}:bench", f"docker://{reg.host}/{repo}:v1",
                ]  # fmt: skip

            results: dict[tuple[str, str], list[float]] = {}
            for i in range(args.repeat):
                # fresh random content per tool and round: nothing can be mounted or skipped
                for tool, make, tool_env in (
                    ("assay CLI", assay_cmd, assay_env),
                    ("skopeo", skopeo_cmd, env),
                ):
                    layout = work / f"layout-{i}-{tool.split()[0]}"
                    build_layout(layout, args.layers, args.mib)
                    total = sum(p.stat().st_size for p in (layout / "blobs/sha256").iterdir())
                    repo = f"bench/{tool.split()[0]}-{uuid.uuid4().hex[:8]}"
                    cold = timed(make(layout, repo), tool_env)
                    results.setdefault((tool, "cold"), []).append(cold)
                    warm = timed(make(layout, repo), tool_env)
                    results.setdefault((tool, "warm"), []).append(warm)
                    shutil.rmtree(layout)
                # the library alone (no interpreter start-up)
                layout = work / f"layout-{i}-lib"
                build_layout(layout, args.layers, args.mib)
                dest = parse_image_ref(f"{reg.host}/bench/lib-{uuid.uuid4().hex[:8]}:v1")
                with RegistryClient(reg.host) as client:
                    for case in ("cold", "warm"):
                        start = time.perf_counter()
                        push_image(layout, "bench", dest, client)
                        elapsed = time.perf_counter() - start
                        results.setdefault(("assay library", case), []).append(elapsed)
                shutil.rmtree(layout)
        print(
            f"push of a 2-platform image, {total / (1 << 20):.0f} MiB of blobs, to docker-registry "
            f"on 127.0.0.1; median of {args.repeat} (wall seconds)"
        )
        print(f"{'tool':<14} {'cold':>8} {'warm':>8} {'cold/skopeo':>12} {'warm/skopeo':>12}")
        sk = {c: statistics.median(results[("skopeo", c)]) for c in ("cold", "warm")}
        for tool in ("assay CLI", "assay library", "skopeo"):
            cold = statistics.median(results[(tool, "cold")])
            warm = statistics.median(results[(tool, "warm")])
            print(
                f"{tool:<14} {cold:>8.3f} {warm:>8.3f} {cold / sk['cold']:>12.2f} "
                f"{warm / sk['warm']:>12.2f}"
            )
        print("(CLI rows include process start-up; 'warm' re-pushes the same image: no uploads)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
