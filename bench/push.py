"""Benchmark: ``assay push`` against ``skopeo copy`` pushing the same OCI layout to a local registry.

The bench starts a real docker-registry on 127.0.0.1 (the test fixture), writes a two-platform
image layout (``--layers`` random layers of ``--mib`` MiB per platform plus one shared layer),
then for each tool, ``--repeat`` times:

  * cold: push to a fresh repository (every blob uploaded);
  * warm: push the same image again to the same repository (nothing to upload).

Both tools run as child processes with the same arguments shape; times are wall clock, medians.
Prints the assay/skopeo ratio for each case (lower is better; < 1 means assay is faster).

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

from fixtures.registry import start_registry  # noqa: E402

from assay.oci import mediatypes as mt  # noqa: E402
from assay.oci.layout import OciLayout  # noqa: E402
from assay.oci.model import Platform  # noqa: E402


def build_layout(path: Path, layers: int, mib: int) -> None:
    lay = OciLayout.create(path)
    shared = lay.put_blob(os.urandom(mib << 20), mt.OCI_LAYER_TAR)
    children = []
    for arch in ("amd64", "arm64"):
        own = [lay.put_blob(os.urandom(mib << 20), mt.OCI_LAYER_TAR) for _ in range(layers)]
        all_layers = [shared, *own]
        cfg = lay.put_json(
            {
                "architecture": arch,
                "os": "linux",
                "rootfs": {"type": "layers", "diff_ids": [d.digest for d in all_layers]},
                "config": {},
            },
            mt.OCI_CONFIG,
        )
        man = lay.put_json(
            {
                "schemaVersion": 2,
                "mediaType": mt.OCI_MANIFEST,
                "config": cfg.to_dict(),
                "layers": [d.to_dict() for d in all_layers],
            },
            mt.OCI_MANIFEST,
        )
        children.append(man.with_platform(Platform("linux", arch)))
    index = lay.put_json(
        {
            "schemaVersion": 2,
            "mediaType": mt.OCI_INDEX,
            "manifests": [c.to_dict() for c in children],
        },
        mt.OCI_INDEX,
    )
    lay.tag("bench", index)


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
        layout = work / "layout"
        build_layout(layout, args.layers, args.mib)
        total = sum(p.stat().st_size for p in (layout / "blobs" / "sha256").iterdir())
        auth = work / "auth.json"
        auth.write_text('{"auths":{}}')
        env = {**os.environ, "REGISTRY_AUTH_FILE": str(auth)}
        with start_registry(work / "registry") as reg:
            assay = [sys.executable, "-c", "from assay.cli.main import run; run()"]

            def assay_cmd(repo: str) -> list[str]:
                return [*assay, "push", "-q", f"oci:{layout}:bench", f"{reg.host}/{repo}:v1"]

            def skopeo_cmd(repo: str) -> list[str]:
                return [
                    "skopeo", "copy", "--all", "--preserve-digests", "--dest-tls-verify=false",
                    f"oci:{layout}:bench", f"docker://{reg.host}/{repo}:v1",
                ]  # fmt: skip

            results: dict[tuple[str, str], list[float]] = {}
            for _ in range(args.repeat):
                for tool, make in (("assay", assay_cmd), ("skopeo", skopeo_cmd)):
                    repo = f"bench/{tool}-{uuid.uuid4().hex[:8]}"
                    results.setdefault((tool, "cold"), []).append(timed(make(repo), env))
                    results.setdefault((tool, "warm"), []).append(timed(make(repo), env))
        print(
            f"push of a 2-platform image, {total / (1 << 20):.0f} MiB of blobs, "
            f"median of {args.repeat} (wall seconds, child processes incl. start-up)"
        )
        print(f"{'case':<6} {'assay':>8} {'skopeo':>8} {'assay/skopeo':>13}")
        for case in ("cold", "warm"):
            a = statistics.median(results[("assay", case)])
            s = statistics.median(results[("skopeo", case)])
            print(f"{case:<6} {a:>8.3f} {s:>8.3f} {a / s:>13.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
