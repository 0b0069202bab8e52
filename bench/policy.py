"""Benchmark: policy decisions for N signed-and-attested images in a local registry.

Starts a real docker-registry on 127.0.0.1, pushes N small distinct images, signs each with
assay and attests an SPDX SBOM, SLSA provenance and a vulnerability scan (each written both as a
cosign ``.att`` layer and as a Sigstore bundle referrer), then decides every image with an
ImagePolicy that checks the signature, the non-root user, the SBOM, the builder id and the scan.

Measured in the same run:
* cold — a fresh Engine (no decision cache), one ``decide()`` per image, warm connections;
* batch — one ``decide()`` for all N images;
* cached — the same pinned (``@sha256:``) references again with the decision cache on;
* floor — the same GETs (manifest, config, .sig and .att manifests, referrers list, each
  referrer manifest and bundle, each payload) with a bare httpx client, one after another, no
  checks at all.

    python bench/policy.py [-n 100]

Goals: cold <= 1.5x the floor per image; cached <= 1 ms per image.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from assay.attest import keys, remote  # noqa: E402
from assay.oci.registry import RegistryClient, referrers_fallback_tag  # noqa: E402
from assay.policy import Engine, load_policies  # noqa: E402
from fixtures.ociimage import OCI_MANIFEST, push_tar_image, sha256  # noqa: E402
from fixtures.registry import start_registry  # noqa: E402

COLD_GOAL = 1.5
CACHED_GOAL_MS = 1.0


def push_image(client: RegistryClient, repo: str, i: int) -> str:
    config = {
        "created": "2026-11-01T00:00:00Z",
        "config": {"User": "65532", "Labels": {"n": str(i)}},
    }
    return push_tar_image(client, repo, f"v{i}", f"layer {i}\n".encode(), config)


SBOM = {
    "spdxVersion": "SPDX-2.3",
    "SPDXID": "SPDXRef-DOCUMENT",
    "name": "app",
    "packages": [
        {"SPDXID": f"SPDXRef-p{i}", "name": f"lib{i}", "versionInfo": "1"} for i in range(50)
    ],
}
PROVENANCE = {
    "buildDefinition": {"buildType": "https://assay.dev/build/v1", "externalParameters": {}},
    "runDetails": {"builder": {"id": "urn:assay:builder:ci:v1"}},
}


def scan_predicate() -> dict[str, object]:
    """A cosign vuln predicate holding assay's own scan JSON (one low finding)."""
    from assay.vuln.formats.json_format import result_to_json
    from assay.vuln.model import Finding, ScanResult, Severity, State, VulnId

    finding = Finding(
        id=VulnId("CVE-2023-1"),
        aliases=(),
        package="openssl",
        version="3.0.0-1",
        purl="pkg:deb/debian/openssl@3.0.0-1",
        ecosystem="debian",
        state=State.AFFECTED,
        severity=Severity.LOW,
        source="debian-tracker",
    )
    result = ScanResult(
        "app",
        "",
        "",
        "debian 12 (bookworm)",
        (finding,),
        db_built={"debian-tracker": "2026-11-01T00:00:00Z"},
    )
    return {
        "scanner": {"uri": "pkg:generic/assay", "result": result_to_json(result)},
        "metadata": {"scanFinishedOn": "2026-11-01T00:00:00Z"},
    }


def policy_text(pub: str) -> str:
    pem = "".join(f"        {line}\n" for line in pub.strip().splitlines())
    return (
        "apiVersion: assay.dev/v1alpha1\nkind: ImagePolicy\nmetadata: {name: bench}\n"
        "spec:\n  images: [{glob: '**'}]\n  authorities:\n  - name: release\n    key:\n"
        f"      data: |\n{pem}"
        "  require:\n    runAsNonRoot: true\n    sbom: true\n"
        "    provenance: {builderId: 'urn:assay:builder:ci:v1'}\n"
        "    vulnerabilities: {maxSeverity: medium, noKEV: true}\n"
    )


def bare_http_floor(base: str, repo: str, n: int) -> tuple[float, int]:
    """ms per image for the same GETs with a bare httpx client, one after another; and the
    number of GETs per image."""
    import httpx

    accept = {"Accept": OCI_MANIFEST}
    gets = 0
    with httpx.Client(base_url=base) as http:

        def get(path: str, **kw: object) -> httpx.Response:
            nonlocal gets
            gets += 1
            resp = http.get(path, follow_redirects=True, **kw)  # type: ignore[arg-type]
            assert resp.status_code == 200, (path, resp.status_code)
            return resp

        http.get(f"/v2/{repo}/manifests/v0", headers=accept)
        start = time.perf_counter()
        for i in range(n):
            raw = get(f"/v2/{repo}/manifests/v{i}", headers=accept).content
            digest = sha256(raw)
            get(f"/v2/{repo}/blobs/{json.loads(raw)['config']['digest']}")
            for suffix in ("sig", "att"):
                tag = digest.replace(":", "-") + "." + suffix
                doc = json.loads(get(f"/v2/{repo}/manifests/{tag}", headers=accept).content)
                for layer in doc["layers"]:
                    get(f"/v2/{repo}/blobs/{layer['digest']}")
            # this registry has no referrers API; clients read the fallback tag index
            # (OCI distribution spec 1.1), as assay's client does after its first probe
            index_accept = {"Accept": "application/vnd.oci.image.index.v1+json"}
            fallback = referrers_fallback_tag(digest)
            index = json.loads(
                get(f"/v2/{repo}/manifests/{fallback}", headers=index_accept).content
            )
            for desc in index.get("manifests", []):
                ref = json.loads(
                    get(f"/v2/{repo}/manifests/{desc['digest']}", headers=accept).content
                )
                get(f"/v2/{repo}/blobs/{ref['layers'][0]['digest']}")
        elapsed = time.perf_counter() - start
    return elapsed / n * 1000, gets // n


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=100)
    args = parser.parse_args()
    n = args.n
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        with start_registry(work / "registry") as reg:
            priv, pub = keys.generate_keypair(b"")
            signing = keys.load_private_key(priv, b"")
            repo = "bench/policy"
            digests = []
            with RegistryClient(reg.host) as client:
                t0 = time.perf_counter()
                for i in range(n):
                    digests.append(push_image(client, repo, i))
                    ref = remote.parse_image_ref(f"{reg.host}/{repo}:v{i}")
                    remote.sign_image(client, ref, signing)
                    for ptype, body in (
                        ("spdxjson", SBOM),
                        ("slsaprovenance1", PROVENANCE),
                        ("vuln", scan_predicate()),
                    ):
                        remote.attest_image(client, ref, signing, ptype, json.dumps(body).encode())
                setup = time.perf_counter() - t0
            (work / "policy.yaml").write_text(policy_text(pub.decode()))
            policies = load_policies([work / "policy.yaml"])
            refs = [f"{reg.host}/{repo}:v{i}" for i in range(n)]
            pinned = [f"{reg.host}/{repo}@{d}" for d in digests]
            load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
            print(f"pushed, signed and attested {n} images in {setup:.1f} s (load average {load})")

            with Engine(policies, timeout=60) as engine:
                assert engine.decide([refs[0]]).allowed  # warm connections
                start = time.perf_counter()
                for ref in refs:
                    decision = engine.decide([ref])
                    assert decision.allowed, decision.images[0].message
                cold = (time.perf_counter() - start) / n * 1000
            with Engine(policies, timeout=120) as engine:
                engine.decide([refs[0]])
                start = time.perf_counter()
                batch_decision = engine.decide(refs)
                batch = (time.perf_counter() - start) / n * 1000
                assert batch_decision.allowed
            with Engine(policies, timeout=60, cache_size=10 * n) as engine:
                for ref in pinned:
                    engine.decide([ref])
                start = time.perf_counter()
                for ref in pinned:
                    assert engine.decide([ref]).allowed
                cached = (time.perf_counter() - start) / n * 1000
            floor, gets = bare_http_floor(reg.url, repo, n)
            print(
                f"bare HTTP floor (same {gets} GETs per image, sequential, no checks): "
                f"{floor:.2f} ms per image"
            )
            print(
                f"cold (fresh engine, one decide() per image): {cold:.2f} ms per image; "
                f"cold/floor = {cold / floor:.2f}x (goal <= {COLD_GOAL}x: "
                f"{'met' if cold / floor <= COLD_GOAL else 'NOT met'})"
            )
            print(
                f"batch (one decide() for {n} images): {batch:.2f} ms per image; "
                f"batch/floor = {batch / floor:.2f}x"
            )
            print(
                f"cached (pinned refs, decision cache): {cached:.3f} ms per image "
                f"(goal <= {CACHED_GOAL_MS} ms: {'met' if cached <= CACHED_GOAL_MS else 'NOT met'})"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
