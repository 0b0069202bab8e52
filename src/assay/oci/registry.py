"""A client for OCI distribution registries (distribution spec v1.1, Docker registry API v2).

``RegistryClient(host)`` talks to one registry host. It does the authentication handshake
(``assay.oci.auth``), retries connection errors and 429/5xx answers with exponential backoff,
bounds every response it reads into memory, and never trusts the registry about content:

* a manifest fetched by digest must hash to that digest, and a manifest fetched by tag gets its
  digest computed from the bytes received (``Docker-Content-Digest`` is only cross-checked);
* a blob is hashed while it streams and the stream fails at its end if the hash is wrong.

Plain HTTP is used only for loopback hosts (127.0.0.0/8, ``localhost``, ``[::1]``) or when the
caller passes ``insecure=True`` (the CLI's ``--insecure-registry``, which warns every time). A
non-loopback host given as ``http://…`` without ``insecure`` is refused before any connection.

Referrers (OCI 1.1): ``referrers()`` uses ``GET /v2/<name>/referrers/<digest>`` and, when the
registry answers 404 (registries that predate OCI 1.1, such as distribution 2.8), the fallback tag
scheme: the tag ``<alg>-<hex>`` holds an image index listing the referrers. ``put_manifest`` of a
manifest with a ``subject`` keeps that index up to date when the registry does not confirm with
an ``OCI-Subject`` header. The fallback update is read-modify-write; two writers racing on one
subject can lose an entry (the distribution spec offers no conditional PUT) — re-run to repair.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import httpx

from assay._http import client_transports
from assay._json import load_json, load_json_object
from assay._text import printable
from assay.errors import InputError, NetworkError, UsageError, VerificationError
from assay.oci.auth import Authenticator, Credentials, parse_challenges
from assay.oci.digest import Digest
from assay.oci.jsonc import canonical_json
from assay.oci.mediatypes import (
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    INDEX_TYPES,
    OCI_INDEX,
    OCI_MANIFEST,
)
from assay.oci.model import Descriptor

__all__ = [
    "MANIFEST_ACCEPT",
    "MAX_MANIFEST_SIZE",
    "AccessDeniedError",
    "FetchedManifest",
    "NotFoundError",
    "RegistryClient",
    "is_loopback_host",
    "referrers_fallback_tag",
]

log = logging.getLogger(__name__)


#: Every manifest type assay reads, for the ``Accept`` header.
MANIFEST_ACCEPT = (OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST)

MAX_MANIFEST_SIZE = 4 << 20  # the distribution spec's recommended manifest limit
MAX_LIST_RESPONSE = 4 << 20  # one page of tags / referrers
MAX_ERROR_BODY = 64 << 10
MAX_PAGES = 10_000
MONOLITHIC_LIMIT = 5 << 20  # blobs up to this size go up in one PUT
DEFAULT_CHUNK_SIZE = 16 << 20  # larger blobs go up in PATCH chunks of this size
_RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
_MAX_RETRY_AFTER = 30.0

_LOGIN_HINT = "log in: credentials in ~/.docker/config.json or REGISTRY_AUTH_FILE"
_DIGEST_RE = re.compile(r"^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$")
_REPO_RE = re.compile(
    r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$"
)
_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")


class Readable(Protocol):
    """What ``upload_blob`` needs of a stream: ``read(n)`` and ``close()``."""

    def read(self, n: int = -1, /) -> bytes: ...

    def close(self) -> None: ...


BlobSource = bytes | Path | Callable[[], Readable]


class NotFoundError(NetworkError):
    """The registry answered 404 for a manifest, blob or repository."""


class AccessDeniedError(NetworkError):
    """The registry answered 401/403: missing or insufficient credentials."""


def is_loopback_host(host: str) -> bool:
    """True for ``localhost``, 127.0.0.0/8 and ``::1`` (with or without a port)."""
    h = host
    if h.startswith("["):
        h = h[1 : h.find("]")] if "]" in h else h[1:]
    elif h.count(":") == 1:
        h = h.split(":", 1)[0]
    h = h.lower()
    if h == "localhost" or h.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False


def referrers_fallback_tag(digest: str) -> str:
    """The referrers tag schema tag for ``digest``: ``sha256:abc…`` → ``sha256-abc…``."""
    alg, _, hexpart = digest.partition(":")
    tag = f"{alg}-{hexpart}"[:128]
    return re.sub(r"[^A-Za-z0-9_.-]", "-", tag)


def _check_digest(digest: str) -> str:
    if not _DIGEST_RE.match(digest):
        raise InputError(
            f"{digest!r} is not a digest assay can verify (expected sha256:<64 hex> or "
            "sha512:<128 hex>)"
        )
    return digest


def _hasher(digest: str) -> Any:
    alg = digest.split(":", 1)[0]
    if alg == "sha256":
        return hashlib.sha256()
    if alg == "sha512":
        return hashlib.sha512()
    raise VerificationError(f"cannot verify {digest}: unsupported digest algorithm {alg!r}")


def _check_repo(repository: str) -> str:
    if not _REPO_RE.match(repository) or len(repository) > 255:
        raise UsageError(
            f"{repository!r} is not a valid repository name (lower-case path components of "
            "letters, digits and separators . _ __ -)"
        )
    return repository


def _check_reference(reference: str) -> str:
    if not (_TAG_RE.match(reference) or _DIGEST_RE.match(reference)):
        raise UsageError(f"{reference!r} is neither a valid tag nor a sha256/sha512 digest")
    return reference


@dataclass(frozen=True)
class FetchedManifest:
    """A manifest or index as received, with its digest computed from ``data``."""

    data: bytes
    media_type: str
    digest: Digest

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def descriptor(self) -> Descriptor:
        return Descriptor(self.media_type, self.digest, len(self.data))

    def json(self) -> dict[str, Any]:
        return load_json_object(
            self.data, what=f"manifest {self.digest}", max_size=MAX_MANIFEST_SIZE
        )

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES


def _read_limited(resp: httpx.Response, limit: int, what: str) -> bytes:
    declared = resp.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise NetworkError(f"{what}: the registry announced {declared} bytes; the limit is {limit}")
    chunks: list[bytes] = []
    total = 0
    for chunk in resp.iter_bytes():
        total += len(chunk)
        if total > limit:
            raise NetworkError(f"{what}: the registry sent more than the {limit}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


def _error_detail(resp: httpx.Response) -> str:
    """The registry's error codes and messages from a (bounded) error body, or ''."""
    try:
        body = _read_limited(resp, MAX_ERROR_BODY, "error body")
    except (NetworkError, httpx.HTTPError):
        return ""
    try:
        doc = load_json(body, what="error body", max_size=MAX_ERROR_BODY)
    except InputError:
        return ""
    if not isinstance(doc, dict) or not isinstance(doc.get("errors"), list):
        return ""
    parts = []
    for err in doc["errors"][:5]:
        if isinstance(err, dict):
            code = str(err.get("code", ""))[:64]
            msg = str(err.get("message", ""))[:200]
            parts.append(f"{code}: {msg}" if msg else code)
    return printable("; ".join(parts))


def _parse_next_link(header: str | None) -> str | None:
    if not header:
        return None
    for part in header.split(","):
        m = re.match(r"\s*<([^>]*)>\s*;(.*)$", part)
        if m and re.search(r'rel="?next"?', m.group(2)):
            return m.group(1)
    return None


class RegistryClient:
    """Distribution-spec client for one registry host. Thread-safe; close it (or use ``with``).

    ``timeout`` bounds each socket operation; ``deadline`` each whole request, body included
    (default ``ASSAY_HTTP_DEADLINE``, see :mod:`assay._http`).
    """

    def __init__(
        self,
        host: str,
        *,
        insecure: bool = False,
        auth: Credentials | Authenticator | None = None,
        http: httpx.Client | None = None,
        retries: int = 3,
        backoff: float = 0.5,
        timeout: float = 60.0,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        monolithic_limit: int = MONOLITHIC_LIMIT,
        deadline: float | None = None,
    ) -> None:
        scheme: str | None = None
        h = host.strip()
        if h.startswith("docker://"):
            h = h[len("docker://") :]
        for prefix in ("https://", "http://"):
            if h.startswith(prefix):
                scheme = prefix[:-3]
                h = h[len(prefix) :]
        h = h.rstrip("/")
        if not h or "/" in h or "@" in h:
            raise UsageError(f"{host!r} is not a registry host (expected HOST or HOST:PORT)")
        self.host = h
        self.loopback = is_loopback_host(h)
        self.insecure = insecure
        if scheme == "http" and not (self.loopback or insecure):
            raise UsageError(
                f"refusing plain HTTP to registry {h}: it is not a loopback address; "
                "use HTTPS, or pass --insecure-registry if you accept that traffic can be read "
                "and changed on the way"
            )
        if scheme is None:
            scheme = "http" if self.loopback else "https"
        self.scheme = scheme
        self._probe_scheme = (
            insecure and not self.loopback and not host.strip().startswith(("https://", "http://"))
        )
        if isinstance(auth, Authenticator):
            self.auth = auth
        else:
            self.auth = Authenticator(h, auth)
        self._own_http = http is None
        self.http = http or httpx.Client(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 15.0)),
            **client_transports(deadline, verify=not insecure),
            follow_redirects=False,
            headers={"User-Agent": "assay"},
        )
        self.retries = max(0, retries)
        self.backoff = backoff
        self.chunk_size = max(1, chunk_size)
        self.monolithic_limit = max(0, monolithic_limit)
        self._referrers_api: bool | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        if self._own_http:
            self.http.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.host}"

    def _url(self, path: str) -> httpx.URL:
        return httpx.URL(self.base_url + path)

    # ------------------------------------------------------------------ transport
    def _maybe_probe(self) -> None:
        """With ``insecure`` and no explicit scheme: HTTPS (unverified) if it answers, else HTTP."""
        if not self._probe_scheme:
            return
        with self._lock:
            if not self._probe_scheme:
                return
            try:
                resp = self.http.get(f"https://{self.host}/v2/")
                resp.close()
            except httpx.TransportError:
                log.warning("registry %s does not answer HTTPS; using plain HTTP", self.host)
                self.scheme = "http"
            self._probe_scheme = False

    def _send(
        self,
        method: str,
        url: httpx.URL | str,
        *,
        repository: str = "",
        scopes: tuple[str, ...] = (),
        headers: dict[str, str] | None = None,
        content: bytes | None = None,
        follow_redirects: bool = False,
        retry: bool = True,
    ) -> httpx.Response:
        """Send with auth and retries; the caller must close the (streamed) response.

        ``retry=False`` for requests inside an upload session: resending one after a lost answer
        confuses the session, so the whole upload is retried instead (``upload_blob``).
        """
        self._maybe_probe()
        target = url if isinstance(url, httpx.URL) else self._url(url)
        base = httpx.URL(self.base_url)
        if (target.scheme, target.host, target.port) != (base.scheme, base.host, base.port):
            raise NetworkError(
                f"registry {self.host} pointed to another host ({target.scheme}://{target.host}"
                f"{':' + str(target.port) if target.port else ''}); refusing to send requests "
                "or credentials there"
            )
        attempt = 0
        auth_retried = False
        while True:
            req_headers = dict(headers or {})
            authz = self.auth.header(self.http, scopes, repository)
            if authz:
                req_headers["Authorization"] = authz
            request = self.http.build_request(method, target, headers=req_headers, content=content)
            try:
                resp = self.http.send(request, stream=True, follow_redirects=follow_redirects)
            except httpx.TransportError as exc:
                if retry and attempt < self.retries:
                    delay = self.backoff * (2**attempt)
                    log.info("%s %s failed (%s); retrying in %.1fs", method, target, exc, delay)
                    time.sleep(delay)
                    attempt += 1
                    continue
                hint = "check that it is running and the address is right"
                if isinstance(exc, httpx.ConnectError) and "SSL" in str(exc):
                    hint = (
                        "it does not speak verified HTTPS; if it is a test registry you trust, "
                        "pass --insecure-registry"
                    )
                raise NetworkError(
                    f"cannot reach registry {self.host} ({method} {target.path}): {exc}; {hint}"
                ) from exc
            if resp.status_code == 401 and not auth_retried:
                challenges = parse_challenges(", ".join(resp.headers.get_list("www-authenticate")))
                resp.close()  # body unread: it is not needed, and it could be huge
                chosen = self.auth.remember(challenges)
                if chosen is None:
                    raise NetworkError(
                        f"registry {self.host} requires authentication for {repository or '/v2/'} "
                        f"but offered no usable scheme; {_LOGIN_HINT}"
                    )
                if chosen.scheme == "bearer" and chosen.scopes:
                    scopes = tuple(dict.fromkeys((*scopes, *chosen.scopes)))
                if authz:  # the token we sent was refused (expired, too narrow): drop it
                    self.auth.invalidate(scopes)
                auth_retried = True
                continue
            if retry and resp.status_code in _RETRY_STATUS and attempt < self.retries:
                delay = self.backoff * (2**attempt)
                ra = resp.headers.get("retry-after", "")
                if ra.isdigit():
                    delay = min(float(ra), _MAX_RETRY_AFTER)
                resp.close()
                log.info(
                    "%s %s: HTTP %d; retrying in %.1fs", method, target, resp.status_code, delay
                )
                time.sleep(delay)
                attempt += 1
                continue
            return resp

    def _fail(self, resp: httpx.Response, what: str, repository: str = "") -> NetworkError:
        """An error for an unexpected answer; reads (bounded) and closes ``resp``."""
        try:
            detail = _error_detail(resp)
        finally:
            resp.close()
        where = f"{self.host}/{repository}" if repository else self.host
        code = resp.status_code
        tail = f" ({detail})" if detail else ""
        if code == 401:
            creds = self.auth.credentials(repository)
            who = (
                f" as {creds.username!r} from {creds.source}"
                if creds
                else " (no credentials found)"
            )
            return AccessDeniedError(
                f"{what}: registry {where} denied access{who}{tail}; {_LOGIN_HINT}"
            )
        if code == 403:
            return AccessDeniedError(
                f"{what}: registry {where} forbids this{tail}; the account lacks permission — "
                "ask the registry's administrator or use another repository"
            )
        if code == 404:
            return NotFoundError(f"{what}: not found in {where}{tail}; check the name and tag")
        if code == 429:
            return NetworkError(
                f"{what}: registry {where} is rate-limiting (HTTP 429){tail}; wait and retry"
            )
        return NetworkError(f"{what}: registry {where} answered HTTP {code}{tail}")

    @staticmethod
    def _scopes(repository: str, push: bool = False) -> tuple[str, ...]:
        return (f"repository:{repository}:{'pull,push' if push else 'pull'}",)

    # ------------------------------------------------------------------ base
    def ping(self) -> None:
        """Check that the host speaks the registry API (``GET /v2/``); learn its auth scheme."""
        resp = self._send("GET", "/v2/")
        try:
            if resp.status_code == 200:
                return
            if resp.status_code == 401:
                self.auth.remember(
                    parse_challenges(", ".join(resp.headers.get_list("www-authenticate")))
                )
                if self.auth.credentials() is None:
                    raise NetworkError(
                        f"registry {self.host} requires authentication and no credentials were "
                        f"found; {_LOGIN_HINT}"
                    )
                raise self._fail(resp, "ping")
            if resp.status_code == 404:
                raise NetworkError(
                    f"{self.host} does not speak the registry API (GET /v2/ answered 404); "
                    "check the host name"
                )
            raise self._fail(resp, "ping")
        finally:
            resp.close()

    # ------------------------------------------------------------------ blobs
    def blob_exists(self, repository: str, digest: str) -> bool:
        """``HEAD`` the blob: True if the registry has it in ``repository``."""
        _check_repo(repository)
        _check_digest(digest)
        return self._exists(repository, f"blobs/{digest}", f"blob {digest}", follow_redirects=True)

    def _exists(self, repository: str, path: str, what: str, **send: Any) -> bool:
        """HEAD ``/v2/<repository>/<path>``: 200 → True, 404 → False, anything else fails."""
        resp = self._send(
            "HEAD",
            f"/v2/{repository}/{path}",
            repository=repository,
            scopes=self._scopes(repository),
            **send,
        )
        try:
            if resp.status_code == 200:
                return True
            if resp.status_code == 404:
                return False
            raise self._fail(resp, f"checking {what}", repository)
        finally:
            resp.close()

    def iter_blob(
        self, repository: str, digest: str, *, size: int | None = None, max_size: int | None = None
    ) -> Iterator[bytes]:
        """Stream a blob; raises VerificationError at the end if its hash or size is wrong.

        Consumers must not treat the data as valid before the iterator is exhausted.
        """
        _check_repo(repository)
        _check_digest(digest)
        limit = size if size is not None else max_size
        resp = self._send(
            "GET",
            f"/v2/{repository}/blobs/{digest}",
            repository=repository,
            scopes=self._scopes(repository),
            follow_redirects=True,
        )
        try:
            if resp.status_code != 200:
                raise self._fail(resp, f"fetching blob {digest}", repository)
            h = _hasher(digest)
            total = 0
            for chunk in resp.iter_bytes(1 << 16):
                total += len(chunk)
                if limit is not None and total > limit:
                    raise VerificationError(
                        f"registry {self.host}/{repository} sent more than {limit} bytes for "
                        f"blob {digest}; refusing it"
                    )
                h.update(chunk)
                yield chunk
            if size is not None and total != size:
                raise VerificationError(
                    f"registry {self.host}/{repository} sent {total} bytes for blob {digest}, "
                    f"the descriptor says {size}"
                )
            got = f"{digest.split(':', 1)[0]}:{h.hexdigest()}"
            if got != digest:
                raise VerificationError(
                    f"registry {self.host}/{repository} returned a blob whose digest {got} does "
                    f"not match the requested {digest}; the registry or a proxy altered it"
                )
        except httpx.HTTPError as exc:
            raise NetworkError(f"fetching blob {digest} from {self.host}: {exc}") from exc
        finally:
            resp.close()

    def get_blob(
        self, repository: str, digest: str, *, size: int | None = None, max_size: int = 64 << 20
    ) -> bytes:
        """A whole (small) blob in memory, verified."""
        return b"".join(self.iter_blob(repository, digest, size=size, max_size=max_size))

    def download_blob(
        self, repository: str, digest: str, dest: Path, *, size: int | None = None
    ) -> None:
        """Stream a blob into ``dest`` atomically; nothing is left under ``dest`` if it fails."""
        from assay._atomic import atomic_writer

        with atomic_writer(dest) as fh:
            for chunk in self.iter_blob(repository, digest, size=size):
                fh.write(chunk)

    def mount_blob(self, repository: str, digest: str, from_repository: str) -> bool:
        """Cross-repository mount; True if mounted, False if the registry declined."""
        result, location = self._start_upload(repository, digest, from_repository)
        if location is not None:
            self._cancel_upload(location)
        return result == "mounted"

    def _send_empty(
        self,
        method: str,
        url: httpx.URL,
        repository: str,
        scopes: tuple[str, ...],
        *,
        retry: bool = True,
    ) -> httpx.Response:
        """``_send`` a POST or PUT with an empty body, its ``Content-Length: 0`` stated (a
        registry may refuse either without a length: 411)."""
        return self._send(
            method,
            url,
            repository=repository,
            scopes=scopes,
            headers={"Content-Length": "0"},
            content=b"",
            retry=retry,
        )

    def _start_upload(
        self, repository: str, digest: str | None = None, mount_from: str | None = None
    ) -> tuple[str, httpx.URL | None]:
        path = f"/v2/{repository}/blobs/uploads/"
        scopes = self._scopes(repository, push=True)
        url = self._url(path)
        if mount_from and digest:
            _check_repo(mount_from)
            url = url.copy_merge_params({"mount": digest, "from": mount_from})
            scopes = (*scopes, f"repository:{mount_from}:pull")
        resp = self._send_empty("POST", url, repository, scopes)
        try:
            if resp.status_code == 201 and mount_from:
                return "mounted", None
            if resp.status_code != 202:
                raise self._fail(resp, "starting a blob upload", repository)
            return "started", self._location(resp)
        finally:
            resp.close()

    def _location(self, resp: httpx.Response) -> httpx.URL:
        loc = resp.headers.get("location")
        if not loc:
            raise NetworkError(
                f"registry {self.host} accepted an upload but sent no Location header"
            )
        url = httpx.URL(self.base_url).join(loc)
        if url.host != httpx.URL(self.base_url).host:
            raise NetworkError(
                f"registry {self.host} sent an upload location on another host ({url.host}); "
                "refusing to send data there"
            )
        return url

    def _cancel_upload(self, location: httpx.URL) -> None:
        with contextlib.suppress(NetworkError):
            resp = self._send("DELETE", location, scopes=())
            resp.close()

    def upload_blob(
        self,
        repository: str,
        digest: str,
        size: int,
        source: BlobSource,
        *,
        mount_from: str | None = None,
        check_exists: bool = True,
    ) -> str:
        """Make sure ``repository`` has the blob. Returns ``exists``, ``mounted`` or ``uploaded``.

        ``source`` is the blob's bytes, a file path, or a callable opening a binary stream. The
        data are hashed as they are read; if they do not match ``digest`` the upload is cancelled
        before it is committed (VerificationError). Blobs up to ``monolithic_limit`` bytes go up in
        one ``PUT``; larger ones in ``PATCH`` chunks of ``chunk_size`` with ``Content-Range``,
        then a ``PUT ?digest=`` that commits them once the local hash has been checked.
        """
        _check_repo(repository)
        _check_digest(digest)
        if check_exists and self.blob_exists(repository, digest):
            return "exists"
        attempt = 0
        while True:
            try:
                return self._upload_once(repository, digest, size, source, mount_from)
            except NetworkError as exc:
                if attempt >= self.retries or isinstance(exc, AccessDeniedError):
                    raise
                delay = self.backoff * (2**attempt)
                attempt += 1
                log.info("upload of %s failed (%s); restarting in %.1fs", digest, exc, delay)
                time.sleep(delay)
                # the commit may have succeeded with its answer lost
                if self.blob_exists(repository, digest):
                    return "uploaded"

    def _upload_once(
        self,
        repository: str,
        digest: str,
        size: int,
        source: BlobSource,
        mount_from: str | None,
    ) -> str:
        """One upload session: POST, then PUT (small) or PATCH chunks + PUT; no retries."""
        scopes = self._scopes(repository, push=True)
        state, location = self._start_upload(repository, digest, mount_from)
        if state == "mounted":
            return "mounted"
        assert location is not None
        try:
            with self._open_source(source) as fh:
                h = _hasher(digest)
                if size <= self.monolithic_limit:
                    data = fh.read(size + 1)
                    h.update(data)
                    self._check_local(digest, size, h, len(data))
                    final = location.copy_merge_params({"digest": digest})
                    resp = self._send(
                        "PUT",
                        final,
                        repository=repository,
                        scopes=scopes,
                        headers={"Content-Type": "application/octet-stream"},
                        content=data,
                        retry=False,
                    )
                else:
                    offset = 0
                    while True:
                        chunk = fh.read(self.chunk_size)
                        if not chunk:
                            break
                        if offset + len(chunk) > size:
                            raise VerificationError(
                                f"local blob {digest} is larger than its descriptor's {size} "
                                "bytes; the OCI layout is corrupt"
                            )
                        h.update(chunk)
                        end = offset + len(chunk) - 1
                        resp = self._send(
                            "PATCH",
                            location,
                            repository=repository,
                            scopes=scopes,
                            headers={
                                "Content-Type": "application/octet-stream",
                                "Content-Range": f"{offset}-{end}",
                            },
                            content=chunk,
                            retry=False,
                        )
                        try:
                            if resp.status_code != 202:
                                raise self._fail(resp, f"uploading blob {digest}", repository)
                            location = self._location(resp)
                            rng = resp.headers.get("range")
                            if rng and rng not in (f"0-{end}", f"bytes=0-{end}"):
                                raise NetworkError(
                                    f"registry {self.host} acknowledged range {rng} after "
                                    f"receiving bytes 0-{end} of blob {digest}"
                                )
                        finally:
                            resp.close()
                        offset = end + 1
                    self._check_local(digest, size, h, offset)
                    final = location.copy_merge_params({"digest": digest})
                    resp = self._send_empty("PUT", final, repository, scopes, retry=False)
        except BaseException:
            self._cancel_upload(location)
            raise
        try:
            if resp.status_code not in (201, 204):
                raise self._fail(resp, f"completing upload of blob {digest}", repository)
            echoed = resp.headers.get("docker-content-digest")
            if echoed and echoed != digest:
                raise VerificationError(
                    f"registry {self.host}/{repository} stored blob {digest} as {echoed}"
                )
        finally:
            resp.close()
        return "uploaded"

    @staticmethod
    @contextlib.contextmanager
    def _open_source(source: BlobSource) -> Iterator[Readable]:
        import io

        if isinstance(source, bytes):
            yield io.BytesIO(source)
        elif isinstance(source, Path):
            with source.open("rb") as fh:
                yield fh
        else:
            opened = source()
            try:
                yield opened
            finally:
                opened.close()

    @staticmethod
    def _check_local(digest: str, size: int, h: Any, count: int) -> None:
        got = f"{digest.split(':', 1)[0]}:{h.hexdigest()}"
        if count != size or got != digest:
            raise VerificationError(
                f"local blob {digest} ({size} bytes) actually has {count} bytes and digest "
                f"{got}; the OCI layout is corrupt — rebuild it"
            )

    def delete_blob(self, repository: str, digest: str) -> None:
        self._delete("blobs", "blob", repository, digest)

    def _delete(self, path: str, what: str, repository: str, digest: str) -> None:
        _check_repo(repository)
        _check_digest(digest)
        resp = self._send(
            "DELETE",
            f"/v2/{repository}/{path}/{digest}",
            repository=repository,
            scopes=(f"repository:{repository}:delete",),
        )
        try:
            if resp.status_code not in (202, 200):
                raise self._fail(resp, f"deleting {what} {digest}", repository)
        finally:
            resp.close()

    # ------------------------------------------------------------------ manifests
    def get_manifest(
        self,
        repository: str,
        reference: str,
        *,
        accept: tuple[str, ...] = MANIFEST_ACCEPT,
    ) -> FetchedManifest:
        """Fetch a manifest or index by tag or digest, verified (see the module docstring)."""
        _check_repo(repository)
        _check_reference(reference)
        resp = self._send(
            "GET",
            f"/v2/{repository}/manifests/{reference}",
            repository=repository,
            scopes=self._scopes(repository),
            headers={"Accept": ", ".join(accept)},
        )
        try:
            if resp.status_code != 200:
                raise self._fail(resp, f"fetching manifest {reference}", repository)
            data = _read_limited(
                resp, MAX_MANIFEST_SIZE, f"manifest {self.host}/{repository}:{reference}"
            )
            header_type = resp.headers.get("content-type", "").split(";", 1)[0].strip()
            echoed = resp.headers.get("docker-content-digest")
        except httpx.HTTPError as exc:
            raise NetworkError(f"fetching manifest from {self.host}: {exc}") from exc
        finally:
            resp.close()
        if _DIGEST_RE.match(reference):
            h = _hasher(reference)
            h.update(data)
            got = f"{reference.split(':', 1)[0]}:{h.hexdigest()}"
            if got != reference:
                raise VerificationError(
                    f"registry {self.host}/{repository} returned a manifest whose digest {got} "
                    f"does not match the requested {reference}; refusing it — the registry or "
                    "something between it and you altered the content"
                )
            digest = Digest(reference)
        else:
            digest = Digest("sha256:" + hashlib.sha256(data).hexdigest())
            if echoed and echoed.startswith("sha256:") and echoed != digest:
                log.warning(
                    "registry %s says %s:%s is %s, but its bytes hash to %s; using the latter",
                    self.host,
                    repository,
                    reference,
                    echoed,
                    digest,
                )
        media_type = self._media_type(header_type, data)
        return FetchedManifest(data, media_type, digest)

    @staticmethod
    def _media_type(header_type: str, data: bytes) -> str:
        doc = load_json_object(data, what="manifest from the registry", max_size=MAX_MANIFEST_SIZE)
        body_type = doc.get("mediaType")
        if isinstance(body_type, str) and body_type:
            if header_type in MANIFEST_ACCEPT and header_type != body_type:
                raise VerificationError(
                    f"the registry labelled a manifest {header_type} but its mediaType says "
                    f"{body_type}; refusing the ambiguous document"
                )
            return body_type
        if header_type in MANIFEST_ACCEPT:
            return header_type
        return OCI_INDEX if "manifests" in doc else OCI_MANIFEST

    def resolve(self, repository: str, reference: str) -> Descriptor:
        """The descriptor (media type, digest computed from the bytes, size) of a tag or digest."""
        return self.get_manifest(repository, reference).descriptor

    def manifest_exists(self, repository: str, reference: str) -> bool:
        """``HEAD`` a manifest (by digest, for skipping uploads; tags are resolved with GET)."""
        _check_repo(repository)
        _check_reference(reference)
        return self._exists(
            repository,
            f"manifests/{reference}",
            f"manifest {reference}",
            headers={"Accept": ", ".join(MANIFEST_ACCEPT)},
        )

    def put_manifest(
        self,
        repository: str,
        reference: str,
        data: bytes,
        media_type: str,
        *,
        update_referrers_fallback: bool = True,
    ) -> Digest:
        """Upload a manifest or index under a tag or its digest; returns its digest.

        If the document has a ``subject`` and the registry does not answer with ``OCI-Subject``
        (it does not implement the referrers API), the fallback referrers index is updated.
        """
        _check_repo(repository)
        _check_reference(reference)
        if len(data) > MAX_MANIFEST_SIZE:
            raise InputError(
                f"manifest is {len(data)} bytes; registries accept at most {MAX_MANIFEST_SIZE}"
            )
        digest = Digest("sha256:" + hashlib.sha256(data).hexdigest())
        if _DIGEST_RE.match(reference) and reference != digest:
            raise InputError(f"pushing a manifest by digest {reference} but its bytes are {digest}")
        resp = self._send(
            "PUT",
            f"/v2/{repository}/manifests/{reference}",
            repository=repository,
            scopes=self._scopes(repository, push=True),
            headers={"Content-Type": media_type},
            content=data,
        )
        try:
            if resp.status_code not in (201, 200, 202):
                raise self._fail(resp, f"pushing manifest {reference}", repository)
            echoed = resp.headers.get("docker-content-digest")
            subject_ack = resp.headers.get("oci-subject")
        finally:
            resp.close()
        if echoed and echoed.startswith("sha256:") and echoed != digest:
            raise VerificationError(
                f"registry {self.host}/{repository} stored the manifest as {echoed}, but its "
                f"bytes are {digest}"
            )
        if update_referrers_fallback and not subject_ack:
            self._maybe_update_fallback(repository, data, media_type, digest)
        return digest

    def delete_manifest(self, repository: str, digest: str) -> None:
        self._delete("manifests", "manifest", repository, digest)

    # ------------------------------------------------------------------ tags
    def list_tags(self, repository: str, *, page_size: int | None = None) -> list[str]:
        """All tags of ``repository``, following ``Link: <…>; rel="next"`` pagination."""
        _check_repo(repository)
        url = self._url(f"/v2/{repository}/tags/list")
        if page_size:
            url = url.copy_merge_params({"n": str(page_size)})
        tags: list[str] = []
        for _ in range(MAX_PAGES):
            resp = self._send("GET", url, repository=repository, scopes=self._scopes(repository))
            try:
                if resp.status_code == 404:
                    detail = _error_detail(resp)
                    if "NAME_UNKNOWN" in detail:
                        return []
                    raise NetworkError(
                        f"listing tags: {self.host}/{repository} not found ({detail or 'HTTP 404'})"
                    )
                if resp.status_code != 200:
                    raise self._fail(resp, "listing tags", repository)
                body = _read_limited(resp, MAX_LIST_RESPONSE, f"tag list of {repository}")
                link = _parse_next_link(resp.headers.get("link"))
            finally:
                resp.close()
            try:
                doc = load_json(body, what="tag list", max_size=MAX_LIST_RESPONSE)
            except InputError as exc:
                raise NetworkError(
                    f"registry {self.host} sent an invalid tag list: {exc}"
                ) from None
            page = doc.get("tags") if isinstance(doc, dict) else None
            if page is not None and not (
                isinstance(page, list) and all(isinstance(t, str) for t in page)
            ):
                raise NetworkError(f"registry {self.host} sent a malformed tag list")
            tags.extend(page or [])
            if not link:
                return tags
            url = httpx.URL(self.base_url).join(link)
        raise NetworkError(f"registry {self.host} paginated tags of {repository} endlessly")

    # ------------------------------------------------------------------ referrers
    def referrers(
        self, repository: str, digest: str, *, artifact_type: str | None = None
    ) -> list[Descriptor]:
        """Descriptors of the manifests whose ``subject`` is ``digest`` (OCI 1.1 or fallback)."""
        _check_repo(repository)
        _check_digest(digest)
        if self._referrers_api is not False:
            url = self._url(f"/v2/{repository}/referrers/{digest}")
            if artifact_type:
                url = url.copy_merge_params({"artifactType": artifact_type})
            out: list[Descriptor] = []
            for _ in range(MAX_PAGES):
                resp = self._send(
                    "GET",
                    url,
                    repository=repository,
                    scopes=self._scopes(repository),
                    headers={"Accept": OCI_INDEX},
                )
                try:
                    if resp.status_code == 404 and not out:
                        self._referrers_api = False
                        break
                    if resp.status_code != 200:
                        raise self._fail(resp, f"listing referrers of {digest}", repository)
                    body = _read_limited(resp, MAX_LIST_RESPONSE, f"referrers of {digest}")
                    link = _parse_next_link(resp.headers.get("link"))
                finally:
                    resp.close()
                self._referrers_api = True
                out.extend(self._index_entries(body, f"referrers of {digest}"))
                if not link:
                    break
                url = httpx.URL(self.base_url).join(link)
            else:
                raise NetworkError(f"registry {self.host} paginated referrers endlessly")
            if self._referrers_api:
                # filter here too: a registry may ignore the parameter (OCI-Filters-Applied)
                if artifact_type:
                    out = [d for d in out if d.artifact_type == artifact_type]
                return out
        # fallback tag scheme
        entries = self._fallback_entries(repository, digest)
        if artifact_type:
            entries = [d for d in entries if d.artifact_type == artifact_type]
        return entries

    @staticmethod
    def _index_entries(body: bytes, what: str) -> list[Descriptor]:
        try:
            doc = load_json(body, what=what, max_size=MAX_LIST_RESPONSE)
        except InputError as exc:
            raise NetworkError(f"the registry sent an unusable {exc}") from None
        manifests = doc.get("manifests") if isinstance(doc, dict) else None
        if manifests is None:
            return []
        if not isinstance(manifests, list):
            raise NetworkError(f"{what}: 'manifests' is not a list")
        try:
            return [
                Descriptor.from_dict(m, what=f"{what} entry {i}") for i, m in enumerate(manifests)
            ]
        except InputError as exc:
            raise NetworkError(f"malformed referrers index from the registry: {exc}") from exc

    def _fallback_entries(self, repository: str, digest: str) -> list[Descriptor]:
        tag = referrers_fallback_tag(digest)
        try:
            fetched = self.get_manifest(repository, tag, accept=(OCI_INDEX,))
        except NotFoundError:
            return []
        if fetched.media_type != OCI_INDEX:
            raise VerificationError(
                f"tag {tag} in {self.host}/{repository} should hold the referrers index of "
                f"{digest} but holds a {fetched.media_type}"
            )
        return self._index_entries(fetched.data, f"referrers fallback tag {tag}")

    def _maybe_update_fallback(
        self, repository: str, data: bytes, media_type: str, digest: str
    ) -> None:
        try:
            doc = load_json(data, what="manifest", max_size=MAX_MANIFEST_SIZE)
        except InputError:
            return
        if not isinstance(doc, dict):
            return
        subject = doc.get("subject")
        if not isinstance(subject, dict) or not isinstance(subject.get("digest"), str):
            return
        if self._referrers_api is None:
            # probe once: an empty referrers list tells us whether the API exists
            self.referrers(repository, subject["digest"])
        if self._referrers_api:
            return
        artifact_type = doc.get("artifactType")
        if not isinstance(artifact_type, str) or not artifact_type:
            config = doc.get("config")
            artifact_type = config.get("mediaType") if isinstance(config, dict) else None
        annotations = doc.get("annotations")
        entry = Descriptor(
            media_type,
            Digest(digest),
            len(data),
            annotations=dict(annotations)
            if isinstance(annotations, dict) and annotations
            else None,
            artifact_type=artifact_type if isinstance(artifact_type, str) else "",
        )
        self.add_referrer_fallback(repository, subject["digest"], entry)

    def add_referrer_fallback(
        self, repository: str, subject: str, descriptor: Descriptor
    ) -> Digest:
        """Add ``descriptor`` to the fallback referrers index of ``subject`` (read-modify-write).

        Returns the new index's digest. An entry with the same digest is replaced.
        """
        _check_digest(subject)
        current = self._fallback_entries(repository, subject)
        entries = [d.to_dict() for d in current if d.digest != descriptor.digest]
        entries.append(descriptor.to_dict())
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}
        data = canonical_json(index)
        return self.put_manifest(
            repository,
            referrers_fallback_tag(subject),
            data,
            OCI_INDEX,
            update_referrers_fallback=False,
        )
