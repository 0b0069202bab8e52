"""The overall per-request HTTP deadline (assay._http) against a server on 127.0.0.1 that drips
one byte at a time: per-read timeouts never fire, the deadline must."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from assay._http import DEADLINE_ENV, request_deadline, transport
from assay.errors import NetworkError, UsageError


class DripServer:
    """Accepts connections; answers each request by sending ``head`` then ``body`` one byte
    every ``interval`` seconds (``drip_headers`` drips the status line and headers too)."""

    def __init__(self, *, drip_headers: bool, interval: float = 0.1) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.drip_headers = drip_headers
        self.interval = interval
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.sock.settimeout(0.2)
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # closed
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        head = (
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
        )
        try:
            conn.recv(65536)
            if not self.interval:
                conn.sendall(head + b" " * 100000)
                return
            if not self.drip_headers:
                conn.sendall(head)
            for byte in (head if self.drip_headers else b"") + b" " * 100000:
                if self.stop.is_set():
                    break
                conn.sendall(bytes([byte]))
                time.sleep(self.interval)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self) -> None:
        self.stop.set()
        self.sock.close()


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
