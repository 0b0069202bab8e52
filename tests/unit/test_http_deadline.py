"""The overall per-request HTTP deadline (assay._http) against a server on 127.0.0.1 that drips
one byte at a time: per-read timeouts never fire, the deadline must."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator

import httpx
import pytest

from assay._http import DEADLINE_ENV, request_deadline, transport
from assay.errors import NetworkError, UsageError
from fixtures.drip import DripServer


@pytest.fixture(params=[False, True], ids=["drip-body", "drip-headers"])
def drip(request: pytest.FixtureRequest) -> Iterator[DripServer]:
    server = DripServer(drip_headers=request.param)
    yield server
    server.close()


def test_dripping_server_hits_the_overall_deadline(drip: DripServer) -> None:
    client = httpx.Client(timeout=5.0, transport=transport(deadline=1.0))
    started = time.monotonic()
    url = f"http://127.0.0.1:{drip.port}/v2/"
    with (
        pytest.raises(NetworkError, match=r"did not finish within 1 s.*ASSAY_HTTP_DEADLINE"),
        client.stream("GET", url) as resp,
    ):
        for _ in resp.iter_bytes():
            pass
    elapsed = time.monotonic() - started
    assert elapsed < 3.0, f"deadline of 1 s took {elapsed:.1f} s to fire"
    client.close()


def test_a_fast_answer_is_unaffected() -> None:
    server = DripServer(drip_headers=False, interval=0.0)
    try:
        client = httpx.Client(timeout=5.0, transport=transport(deadline=10.0))
        resp = client.get(f"http://127.0.0.1:{server.port}/")
        assert resp.status_code == 200 and len(resp.content) == 100000
        client.close()
    finally:
        server.close()


def test_deadline_env_is_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DEADLINE_ENV, "2.5")
    assert request_deadline() == 2.5
    for bad in ("0", "-1", "nan", "inf", "1e9", "soon"):
        monkeypatch.setenv(DEADLINE_ENV, bad)
        with pytest.raises(UsageError, match=DEADLINE_ENV):
            request_deadline()


def test_registry_client_uses_the_deadline(drip: DripServer) -> None:
    from assay.oci.registry import RegistryClient

    os.environ[DEADLINE_ENV] = "1"
    try:
        client = RegistryClient(f"127.0.0.1:{drip.port}", retries=0)
    finally:
        del os.environ[DEADLINE_ENV]
    started = time.monotonic()
    with pytest.raises(NetworkError, match="did not finish within 1 s"):
        client.get_manifest("x/y", "latest")
    assert time.monotonic() - started < 3.0
    client.close()


def test_sbom_of_a_dripping_registry_fails_in_time_through_the_cli(drip: DripServer) -> None:
    env = {**os.environ, DEADLINE_ENV: "1"}
    started = time.monotonic()
    proc = subprocess.run(
        ["assay", "sbom", f"docker://127.0.0.1:{drip.port}/x/y:latest"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    elapsed = time.monotonic() - started
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "did not finish within 1 s" in lines[0], proc.stderr
    assert elapsed < 30, f"took {elapsed:.1f} s"
