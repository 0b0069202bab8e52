"""Benchmark: verify cosign signatures of N signed images in a local registry.

Starts a real docker-registry on 127.0.0.1, pushes N small distinct images, signs each with
assay, then times ``assay.attest.remote.verify_image`` over all of them with one warm
connection. As a peer in the same run, skopeo (if installed) copies a sample of the images
under a ``sigstoreSigned`` policy, which makes it verify the same signatures.

    python bench/verify.py [-n 100] [--peer-sample 10]

Goal: ≤ 20 ms per image with a warm connection.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from assay.attest import keys, remote  # noqa: E402
from assay.oci.registry import RegistryClient  # noqa: E402
from fixtures.ociimage import OCI_MANIFEST, push_tar_image  # noqa: E402
from fixtures.registry import skopeo_sigstore_args, start_registry  # noqa: E402

GOAL_MS = 20.0


def push_image(client: RegistryClient, repo: str, i: int) -> None:
    push_tar_image(
        client, repo, f"v{i}", f"layer {i}\n".encode(), {"config": {"Labels": {"n": str(i)}}}
    )


def skopeo_peer(host: str, repo: str, n: int, pub: Path, work: Path) -> float | None:
    skopeo = shutil.which("skopeo")
    if not skopeo:
        return None
    sigstore = skopeo_sigstore_args(host, pub, work)
    start = time.perf_counter()
    for i in range(n):
        dest = work / f"copy{i}"
        subprocess.run(
            [
                skopeo,
                "copy",
                "--quiet",
                *sigstore,
                "--src-tls-verify=false",
                f"docker://{host}/{repo}:v{i}",
                f"dir:{dest}",
            ],
            check=True,
            capture_output=True,
        )
    return (time.perf_counter() - start) / n * 1000


def bare_http_floor(base: str, repo: str, n: int) -> float:
    """ms per image for the same three GETs (image manifest, .sig manifest, payload blob) with a
    bare httpx client: no auth layer, no verification. The floor any verifier pays here."""
    import httpx

    accept = {"Accept": OCI_MANIFEST}
    with httpx.Client(base_url=base) as http:
        http.get(f"/v2/{repo}/manifests/v0", headers=accept)
        start = time.perf_counter()
        for i in range(n):
            m = http.get(f"/v2/{repo}/manifests/v{i}", headers=accept).content
            tag = "sha256-" + hashlib.sha256(m).hexdigest() + ".sig"
            sig = json.loads(http.get(f"/v2/{repo}/manifests/{tag}", headers=accept).content)
            blob = http.get(f"/v2/{repo}/blobs/{sig['layers'][0]['digest']}", follow_redirects=True)
            assert blob.status_code == 200
        return (time.perf_counter() - start) / n * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=100)
    parser.add_argument("--peer-sample", type=int, default=10)
    args = parser.parse_args()
    n = args.n
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        with start_registry(work / "registry") as reg:
            priv, pub = keys.generate_keypair(b"")
            signing = keys.load_private_key(priv, b"")
            public = keys.load_public_key(pub)
            (work / "cosign.pub").write_bytes(pub)
            repo = "bench/verify"
            with RegistryClient(reg.host) as client:
                t0 = time.perf_counter()
                for i in range(n):
                    push_image(client, repo, i)
                    remote.sign_image(
                        client, remote.parse_image_ref(f"{reg.host}/{repo}:v{i}"), signing
                    )
                setup = time.perf_counter() - t0
                refs = [remote.parse_image_ref(f"{reg.host}/{repo}:v{i}") for i in range(n)]
                remote.verify_image(client, refs[0], public)  # warm the connection
                start = time.perf_counter()
                cpu_start = time.process_time()
                for ref in refs:
                    _, sigs = remote.verify_image(client, ref, public)
                    assert sigs, ref
                total = time.perf_counter() - start
                cpu = time.process_time() - cpu_start
            per_image = total / n * 1000
            load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
            print(f"pushed and signed {n} images in {setup:.2f} s (load average {load})")
            print(
                f"assay verify: {n} images in {total * 1000:.1f} ms total, "
                f"{per_image:.2f} ms per image (goal <= {GOAL_MS:.0f} ms: "
                f"{'met' if per_image <= GOAL_MS else 'NOT met'}); "
                f"assay's own CPU time {cpu / n * 1000:.2f} ms per image"
            )
            floor = bare_http_floor(reg.url, repo, n)
            print(
                f"bare HTTP floor (same 3 GETs, no checks): {floor:.2f} ms per image; "
                f"assay/floor = {per_image / floor:.2f}x"
            )
            sample = min(args.peer_sample, n)
            try:
                peer = skopeo_peer(reg.host, repo, sample, work / "cosign.pub", work)
            except subprocess.CalledProcessError as exc:
                reason = exc.stderr.decode(errors="replace").strip().splitlines()[-1:]
                print(f"skopeo peer could not verify: {' '.join(reason)}")
                peer = None
            if peer is None:
                print("peer: skopeo not available or failed; no ratio")
            else:
                print(
                    f"skopeo copy with sigstoreSigned policy (verifies the same signatures, "
                    f"also copies the image, one process per image): {peer:.1f} ms per image "
                    f"over {sample} images"
                )
                print(f"ratio skopeo/assay per image: {peer / per_image:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
