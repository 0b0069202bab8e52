"""RegistryClient against a real docker-registry (and small real HTTP servers for misbehaviour)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from assay.errors import NetworkError, UsageError, VerificationError
from assay.oci.auth import Credentials
from assay.oci.registry import RegistryClient, referrers_fallback_tag
from fixtures.httpserve import serving
from fixtures.ociimage import OCI_LAYER_TAR, push_image_blobs
from fixtures.registry import RunningRegistry

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


@dataclass
class Traffic:
    """Counts real requests as httpx sends them (an event hook, not a mock)."""

    seen: list[tuple[str, str]] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> None:
        self.seen.append((request.method, request.url.path + "?" + request.url.query.decode()))

    def count(self, method: str, contains: str = "") -> int:
        return sum(1 for m, u in self.seen if m == method and contains in u)


def make_client(
    reg: RegistryClient | RunningRegistry, traffic: Traffic | None = None, **kw: object
) -> RegistryClient:
    assert isinstance(reg, RunningRegistry)
    hooks = {"request": [traffic]} if traffic else {}
    http = httpx.Client(timeout=30, event_hooks=hooks)  # type: ignore[arg-type]
    creds = Credentials(reg.username, reg.password) if reg.username else None
    return RegistryClient(reg.host, http=http, auth=creds, **kw)  # type: ignore[arg-type]


def repo() -> str:
    return f"test/{uuid.uuid4().hex[:12]}"


def blob(data: bytes) -> tuple[str, int, bytes]:
    return "sha256:" + hashlib.sha256(data).hexdigest(), len(data), data


def push_image(c: RegistryClient, name: str, tag: str, payload: bytes = b"layer") -> str:
    """A minimal valid image (config + one layer); returns the manifest digest."""
    config = {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}
    return push_image_blobs(c, name, tag, config, [(OCI_LAYER_TAR, payload)])


# ----------------------------------------------------------------------------- blobs


def test_monolithic_upload_then_exists_and_fetch(registry: RunningRegistry) -> None:
    t = Traffic()
    with make_client(registry, t) as c:
        c.ping()
        name = repo()
        d, n, data = blob(os.urandom(1000))
        assert not c.blob_exists(name, d)
        assert c.upload_blob(name, d, n, data) == "uploaded"
        assert t.count("PUT", "digest=") == 1 and t.count("PATCH") == 0
        assert c.blob_exists(name, d)
        assert c.get_blob(name, d) == data
        # a second upload is skipped after HEAD
        assert c.upload_blob(name, d, n, data) == "exists"
        assert t.count("PUT", "digest=") == 1


def test_chunked_upload_of_a_large_blob(registry: RunningRegistry) -> None:
    data = os.urandom((5 << 20) + 123_457)  # over the 5 MiB monolithic limit
    d, n, _ = blob(data)
    for chunk_size, patches in ((None, 1), (2 << 20, 3)):
        t = Traffic()
        kw = {"chunk_size": chunk_size} if chunk_size else {}
        with make_client(registry, t, **kw) as c:
            name = repo()
            assert c.upload_blob(name, d, n, data) == "uploaded"
            assert t.count("PATCH") == patches
            assert t.count("PUT", "digest=") == 1
            got = hashlib.sha256(b"".join(c.iter_blob(name, d, size=n))).hexdigest()
            assert "sha256:" + got == d


def test_chunked_upload_refuses_corrupt_local_data_before_commit(
    registry: RunningRegistry,
) -> None:
    t = Traffic()
    data = os.urandom((5 << 20) + 10)
    d, n, _ = blob(data)
    bad = bytes([data[0] ^ 1]) + data[1:]
    with make_client(registry, t, chunk_size=4 << 20) as c:
        name = repo()
        with pytest.raises(VerificationError, match="corrupt"):
            c.upload_blob(name, d, n, bad)
        assert t.count("PATCH") == 2
        assert t.count("PUT", "digest=") == 0
        assert t.count("DELETE", "/blobs/uploads/") == 1  # the session was cancelled
        assert not c.blob_exists(name, d)


def test_upload_refuses_local_data_that_does_not_match_its_digest(
    registry: RunningRegistry,
) -> None:
    t = Traffic()
    with make_client(registry, t) as c:
        name = repo()
        d, n, _ = blob(b"the real content")
        with pytest.raises(VerificationError, match="corrupt"):
            c.upload_blob(name, d, n, b"other content!!!")
        assert t.count("PUT", "digest=") == 0  # never committed
        assert not c.blob_exists(name, d)


def test_cross_repository_mount(registry: RunningRegistry) -> None:
    t = Traffic()
    with make_client(registry, t) as c:
        src, dst = repo(), repo()
        d, n, data = blob(os.urandom(4096))
        c.upload_blob(src, d, n, data)
        uploads_before = t.count("PUT", "digest=")
        assert c.upload_blob(dst, d, n, data, mount_from=src) == "mounted"
        assert t.count("POST", "mount=") == 1
        assert t.count("PUT", "digest=") == uploads_before  # no data sent
        assert c.get_blob(dst, d) == data


# ----------------------------------------------------------------------------- manifests


def test_manifest_round_trip_by_tag_and_digest(registry: RunningRegistry) -> None:
    with make_client(registry) as c:
        name = repo()
        digest = push_image(c, name, "v1")
        by_tag = c.get_manifest(name, "v1")
        assert by_tag.digest == digest == "sha256:" + hashlib.sha256(by_tag.data).hexdigest()
        assert by_tag.media_type == OCI_MANIFEST
        by_digest = c.get_manifest(name, digest)
        assert by_digest.data == by_tag.data
        assert c.manifest_exists(name, digest)
        assert c.resolve(name, "v1").digest == digest


def test_missing_manifest_is_a_clear_error(registry: RunningRegistry) -> None:
    with make_client(registry) as c, pytest.raises(NetworkError, match="not found"):
        c.get_manifest(repo(), "nope")


def test_tag_listing_with_page_size_on_docker_registry(registry: RunningRegistry) -> None:
    # distribution 2.8 ignores ``n`` for tags (pagination arrived in 3.0): one page, all tags
    t = Traffic()
    with make_client(registry, t) as c:
        name = repo()
        tags = [f"t{i}" for i in range(7)]
        for tag in tags:
            push_image(c, name, tag)
        assert sorted(c.list_tags(name, page_size=2)) == tags
        assert sorted(c.list_tags(name)) == tags


def test_tag_listing_follows_link_pagination(http_server: Callable[..., str]) -> None:
    """A small spec-following tag endpoint (n/last, Link rel=next) on 127.0.0.1."""
    from urllib.parse import parse_qs, urlsplit

    all_tags = [f"v{i:02d}" for i in range(11)]
    pages: list[str] = []

    def handle(h: BaseHTTPRequestHandler) -> None:
        url = urlsplit(h.path)
        if url.path == "/v2/":
            _reply(h, 200, b"{}", {})
            return
        q = parse_qs(url.query)
        n = int(q.get("n", ["100"])[0])
        last = q.get("last", [""])[0]
        rest = [t for t in all_tags if t > last]
        page, more = rest[:n], rest[n:]
        pages.append(url.query)
        headers = {"Content-Type": "application/json"}
        if more:
            headers["Link"] = f'</v2/a/b/tags/list?n={n}&last={page[-1]}>; rel="next"'
        _reply(h, 200, json.dumps({"name": "a/b", "tags": page}).encode(), headers)

    with RegistryClient(http_server(handle), retries=0) as c:
        assert c.list_tags("a/b", page_size=4) == all_tags
    assert pages == ["n=4", "n=4&last=v03", "n=4&last=v07"]


def test_tag_listing_refuses_links_to_other_hosts(http_server: Callable[..., str]) -> None:
    def handle(h: BaseHTTPRequestHandler) -> None:
        headers = {"Link": '<http://192.0.2.1/v2/a/b/tags/list?n=1&last=x>; rel="next"'}
        _reply(h, 200, json.dumps({"name": "a/b", "tags": ["x"]}).encode(), headers)

    with (
        RegistryClient(http_server(handle), retries=0) as c,
        pytest.raises(NetworkError, match="another host"),
    ):
        c.list_tags("a/b", page_size=1)


def test_tag_listing_of_unknown_repository_is_empty(registry: RunningRegistry) -> None:
    with make_client(registry) as c:
        assert c.list_tags(repo()) == []


# ----------------------------------------------------------------------------- referrers


def _artifact(c: RegistryClient, name: str, subject: str, artifact_type: str, note: str) -> str:
    empty = b"{}"
    ed, es, _ = blob(empty)
    c.upload_blob(name, ed, es, empty)
    pd, ps, payload = blob(note.encode())
    c.upload_blob(name, pd, ps, payload)
    subj = c.get_manifest(name, subject)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": artifact_type,
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": ed, "size": es},
            "layers": [{"mediaType": "text/plain", "digest": pd, "size": ps}],
            "subject": {"mediaType": subj.media_type, "digest": subj.digest, "size": subj.size},
            "annotations": {"note": note},
        }
    ).encode()
    d = "sha256:" + hashlib.sha256(manifest).hexdigest()
    return c.put_manifest(name, d, manifest, OCI_MANIFEST)


def test_referrers_fallback_tag_round_trip(registry: RunningRegistry) -> None:
    with make_client(registry) as c:
        name = repo()
        subject = push_image(c, name, "v1")
        assert c.referrers(name, subject) == []
        a = _artifact(c, name, subject, "application/vnd.example.sbom", "first")
        b = _artifact(c, name, subject, "application/vnd.example.sig", "second")
        # docker-registry 2.8 has no referrers API: the fallback tag holds an index
        assert c._referrers_api is False
        assert referrers_fallback_tag(subject) in c.list_tags(name)
        fallback = c.get_manifest(name, referrers_fallback_tag(subject))
        assert fallback.media_type == OCI_INDEX
        found = c.referrers(name, subject)
        assert {d.digest for d in found} == {a, b}
        only = c.referrers(name, subject, artifact_type="application/vnd.example.sig")
        assert [d.digest for d in only] == [b]
        assert only[0].annotations == {"note": "second"}
        # re-pushing the same referrer does not duplicate it
        _artifact(c, name, subject, "application/vnd.example.sig", "second")
        assert len(c.referrers(name, subject)) == 2
    # a fresh client (no cached knowledge) reads the same through the fallback
    with make_client(registry) as c2:
        assert {d.digest for d in c2.referrers(name, subject)} == {a, b}


# ----------------------------------------------------------------------------- auth


def test_basic_auth_with_credentials_from_auth_file(
    registry_htpasswd: RunningRegistry, tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pathlib import Path

    reg = registry_htpasswd
    assert reg.username and reg.password
    auth_file = Path(str(tmp_path)) / "auth.json"
    import base64

    token = base64.b64encode(f"{reg.username}:{reg.password}".encode()).decode()
    auth_file.write_text(json.dumps({"auths": {reg.host: {"auth": token}}}))
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(auth_file))
    with RegistryClient(reg.host) as c:
        c.ping()
        name = repo()
        digest = push_image(c, name, "v1")
        assert c.get_manifest(name, "v1").digest == digest


def test_basic_auth_without_credentials_says_how_to_log_in(
    registry_htpasswd: RunningRegistry, tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(tmp_path) + "/none.json")
    with RegistryClient(registry_htpasswd.host) as c, pytest.raises(NetworkError) as exc:
        c.ping()
    assert "docker/config.json" in str(exc.value) and "REGISTRY_AUTH_FILE" in str(exc.value)


def test_basic_auth_with_wrong_password_fails(registry_htpasswd: RunningRegistry) -> None:
    creds = Credentials(registry_htpasswd.username or "", "wrong")
    with (
        RegistryClient(registry_htpasswd.host, auth=creds) as c,
        pytest.raises(NetworkError, match="denied access"),
    ):
        c.blob_exists(repo(), "sha256:" + "0" * 64)


def test_bearer_token_flow_caches_tokens_per_scope(registry_token: RunningRegistry) -> None:
    ts = registry_token.token_server
    assert ts is not None
    t = Traffic()
    with make_client(registry_token, t) as c:
        name = repo()
        before = len(ts.requests)
        digest = push_image(c, name, "v1")
        assert c.get_manifest(name, "v1").digest == digest
        assert c.get_manifest(name, digest).digest == digest
        token_calls = ts.requests[before:]
        scopes = [tuple(r["query"].get("scope", [])) for r in token_calls]
        # one token per distinct scope, not one per request
        assert len(scopes) == len(set(scopes)) and 1 <= len(scopes) <= 3
        assert all(r["user"] == registry_token.username for r in token_calls)
        assert t.count("GET", "/manifests/") == 2


def test_bearer_token_refused_for_wrong_password(registry_token: RunningRegistry) -> None:
    creds = Credentials(registry_token.username or "", "wrong")
    with (
        RegistryClient(registry_token.host, auth=creds) as c,
        pytest.raises(NetworkError, match="log in"),
    ):
        c.blob_exists(repo(), "sha256:" + "0" * 64)


# ----------------------------------------------------------------------------- misbehaving servers


@pytest.fixture
def http_server() -> Iterator[Callable[[Callable[[BaseHTTPRequestHandler], None]], str]]:
    with contextlib.ExitStack() as servers:

        def start(handle: Callable[[BaseHTTPRequestHandler], None]) -> str:
            class H(BaseHTTPRequestHandler):
                def log_message(self, *a: object) -> None:
                    pass

                def do_GET(self) -> None:
                    handle(self)

                do_HEAD = do_GET

            url = servers.enter_context(serving(ThreadingHTTPServer(("127.0.0.1", 0), H)))
            return url.removeprefix("http://")

        yield start


def _reply(h: BaseHTTPRequestHandler, code: int, body: bytes, headers: dict[str, str]) -> None:
    h.send_response(code)
    for k, v in headers.items():
        h.send_header(k, v)
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    if h.command != "HEAD":
        # the client may stop reading (an oversized body): that is the point
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            h.wfile.write(body)


def test_manifest_with_wrong_digest_is_refused(http_server: Callable[..., str]) -> None:
    wrong = json.dumps(
        {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": {}, "layers": []}
    ).encode()
    requested = "sha256:" + hashlib.sha256(b"something else").hexdigest()

    def handle(h: BaseHTTPRequestHandler) -> None:
        # a lying registry: claims the requested digest in the header, sends other bytes
        _reply(h, 200, wrong, {"Content-Type": OCI_MANIFEST, "Docker-Content-Digest": requested})

    host = http_server(handle)
    with RegistryClient(host, retries=0) as c:
        with pytest.raises(VerificationError, match="does not match"):
            c.get_manifest("evil/image", requested)
        # by tag: the digest is computed from the bytes, the header is not believed
        fetched = c.get_manifest("evil/image", "latest")
        assert fetched.digest == "sha256:" + hashlib.sha256(wrong).hexdigest() != requested


def test_oversized_manifest_is_refused(http_server: Callable[..., str]) -> None:
    def handle(h: BaseHTTPRequestHandler) -> None:
        _reply(h, 200, b"{" + b" " * (5 << 20) + b"}", {"Content-Type": OCI_MANIFEST})

    with (
        RegistryClient(http_server(handle), retries=0) as c,
        pytest.raises(NetworkError, match="limit"),
    ):
        c.get_manifest("big/image", "latest")


def test_retries_with_backoff_on_503_and_429(http_server: Callable[..., str]) -> None:
    hits: list[str] = []

    def handle(h: BaseHTTPRequestHandler) -> None:
        hits.append(h.path)
        if len(hits) == 1:
            _reply(h, 503, b"", {})
        elif len(hits) == 2:
            _reply(h, 429, b"", {"Retry-After": "0"})
        else:
            _reply(h, 200, b"{}", {"Content-Type": "application/json"})

    with RegistryClient(http_server(handle), retries=3, backoff=0.01) as c:
        c.ping()
    assert len(hits) == 3


def test_retries_give_up_with_a_clear_error(http_server: Callable[..., str]) -> None:
    hits: list[str] = []

    def handle(h: BaseHTTPRequestHandler) -> None:
        hits.append(h.path)
        _reply(h, 503, b"", {})

    with (
        RegistryClient(http_server(handle), retries=2, backoff=0.01) as c,
        pytest.raises(NetworkError, match="HTTP 503"),
    ):
        c.ping()
    assert len(hits) == 3


def test_connection_refused_is_retried_then_reported() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # nothing listens on ``port`` now
    with (
        RegistryClient(f"127.0.0.1:{port}", retries=2, backoff=0.01) as c,
        pytest.raises(NetworkError, match="cannot reach registry"),
    ):
        c.ping()


# ----------------------------------------------------------------------------- plain HTTP policy


def test_plain_http_to_a_non_loopback_host_is_refused_before_connecting() -> None:
    t = Traffic()
    http = httpx.Client(event_hooks={"request": [t]})
    with pytest.raises(UsageError, match="insecure-registry"):
        RegistryClient("http://192.0.2.10:5000", http=http)
    assert t.seen == []
    # without a scheme, a non-loopback host gets HTTPS; loopback gets plain HTTP
    assert RegistryClient("192.0.2.10:5000", http=http).base_url == "https://192.0.2.10:5000"
    assert RegistryClient("localhost:5000", http=http).base_url == "http://localhost:5000"
    assert RegistryClient("[::1]:5000", http=http).base_url == "http://[::1]:5000"
    assert RegistryClient("127.0.0.2:5000", http=http).base_url == "http://127.0.0.2:5000"
    # explicit opt-in allows it
    insecure = RegistryClient("http://192.0.2.10:5000", http=http, insecure=True)
    assert insecure.base_url == "http://192.0.2.10:5000"
    assert t.seen == []
    http.close()


# ----------------------------------------------------------------------------- lost answers


class DroppingProxy:
    """A real HTTP proxy on 127.0.0.1 in front of docker-registry that forwards every request
    but, for the first request matching ``drop``, closes the connection instead of answering
    (the registry has processed it; the client never hears back)."""

    def __init__(self, upstream: str, drop: Callable[[str, str], bool]) -> None:
        self.upstream = upstream
        self.drop = drop
        self.dropped: list[tuple[str, str]] = []
        self.seen: list[tuple[str, str]] = []
        proxy = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a: object) -> None:
                pass

            def _relay(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k: v for k, v in self.headers.items() if k.lower() != "content-length"}
                with httpx.Client(timeout=30) as up:
                    resp = up.request(
                        self.command, proxy.upstream + self.path, headers=headers, content=body
                    )
                proxy.seen.append((self.command, self.path))
                if not proxy.dropped and proxy.drop(self.command, self.path):
                    proxy.dropped.append((self.command, self.path))
                    self.close_connection = True
                    return  # processed upstream, answer lost
                self.send_response(resp.status_code)
                for k, v in resp.headers.items():
                    if k.lower() not in ("content-length", "transfer-encoding", "connection"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(resp.content)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(resp.content)

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _relay

        self._serving = contextlib.ExitStack()
        url = self._serving.enter_context(serving(ThreadingHTTPServer(("127.0.0.1", 0), H)))
        self.host = url.removeprefix("http://")

    def close(self) -> None:
        self._serving.close()


@pytest.mark.parametrize(
    ("what", "drop"),
    [
        ("first chunk", lambda m, p: m == "PATCH"),
        ("commit", lambda m, p: m == "PUT" and "digest=" in p),
    ],
)
def test_upload_survives_a_lost_answer(
    registry: RunningRegistry, what: str, drop: Callable[[str, str], bool]
) -> None:
    proxy = DroppingProxy(registry.url, drop)
    try:
        data = os.urandom((5 << 20) + 1000)
        d, n, _ = blob(data)
        with RegistryClient(proxy.host, chunk_size=4 << 20, backoff=0.01) as c:
            name = repo()
            assert c.upload_blob(name, d, n, data) == "uploaded"
            assert proxy.dropped, f"the proxy never dropped the {what}"
            assert c.get_blob(name, d) == data
    finally:
        proxy.close()


def test_referrers_api_with_pagination_and_client_side_filter(
    http_server: Callable[..., str],
) -> None:
    """A registry that implements OCI 1.1 referrers (two pages, no server-side filtering)."""
    subject = "sha256:" + "1" * 64
    entries = [
        {"mediaType": OCI_MANIFEST, "digest": "sha256:" + c * 64, "size": 10,
         "artifactType": at}
        for c, at in (("a", "application/x-sbom"), ("b", "application/x-sig"),
                      ("c", "application/x-sbom"))
    ]  # fmt: skip
    paths: list[str] = []

    def handle(h: BaseHTTPRequestHandler) -> None:
        paths.append(h.path)
        if h.path.startswith(f"/v2/a/b/referrers/{subject}"):
            second = "page=2" in h.path
            body = {"schemaVersion": 2, "mediaType": OCI_INDEX,
                    "manifests": entries[2:] if second else entries[:2]}  # fmt: skip
            headers = {"Content-Type": OCI_INDEX}
            if not second:
                headers["Link"] = f'</v2/a/b/referrers/{subject}?page=2>; rel="next"'
            _reply(h, 200, json.dumps(body).encode(), headers)
        else:
            _reply(h, 404, b"", {})

    with RegistryClient(http_server(handle), retries=0) as c:
        found = c.referrers("a/b", subject, artifact_type="application/x-sbom")
    assert [d.digest for d in found] == ["sha256:" + "a" * 64, "sha256:" + "c" * 64]
    assert all("manifests/sha256-" not in p for p in paths)  # no fallback tag lookup
    assert any("artifactType=application%2Fx-sbom" in p for p in paths)


def test_insecure_mode_falls_back_from_https_to_plain_http(registry: RunningRegistry) -> None:
    # The probe only runs for non-loopback hosts, which tests must not contact; so take a
    # loopback client and put it in the state an insecure non-loopback client starts in.
    with RegistryClient(registry.host, insecure=True) as c:
        c.scheme = "https"
        c._probe_scheme = True
        c.ping()  # the HTTPS handshake fails against the plain-HTTP registry; HTTP works
        assert c.base_url == f"http://{registry.host}"


def test_delete_manifest_and_blob(registry: RunningRegistry) -> None:
    from assay.oci.registry import NotFoundError

    with make_client(registry) as c:
        name = repo()
        digest = push_image(c, name, "v1", payload=b"to be deleted")
        layer = "sha256:" + hashlib.sha256(b"to be deleted").hexdigest()
        c.delete_manifest(name, digest)
        with pytest.raises(NotFoundError):
            c.get_manifest(name, digest)
        c.delete_blob(name, layer)
        assert not c.blob_exists(name, layer)


def test_identity_token_from_auth_file_uses_the_oauth2_refresh_grant(
    registry_token: RunningRegistry, tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pathlib import Path

    ts = registry_token.token_server
    assert ts is not None
    auth_file = Path(str(tmp_path)) / "auth.json"
    entry = {"auth": "", "identitytoken": ts.refresh_token}
    auth_file.write_text(json.dumps({"auths": {registry_token.host: entry}}))
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(auth_file))
    before = len(ts.requests)
    with RegistryClient(registry_token.host) as c:
        name = repo()
        digest = push_image(c, name, "v1")
        assert c.get_manifest(name, "v1").digest == digest
    calls = ts.requests[before:]
    assert calls and all(r.get("method") == "POST" for r in calls)
    assert all(r["form"]["grant_type"] == ["refresh_token"] for r in calls)
    # a wrong refresh token is refused with the login hint
    entry["identitytoken"] = "refresh-wrong"
    auth_file.write_text(json.dumps({"auths": {registry_token.host: entry}}))
    with RegistryClient(registry_token.host) as c, pytest.raises(NetworkError, match="log in"):
        c.blob_exists(repo(), "sha256:" + "0" * 64)
