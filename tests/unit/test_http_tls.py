"""Verified TLS in assay._http: CA certificates are read on the first TLS connection, with the CA
settings httpx itself would use, and plain HTTP never reads them.

A real TLS server on 127.0.0.1 with its own CA (assay.admission.certs) stands in for an HTTPS
registry; ``SSL_CERT_FILE`` is how a user trusts such a CA, as with httpx.
"""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from assay._http import transport
from assay.admission.certs import write_certs
from assay.attest.keys import generate_keypair
from assay.errors import NetworkError, UsageError
from assay.oci.registry import RegistryClient
from fixtures.drip import DripServer
from fixtures.httpserve import serving

SRC = Path(__file__).resolve().parents[2] / "src"


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """(port, CA file) of an HTTPS server on 127.0.0.1 that speaks only HTTP/1.1 over ALPN."""
    certs = write_certs(tmp_path / "certs", ["127.0.0.1"])
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(certs.cert, certs.key)
    ctx.set_alpn_protocols(["http/1.1"])
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    with serving(server):
        yield server.server_address[1], certs.ca_cert


def _context(t: httpx.HTTPTransport) -> ssl.SSLContext:
    ctx = t._pool._ssl_context  # the context httpx handed to its connection pool
    assert isinstance(ctx, ssl.SSLContext)
    return ctx


@pytest.fixture
def no_ca_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)


@pytest.mark.usefixtures("no_ca_env")
def test_plain_http_reads_no_ca_certificates() -> None:
    server = DripServer(drip_headers=False, interval=0.0)
    t = transport(deadline=10.0)
    try:
        with httpx.Client(timeout=5.0, transport=t) as client:
            assert client.get(f"http://127.0.0.1:{server.port}/").status_code == 200
    finally:
        server.close()
    assert _context(t).cert_store_stats()["x509_ca"] == 0
    # the registry client of `assay verify` against a loopback registry, before any request
    with RegistryClient("127.0.0.1:5000") as registry:
        assert isinstance(registry.http._transport, httpx.HTTPTransport)
        assert _context(registry.http._transport).cert_store_stats()["x509_ca"] == 0


def test_https_trusts_the_ca_of_ssl_cert_file(
    tls_server: tuple[int, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    port, ca = tls_server
    monkeypatch.setenv("SSL_CERT_FILE", str(ca))
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    url = f"https://127.0.0.1:{port}/v2/"
    with (
        httpx.Client(timeout=10.0, transport=transport(deadline=30.0)) as client,
        client.stream("GET", url) as resp,
    ):
        assert resp.status_code == 200
        tls = resp.extensions["network_stream"].get_extra_info("ssl_object")
        assert tls.selected_alpn_protocol() == "http/1.1"  # httpcore's ALPN reached the wire
        assert tls.version() in {"TLSv1.2", "TLSv1.3"}
    # through the registry client, as `assay verify https://…` would talk to it
    with RegistryClient(f"https://127.0.0.1:{port}", retries=0) as registry:
        registry.ping()


@pytest.mark.usefixtures("no_ca_env")
def test_https_to_an_unknown_ca_is_refused(tls_server: tuple[int, Path]) -> None:
    port, _ = tls_server
    with (
        httpx.Client(timeout=10.0, transport=transport(deadline=30.0)) as client,
        pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"),
    ):
        client.get(f"https://127.0.0.1:{port}/v2/")
    with (
        RegistryClient(f"https://127.0.0.1:{port}", retries=0) as registry,
        pytest.raises(NetworkError, match="does not speak verified HTTPS"),
    ):
        registry.ping()


@pytest.mark.usefixtures("no_ca_env")
def test_insecure_still_skips_verification(tls_server: tuple[int, Path]) -> None:
    port, _ = tls_server
    with httpx.Client(timeout=10.0, transport=transport(deadline=30.0, verify=False)) as client:
        assert client.get(f"https://127.0.0.1:{port}/v2/").status_code == 200


@pytest.mark.parametrize("env", ["default", "SSL_CERT_FILE", "SSL_CERT_DIR"])
def test_the_ca_settings_are_httpxs_own(
    env: str, tls_server: tuple[int, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The context built on first use equals the one httpx makes for ``verify=True``."""
    _, ca = tls_server
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    if env == "SSL_CERT_FILE":
        monkeypatch.setenv(env, str(ca))
    elif env == "SSL_CERT_DIR":
        monkeypatch.setenv(env, str(ca.parent))
    deferred = _context(transport())
    listener = socket.create_server(("127.0.0.1", 0))
    with listener, socket.create_connection(listener.getsockname()) as sock:
        # wrapping (no handshake yet) is the first use: the real context is built now
        wrapped = deferred.wrap_socket(
            sock, server_hostname="127.0.0.1", do_handshake_on_connect=False
        )
        real = wrapped.context
        wrapped.close()
    ref = httpx.create_ssl_context(verify=True)
    assert real is not deferred
    for attr in ("verify_mode", "check_hostname", "options", "verify_flags", "minimum_version"):
        assert getattr(real, attr) == getattr(ref, attr), attr
    assert real.get_ca_certs(binary_form=True) == ref.get_ca_certs(binary_form=True)
    assert real.cert_store_stats() == ref.cert_store_stats()
    if env == "default":
        assert ref.cert_store_stats()["x509_ca"] > 0  # certifi's bundle really was compared


@pytest.mark.usefixtures("no_ca_env")
def test_the_placeholder_itself_trusts_no_ca(tls_server: tuple[int, Path]) -> None:
    """Used directly (not through the overridden wrap), the context handed to httpx fails."""
    port, _ = tls_server
    placeholder = _context(transport())
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as sock,
        pytest.raises(ssl.SSLCertVerificationError),
    ):
        ssl.SSLContext.wrap_socket(placeholder, sock, server_hostname="127.0.0.1")


@pytest.mark.usefixtures("no_ca_env")
def test_tls_inside_a_proxy_tunnel_uses_the_real_context_too() -> None:
    """httpcore wraps the origin's TLS in memory BIOs through an HTTPS proxy (``wrap_bio``)."""
    deferred = _context(transport())
    deferred.set_alpn_protocols(["http/1.1"])
    tls = deferred.wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO(), server_hostname="127.0.0.1")
    assert tls.context is not deferred
    assert tls.context.cert_store_stats()["x509_ca"] > 0
    assert tls.context.verify_mode == ssl.CERT_REQUIRED and tls.context.check_hostname
    # the same real context serves every later connection
    again = deferred.wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO(), server_hostname="127.0.0.1")
    assert again.context is tls.context


def test_an_unreadable_ca_file_is_a_usage_error_at_the_first_tls_connection(
    tls_server: tuple[int, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port, _ = tls_server
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "missing.pem"))
    with (
        RegistryClient(f"https://127.0.0.1:{port}", retries=2, backoff=30.0) as registry,
        pytest.raises(UsageError, match=r"SSL_CERT_FILE=.*missing\.pem: No such file"),
    ):
        registry.ping()  # not retried (backoff 30 s) as if the registry were down


def test_verify_over_plain_http_never_reads_the_ca_store(tmp_path: Path) -> None:
    """``assay verify`` against a loopback registry through the console script, with a CA file
    that does not exist: a plain-HTTP registry needs no CA, so it still reaches the registry."""
    _, public_pem = generate_keypair(b"")
    pub = tmp_path / "cosign.pub"
    pub.write_bytes(public_pem)
    exe = shutil.which("assay")
    assert exe is not None, "the assay console script is not installed (pip install -e .)"
    env = dict(os.environ, PYTHONPATH=str(SRC), SSL_CERT_FILE=str(tmp_path / "missing.pem"))
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        listener.settimeout(0.5)
        argv = [exe, "verify", f"127.0.0.1:{listener.getsockname()[1]}/x:1", "--key", str(pub)]
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            for _ in range(240):
                try:
                    conn, _ = listener.accept()
                except TimeoutError:
                    if proc.poll() is not None:
                        break
                    continue
                conn.close()
                break
            connected = proc.poll() is None
        finally:
            proc.kill()
            _, err = proc.communicate(timeout=60)
    assert connected, err.decode(errors="replace")[-2000:]
