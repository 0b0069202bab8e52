"""Registry credentials and the distribution-spec authentication handshake.

Credentials come, in this order, from:

1. ``REGISTRY_AUTH_FILE`` (containers/image's variable; when set, it is the only file read),
2. ``$XDG_RUNTIME_DIR/containers/auth.json`` (podman/skopeo's default),
3. ``$XDG_CONFIG_HOME/containers/auth.json`` (default ``~/.config/containers/auth.json``),
4. ``$DOCKER_CONFIG/config.json`` (default ``~/.docker/config.json``).

Each file's ``auths`` object maps a registry (``host[:port]``, optionally with a scheme, a
``/v1/``-style path, or — podman — a ``host/namespace`` prefix) to ``identitytoken`` (an OAuth2
refresh token, exchanged at the token realm with a ``POST``), ``auth`` (base64 of
``user:password``) or ``username`` and ``password``. Credential helpers (``credsStore``,
``credHelpers``) are **not** run: assay never executes programs named in a config file. A host that
is only served by a helper gets no credentials, and a 401 says so.

The handshake: a request answered ``401`` carries ``WWW-Authenticate``. ``Basic`` means resend with
the credentials; ``Bearer realm=…,service=…,scope=…`` means fetch a token from the realm (with the
credentials as Basic auth when there are any, anonymously otherwise) and resend with it. Tokens are
cached per (realm, service, scopes) until shortly before they expire.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from assay._json import load_json
from assay.errors import InputError, NetworkError

__all__ = [
    "Authenticator",
    "Challenge",
    "Credentials",
    "auth_files",
    "load_credentials",
    "parse_challenges",
]

log = logging.getLogger(__name__)

_MAX_AUTH_FILE = 1 << 20  # 1 MiB: an auth file is a few hundred bytes
_MAX_TOKEN_RESPONSE = 1 << 20
_DEFAULT_TOKEN_TTL = 60.0  # the distribution token spec's default when expires_in is absent


@dataclass(frozen=True)
class Credentials:
    """A user name and password for one registry, or an identity (OAuth2 refresh) token.

    With ``identity_token`` set, bearer tokens are obtained with the OAuth2 refresh-token grant
    (``POST`` to the realm) as docker does; Basic-auth registries still get user/password.
    """

    username: str
    password: str
    source: str = ""  # where they came from, for messages (never the secret itself)
    identity_token: str = ""

    def __repr__(self) -> str:  # keep secrets out of logs and tracebacks
        return f"Credentials(username={self.username!r}, source={self.source!r})"

    def basic_header(self) -> str:
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")


@dataclass(frozen=True)
class Challenge:
    """One ``WWW-Authenticate`` challenge: a scheme and its parameters (keys lower-cased)."""

    scheme: str  # lower-cased: "bearer", "basic", ...
    params: Mapping[str, str] = field(default_factory=dict)

    @property
    def realm(self) -> str:
        return self.params.get("realm", "")

    @property
    def service(self) -> str:
        return self.params.get("service", "")

    @property
    def scopes(self) -> tuple[str, ...]:
        return tuple(s for s in self.params.get("scope", "").split(" ") if s)


# --------------------------------------------------------------------------- challenge parsing


def _skip_ws(text: str, i: int) -> int:
    while i < len(text) and text[i] in " \t":
        i += 1
    return i


def _read_token(text: str, i: int) -> tuple[str, int]:
    start = i
    while i < len(text) and text[i] not in ' \t,="':
        i += 1
    return text[start:i], i


def _read_quoted(text: str, i: int) -> tuple[str, int]:
    # text[i] == '"'
    i += 1
    out: list[str] = []
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
            continue
        if ch == '"':
            return "".join(out), i + 1
        out.append(ch)
        i += 1
    raise ValueError("unterminated quoted string")


def parse_challenges(header: str) -> list[Challenge]:
    """Parse a ``WWW-Authenticate`` header value (RFC 7235) into challenges.

    Malformed input yields the challenges parsed before the fault; it never raises, because a
    registry's odd header must not hide the 401 it came with.
    """
    challenges: list[Challenge] = []
    text = header[:8192]
    i = 0
    try:
        while i < len(text):
            i = _skip_ws(text, i)
            while i < len(text) and text[i] == ",":
                i = _skip_ws(text, i + 1)
            if i >= len(text):
                break
            scheme, i = _read_token(text, i)
            if not scheme:
                break
            params: dict[str, str] = {}
            while True:
                i = _skip_ws(text, i)
                if i >= len(text):
                    break
                if text[i] == ",":
                    i = _skip_ws(text, i + 1)
                # either "key=value" (continuing this challenge) or a new scheme
                name, j = _read_token(text, i)
                j2 = _skip_ws(text, j)
                if not name or j2 >= len(text) or text[j2] != "=":
                    break  # a new challenge starts at i (or junk)
                j2 = _skip_ws(text, j2 + 1)
                if j2 < len(text) and text[j2] == '"':
                    value, i = _read_quoted(text, j2)
                else:
                    value, i = _read_token(text, j2)
                params[name.lower()] = value
            challenges.append(Challenge(scheme.lower(), params))
    except ValueError:
        pass
    return challenges


# --------------------------------------------------------------------------- credential files


def auth_files() -> list[Path]:
    """The credential files consulted, in order (see the module docstring)."""
    explicit = os.environ.get("REGISTRY_AUTH_FILE")
    if explicit:
        return [Path(explicit)]
    files: list[Path] = []
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        files.append(Path(runtime) / "containers" / "auth.json")
    config_home = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    files.append(Path(config_home) / "containers" / "auth.json")
    docker_dir = os.environ.get("DOCKER_CONFIG") or str(Path.home() / ".docker")
    files.append(Path(docker_dir) / "config.json")
    return files


def _normalise_key(key: str) -> str:
    """``https://host:5000/v1/`` → ``host:5000``; ``host/ns/repo`` stays (podman namespaces)."""
    k = key.strip()
    for prefix in ("https://", "http://"):
        if k.startswith(prefix):
            k = k[len(prefix) :]
            # docker writes "https://host/v1/" — a URL path, not a namespace
            k = k.split("/", 1)[0]
            break
    return k.rstrip("/")


def _decode_entry(entry: object, source: str) -> Credentials | None:
    if not isinstance(entry, dict):
        return None
    auth = entry.get("auth")
    token = entry.get("identitytoken")
    if isinstance(token, str) and token:
        user = entry.get("username")
        return Credentials(
            user if isinstance(user, str) and user else "<token>", "", source, identity_token=token
        )
    if isinstance(auth, str) and auth:
        try:
            raw = base64.b64decode(auth, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise InputError(
                f"{source}: the 'auth' value is not base64 of 'user:password'; "
                "log in again to rewrite it"
            ) from exc
        user, sep, password = raw.partition(":")
        if not sep:
            raise InputError(f"{source}: the 'auth' value has no ':' between user and password")
        return Credentials(user, password, source)
    name = entry.get("username")
    secret = entry.get("password")
    if isinstance(name, str) and isinstance(secret, str) and name:
        return Credentials(name, secret, source)
    return None


def _read_auth_file(path: Path) -> dict[str, object] | None:
    try:
        with path.open("rb") as fh:
            data = fh.read(_MAX_AUTH_FILE + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.warning("cannot read %s: %s", path, exc)
        return None
    if len(data) > _MAX_AUTH_FILE:
        raise InputError(f"{path}: larger than 1 MiB; that is not a credentials file")
    doc = load_json(data, what=f"credentials file {path}", max_size=_MAX_AUTH_FILE)
    if not isinstance(doc, dict):
        raise InputError(f"{path}: expected a JSON object")
    return doc


def load_credentials(host: str, repository: str = "") -> Credentials | None:
    """Credentials for ``host`` (and optionally ``repository``) from the auth files, or None.

    A podman-style ``host/namespace`` key wins over a plain ``host`` key when it is a prefix of
    ``host/repository``; within one file the longest matching key wins; the first file with a
    match wins.
    """
    target = f"{host}/{repository}" if repository else host
    for path in auth_files():
        doc = _read_auth_file(path)
        if doc is None:
            continue
        auths = doc.get("auths")
        best: tuple[int, object] | None = None
        if isinstance(auths, dict):
            for key, entry in auths.items():
                if not isinstance(key, str):
                    continue
                k = _normalise_key(key)
                matches = k == host or (
                    k.startswith(host + "/") and (target + "/").startswith(k + "/")
                )
                if matches and (best is None or len(k) > best[0]):
                    best = (len(k), entry)
        if best is not None:
            creds = _decode_entry(best[1], str(path))
            if creds is not None:
                return creds
        helpers = doc.get("credHelpers")
        if (isinstance(helpers, dict) and host in helpers) or doc.get("credsStore"):
            log.warning(
                "%s names a credential helper; assay does not run credential helpers — "
                "put the credentials in an 'auths' entry or in REGISTRY_AUTH_FILE",
                path,
            )
    return None


# --------------------------------------------------------------------------- the handshake


@dataclass
class _Token:
    value: str
    expires: float


class Authenticator:
    """Turns a registry's challenges into ``Authorization`` headers.

    One per registry host. Thread-safe. ``credentials`` of ``None`` means look them up lazily in
    the auth files (pass ``Credentials`` to override, or ``anonymous=True`` to never send any).
    """

    def __init__(
        self,
        host: str,
        credentials: Credentials | None = None,
        *,
        anonymous: bool = False,
    ) -> None:
        self.host = host
        self._explicit = credentials
        self._anonymous = anonymous
        self._loaded: dict[str, Credentials | None] = {}
        self._challenge: Challenge | None = None
        self._tokens: dict[tuple[str, str, tuple[str, ...]], _Token] = {}
        self._lock = threading.Lock()
        self._fetch_lock = threading.Lock()

    # credentials ---------------------------------------------------------------------------
    def credentials(self, repository: str = "") -> Credentials | None:
        if self._anonymous:
            return None
        if self._explicit is not None:
            return self._explicit
        with self._lock:
            if repository not in self._loaded:
                self._loaded[repository] = load_credentials(self.host, repository)
            return self._loaded[repository]

    @property
    def has_challenge(self) -> bool:
        return self._challenge is not None

    def remember(self, challenges: list[Challenge]) -> Challenge | None:
        """Store the registry's preferred usable challenge (Bearer over Basic)."""
        usable = [c for c in challenges if c.scheme in ("bearer", "basic")]
        usable.sort(key=lambda c: 0 if c.scheme == "bearer" else 1)
        if usable:
            self._challenge = usable[0]
            return usable[0]
        return None

    def header(
        self, http: httpx.Client, scopes: tuple[str, ...], repository: str = ""
    ) -> str | None:
        """The Authorization header for a request needing ``scopes``, or None (anonymous)."""
        challenge = self._challenge
        if challenge is None:
            return None
        creds = self.credentials(repository)
        if challenge.scheme == "basic":
            return creds.basic_header() if creds else None
        token = self._token(http, challenge, scopes, creds)
        return f"Bearer {token}" if token else None

    def invalidate(self, scopes: tuple[str, ...]) -> None:
        with self._lock:
            for key in [k for k in self._tokens if k[2] == scopes]:
                del self._tokens[key]

    def _token(
        self,
        http: httpx.Client,
        challenge: Challenge,
        scopes: tuple[str, ...],
        creds: Credentials | None,
    ) -> str | None:
        key = (challenge.realm, challenge.service, scopes)
        with self._fetch_lock:  # one fetch per scope even when upload threads start together
            now = time.monotonic()
            with self._lock:
                cached = self._tokens.get(key)
                if cached is not None and cached.expires > now:
                    return cached.value
            token, ttl = self._fetch_token(http, challenge, scopes, creds)
            with self._lock:
                # renew 10 s (or 10 %) early so a token never expires mid-request
                margin = min(10.0, ttl / 10)
                self._tokens[key] = _Token(token, now + max(ttl - margin, 0.0))
            return token

    def _fetch_token(
        self,
        http: httpx.Client,
        challenge: Challenge,
        scopes: tuple[str, ...],
        creds: Credentials | None,
    ) -> tuple[str, float]:
        realm = challenge.realm
        if not realm:
            raise NetworkError(
                f"registry {self.host} asked for a bearer token but named no realm to get it from"
            )
        try:
            realm_url = httpx.URL(realm)
        except httpx.InvalidURL as exc:
            raise NetworkError(f"registry {self.host} named an invalid token realm") from exc
        if realm_url.scheme not in ("https", "http"):
            raise NetworkError(f"registry {self.host} named a token realm that is not HTTP(S)")
        if realm_url.scheme == "http" and creds is not None and not _is_loopback(realm_url.host):
            raise NetworkError(
                f"registry {self.host} asks to send credentials to a plain-HTTP token realm "
                f"({realm_url.host}); refusing — the realm must use HTTPS"
            )
        params: list[tuple[str, str | int | float | bool | None]] = []
        if challenge.service:
            params.append(("service", challenge.service))
        params.extend(("scope", s) for s in scopes)
        headers = {"Accept": "application/json"}
        if creds is not None and creds.identity_token:
            # OAuth2 refresh-token grant (the distribution token spec's "oauth" flow)
            form = {
                "grant_type": "refresh_token",
                "refresh_token": creds.identity_token,
                "client_id": "assay",
                "service": challenge.service,
                "scope": " ".join(scopes),
            }
            request = http.build_request("POST", realm_url, data=form, headers=headers)
        else:
            if creds is not None:
                headers["Authorization"] = creds.basic_header()
                params.append(("account", creds.username))
            request = http.build_request(
                "GET", realm_url.copy_merge_params(params), headers=headers
            )
        try:
            resp = http.send(request, stream=True)
            try:
                body = _read_limited(resp, _MAX_TOKEN_RESPONSE)
            finally:
                resp.close()
        except httpx.HTTPError as exc:
            raise NetworkError(
                f"cannot reach the token service of registry {self.host} at {realm_url.host}: "
                f"{exc}; check the network"
            ) from exc
        if resp.status_code in (401, 403):
            who = f"as {creds.username!r} (from {creds.source})" if creds else "anonymously"
            raise NetworkError(
                f"registry {self.host} refused a token {who} for {' '.join(scopes) or 'access'}: "
                f"HTTP {resp.status_code}; log in: credentials in ~/.docker/config.json or "
                "REGISTRY_AUTH_FILE"
            )
        if resp.status_code != 200:
            raise NetworkError(
                f"token service of registry {self.host} answered HTTP {resp.status_code}"
            )
        try:
            doc = load_json(body, what=f"token from registry {self.host}", max_size=1 << 20)
        except InputError as exc:
            raise NetworkError(
                f"token service of registry {self.host} sent invalid JSON: {exc}"
            ) from None
        if not isinstance(doc, dict):
            raise NetworkError(f"token service of registry {self.host} sent no JSON object")
        token = doc.get("token") or doc.get("access_token")
        if not isinstance(token, str) or not token:
            raise NetworkError(f"token service of registry {self.host} sent no token")
        expires_in = doc.get("expires_in")
        ttl = (
            float(expires_in)
            if isinstance(expires_in, int | float) and expires_in > 0
            else _DEFAULT_TOKEN_TTL
        )
        return token, ttl


def _read_limited(resp: httpx.Response, limit: int) -> bytes:
    declared = resp.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise NetworkError(
            f"{resp.request.url.host} sent a {declared}-byte response; the limit is {limit} bytes"
        )
    chunks: list[bytes] = []
    total = 0
    for chunk in resp.iter_bytes():
        total += len(chunk)
        if total > limit:
            raise NetworkError(
                f"{resp.request.url.host} sent a response over the {limit}-byte limit"
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _is_loopback(host: str) -> bool:
    import ipaddress

    h = host.strip("[]").lower()
    if h == "localhost" or h.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False
