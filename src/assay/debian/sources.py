"""Where the Debian repositories are: the host's apt sources, ``ASSAY_DEBIAN_MIRROR``, or the spec.

Three inputs produce the same thing, a list of :class:`~assay.debian.model.RepoSource` (one per
URI and suite):

* the host's apt configuration: deb822 ``*.sources`` files and the one-line ``sources.list``
  format (only ``deb`` entries; ``deb-src`` and disabled stanzas are skipped);
* the ``ASSAY_DEBIAN_MIRROR`` environment variable (see :func:`sources_from_env_or_host`);
* the ``contents.repositories`` list of an image spec (see :func:`parse_repository_entries`).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from assay._atomic import atomic_write_bytes
from assay.cachedir import cache_dir
from assay.debian.model import RepoSource
from assay.errors import UsageError

__all__ = [
    "DEFAULT_KEYRING",
    "host_sources",
    "parse_repository_entries",
    "parse_sources_deb822",
    "parse_sources_list",
    "sources_from_env_or_host",
]

log = logging.getLogger(__name__)

DEFAULT_KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")

_APT_DIR = Path("/etc/apt")
_MAX_SOURCES_FILE = 1 << 20  # 1 MiB: an apt sources file is a few hundred bytes
_FPR_RE = re.compile(r"^(0x)?[0-9A-Fa-f]{16,40}!?$")


def _default_paths() -> list[Path]:
    # What apt reads: sources.list, then sources.list.d/*.list and *.sources in name order.
    paths = [_APT_DIR / "sources.list"]
    d = _APT_DIR / "sources.list.d"
    paths += sorted(
        (p for p in d.glob("*") if p.name.endswith((".list", ".sources"))), key=lambda p: p.name
    )
    return paths


def host_sources(paths: Sequence[Path] | None = None) -> list[RepoSource]:
    """Read apt sources: ``*.sources`` files as deb822, anything else as one-line format.

    ``paths`` defaults to what apt reads: ``/etc/apt/sources.list``, then the ``*.list`` and
    ``*.sources`` files of ``/etc/apt/sources.list.d/`` in name order. Files that do not exist
    are skipped. Duplicate entries keep their first position.
    """
    result: list[RepoSource] = []
    for path in _default_paths() if paths is None else paths:
        path = Path(path)
        if not path.is_file():
            continue
        if path.stat().st_size > _MAX_SOURCES_FILE:
            raise UsageError(f"{path}: larger than 1 MiB; this is not an apt sources file")
        text = path.read_text(encoding="utf-8", errors="replace")
        if path.name.endswith(".sources"):
            result.extend(parse_sources_deb822(text, str(path), skip_unsupported=True))
        else:
            result.extend(parse_sources_list(text, str(path), skip_unsupported=True))
    return _dedup(result)


# --- deb822 *.sources ----------------------------------------------------------------------


def _deb822_stanzas(text: str) -> Iterable[dict[str, str]]:
    fields: dict[str, str] = {}
    key: str | None = None
    for raw in text.splitlines():
        if raw.startswith("#"):
            continue
        if not raw.strip():
            if fields:
                yield fields
            fields, key = {}, None
            continue
        if raw[0] in " \t":
            if key is None:
                continue
            line = raw.strip()
            fields[key] += "\n" + ("" if line == "." else line)
            continue
        name, sep, value = raw.partition(":")
        if not sep:
            continue
        key = name.strip().lower()
        fields[key] = value.strip()
    if fields:
        yield fields


def parse_sources_deb822(
    text: str, origin: str = "<sources>", skip_unsupported: bool = False
) -> list[RepoSource]:
    """Parse deb822-style apt sources (``Types``, ``URIs``, ``Suites``, ``Components``...).

    ``skip_unsupported`` skips (with a logged warning) entries assay cannot use: non-HTTP(S)
    URIs such as ``cdrom:`` or ``file:``, and flat repositories.
    """
    out: list[RepoSource] = []
    for stanza in _deb822_stanzas(text):
        if stanza.get("enabled", "yes").strip().lower() == "no":
            continue
        if "deb" not in stanza.get("types", "").split():
            continue
        uris = stanza.get("uris", "").split()
        suites = stanza.get("suites", "").split()
        components = tuple(stanza.get("components", "").split())
        if not uris or not suites:
            raise UsageError(f"{origin}: a 'Types: deb' stanza needs URIs and Suites")
        signed_by = _signed_by(stanza.get("signed-by"), origin)
        for uri in uris:
            for suite in suites:
                _add(out, skip_unsupported, uri, suite, components, signed_by, origin)
    return out


# --- one-line sources.list -----------------------------------------------------------------


def parse_sources_list(
    text: str, origin: str = "<sources.list>", skip_unsupported: bool = False
) -> list[RepoSource]:
    """Parse one-line apt sources: ``deb [opt=val ...] URI SUITE [COMPONENT...]``.

    ``skip_unsupported`` as for :func:`parse_sources_deb822`.
    """
    out: list[RepoSource] = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        where = f"{origin}:{lineno}"
        kind, _, rest = line.replace("\t", " ").partition(" ")
        if kind != "deb":
            continue  # deb-src and anything else
        options, rest = _split_options(rest.strip(), where)
        words = rest.split()
        if len(words) < 2:
            raise UsageError(f"{where}: expected 'deb URI SUITE [COMPONENT...]', got {raw!r}")
        signed_by = _signed_by(options.get("signed-by"), where)
        _add(out, skip_unsupported, words[0], words[1], tuple(words[2:]), signed_by, where)
    return out


def _split_options(rest: str, where: str) -> tuple[dict[str, str], str]:
    if not rest.startswith("["):
        return {}, rest
    end = rest.find("]")
    if end < 0:
        raise UsageError(f"{where}: unterminated '[' option list")
    options: dict[str, str] = {}
    for word in rest[1:end].split():
        name, sep, value = word.partition("=")
        if not sep:
            raise UsageError(f"{where}: option {word!r} is not NAME=VALUE")
        options[name.strip().lower().rstrip("+-")] = value.strip()
    return options, rest[end + 1 :].strip()


# --- shared --------------------------------------------------------------------------------


def _signed_by(value: str | None, where: str) -> str | None:
    """Turn a Signed-By value into keyring path(s) joined by ',' (or None).

    An embedded ASCII-armoured key block is stored content-addressed under the cache and its
    path used. Fingerprint selectors are refused: ignoring them would weaken verification.
    """
    if value is None or not value.strip():
        return None
    value = value.strip()
    if value.startswith("-----BEGIN PGP PUBLIC KEY BLOCK-----"):
        data = (value + "\n").encode()
        digest = hashlib.sha256(data).hexdigest()
        path = cache_dir() / "keyrings" / f"{digest}.asc"
        if not path.is_file():
            atomic_write_bytes(path, data)
        return str(path)
    paths: list[str] = []
    for item in re.split(r"[,\s]+", value):
        if not item:
            continue
        if _FPR_RE.match(item) and not item.startswith("/"):
            raise UsageError(
                f"{where}: Signed-By fingerprint selectors ({item}) are not supported; "
                "name a keyring file holding only the keys to trust"
            )
        if not os.path.isabs(item):
            raise UsageError(f"{where}: Signed-By must be an absolute keyring path, got {item!r}")
        paths.append(item)
    return ",".join(paths) or None


class _Unsupported(UsageError):
    """An apt source assay cannot use (a host's apt configuration may still have it)."""


def _add(
    out: list[RepoSource],
    skip_unsupported: bool,
    uri: str,
    suite: str,
    components: tuple[str, ...],
    signed_by: str | None,
    where: str,
) -> None:
    try:
        out.append(_source(uri, suite, components, signed_by, where))
    except _Unsupported as exc:
        if not skip_unsupported:
            raise
        log.warning("skipping apt source: %s", exc)


def _check_uri(uri: str, where: str) -> str:
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise _Unsupported(
            f"{where}: repository URI {uri!r} is not http(s)://HOST/PATH; "
            "assay fetches repositories over HTTP(S) only"
        )
    return uri.rstrip("/")


def _source(
    uri: str, suite: str, components: tuple[str, ...], signed_by: str | None, where: str
) -> RepoSource:
    uri = _check_uri(uri, where)
    if suite.endswith("/"):
        raise _Unsupported(
            f"{where}: flat repository {uri} {suite} is not supported; "
            "use a repository with dists/SUITE/InRelease"
        )
    if "/" in suite.strip("/") and ".." in suite.split("/"):
        raise UsageError(f"{where}: suite {suite!r} contains '..'")
    for comp in components:
        if ".." in comp.split("/") or comp.startswith("/"):
            raise UsageError(f"{where}: component {comp!r} is not a relative name")
    return RepoSource(uri=uri, suite=suite, components=components or ("main",), signed_by=signed_by)


def _dedup(sources: Iterable[RepoSource]) -> list[RepoSource]:
    seen: set[RepoSource] = set()
    out: list[RepoSource] = []
    for src in sources:
        if src not in seen:
            seen.add(src)
            out.append(src)
    return out


# --- environment and spec ------------------------------------------------------------------


def sources_from_env_or_host(env: Mapping[str, str] | None = None) -> list[RepoSource]:
    """The repositories to use when a spec names none.

    ``ASSAY_DEBIAN_MIRROR`` (when set and not empty) takes one of two forms:

    * **A bare base URI** such as ``http://127.0.0.1:8080`` or ``https://mirror.example/pub``:
      every host apt source keeps its suites, components, keyring and path, but its scheme and
      host are replaced by the URI's, and the URI's path (if any) is put in front of the
      source's path. A host source ``http://H/debian bookworm`` with
      ``ASSAY_DEBIAN_MIRROR=http://127.0.0.1:8080/m`` becomes
      ``http://127.0.0.1:8080/m/debian bookworm``. Needs host apt sources.
    * **Full entries** separated by ``;``, each ``[signed-by=KEYRING] URI SUITE[,SUITE...]
      [COMPONENT...]`` (components default to ``main``), e.g.
      ``http://127.0.0.1:8080/debian bookworm,bookworm-updates main;
      http://127.0.0.1:8080/debian-security bookworm-security``.
      The host's apt sources are then not read at all.

    Otherwise the host's apt sources are used (:func:`host_sources`). Raises ``UsageError``
    when nothing is configured.
    """
    env = os.environ if env is None else env
    value = env.get("ASSAY_DEBIAN_MIRROR", "").strip()
    if value and any(ch.isspace() for ch in value):
        out: list[RepoSource] = []
        for i, entry in enumerate(value.split(";"), 1):
            entry = entry.strip()
            if not entry:
                continue
            where = f"ASSAY_DEBIAN_MIRROR entry {i}"
            options, rest = _split_options(entry, where)
            words = rest.split()
            if len(words) < 2:
                raise UsageError(
                    f"{where}: expected 'URI SUITE[,SUITE] [COMPONENT...]', got {entry!r}"
                )
            signed_by = _signed_by(options.get("signed-by"), where)
            for suite in words[1].split(","):
                if suite:
                    out.append(_source(words[0], suite, tuple(words[2:]), signed_by, where))
        if not out:
            raise UsageError("ASSAY_DEBIAN_MIRROR holds no repository entry")
        return _dedup(out)

    host = host_sources()
    if not host:
        raise UsageError(
            "no Debian repository configured: the spec has no contents.repositories, "
            "ASSAY_DEBIAN_MIRROR is not set and no 'deb' entries were found in "
            "/etc/apt/sources.list or /etc/apt/sources.list.d/*.{list,sources}. "
            "Set ASSAY_DEBIAN_MIRROR='URI SUITE [COMPONENT...]' or add repositories to the spec."
        )
    if not value:
        return host
    base = urlsplit(_check_uri(value, "ASSAY_DEBIAN_MIRROR"))
    prefix = base.path.rstrip("/")
    out = []
    for src in host:
        parts = urlsplit(src.uri)
        uri = urlunsplit((base.scheme, base.netloc, prefix + parts.path, "", ""))
        out.append(
            RepoSource(
                uri=uri.rstrip("/"),
                suite=src.suite,
                components=src.components,
                signed_by=src.signed_by,
            )
        )
    return _dedup(out)


def parse_repository_entries(
    entries: Sequence[Mapping[str, Any] | str], base_dir: Path | None = None
) -> list[RepoSource]:
    """Turn a spec's ``contents.repositories`` into RepoSources.

    Each entry is a mapping ``{uri, suites: [..], components: [..], signed-by: PATH}``
    (``suites`` may also be one space-separated string; ``components`` default to ``main``;
    ``signed_by`` is accepted as a spelling of ``signed-by``). A plain string entry is read as
    a one-line ``[signed-by=PATH] URI SUITE [COMPONENT...]``. A relative ``signed-by`` path is
    taken from ``base_dir`` (the spec's directory) when given, else refused.
    """
    if isinstance(entries, str | bytes) or not isinstance(entries, Sequence):
        raise UsageError("contents.repositories must be a list of {uri, suites, components}")
    out: list[RepoSource] = []
    for i, entry in enumerate(entries, 1):
        where = f"contents.repositories[{i}]"
        if isinstance(entry, str):
            out.extend(parse_sources_list("deb " + entry, origin=where))
            continue
        if not isinstance(entry, Mapping):
            raise UsageError(f"{where}: expected a mapping with uri, suites, components")
        unknown = set(entry) - {"uri", "suites", "suite", "components", "signed-by", "signed_by"}
        if unknown:
            raise UsageError(f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))}")
        uri = entry.get("uri")
        if not isinstance(uri, str) or not uri:
            raise UsageError(f"{where}: 'uri' must be a non-empty string")
        suites = _str_list(entry.get("suites", entry.get("suite")), f"{where}.suites")
        if not suites:
            raise UsageError(f"{where}: 'suites' must name at least one suite")
        components = tuple(_str_list(entry.get("components"), f"{where}.components"))
        key = entry.get("signed-by", entry.get("signed_by"))
        if key is not None and not isinstance(key, str):
            raise UsageError(f"{where}: 'signed-by' must be a keyring path")
        if key and base_dir is not None and not key.lstrip().startswith("-----BEGIN"):
            key = ",".join(
                str(base_dir / k) if not os.path.isabs(k) else k
                for k in re.split(r"[,\s]+", key.strip())
                if k
            )
        signed_by = _signed_by(key, where)
        for suite in suites:
            out.append(_source(uri, suite, components, signed_by, where))
    return _dedup(out)


def _str_list(value: object, where: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [v.strip() for v in value if v.strip()]
    raise UsageError(f"{where}: expected a list of strings")
