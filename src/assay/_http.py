"""An overall deadline for every HTTP request assay makes (registries, mirrors, feeds).

httpx's timeouts bound each socket operation, so a server that sends one byte every two seconds
never trips them and a request can last forever. Every client assay builds uses
:func:`transport`, whose connections check a per-request deadline on every read and write:
the request, its response headers and its whole body must finish within
``ASSAY_HTTP_DEADLINE`` seconds (default :data:`DEFAULT_DEADLINE`) of the request starting.
Past it, the read in progress fails with :class:`~assay.errors.NetworkError` (not retried: a
server that slow will be that slow again).

Verified TLS loads its CA certificates when a connection first needs them: reading the CA bundle
costs 0.04-0.07 s of CPU (OpenSSL 3), which a client that only speaks plain HTTP to a loopback
registry or an ``http://`` mirror never needs (see :class:`_DeferredContext`).

The deadline is tracked per thread: the request a thread starts is the one its reads belong to
(httpx's sync client reads a response in the thread that iterates it). Async clients (the
admission webhook's alert sender) bound each whole operation with :func:`async_deadline`
instead, which cancels it at the same deadline and raises the same error.

Proxies: httpx reads ``HTTP_PROXY``/``HTTPS_PROXY``/``ALL_PROXY``/``NO_PROXY`` (either case) only
for a client without a transport of its own, and every assay client has one. So clients are made
with :func:`client_transports`, which adds one mounted deadline transport per proxy the
environment names (:func:`environment_proxies`, the same reading httpx does), and a direct route
for each ``NO_PROXY`` entry; CIDR ranges in ``NO_PROXY``, which httpx does not match, are honoured
as curl and Go tools honour them (:func:`no_proxy_networks`). A failure to get through a proxy
names it (never its credentials).
"""

from __future__ import annotations

import contextlib
import ipaddress
import math
import os
import ssl
import sys
import threading
import time
import typing
from collections.abc import AsyncIterator
from typing import Any, TypedDict
from urllib.request import getproxies  # httpx imports it too: no start-up cost

import httpx

from assay.errors import NetworkError, UsageError

# httpcore imports trio, when it is installed, for the locks of its async API under trio: most of
# httpcore's import time (0.1-0.2 s), on the start-up path of every command that makes a request.
# assay never runs httpcore under trio (its async clients run under asyncio), so trio is hidden
# while httpcore is first imported; httpcore then takes it for absent, and trio itself stays
# importable for anyone else.
_hide_trio = "httpcore" not in sys.modules and "trio" not in sys.modules
if _hide_trio:
    sys.modules["trio"] = None  # type: ignore[assignment]
try:
    import httpcore
finally:
    if _hide_trio and sys.modules.get("trio", False) is None:
        del sys.modules["trio"]

__all__ = [
    "DEADLINE_ENV",
    "DEFAULT_DEADLINE",
    "ClientTransports",
    "async_deadline",
    "client_transports",
    "environment_proxies",
    "no_proxy_networks",
    "request_deadline",
    "transport",
]

DEADLINE_ENV = "ASSAY_HTTP_DEADLINE"
DEFAULT_DEADLINE = 600.0
"""Seconds one HTTP request may take from sending it to reading the last byte of its body."""

_local = threading.local()


def request_deadline() -> float:
    """The per-request deadline in seconds: ``ASSAY_HTTP_DEADLINE`` or the default."""
    text = os.environ.get(DEADLINE_ENV, "").strip()
    if not text:
        return DEFAULT_DEADLINE
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and 0 < value <= 86400):
        raise UsageError(
            f"{DEADLINE_ENV}={text[:40]!r} is not a number of seconds between 0 and 86400"
        )
    return value


@contextlib.asynccontextmanager
async def async_deadline(what: str, deadline: float | None = None) -> AsyncIterator[None]:
    """Cancel the operation inside past ``deadline`` seconds (default :func:`request_deadline`)
    and raise :class:`~assay.errors.NetworkError` naming ``what``, as the sync transport does."""
    import asyncio  # only the webhook's async clients need it: off the CLI's start-up path

    limit = request_deadline() if deadline is None else deadline
    try:
        async with asyncio.timeout(limit):
            yield
    except TimeoutError:
        raise NetworkError(
            f"{what} did not finish within {limit:g} s; the server is too slow or stalling "
            f"(raise {DEADLINE_ENV} for a slow link)"
        ) from None


def _expired() -> NetworkError:
    return NetworkError(
        f"{getattr(_local, 'what', 'an HTTP request')} did not finish within "
        f"{getattr(_local, 'limit', 0):g} s; the server is too slow or stalling "
        f"(raise {DEADLINE_ENV} for a slow link)"
    )


def _remaining(timeout: float | None) -> tuple[float | None, bool]:
    """(timeout for the next socket operation, whether the deadline is what bounds it)."""
    end: float | None = getattr(_local, "end", None)
    if end is None:
        return timeout, False
    left = end - time.monotonic()
    if left <= 0:
        raise _expired()
    if timeout is None or left < timeout:
        return left, True
    return timeout, False


class _Stream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        limit, by_deadline = _remaining(timeout)
        try:
            return self._inner.read(max_bytes, limit)
        except httpcore.TimeoutException:
            if by_deadline:
                raise _expired() from None
            raise

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        limit, by_deadline = _remaining(timeout)
        try:
            self._inner.write(buffer, limit)
        except httpcore.TimeoutException:
            if by_deadline:
                raise _expired() from None
            raise

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        limit, _ = _remaining(timeout)
        return _Stream(self._inner.start_tls(ssl_context, server_hostname, limit))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _Backend(httpcore.NetworkBackend):
    def __init__(self, inner: httpcore.NetworkBackend) -> None:
        self._inner = inner

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        limit, _ = _remaining(timeout)
        return _Stream(self._inner.connect_tcp(host, port, limit, local_address, socket_options))

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        limit, _ = _remaining(timeout)
        return _Stream(self._inner.connect_unix_socket(path, limit, socket_options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class _DeadlineTransport(httpx.HTTPTransport):
    def __init__(self, deadline: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._deadline = deadline
        proxy = kwargs.get("proxy")
        self.proxy = None if proxy is None else _redact(str(proxy))
        """The proxy this transport goes through (without credentials), or ``None``."""
        pool = getattr(self, "_pool", None)
        inner = getattr(pool, "_network_backend", None)
        if not isinstance(inner, httpcore.NetworkBackend):  # pragma: no cover - httpx changed
            raise RuntimeError("this httpx version has no connection pool backend to wrap")
        pool._network_backend = _Backend(inner)  # type: ignore[union-attr]

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        _local.end = time.monotonic() + self._deadline
        _local.limit = self._deadline
        _local.what = f"{request.method} {request.url.host}{request.url.path[:80]}"
        if self.proxy is None:
            return super().handle_request(request)
        try:
            return super().handle_request(request)
        except httpx.TransportError as exc:  # a connection the proxy refused or could not make
            raise type(exc)(f"through proxy {self.proxy}: {exc}", request=request) from exc


class _DeferredContext(ssl.SSLContext):
    """What ``verify=True`` means to httpx, built on the first TLS connection instead of at once.

    httpx turns ``verify=True`` into :func:`httpx.create_ssl_context` (certifi's bundle, or
    ``SSL_CERT_FILE``/``SSL_CERT_DIR``) when the transport is made. This context is handed to httpx
    in its place; the first TLS connection (``wrap_socket``, or ``wrap_bio`` through an HTTPS
    proxy) builds that very context with the same function, and every connection is wrapped by it.
    Itself it trusts no CA at all, so anything that used it directly would fail verification.
    CA files that cannot be read are a :class:`~assay.errors.UsageError` at that first connection
    (not a connection error to retry).
    """

    def __new__(cls, trust_env: bool = True) -> _DeferredContext:
        return super().__new__(cls, ssl.PROTOCOL_TLS_CLIENT)

    def __init__(self, trust_env: bool = True) -> None:
        self._trust_env = trust_env
        self._real: ssl.SSLContext | None = None
        self._alpn: list[str] | None = None
        self._build = threading.Lock()

    def loaded(self) -> bool:
        """Whether a connection has needed the CA certificates yet."""
        return self._real is not None

    def _context(self) -> ssl.SSLContext:
        with self._build:
            if self._real is None:
                try:
                    real = httpx.create_ssl_context(verify=True, trust_env=self._trust_env)
                except OSError as exc:  # ssl.SSLError is one too
                    env = ("SSL_CERT_FILE", "SSL_CERT_DIR") if self._trust_env else ()
                    where = next((f"{v}={os.environ[v]}" for v in env if os.environ.get(v)), None)
                    raise UsageError(
                        f"cannot load the CA certificates for verified TLS from "
                        f"{where or 'certifi'}: {exc.strerror or exc}; point SSL_CERT_FILE at a "
                        "readable PEM bundle, or unset it"
                    ) from exc
                if self._alpn is not None:
                    real.set_alpn_protocols(self._alpn)
                self._real = real
            return self._real

    def set_alpn_protocols(self, alpn_protocols: typing.Iterable[str]) -> None:
        # httpcore sets ALPN on the context it was given before each TLS connection
        protocols = list(alpn_protocols)
        super().set_alpn_protocols(protocols)
        with self._build:
            self._alpn = protocols
            if self._real is not None:
                self._real.set_alpn_protocols(protocols)

    def wrap_socket(self, *args: Any, **kwargs: Any) -> ssl.SSLSocket:
        return self._context().wrap_socket(*args, **kwargs)

    def wrap_bio(self, *args: Any, **kwargs: Any) -> ssl.SSLObject:
        return self._context().wrap_bio(*args, **kwargs)


def transport(deadline: float | None = None, **kwargs: Any) -> httpx.HTTPTransport:
    """An httpx transport whose requests each finish within ``deadline`` seconds (default:
    :func:`request_deadline`). ``kwargs`` go to :class:`httpx.HTTPTransport` (``verify``,
    ``limits``…); ``verify=True`` (the default) loads its CA certificates on the first TLS
    connection, not before."""
    if kwargs.get("verify", True) is True and kwargs.get("cert") is None:
        # (a client certificate would be loaded into the context httpx is given: keep httpx's)
        kwargs["verify"] = _DeferredContext(kwargs.get("trust_env", True))
    return _DeadlineTransport(request_deadline() if deadline is None else deadline, **kwargs)


def _redact(url: str) -> str:
    """``url`` without the user name and password a proxy URL may carry."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", scheme
    netloc, slash, path = rest.partition("/")
    return f"{scheme}{sep}{netloc.rpartition('@')[2]}{slash}{path}"


def environment_proxies() -> dict[str, str | None]:
    """The proxy routes the environment asks for, read as httpx reads them for a client of its own.

    Keys are httpx mount patterns (``http://``, ``https://``, ``all://``, ``all://*example.com``);
    a value is the proxy URL for requests matching the pattern, or ``None`` to connect directly.
    ``HTTP_PROXY``, ``HTTPS_PROXY`` and ``ALL_PROXY`` name the proxies (the lower-case name wins
    over the upper-case one; a value without a scheme means ``http://``). ``NO_PROXY`` is a comma
    list: ``*`` turns every proxy off; an IP address or ``localhost`` matches that host exactly
    (here an IPv4 CIDR range matches only its first address, as in httpx, and an IPv6 one is left
    out: :func:`client_transports` adds the ranges from :func:`no_proxy_networks`);
    ``.example.com`` matches the subdomains of example.com, ``example.com`` the domain and its
    subdomains; an entry with a scheme (``http://host:port``) matches that URL prefix as a mount
    pattern. A ``NO_PROXY`` entry httpx cannot parse as a host is a
    :class:`~assay.errors.UsageError`.
    """
    env = getproxies()
    routes: dict[str, str | None] = {}
    for scheme in ("http", "https", "all"):
        url = env.get(scheme, "").strip()
        if url:
            routes[f"{scheme}://"] = url if "://" in url else f"http://{url}"
    for entry in env.get("no", "").split(","):
        host = entry.strip()
        if host == "*":
            return {}
        if not host:
            continue
        if "://" in host:
            pattern = host
        elif "/" in host and _is_ip(host.split("/")[0], 6):
            continue  # httpx makes an unparseable pattern of it: no_proxy_networks() has it
        elif _is_ip(host.split("/")[0], 4) or host.lower() == "localhost":
            pattern = f"all://{host}"
        elif _is_ip(host.split("/")[0], 6):
            pattern = f"all://[{host}]"
        else:
            pattern = f"all://*{host}"
        try:
            httpx.URL(pattern)  # what httpx's mount patterns are parsed with
        except (httpx.InvalidURL, ValueError):
            raise UsageError(
                f"NO_PROXY entry {host[:80]!r} is not a host name, domain or IP address; "
                "fix NO_PROXY (a comma-separated list such as 'localhost,.example.com,10.0.0.1')"
            ) from None
        routes[pattern] = None
    return routes


def _is_ip(text: str, version: int) -> bool:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return False
    return address.version == version


def no_proxy_networks() -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """The CIDR ranges in ``NO_PROXY`` (``10.0.0.0/8``, ``fd00::/8``): requests to an IP address
    inside one connect directly, as curl, Go (cosign, skopeo, client-go) and requests do. httpx
    alone matches such an entry only against the range's first address. Host names are not
    resolved to be checked against them (as in Go)."""
    networks = []
    for entry in getproxies().get("no", "").split(","):
        text = entry.strip()
        if "/" in text and "://" not in text:
            with contextlib.suppress(ValueError):
                networks.append(ipaddress.ip_network(text.strip("[]"), strict=False))
    return tuple(networks)


class ClientTransports(TypedDict):
    """The ``transport`` and ``mounts`` arguments of :class:`httpx.Client`."""

    transport: httpx.BaseTransport
    mounts: dict[str, httpx.BaseTransport | None]


def client_transports(deadline: float | None = None, **kwargs: Any) -> ClientTransports:
    """``httpx.Client(..., **client_transports(deadline, verify=…))``: requests go straight out
    through :func:`transport`, or through the proxy the environment names for their URL
    (:func:`environment_proxies`) over a transport with the same deadline and ``kwargs``.
    ``NO_PROXY`` CIDR ranges (:func:`no_proxy_networks`) send requests to addresses inside them
    straight out too. A proxy URL httpx cannot use is a :class:`~assay.errors.UsageError`."""
    limit = request_deadline() if deadline is None else deadline
    direct = transport(limit, **kwargs)
    if not kwargs.get("trust_env", True):  # as httpx: no environment, no proxies from it
        return {"transport": direct, "mounts": {}}
    networks = no_proxy_networks()
    mounts: dict[str, httpx.BaseTransport | None] = {}
    for pattern, proxy in environment_proxies().items():
        if proxy is None:
            mounts[pattern] = None
            continue
        variable = "ALL_PROXY" if pattern == "all://" else f"{pattern[:-3].upper()}_PROXY"
        shown = f"{variable} (or {variable.lower()}) = {_redact(proxy)[:120]!r}"
        try:
            through = transport(limit, proxy=proxy, **kwargs)
        except ImportError:
            raise UsageError(
                f"{shown} is a SOCKS proxy, which needs the socksio package: "
                "pip install 'httpx[socks]', or name an http:// proxy"
            ) from None
        except (httpx.InvalidURL, ValueError) as exc:
            raise UsageError(
                f"{shown} is not a proxy URL assay can use ({exc}); give an http://, https:// "
                "or socks5:// URL"
            ) from None
        mounts[pattern] = _Bypass(through, direct, networks) if networks else through
    return {"transport": direct, "mounts": mounts}


class _Bypass(httpx.BaseTransport):
    """``proxied`` for every request but those to an IP address in ``networks`` (``direct``)."""

    def __init__(
        self,
        proxied: httpx.BaseTransport,
        direct: httpx.BaseTransport,
        networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...],
    ) -> None:
        self.proxied = proxied
        self.direct = direct
        self.networks = networks

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        try:
            address = ipaddress.ip_address(request.url.host)
        except ValueError:  # a host name: not resolved to be matched (as in Go)
            return self.proxied.handle_request(request)
        if any(address in net for net in self.networks):
            return self.direct.handle_request(request)
        return self.proxied.handle_request(request)

    def close(self) -> None:
        self.proxied.close()  # ``direct`` is the client's own transport: the client closes it
