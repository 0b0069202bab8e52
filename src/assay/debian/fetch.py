"""HTTP with retries, and the content-addressed ``.deb`` cache.

``DebCache.fetch_all`` downloads many files in parallel (threads). Each download streams into a
temporary file beside its final place while hashing; only when size and SHA256 match the
expected values is the file fsynced and renamed to ``<cache>/debs/sha256/<hex>.deb``. A killed
or failed download leaves at most a ``.tmp-*`` file, which nothing treats as valid.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx

from assay._atomic import atomic_writer
from assay._closing import Closing
from assay._http import client_transports
from assay.cachedir import cache_dir
from assay.errors import InputError, NetworkError, VerificationError

__all__ = ["DebCache", "Fetched", "http_get", "make_client", "with_retries"]

log = logging.getLogger(__name__)

T = TypeVar("T")

MIRROR_HINT = (
    "check ASSAY_DEBIAN_MIRROR, the spec's repositories or the apt sources "
    "(/etc/apt/sources.list, /etc/apt/sources.list.d/) and the network"
)
_RETRY_STATUS = {408, 429, 500, 502, 503, 504}
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1 << 16


class _Retryable(Exception):
    """A failure worth another attempt (connection problem, 5xx)."""


def make_client(timeout: float = 30.0) -> httpx.Client:
    """An httpx client suitable for mirrors: redirects followed, modest timeouts."""
    return httpx.Client(
        timeout=httpx.Timeout(timeout, connect=15.0),
        follow_redirects=True,
        headers={"User-Agent": "assay"},
        **client_transports(limits=httpx.Limits(max_connections=16, max_keepalive_connections=16)),
    )


def with_retries(
    fn: Callable[[], T],
    url: str,
    attempts: int = 4,
    backoff: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call ``fn``; on ``httpx.TransportError`` or a retryable status, wait and try again.

    Waits ``backoff``, ``2*backoff``, ``4*backoff``... After the last attempt raises
    ``NetworkError`` naming the URL.
    """
    last = ""
    for attempt in range(attempts):
        try:
            return fn()
        except _Retryable as exc:
            last = str(exc)
        except httpx.TransportError as exc:
            last = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if attempt + 1 < attempts:
            delay = backoff * (2**attempt)
            log.debug("retrying %s in %.1fs after: %s", url, delay, last)
            sleep(delay)
    raise NetworkError(f"cannot fetch {url} after {attempts} attempts ({last}); {MIRROR_HINT}")


@dataclass(frozen=True)
class Fetched:
    status: int
    headers: Mapping[str, str]
    body: bytes


def http_get(
    client: httpx.Client,
    url: str,
    max_bytes: int,
    headers: Mapping[str, str] | None = None,
    attempts: int = 4,
    backoff: float = 0.5,
) -> Fetched:
    """GET ``url`` fully into memory (at most ``max_bytes``), with retries.

    Returns 2xx, 304 and 4xx answers to the caller; retries connection errors and 5xx/429.
    """

    def once() -> Fetched:
        with client.stream("GET", url, headers=dict(headers or {})) as resp:
            if resp.status_code in _RETRY_STATUS:
                raise _Retryable(f"HTTP {resp.status_code}")
            body = bytearray()
            if resp.status_code == 200:
                for chunk in resp.iter_bytes(_CHUNK):
                    body += chunk
                    if len(body) > max_bytes:
                        raise InputError(
                            f"{url}: response larger than the {max_bytes} byte limit; refusing it"
                        )
            return Fetched(resp.status_code, dict(resp.headers), bytes(body))

    return with_retries(once, url, attempts, backoff)


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


class DebCache(Closing):
    """Content-addressed cache of ``.deb`` files: ``<cache>/debs/sha256/<hex>.deb``.

    The same mechanism keeps other pinned downloads under their own ``kind`` and ``suffix``
    (Python wheels: ``DebCache(dir, kind="wheels", suffix=".whl")``).
    """

    def __init__(
        self,
        cache_dir: Path | None = None,
        http: httpx.Client | None = None,
        workers: int = 8,
        *,
        kind: str = "debs",
        suffix: str = ".deb",
    ) -> None:
        base = cache_dir if cache_dir is not None else _default_cache()
        self.root = base / kind / "sha256"
        self.suffix = suffix
        self._own_http = http is None
        self.http = http if http is not None else make_client(timeout=60.0)
        self.workers = max(1, workers)
        self.attempts = 4
        self.backoff = 0.5

    # context manager ---------------------------------------------------------------------
    def close(self) -> None:
        if self._own_http:
            self.http.close()

    # paths -------------------------------------------------------------------------------
    def path_for(self, sha256: str) -> Path:
        """Where the file with this SHA256 lives (whether or not it is there yet)."""
        if not _HEX64.match(sha256):
            raise InputError(f"{sha256!r} is not a lowercase hex SHA256 digest")
        return self.root / f"{sha256}{self.suffix}"

    def has(self, sha256: str, size: int, full_verify: bool = False) -> bool:
        """Whether a valid cached copy exists; an invalid one is removed."""
        path = self.path_for(sha256)
        try:
            st = path.stat()
        except FileNotFoundError:
            return False
        ok = st.st_size == size and (not full_verify or _sha256_file(path) == sha256)
        if not ok:
            log.warning("removing corrupt cache entry %s", path)
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        return ok

    def add_file(self, source: Path, sha256: str, size: int) -> Path:
        """Copy the local file ``source`` into the cache once its size and SHA256 are the
        expected ones (VerificationError naming it otherwise); return its cache path."""
        final = self.path_for(sha256)
        if self.has(sha256, size, full_verify=True):
            return final
        with atomic_writer(final) as out, source.open("rb") as fh:
            h = hashlib.sha256()
            got = 0
            while chunk := fh.read(_CHUNK):
                got += len(chunk)
                if got > size:
                    break
                h.update(chunk)
                out.write(chunk)
            if got != size or h.hexdigest() != sha256:
                raise VerificationError(
                    f"{source}: expected sha256 {sha256} ({size} bytes), found another file; "
                    "it changed since it was locked (run 'assay lock' again if that is intended)"
                )
        return final

    # fetching ----------------------------------------------------------------------------
    def fetch_all(
        self,
        items: Sequence[tuple[str, str, int]],
        progress: Callable[[int, int], None] | None = None,
        full_verify: bool = False,
    ) -> dict[str, Path]:
        """Make sure every ``(url, sha256, size)`` is in the cache; return ``{sha256: path}``.

        Cached files are checked by size (``full_verify=True`` re-hashes them). ``progress``
        gets ``(bytes_done, bytes_total)``; calls are serialised but come from worker threads.
        Raises ``NetworkError`` (naming the URL) or ``VerificationError`` (URL, expected and
        found digest/size); on the first error the other downloads are stopped.
        """
        wanted: dict[str, tuple[str, int]] = {}
        for url, sha, size in items:
            self.path_for(sha)  # validates the digest
            if size < 0:
                raise InputError(f"{url}: negative size {size}")
            prev = wanted.get(sha)
            if prev is not None and prev[1] != size:
                raise InputError(f"{url}: sha256 {sha} listed with sizes {prev[1]} and {size}")
            wanted.setdefault(sha, (url, size))

        total = sum(size for _, size in wanted.values())
        done = 0
        lock = threading.Lock()
        stop = threading.Event()

        def advance(n: int) -> None:
            nonlocal done
            with lock:
                done += n
                if progress is not None:
                    progress(done, total)

        result: dict[str, Path] = {}
        todo: list[tuple[str, str, int]] = []
        for sha, (url, size) in wanted.items():
            if self.has(sha, size, full_verify):
                result[sha] = self.path_for(sha)
                advance(size)
            else:
                todo.append((url, sha, size))
        if progress is not None and not todo:
            progress(done, total)
        if not todo:
            return result

        self.root.mkdir(parents=True, exist_ok=True)
        self._sweep_stale_temporaries()
        with ThreadPoolExecutor(max_workers=min(self.workers, len(todo))) as pool:
            futures: dict[Future[Path], str] = {
                pool.submit(self._download, url, sha, size, advance, stop): sha
                for url, sha, size in todo
            }
            try:
                finished, _ = wait(futures, return_when=FIRST_EXCEPTION)
            except BaseException:  # e.g. KeyboardInterrupt: stop the workers before leaving
                stop.set()
                raise
            failed = [f for f in finished if f.exception() is not None]
            if failed:
                stop.set()
                for f in futures:
                    f.cancel()
                wait(futures)
                exc = failed[0].exception()
                assert exc is not None
                raise exc
            for fut, sha in futures.items():
                result[sha] = fut.result()
        return result

    def _sweep_stale_temporaries(self, max_age: float = 86400.0) -> None:
        """Remove ``.tmp-*`` files a killed run left behind more than ``max_age`` seconds ago."""
        cutoff = time.time() - max_age
        with contextlib.suppress(OSError), os.scandir(self.root) as entries:
            for entry in entries:
                if entry.name.startswith(".tmp-"):
                    with contextlib.suppress(OSError):
                        if entry.stat(follow_symlinks=False).st_mtime < cutoff:
                            os.unlink(entry.path)

    def _download(
        self,
        url: str,
        sha256: str,
        size: int,
        advance: Callable[[int], None],
        stop: threading.Event,
    ) -> Path:
        final = self.path_for(sha256)

        def once() -> Path:
            if stop.is_set():
                raise NetworkError(f"{url}: download cancelled after another download failed")
            counted = 0
            try:
                with atomic_writer(final) as fh:
                    h = hashlib.sha256()
                    got = 0
                    with self.http.stream("GET", url) as resp:
                        if resp.status_code in _RETRY_STATUS:
                            raise _Retryable(f"HTTP {resp.status_code}")
                        if resp.status_code != 200:
                            raise NetworkError(
                                f"cannot fetch {url}: HTTP {resp.status_code}; the index may be "
                                f"out of date (run 'assay lock' again) or {MIRROR_HINT}"
                            )
                        for chunk in resp.iter_bytes(_CHUNK):
                            if stop.is_set():
                                raise NetworkError(f"{url}: download cancelled")
                            got += len(chunk)
                            if got > size:
                                raise VerificationError(
                                    f"{url}: expected {size} bytes (sha256 {sha256}), found more "
                                    "than that; the mirror's file does not match the index"
                                )
                            h.update(chunk)
                            fh.write(chunk)
                            advance(len(chunk))
                            counted += len(chunk)
                    found = h.hexdigest()
                    if got != size or found != sha256:
                        raise VerificationError(
                            f"{url}: checksum mismatch: expected sha256 {sha256} ({size} bytes), "
                            f"found sha256 {found} ({got} bytes); the file was not cached"
                        )
                return final
            except BaseException:
                if counted:
                    advance(-counted)
                raise

        return with_retries(once, url, self.attempts, self.backoff)


def _default_cache() -> Path:
    return cache_dir()
