"""Benchmark: the admission webhook over HTTPS on loopback, beside a bare endpoint.

Starts a real docker-registry on 127.0.0.1, pushes and signs small images with assay, starts
``assay admission serve`` (TLS, uvicorn + starlette) with a key policy, and a bare HTTPS endpoint
on the same server stack (uvicorn + starlette + TLS, same worker count) that reads the body and
returns a fixed AdmissionReview response. wrk (keep-alive connections) posts the captured
kube-apiserver v1.36.2 AdmissionReview body (04-pod-create-digest-validate.json) re-targeted at
the images, paced to a fixed rate by Debian's ``wrk`` (a Lua script with a per-connection delay):

* bare:     the fixed-response endpoint at ``--rate`` requests/s;
* cached:   one signed digest, decided once before timing, at ``--rate`` requests/s;
* uncached: a fresh digest per request (each a new signed image: registry round trips and
  signature verification every time), at ``--uncached-rate`` requests/s.

Goals: cached p99 ≤ 10 ms at 300 rps and ≤ 2x the bare endpoint's p99; uncached p99 ≤ 100 ms.

    python bench/admission.py [--rate 300] [--seconds 10] [--uncached 200] [--uncached-rate 20]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import httpx  # noqa: E402

from assay.admission.certs import write_certs  # noqa: E402
from assay.oci.registry import RegistryClient  # noqa: E402
from fixtures.assets import INTEROP  # noqa: E402
from fixtures.registry import free_port, start_registry  # noqa: E402
from integration.policy_helpers import cip, key_authority, new_key, push_image, sign  # noqa: E402

BODY = INTEROP / "kube-apiserver-1.36.2" / "04-pod-create-digest-validate.json"
CAPTURED_IMAGE = (
    "registry.example/acme/app@"
    "sha256:41b008cbd15321447ed0d5b070dd43ff086f40848f0b3907f6e904489b3a9011"
)


def _bare_server(port: int, cert: str, key: str, workers: int) -> None:
    """The comparison endpoint: same stack, fixed answer (run in a subprocess)."""
    import uvicorn

    os.environ["ASSAY_BENCH_BARE"] = "1"
    uvicorn.run(
        "admission:bare_app",
        factory=True,
        app_dir=str(Path(__file__).parent),
        host="127.0.0.1",
        port=port,
        workers=workers,
        ssl_certfile=cert,
        ssl_keyfile=key,
        log_level="warning",
        access_log=False,
    )


def bare_app() -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    answer = {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": {"uid": "fixed", "allowed": True},
    }

    async def validate(request: Request) -> Response:
        await request.body()
        return JSONResponse(answer)

    return Starlette(routes=[Route("/validate", validate, methods=["POST"])])


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + env.get("PYTHONPATH", "")
    return env


@contextlib.contextmanager
def _process(args: list[str], url: str, ca: Path, probe: str) -> Iterator[None]:
    proc = subprocess.Popen(args, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ctx = ssl.create_default_context(cafile=str(ca))
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                r = httpx.request(
                    "GET" if probe == "/readyz" else "POST", url + probe, verify=ctx, timeout=2
                )
                if r.status_code in (200, 405, 400) and (
                    probe != "/readyz" or r.status_code == 200
                ):
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"server {args[:3]} did not start")
            time.sleep(0.2)
        yield
    finally:
        proc.terminate()
        proc.wait(15)


_LUA = """
local bodies = {}
for line in io.lines(os.getenv("BENCH_BODIES")) do bodies[#bodies + 1] = line end
local i = 0
local pause = tonumber(os.getenv("BENCH_DELAY_MS"))
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  i = i + 1
  return wrk.format(nil, nil, nil, bodies[(i - 1) % #bodies + 1])
end
delay = function() return pause end
done = function(summary, latency, requests)
  io.write(string.format("RESULT %d %d %d %d %d %d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
"""


def _load(
    url: str, work: Path, bodies: list[bytes], rate: float, seconds: float, conns: int
) -> tuple[float, float, float, int]:
    """wrk with ``conns`` connections, each pausing so the total is about ``rate`` req/s.

    Returns (p50 ms, p99 ms, throughput/s, errors). wrk times each request from when it is
    sent (closed loop per connection), so a stall shows as lower throughput, not latency.
    """
    (work / "bodies.txt").write_bytes(b"\n".join(bodies) + b"\n")
    (work / "post.lua").write_text(_LUA)
    env = dict(os.environ)
    env["BENCH_BODIES"] = str(work / "bodies.txt")
    env["BENCH_DELAY_MS"] = str(max(0, int(conns * 1000 / rate)))
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{conns}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "10s",
            "-s",
            str(work / "post.lua"),
            url,
        ],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    reqs, dur_us, p50, p99, status_err, io_err = (int(v) for v in line.split()[1:])
    return p50 / 1000, p99 / 1000, reqs / (dur_us / 1e6), status_err + io_err


def _report(name: str, result: tuple[float, float, float, int]) -> float:
    p50, p99, tput, errors = result
    print(
        f"{name:9s} p50 {p50:7.2f} ms  p99 {p99:7.2f} ms  throughput {tput:6.1f}/s  errors {errors}"
    )
    return p99


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=float, default=300.0)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--uncached", type=int, default=200)
    ap.add_argument("--uncached-rate", type=float, default=20.0)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--bare-server", nargs=3, metavar=("PORT", "CERT", "KEY"))
    a = ap.parse_args()
    if a.bare_server:
        _bare_server(int(a.bare_server[0]), a.bare_server[1], a.bare_server[2], a.workers)
        return
    template = BODY.read_text()
    with tempfile.TemporaryDirectory() as tmp, start_registry(Path(tmp) / "registry") as reg:
        work = Path(tmp)
        certs = write_certs(work / "certs", ["127.0.0.1"])
        key, pub = new_key()
        refs: list[str] = []
        with RegistryClient(reg.host) as client:
            for i in range(a.uncached + 1):
                digest = push_image(client, "bench/app", f"v{i}", label=f"bench-{i}")
                sign(client, f"{reg.host}/bench/app:v{i}", key)
                refs.append(f"{reg.host}/bench/app@{digest}")
        (work / "policy.yaml").write_text(cip("bench", f"{reg.host}/bench/**", key_authority(pub)))

        def body(ref: str) -> bytes:
            # compact, as kube-apiserver sends it (and one body per line for the wrk script)
            doc = json.loads(template.replace(CAPTURED_IMAGE, ref))
            return json.dumps(doc, separators=(",", ":")).encode()

        port_bare, port_hook = free_port(), free_port()
        bare_url = f"https://127.0.0.1:{port_bare}"
        hook_url = f"https://127.0.0.1:{port_hook}"
        print(
            f"# {os.cpu_count()} CPUs, workers={a.workers}, rate {a.rate:g}/s for {a.seconds:g}s; "
            f"uncached: {a.uncached} fresh digests at {a.uncached_rate:g}/s"
        )
        bare_cmd = [
            sys.executable,
            __file__,
            "--workers",
            str(a.workers),
            "--bare-server",
            str(port_bare),
            str(certs.cert),
            str(certs.key),
        ]
        with _process(bare_cmd, bare_url, certs.ca_cert, "/validate"):
            bare_p99 = _report(
                "bare", _load(bare_url + "/validate", work, [body(refs[0])], a.rate, a.seconds, 10)
            )
        hook_cmd = [
            "assay",
            "admission",
            "serve",
            "--policy",
            str(work / "policy.yaml"),
            "--tls-cert",
            str(certs.cert),
            "--tls-key",
            str(certs.key),
            "--listen",
            f"127.0.0.1:{port_hook}",
            "--workers",
            str(a.workers),
        ]
        with _process(hook_cmd, hook_url, certs.ca_cert, "/readyz"):
            httpx.post(
                hook_url + "/validate",
                content=body(refs[0]),
                verify=ssl.create_default_context(cafile=str(certs.ca_cert)),
                timeout=30,
            )  # the one decision the cached run then reuses
            cached_p99 = _report(
                "cached",
                _load(hook_url + "/validate", work, [body(refs[0])], a.rate, a.seconds, 10),
            )
            fresh = [body(r) for r in refs[1:]]
            seconds = 0.8 * len(fresh) / a.uncached_rate  # never wrap around to a cached digest
            uncached_p99 = _report(
                "uncached",
                _load(hook_url + "/validate", work, fresh, a.uncached_rate, seconds, 2),
            )
        print(
            json.dumps(
                {
                    "cached_p99_ms": round(cached_p99, 2),
                    "bare_p99_ms": round(bare_p99, 2),
                    "cached_over_bare_p99": round(cached_p99 / bare_p99, 2),
                    "uncached_p99_ms": round(uncached_p99, 2),
                    "goals": {
                        "cached_p99_le_10ms": cached_p99 <= 10,
                        "cached_le_2x_bare": cached_p99 <= 2 * bare_p99,
                        "uncached_p99_le_100ms": uncached_p99 <= 100,
                    },
                }
            )
        )


if __name__ == "__main__":
    main()
