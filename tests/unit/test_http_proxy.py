"""The proxy environment in assay._http: read as httpx reads it, routed over deadline transports,
and exercised through a real proxy (tinyproxy on 127.0.0.1) for plain HTTP and CONNECT.

The end-to-end CLI cases (push/sign/verify, lock) are in tests/integration/test_proxy_cli.py.
"""

from __future__ import annotations

import asyncio
import importlib.util
import re
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
from httpx._utils import get_environment_proxies  # the oracle: what httpx does on its own
from test_http_tls import tls_server

from assay._http import (
    _Bypass,
    _DeadlineTransport,
    client_transports,
    environment_proxies,
    no_proxy_networks,
)
from assay.admission.alerts import WebhookAlert
from assay.errors import NetworkError, UsageError
from assay.oci.registry import RegistryClient
from fixtures.drip import DripServer
from fixtures.httpserve import serving
from fixtures.kubeapi import kube_api
from fixtures.proxy import RunningProxy, start_tinyproxy
from fixtures.registry import free_port

__all__ = ["tls_server"]  # the pytest fixture, imported for use here

_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "REQUEST_METHOD")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in _VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    return monkeypatch


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[RunningProxy]:
    with start_tinyproxy(tmp_path / "proxy") as running:
        yield running


class _Web(BaseHTTPRequestHandler):
    """Answers GET with 100000 bytes; records POST bodies."""

    bodies: ClassVar[list[bytes]] = []

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "100000")
        self.end_headers()
        self.wfile.write(b" " * 100000)

    def do_POST(self) -> None:
        self.bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def web() -> Iterator[str]:
    """``http://127.0.0.1:PORT`` of a plain HTTP server (a full one: a proxy writes a request in
    several pieces, and a server that answers and closes after the first makes it fail)."""
    _Web.bodies = []
    with serving(ThreadingHTTPServer(("127.0.0.1", 0), _Web)) as url:
        yield url


ENVIRONMENTS: list[dict[str, str]] = [
    {},
    {"HTTP_PROXY": "http://proxy.corp:3128"},
    {"http_proxy": "proxy.corp:3128"},  # no scheme: http://
    {"HTTP_PROXY": "http://upper:1", "http_proxy": "http://lower:2"},  # lower-case wins
    {"HTTPS_PROXY": "http://p:8080", "NO_PROXY": "localhost,.internal.example, example.org"},
    {"ALL_PROXY": "socks5://p:1080", "no_proxy": "127.0.0.1,::1,10.0.0.0/8"},
    {"HTTPS_PROXY": "http://p:8080", "NO_PROXY": "*"},
    {"HTTPS_PROXY": "http://p:8080", "NO_PROXY": "a.example,*"},
    {"HTTP_PROXY": "http://p:1", "NO_PROXY": "http://direct.example:8080,,"},
    {"HTTP_PROXY": "http://user:pw@p:1", "NO_PROXY": "registry.example:5000"},
]


@pytest.mark.parametrize("env", ENVIRONMENTS, ids=lambda e: ",".join(e) or "none")
def test_environment_is_read_as_httpx_reads_it(
    clean_env: pytest.MonkeyPatch, env: dict[str, str]
) -> None:
    for name, value in env.items():
        clean_env.setenv(name, value)
    assert environment_proxies() == get_environment_proxies()


def test_the_routes_match_the_hosts_no_proxy_names(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    clean_env.setenv("NO_PROXY", ".internal.example,example.org,10.1.2.3,localhost")
    with httpx.Client(**client_transports(30.0)) as client:
        direct = client._transport

        def route(url: str) -> httpx.BaseTransport:
            return client._transport_for_url(httpx.URL(url))

        for url in (
            "https://a.internal.example/",
            "https://example.org/",
            "https://www.example.org/",
            "https://10.1.2.3:5000/v2/",
            "https://localhost/",
            "http://elsewhere.example/",  # only HTTPS_PROXY is set
        ):
            assert route(url) is direct, url
        for url in ("https://internal.example/", "https://notexample.org/", "https://10.1.2.4/"):
            proxied = route(url)
            assert proxied is not direct, url
            assert isinstance(proxied, _DeadlineTransport) and proxied.proxy == "http://127.0.0.1:9"


def test_mounted_proxy_transports_are_deadline_transports(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("HTTP_PROXY", "http://user:secret@127.0.0.1:9")
    clean_env.setenv("ALL_PROXY", "http://127.0.0.1:10")
    routes = client_transports(7.5, verify=False)
    assert set(routes["mounts"]) == {"http://", "all://"}
    for t in (routes["transport"], *routes["mounts"].values()):
        assert isinstance(t, _DeadlineTransport) and t._deadline == 7.5
    assert routes["transport"].proxy is None  # type: ignore[attr-defined]
    assert routes["mounts"]["http://"].proxy == "http://127.0.0.1:9"  # type: ignore[union-attr]
    assert client_transports(7.5, trust_env=False)["mounts"] == {}  # as httpx's trust_env


def test_no_proxy_cidr_ranges_route_addresses_inside_them_directly(
    clean_env: pytest.MonkeyPatch,
) -> None:
    clean_env.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    clean_env.setenv("no_proxy", "example.org, 10.0.0.0/8 ,fd00::/8,not/a/net,::1")
    assert [str(n) for n in no_proxy_networks()] == ["10.0.0.0/8", "fd00::/8"]
    routes = client_transports(5.0)
    bypass = routes["mounts"]["http://"]
    assert isinstance(bypass, _Bypass) and bypass.direct is routes["transport"]
    assert isinstance(bypass.proxied, _DeadlineTransport) and bypass.proxied._deadline == 5.0
    clean_env.setenv("no_proxy", "example.org")
    assert isinstance(client_transports(5.0)["mounts"]["http://"], _DeadlineTransport)


@pytest.mark.parametrize(
    ("no_proxy", "proxied"),
    [("127.0.0.0/8", False), ("10.0.0.0/8", True), ("127.0.0.1/32", False), ("", True)],
)
def test_cidr_bypass_through_a_real_proxy(
    clean_env: pytest.MonkeyPatch, proxy: RunningProxy, web: str, no_proxy: str, proxied: bool
) -> None:
    clean_env.setenv("HTTP_PROXY", proxy.url)
    clean_env.setenv("NO_PROXY", no_proxy)
    with httpx.Client(timeout=10.0, **client_transports(30.0)) as client:
        assert client.get(f"{web}/c").status_code == 200
    expected = [f"GET {web}/c HTTP/1.1"] if proxied else []
    assert proxy.requests() == expected


@pytest.mark.parametrize(
    ("name", "value", "match"),
    [
        ("HTTPS_PROXY", "ftp://user:secret@p:21", r"HTTPS_PROXY .*'ftp://p:21'"),
        ("http_proxy", "http://p:notaport", r"HTTP_PROXY .*'http://p:notaport'"),
        ("ALL_PROXY", "socks4://p:1080", r"ALL_PROXY"),
        ("NO_PROXY", "ok.example,bad host:x", r"NO_PROXY entry 'bad host:x'"),
    ],
)
def test_unusable_proxy_settings_are_usage_errors(
    clean_env: pytest.MonkeyPatch, name: str, value: str, match: str
) -> None:
    clean_env.setenv(name, value)
    if name == "NO_PROXY":
        clean_env.setenv("HTTP_PROXY", "http://p:1")
    with pytest.raises(UsageError, match=match) as info:
        client_transports(5.0)
    assert "secret" not in str(info.value)


def test_plain_http_goes_through_the_proxy(
    clean_env: pytest.MonkeyPatch, proxy: RunningProxy, web: str
) -> None:
    clean_env.setenv("http_proxy", proxy.url)
    with httpx.Client(timeout=10.0, **client_transports(30.0)) as client:
        resp = client.get(f"{web}/v2/x")
    assert resp.status_code == 200 and len(resp.content) == 100000
    assert proxy.requests() == [f"GET {web}/v2/x HTTP/1.1"]


def test_the_deadline_holds_through_the_proxy(
    clean_env: pytest.MonkeyPatch, proxy: RunningProxy
) -> None:
    server = DripServer(drip_headers=False, interval=0.1)
    clean_env.setenv("HTTP_PROXY", proxy.url)
    started = time.monotonic()
    try:
        with (
            httpx.Client(timeout=5.0, **client_transports(1.0)) as client,
            pytest.raises(NetworkError, match="did not finish within 1 s"),
            client.stream("GET", f"http://127.0.0.1:{server.port}/slow") as resp,
        ):
            for _ in resp.iter_bytes():
                pass
    finally:
        server.close()
    assert time.monotonic() - started < 3.0
    assert proxy.requests() == [f"GET http://127.0.0.1:{server.port}/slow HTTP/1.1"]


def test_https_tunnels_through_the_proxy_with_verified_tls(
    clean_env: pytest.MonkeyPatch, proxy: RunningProxy, tls_server: tuple[int, Path]
) -> None:
    port, ca = tls_server
    clean_env.setenv("SSL_CERT_FILE", str(ca))
    clean_env.delenv("SSL_CERT_DIR", raising=False)
    clean_env.setenv("HTTPS_PROXY", proxy.url)
    with httpx.Client(timeout=10.0, **client_transports(30.0)) as client:
        assert client.get(f"https://127.0.0.1:{port}/v2/").status_code == 200
    assert proxy.requests() == [f"CONNECT 127.0.0.1:{port} HTTP/1.1"]
    # the registry client of `assay verify https://127.0.0.1:PORT/...`
    with RegistryClient(f"https://127.0.0.1:{port}", retries=0) as registry:
        registry.ping()
    assert proxy.requests() == [f"CONNECT 127.0.0.1:{port} HTTP/1.1"] * 2
    # the CA still matters through the tunnel: without it the server is refused
    clean_env.delenv("SSL_CERT_FILE")
    with (
        httpx.Client(timeout=10.0, **client_transports(30.0)) as client,
        pytest.raises(httpx.ConnectError, match=r"through proxy .*CERTIFICATE_VERIFY_FAILED"),
    ):
        client.get(f"https://127.0.0.1:{port}/v2/")


def test_a_proxy_that_is_down_is_named(clean_env: pytest.MonkeyPatch) -> None:
    down = f"http://127.0.0.1:{free_port()}"
    clean_env.setenv("HTTP_PROXY", down.replace("//", "//user:secret@"))
    with (
        httpx.Client(timeout=5.0, **client_transports(30.0)) as client,
        pytest.raises(httpx.ConnectError, match=f"through proxy {re.escape(down)}: ") as info,
    ):
        client.get("http://127.0.0.1:9/")
    assert "secret" not in str(info.value)


@pytest.mark.skipif(importlib.util.find_spec("socksio") is not None, reason="socksio is installed")
def test_a_socks_proxy_without_socksio_says_what_to_install(
    clean_env: pytest.MonkeyPatch,
) -> None:
    clean_env.setenv("ALL_PROXY", "socks5://127.0.0.1:1080")
    with pytest.raises(UsageError, match=r"ALL_PROXY .*SOCKS proxy.*httpx\[socks\]"):
        client_transports(5.0)


@pytest.mark.parametrize("bypass", [False, True], ids=["proxied", "no_proxy"])
def test_the_kubernetes_client_honours_the_proxy_environment(
    clean_env: pytest.MonkeyPatch, proxy: RunningProxy, tmp_path: Path, bypass: bool
) -> None:
    clean_env.setenv("HTTPS_PROXY", proxy.url)
    if bypass:
        clean_env.setenv("no_proxy", "127.0.0.1")
    with kube_api(tmp_path / "api") as (state, kube):
        assert kube.get("/api/v1/namespaces/default/secrets/none") is None
        port = httpx.URL(kube.base_url).port
    assert state.gets == ["/api/v1/namespaces/default/secrets/none"]
    assert proxy.requests() == ([] if bypass else [f"CONNECT 127.0.0.1:{port} HTTP/1.1"])


def test_webhook_alerts_go_through_the_proxy(
    clean_env: pytest.MonkeyPatch, proxy: RunningProxy, web: str
) -> None:
    clean_env.setenv("HTTP_PROXY", proxy.url)

    async def send() -> None:
        alert = WebhookAlert(f"{web}/hook", timeout=10.0)
        alert("denied: x")
        await alert.drain()

    asyncio.run(send())
    assert _Web.bodies == [b'{"text":"denied: x"}']
    assert proxy.requests() == [f"POST {web}/hook HTTP/1.1"]
