"""``db update``: download each feed from its (configurable) URL, then import it.

Downloads go to a temporary file next to the DB and are bounded in size; the import runs in one
transaction, so a failed download or a malformed feed leaves the previous data untouched.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from assay._http import client_transports
from assay.errors import NetworkError
from assay.vuln.db import AdvisoryDB
from assay.vuln.feeds import FEEDS
from assay.vuln.feeds._interface import MAX_FEED_BYTES, http_date

__all__ = ["DEFAULT_OSV_ECOSYSTEMS", "FeedUrl", "feed_urls", "update_feeds"]

log = logging.getLogger(__name__)

DEFAULT_OSV_ECOSYSTEMS = ("PyPI", "npm", "Go")


class _HttpStatus(NetworkError):
    """A feed URL answered an HTTP status other than 200."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class FeedUrl:
    feed: str
    url: str


def feed_urls(
    overrides: dict[str, str] | None = None, osv_ecosystems: Sequence[str] = DEFAULT_OSV_ECOSYSTEMS
) -> list[FeedUrl]:
    """Where each feed comes from: flag override, else ``ASSAY_FEED_*``, else the default."""
    overrides = overrides or {}
    out: list[FeedUrl] = []
    for name, feed in FEEDS.items():
        url = overrides.get(name) or os.environ.get(feed.env_var) or feed.default_url
        if name == "osv":
            out.extend(FeedUrl(name, url.replace("{ecosystem}", eco)) for eco in osv_ecosystems)
        else:
            out.append(FeedUrl(name, url))
    return out


def _download(
    client: httpx.Client,
    url: str,
    dest: Path,
    params: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> str:
    """Fetch ``url`` into ``dest``; return its ``Last-Modified`` as RFC 3339 ("" if none)."""
    try:
        with client.stream("GET", url, params=params, headers=headers) as resp:
            if resp.status_code != 200:
                raise _HttpStatus(
                    f"{url} answered HTTP {resp.status_code}; check the feed URL",
                    resp.status_code,
                )
            modified = http_date(resp.headers.get("last-modified"))
            size = 0
            with open(dest, "wb") as fh:
                for chunk in resp.iter_bytes():
                    size += len(chunk)
                    if size > MAX_FEED_BYTES:
                        raise NetworkError(f"{url} sent more than {MAX_FEED_BYTES} bytes; refusing")
                    fh.write(chunk)
            return modified
    except httpx.HTTPError as exc:
        raise NetworkError(
            f"cannot download {url}: {exc}; on an air-gapped machine use `assay db import`"
        ) from None


def update_feeds(
    db: AdvisoryDB,
    urls: Sequence[FeedUrl],
    *,
    progress: Callable[[str], None] | None = None,
    timeout: float = 120.0,
) -> dict[str, int]:
    counts: dict[str, int] = {}
    with (
        httpx.Client(timeout=timeout, follow_redirects=True, **client_transports()) as client,
        tempfile.TemporaryDirectory(dir=db.path.parent, prefix=".feeds-") as tmp,
    ):
        for i, fu in enumerate(urls):
            if progress:
                progress(f"downloading {fu.feed} from {fu.url}")
            if fu.feed == "nvd":
                counts["nvd"] = _update_nvd(db, client, fu.url, Path(tmp) / "nvd", progress)
                continue
            suffix = (
                ".zip" if fu.url.endswith(".zip") else (".gz" if fu.url.endswith(".gz") else "")
            )
            dest = Path(tmp) / f"{i}-{fu.feed}{suffix}"
            modified = _download(client, fu.url, dest)
            # without Last-Modified the data is dated by the download (the file's mtime)
            counts[fu.feed] = counts.get(fu.feed, 0) + FEEDS[fu.feed].import_path(
                db, dest, fu.url, modified
            )
    return counts


_NVD_RETRIES = 3


def _update_nvd(
    db: AdvisoryDB,
    client: httpx.Client,
    url: str,
    dest: Path,
    progress: Callable[[str], None] | None,
) -> int:
    """Page through the NVD CVE API (only CVEs modified since the last update, when recent)."""
    from assay.vuln.feeds.nvd import NVD_API, NvdFeed, fetch_pages

    dest.mkdir()
    key = os.environ.get("ASSAY_NVD_API_KEY", "").strip()
    headers = {"apiKey": key} if key else None
    # NVD's public limits: 5 requests per 30 s without a key, 50 with one; mirrors set theirs
    delay = (0.6 if key else 6.0) if url == NVD_API else 0.0
    since = next((s.data_date for s in db.sources() if s.name == "nvd"), "")

    def get(params: dict[str, str], page: Path) -> None:
        # the NVD API sheds load with 403/429/503: wait and retry a few times before giving up
        for attempt in range(_NVD_RETRIES + 1):
            try:
                _download(client, url, page, params=params, headers=headers)
                return
            except _HttpStatus as exc:
                if exc.status not in (403, 429, 502, 503, 504) or attempt == _NVD_RETRIES:
                    raise
                wait = max(delay, 1.0) * (attempt + 1)
                if progress:
                    progress(f"nvd: HTTP {exc.status}; retrying in {wait:.0f} s")
                time.sleep(wait)

    pages = fetch_pages(get, dest, since=since, delay=delay, progress=progress)
    return NvdFeed().import_paths(db, pages, url)
