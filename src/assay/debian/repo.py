"""The Debian repository client: verified InRelease, verified Packages indexes, parsed records.

Trust chain: ``InRelease`` is checked with gpgv against the source's keyring (``signed_by``, else
the client's keyrings, else :data:`~assay.debian.sources.DEFAULT_KEYRING`); only gpgv's signed
output is parsed; an InRelease older than the one verified before at the same URL is refused.
Each ``Packages`` file is taken only when its size and SHA256 match the signed Release (by-hash
URLs when the Release offers them); its decompressed text is checked against the Release's
entry for the uncompressed file too, and only then cached, content-addressed, under
``<cache>/indexes/sha256/<hex>``. Cached files are re-hashed when read. A warm run therefore
downloads and decompresses no index, only the small InRelease (revalidated with ETag /
If-Modified-Since, and verified again every time).

Pinned loads (:meth:`RepoClient.load` with ``pins``, used to check a lock): each source's
Release is the InRelease whose SHA256 the lock records, taken from the cache (every verified
InRelease is also kept by its own SHA256) or, failing that, from the mirror when it still serves
exactly that file; its signature is checked again against the configured keyring every time.
Its ``Valid-Until`` is not enforced (the lock names the exact file, so replay is not a concern).
A build from a lock therefore runs offline once the InRelease and Packages files it pins are
cached.

Layout: ``<cache>/indexes/inrelease/<sha256(url)>`` (+ ``.json`` with ETag, Last-Modified,
Date), ``<cache>/indexes/inrelease-by-digest/<hex>`` and ``<cache>/indexes/sha256/<hex>``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import hashlib
import json
import logging
import lzma
import marshal
import posixpath
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from assay._atomic import atomic_write_bytes
from assay._closing import Closing
from assay._json import load_json
from assay.cachedir import cache_dir as default_cache_dir
from assay.debian.fetch import MIRROR_HINT, http_get, make_client
from assay.debian.model import PackageRecord, ReleaseInfo, RepoSource
from assay.debian.openpgp import verify_clearsigned
from assay.debian.release import IndexEntry, Release, parse_release
from assay.debian.sources import DEFAULT_KEYRING
from assay.errors import InputError, NetworkError, UsageError, VerificationError

__all__ = ["RepoClient", "RepoIndex", "parse_packages"]

log = logging.getLogger(__name__)

MAX_INRELEASE = 32 << 20  # bytes
MAX_INDEX_COMPRESSED = 256 << 20
MAX_INDEX = 512 << 20  # decompressed Packages
MAX_STANZA = 1 << 20
_FORMATS = (".xz", ".gz", "")
_EXTRA_FIELDS = (
    "Recommends",
    "Suggests",
    "Enhances",
    "Replaces",
    "Built-Using",
    "Static-Built-Using",
    "Protected",
    "Important",
)


@dataclass(frozen=True)
class RepoIndex:
    """Everything loaded for a set of sources: their Releases and, per architecture, records.

    ``packages[arch]`` holds the records of every source's ``binary-ARCH`` index in source
    order (``Architecture: all`` packages included as listed there).
    """

    releases: tuple[ReleaseInfo, ...]
    packages: dict[str, tuple[PackageRecord, ...]]


class _NotFound(NetworkError):
    """HTTP 404 for an index file: the next compression format may still be there."""


class RepoClient(Closing):
    """Fetch and verify repository metadata. Thread-safe; use as a context manager."""

    def __init__(
        self,
        cache_dir: Path | None = None,
        keyrings: Sequence[Path] = (),
        http: httpx.Client | None = None,
        now: Callable[[], float] = time.time,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        root = cache_dir if cache_dir is not None else default_cache_dir()
        self.index_dir = root / "indexes"
        self.keyrings = tuple(Path(k) for k in keyrings)
        self._own_http = http is None
        self.http = http if http is not None else make_client()
        self.now = now
        self.progress = progress
        self.attempts = 4
        self.backoff = 0.5
        self._lock = threading.Lock()
        self._releases: dict[RepoSource, Release] = {}
        self._pinned: dict[tuple[RepoSource, str], Release] = {}

    # lifecycle ---------------------------------------------------------------------------
    def close(self) -> None:
        if self._own_http:
            self.http.close()

    def _say(self, message: str) -> None:
        log.debug("%s", message)
        if self.progress is not None:
            self.progress(message)

    def _keyrings_for(self, source: RepoSource) -> list[Path]:
        if source.signed_by:
            return [Path(p) for p in source.signed_by.split(",") if p]
        if self.keyrings:
            return list(self.keyrings)
        return [DEFAULT_KEYRING]

    # InRelease ---------------------------------------------------------------------------
    def release(self, source: RepoSource) -> ReleaseInfo:
        """Fetch (or revalidate) ``dists/SUITE/InRelease``, verify it, return its summary."""
        return self._release(source).info

    def _release(self, source: RepoSource) -> Release:
        with self._lock:
            known = self._releases.get(source)
        if known is not None:
            return known
        url = f"{source.uri}/dists/{source.suite}/InRelease"
        key = hashlib.sha256(url.encode()).hexdigest()
        body_path = self.index_dir / "inrelease" / key
        meta_path = self.index_dir / "inrelease" / f"{key}.json"
        headers: dict[str, str] = {}
        cached: bytes | None = None
        meta: dict[str, str] = {}
        if body_path.is_file():
            cached = body_path.read_bytes()
            with contextlib.suppress(OSError, InputError):
                loaded = load_json(meta_path.read_bytes(), what=str(meta_path), max_size=1 << 16)
                if isinstance(loaded, dict) and loaded.get("sha256") == _sha(cached):
                    meta = {k: str(v) for k, v in loaded.items()}
            if meta.get("etag"):
                headers["If-None-Match"] = meta["etag"]
            if meta.get("last-modified"):
                headers["If-Modified-Since"] = meta["last-modified"]

        self._say(f"Get {url}")
        got = http_get(self.http, url, MAX_INRELEASE, headers, self.attempts, self.backoff)
        if got.status == 304 and cached is not None:
            data = cached
            fresh = False
            self._say(f"Hit {url} (not modified)")
        elif got.status == 200:
            data = got.body
            fresh = True
        elif got.status == 404:
            raise NetworkError(
                f"{url}: HTTP 404: no InRelease for suite {source.suite!r} at {source.uri}; "
                f"check the suite name, or {MIRROR_HINT}"
            )
        else:
            raise NetworkError(f"{url}: HTTP {got.status}; {MIRROR_HINT}")

        signed = verify_clearsigned(data, self._keyrings_for(source), url)
        digest = _sha(data)
        rel = parse_release(signed, source, url, digest, self.now())
        if fresh and meta.get("date_epoch", "").isdigit():
            before = int(meta["date_epoch"])
            if rel.info.date_epoch < before:
                raise VerificationError(
                    f"{url}: Release is older than the one verified before: expected a Date at "
                    f"or after {meta.get('date', before)}, found {rel.info.date}; the mirror "
                    "serves stale or replayed metadata - try again later or use another mirror"
                )
        if fresh:
            atomic_write_bytes(body_path, data)
            atomic_write_bytes(self._inrelease_by_sha(digest), data)
            new_meta = {
                "url": url,
                "sha256": digest,
                "date": rel.info.date,
                "date_epoch": str(rel.info.date_epoch),
            }
            for name in ("etag", "last-modified"):
                value = got.headers.get(name)
                if value:
                    new_meta[name] = value
            atomic_write_bytes(meta_path, json.dumps(new_meta, sort_keys=True).encode())
        with self._lock:
            self._releases[source] = rel
        return rel

    def _inrelease_by_sha(self, sha256: str) -> Path:
        return self.index_dir / "inrelease-by-digest" / sha256

    def pinned_release(self, source: RepoSource, sha256: str) -> Release:
        """The verified Release of ``source`` whose InRelease file has exactly ``sha256``.

        From the cache when it holds that file (no network), else from the mirror when it still
        serves it. VerificationError when neither has it: the pin was edited, or the mirror has
        moved on since the lock was made and this cache never saw the pinned file.
        """
        key = (source, sha256)
        with self._lock:
            known = self._pinned.get(key)
        if known is not None:
            return known
        url = f"{source.uri}/dists/{source.suite}/InRelease"
        data: bytes | None = None
        by_url = self.index_dir / "inrelease" / hashlib.sha256(url.encode()).hexdigest()
        for path in (self._inrelease_by_sha(sha256), by_url):
            try:
                with path.open("rb") as fh:
                    got = fh.read(MAX_INRELEASE + 1)
            except OSError:
                continue
            if _sha(got) == sha256:
                data = got
                self._say(f"Hit {url} (pinned sha256 {sha256[:12]}, cached)")
                break
        if data is None:
            current = self._release(source)
            if current.info.sha256 != sha256:
                raise VerificationError(
                    f"{url}: expected the InRelease with sha256 {sha256} (as pinned), found "
                    f"sha256 {current.info.sha256} on the mirror and none in the cache; the "
                    "pin was edited, or the mirror has moved on since it was made - re-lock"
                )
            rel = current
        else:
            signed = verify_clearsigned(data, self._keyrings_for(source), url)
            rel = parse_release(signed, source, url, sha256, 0.0)
        with self._lock:
            self._pinned[key] = rel
        return rel

    # Packages ----------------------------------------------------------------------------
    def packages(
        self, source: RepoSource, arch: str, release: Release | None = None
    ) -> list[PackageRecord]:
        """Verified, parsed ``binary-ARCH/Packages`` records of every component of ``source``
        (listed in ``release``, by default the current verified one)."""
        rel = release if release is not None else self._release(source)
        if rel.architectures and arch not in rel.architectures:
            raise UsageError(
                f"{rel.info.url}: suite {source.suite} does not carry architecture {arch!r} "
                f"(it has: {' '.join(rel.architectures)})"
            )
        out: list[PackageRecord] = []
        for component in source.components:
            base = f"{component}/binary-{arch}/Packages"
            plain = rel.files.get(base)
            if plain is not None:
                cached = self._cached_parsed(plain.sha256, source, component)
                if cached is not None:
                    self._say(f"Hit {self._url(source, base)} (parsed, cached by sha256)")
                    out.extend(cached)
                    continue
            text = self._packages_text(source, rel, base)
            records = parse_packages(text, source, component, self._url(source, base))
            if plain is not None:  # text was verified against plain.sha256
                self._store_parsed(plain.sha256, records)
            out.extend(records)
        return out

    # Parsed-index cache ------------------------------------------------------------------
    # A warm run need not re-parse 60k stanzas: the records parsed from a Packages file whose
    # SHA256 the signed Release lists are kept, marshalled, under that SHA256. The file carries
    # the SHA256 of its own payload, checked before it is loaded, so a damaged file is ignored
    # and rewritten. (The cache directory itself is trusted, as it is for cached .debs.)
    def _parsed_path(self, sha256: str) -> Path:
        return self.index_dir / "parsed" / f"{sha256}.{_PARSED_TAG}"

    def _cached_parsed(
        self, sha256: str, source: RepoSource, component: str
    ) -> list[PackageRecord] | None:
        path = self._parsed_path(sha256)
        try:
            raw = path.read_bytes()
        except OSError:
            return None
        head, payload = raw[:64], raw[64:]
        if head.decode("ascii", "replace") != hashlib.sha256(payload).hexdigest():
            log.warning("ignoring damaged parsed-index cache %s", path)
            return None
        try:
            with _gc_paused():
                rows = marshal.loads(payload)
                make = _FAST_RECORD or (lambda v: PackageRecord(**v))
                return [make({**row, "repo": source, "component": component}) for row in rows]
        except (ValueError, EOFError, TypeError) as exc:
            log.warning("ignoring unreadable parsed-index cache %s: %s", path, exc)
            return None

    def _store_parsed(self, sha256: str, records: Sequence[PackageRecord]) -> None:
        rows = [
            {k: v for k, v in vars(r).items() if k not in ("repo", "component")} for r in records
        ]
        try:
            payload = marshal.dumps(rows)
        except ValueError:
            return  # a value marshal cannot store: just re-parse next time
        digest = hashlib.sha256(payload).hexdigest().encode("ascii")
        atomic_write_bytes(self._parsed_path(sha256), digest + payload)

    def _url(self, source: RepoSource, path: str) -> str:
        return f"{source.uri}/dists/{source.suite}/{path}"

    def _packages_text(self, source: RepoSource, rel: Release, base: str) -> bytes:
        """The uncompressed index ``base``, verified against the Release, from cache or net.

        When the Release lists the uncompressed file's hash (Debian's do), the decompressed
        text is checked against it too and cached under that hash, so a warm run neither
        downloads nor decompresses.
        """
        plain = rel.files.get(base)
        if plain is not None:
            cached = self._cached_index(plain)
            if cached is not None:
                self._say(f"Hit {self._url(source, base)} (cached by sha256)")
                return cached
        candidates = [rel.files[base + ext] for ext in _FORMATS if base + ext in rel.files]
        if not candidates:
            raise InputError(
                f"{rel.info.url}: expected {base}(.xz|.gz) in the Release SHA256 list, "
                f"found none; check the component name (the Release lists components: "
                f"{' '.join(rel.components) or '-'})"
            )
        last_error: NetworkError | None = None
        for entry in candidates:
            url = self._url(source, entry.path)
            data = self._cached_index(entry)
            if data is not None:
                self._say(f"Hit {url} (cached by sha256)")
            else:
                try:
                    data = self._download_index(source, rel, entry)
                except _NotFound as exc:
                    last_error = exc
                    continue  # try the next compression format
            text = _decompress(data, entry.path, url)
            if plain is not None and entry is not plain:
                found = _sha(text)
                if len(text) != plain.size or found != plain.sha256:
                    raise VerificationError(
                        f"{url}: decompressed content does not match the Release: expected "
                        f"sha256 {plain.sha256} ({plain.size} bytes) for {base} as listed in "
                        f"{rel.info.url}, found sha256 {found} ({len(text)} bytes); not cached"
                    )
                atomic_write_bytes(self._index_path(plain.sha256), text)
            elif plain is None:
                atomic_write_bytes(self._index_path(entry.sha256), data)
            return text
        assert last_error is not None
        raise last_error

    def _index_path(self, sha256: str) -> Path:
        return self.index_dir / "sha256" / sha256

    def _cached_index(self, entry: IndexEntry) -> bytes | None:
        path = self._index_path(entry.sha256)
        try:
            if path.stat().st_size != entry.size:
                raise OSError("size differs")
            data = path.read_bytes()
        except OSError:
            return None
        if _sha(data) != entry.sha256:
            log.warning("removing corrupt cached index %s", path)
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            return None
        return data

    def _download_index(self, source: RepoSource, rel: Release, entry: IndexEntry) -> bytes:
        """Download one index file and check it against the Release. Does not cache."""
        url = self._url(source, entry.path)
        urls = []
        if rel.acquire_by_hash:
            urls.append(
                self._url(source, f"{posixpath.dirname(entry.path)}/by-hash/SHA256/{entry.sha256}")
            )
        urls.append(url)
        if entry.size > MAX_INDEX_COMPRESSED:
            raise InputError(f"{url}: Release lists {entry.size} bytes, over the 256 MiB limit")
        for i, get_url in enumerate(urls):
            self._say(f"Get {get_url} ({entry.size} bytes)")
            try:
                got = http_get(self.http, get_url, entry.size, None, self.attempts, self.backoff)
            except InputError:
                raise VerificationError(
                    f"{get_url}: size mismatch: expected {entry.size} bytes as listed in "
                    f"{rel.info.url}, found a larger file; it was not cached"
                ) from None
            if got.status == 404:
                if i + 1 < len(urls):
                    continue  # by-hash not there (mirror mid-sync): fall back to the plain name
                raise _NotFound(f"cannot fetch {get_url}: HTTP 404; {MIRROR_HINT}")
            if got.status != 200:
                raise NetworkError(f"cannot fetch {get_url}: HTTP {got.status}; {MIRROR_HINT}")
            found = _sha(got.body)
            if len(got.body) != entry.size or found != entry.sha256:
                raise VerificationError(
                    f"{get_url}: checksum mismatch: expected sha256 {entry.sha256} "
                    f"({entry.size} bytes) as listed in {rel.info.url}, found sha256 {found} "
                    f"({len(got.body)} bytes); the index was not cached"
                )
            return got.body
        raise AssertionError("unreachable")

    # all at once -------------------------------------------------------------------------
    def load(
        self,
        sources: Sequence[RepoSource],
        archs: Sequence[str],
        pins: Mapping[str, str] | None = None,
    ) -> RepoIndex:
        """Verify every source's Release and load its Packages for each architecture.

        With ``pins`` (InRelease URL -> SHA256, as a lock records them) each source's Release
        is exactly the pinned one (:meth:`pinned_release`); a source without a pin is an error.
        """
        if not sources:
            raise UsageError("no repository to load; configure at least one source")

        def release(source: RepoSource) -> Release:
            if pins is None:
                return self._release(source)
            url = f"{source.uri}/dists/{source.suite}/InRelease"
            if url not in pins:
                raise VerificationError(
                    f"{url}: expected a pinned InRelease sha256 for this source, found none"
                )
            return self.pinned_release(source, pins[url])

        with ThreadPoolExecutor(max_workers=min(8, len(sources) * max(1, len(archs)))) as pool:
            releases = list(pool.map(release, sources))
            jobs = {
                (i, arch): pool.submit(self.packages, src, arch, releases[i])
                for i, src in enumerate(sources)
                for arch in archs
            }
            packages: dict[str, tuple[PackageRecord, ...]] = {}
            for arch in archs:
                records: list[PackageRecord] = []
                for i in range(len(sources)):
                    records.extend(jobs[(i, arch)].result())
                packages[arch] = tuple(records)
        return RepoIndex(releases=tuple(r.info for r in releases), packages=packages)


# Names the record layout, so a change to PackageRecord's fields never reads old rows.
_PARSED_TAG = hashlib.sha256(
    ",".join(sorted(f.name for f in dataclasses.fields(PackageRecord))).encode()
).hexdigest()[:12]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _decompress(data: bytes, path: str, url: str) -> bytes:
    try:
        if path.endswith(".xz"):
            dx = lzma.LZMADecompressor(format=lzma.FORMAT_XZ)
            out = dx.decompress(data, max_length=MAX_INDEX + 1)
            complete = dx.eof
        elif path.endswith(".gz"):
            dz = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
            out = dz.decompress(data, MAX_INDEX + 1)
            complete = dz.eof
        else:
            out, complete = data, True
    except (lzma.LZMAError, zlib.error) as exc:
        raise InputError(f"{url}: cannot decompress ({exc})") from None
    if len(out) > MAX_INDEX:
        raise InputError(f"{url}: decompressed index larger than 512 MiB; refusing it")
    if not complete:
        raise InputError(f"{url}: compressed index is truncated")
    return out


def _split_source(value: str, name: str, version: str) -> tuple[str, str]:
    if not value:
        return name, version
    src, _, rest = value.partition(" ")
    rest = rest.strip()
    if rest.startswith("(") and rest.endswith(")"):
        return src, rest[1:-1].strip()
    return src, version


def parse_packages(
    data: bytes, repo: RepoSource, component: str, name: str = "<Packages>"
) -> list[PackageRecord]:
    """Parse a decompressed Packages index into records (a bounded stanza splitter).

    Refuses an index over 512 MiB or a stanza over 1 MiB. The cyclic garbage collector is
    paused meanwhile: the 60k+ records it creates are not garbage, and collecting while they
    accumulate costs a third of the parse time.
    """
    if len(data) > MAX_INDEX:
        raise InputError(f"{name}: index larger than 512 MiB; refusing it")
    with _gc_paused():
        return _parse_packages(data, repo, component, name)


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic GC; nested and concurrent (threads) uses restore it once, at the end."""
    global _gc_depth, _gc_was_enabled
    with _gc_lock:
        if _gc_depth == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_depth += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_depth -= 1
            if _gc_depth == 0 and _gc_was_enabled:
                gc.enable()


_gc_lock = threading.Lock()
_gc_depth = 0
_gc_was_enabled = True


def _parse_packages(
    data: bytes, repo: RepoSource, component: str, name: str
) -> list[PackageRecord]:
    text = data.decode("utf-8", "replace").replace("\r\n", "\n")
    records: list[PackageRecord] = []
    make = _FAST_RECORD
    for stanza in text.split("\n\n"):
        if not stanza.strip():
            continue
        if len(stanza) > MAX_STANZA:
            raise InputError(f"{name}: a stanza is larger than 1 MiB; refusing the index")
        f: dict[str, str] = {}
        last = ""
        for line in stanza.split("\n"):
            if not line:
                continue
            c = line[0]
            if c == " " or c == "\t":
                if last:
                    f[last] += "\n" + line
                continue
            k, sep, v = line.partition(":")
            if not sep:
                raise InputError(f"{name}: malformed line {line[:80]!r}")
            last = k
            f[k] = v.strip()
        g = f.get
        try:
            pkg = f["Package"]
            version = f["Version"]
            arch = f["Architecture"]
            filename = f["Filename"]
            size_text = f["Size"]
            sha256 = f["SHA256"]
        except KeyError as exc:
            raise InputError(
                f"{name}: stanza {g('Package', '?')!r} lacks the {exc.args[0]} field"
            ) from None
        if not size_text.isdigit():
            raise InputError(f"{name}: package {pkg!r} has a non-numeric Size {size_text!r}")
        if len(sha256) != 64 or filename[:1] == "/" or ".." in filename.split("/"):
            raise InputError(
                f"{name}: package {pkg} has an invalid SHA256, Size or Filename ({filename!r})"
            )
        src, src_version = _split_source(g("Source", ""), pkg, version)
        inst = g("Installed-Size", "0")
        values: dict[str, Any] = {
            "name": pkg,
            "version": version,
            "architecture": arch,
            "source": src,
            "source_version": src_version,
            "filename": filename,
            "size": int(size_text),
            "sha256": sha256.lower(),
            "repo": repo,
            "component": component,
            "depends": g("Depends", ""),
            "pre_depends": g("Pre-Depends", ""),
            "provides": g("Provides", ""),
            "conflicts": g("Conflicts", ""),
            "breaks": g("Breaks", ""),
            "multi_arch": g("Multi-Arch", ""),
            "essential": g("Essential", "no") == "yes",
            "priority": g("Priority", ""),
            "section": g("Section", ""),
            "maintainer": g("Maintainer", ""),
            "installed_size": int(inst) if inst.isdigit() else 0,
            "homepage": g("Homepage", ""),
            "description": g("Description", "").split("\n", 1)[0],
            "extra": {k: f[k] for k in _EXTRA_FIELDS if k in f},
        }
        records.append(make(values) if make is not None else PackageRecord(**values))
    return records


_RECORD_FIELDS = frozenset(
    [
        "name",
        "version",
        "architecture",
        "source",
        "source_version",
        "filename",
        "size",
        "sha256",
        "repo",
        "component",
        "depends",
        "pre_depends",
        "provides",
        "conflicts",
        "breaks",
        "multi_arch",
        "essential",
        "priority",
        "section",
        "maintainer",
        "installed_size",
        "homepage",
        "description",
        "extra",
    ]
)


def _fast_record() -> Callable[[dict[str, Any]], PackageRecord] | None:
    """A constructor that fills a PackageRecord's ``__dict__`` directly, when that is sound.

    The dataclass ``__init__`` of a frozen class sets each of its 24 fields through
    ``object.__setattr__``; for 60k+ records that is a sixth of the parse. Sound only while
    PackageRecord is a plain frozen dataclass with exactly the fields the parser fills and no
    ``__post_init__`` or ``__slots__``; otherwise the parser uses the normal constructor.
    """
    names = {f.name for f in dataclasses.fields(PackageRecord)}
    if (
        names != _RECORD_FIELDS
        or hasattr(PackageRecord, "__post_init__")
        or hasattr(PackageRecord, "__slots__")
    ):
        return None
    new = object.__new__
    set_attr = object.__setattr__

    def make(values: dict[str, Any]) -> PackageRecord:
        rec = new(PackageRecord)
        set_attr(rec, "__dict__", values)
        return rec

    return make


_FAST_RECORD = _fast_record()
