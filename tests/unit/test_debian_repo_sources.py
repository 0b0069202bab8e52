"""apt sources parsing, ASSAY_DEBIAN_MIRROR and spec repository entries."""

from __future__ import annotations

from pathlib import Path

import pytest

from assay.debian import sources as sources_mod
from assay.debian.model import RepoSource
from assay.debian.sources import (
    host_sources,
    parse_repository_entries,
    parse_sources_deb822,
    parse_sources_list,
    sources_from_env_or_host,
)
from assay.errors import UsageError

KR = "/usr/share/keyrings/debian-archive-keyring.gpg"

DEB822 = f"""\
# a comment
Types: deb deb-src
URIs: http://mirror.invalid/debian/
Suites: bookworm bookworm-updates
Components: main contrib
Signed-By: {KR}

Types: deb-src
URIs: http://mirror.invalid/debian
Suites: bookworm

Types: deb
URIs: http://mirror.invalid/debian-security
Suites: bookworm-security
Components: main
Enabled: no

Types: deb
URIs: https://mirror.invalid/debian-security
Suites: bookworm-security
Components: main
"""


def test_deb822_expands_suites_and_skips_disabled_and_src() -> None:
    got = parse_sources_deb822(DEB822)
    assert got == [
        RepoSource("http://mirror.invalid/debian", "bookworm", ("main", "contrib"), KR),
        RepoSource("http://mirror.invalid/debian", "bookworm-updates", ("main", "contrib"), KR),
        RepoSource("https://mirror.invalid/debian-security", "bookworm-security", ("main",)),
    ]


def test_deb822_embedded_key_goes_to_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASSAY_CACHE_DIR", str(tmp_path))
    text = (
        "Types: deb\nURIs: http://m.invalid/d\nSuites: s\nSigned-By:\n"
        " -----BEGIN PGP PUBLIC KEY BLOCK-----\n .\n QUJD\n -----END PGP PUBLIC KEY BLOCK-----\n"
    )
    (src,) = parse_sources_deb822(text)
    assert src.signed_by is not None
    key = Path(src.signed_by)
    assert key.parent == tmp_path / "keyrings"
    assert key.read_text().splitlines() == [
        "-----BEGIN PGP PUBLIC KEY BLOCK-----",
        "",
        "QUJD",
        "-----END PGP PUBLIC KEY BLOCK-----",
    ]


def test_one_line_sources_list() -> None:
    text = f"""
deb http://m.invalid/debian bookworm main non-free-firmware # trailing comment
deb-src http://m.invalid/debian bookworm main
# deb http://commented.invalid/x y z
deb [ arch=amd64 signed-by={KR} ] http://m.invalid/debian-security bookworm-security main
deb [signed-by={KR},/etc/apt/keyrings/extra.gpg] http://m.invalid/x y
"""
    assert parse_sources_list(text) == [
        RepoSource("http://m.invalid/debian", "bookworm", ("main", "non-free-firmware")),
        RepoSource("http://m.invalid/debian-security", "bookworm-security", ("main",), KR),
        RepoSource("http://m.invalid/x", "y", ("main",), f"{KR},/etc/apt/keyrings/extra.gpg"),
    ]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("deb http://m.invalid/debian ./", "flat repository"),
        ("deb ftp://m.invalid/debian s main", "not http"),
        ("deb http://m.invalid/debian", "expected 'deb URI SUITE"),
        ("deb [signed-by=0x1234567890ABCDEF] http://m.invalid/d s", "fingerprint"),
        ("deb [signed-by=relative.gpg] http://m.invalid/d s", "absolute keyring path"),
        ("deb [arch=amd64 http://m.invalid/d s", "unterminated"),
        ("deb http://m.invalid/d s ../main", "not a relative name"),
    ],
)
def test_one_line_errors(line: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_sources_list(line, origin="x.list")


def test_host_sources_reads_both_formats_in_order(tmp_path: Path) -> None:
    a = tmp_path / "a.sources"
    a.write_text("Types: deb\nURIs: http://m.invalid/a\nSuites: one two\nComponents: main\n")
    b = tmp_path / "sources.list"
    b.write_text("deb http://m.invalid/b three main\ndeb http://m.invalid/a one main\n")
    got = host_sources([a, b, tmp_path / "missing.sources"])
    assert [(s.uri, s.suite) for s in got] == [
        ("http://m.invalid/a", "one"),
        ("http://m.invalid/a", "two"),
        ("http://m.invalid/b", "three"),
    ]


@pytest.fixture
def fake_apt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    apt = tmp_path / "apt"
    (apt / "sources.list.d").mkdir(parents=True)
    monkeypatch.setattr(sources_mod, "_APT_DIR", apt)
    return apt


def test_env_full_entries_replace_host(fake_apt: Path) -> None:
    (fake_apt / "sources.list").write_text("deb http://host.invalid/debian bookworm main\n")
    env = {
        "ASSAY_DEBIAN_MIRROR": "http://127.0.0.1:8080/debian bookworm,bookworm-updates main;"
        f" [signed-by={KR}] http://127.0.0.1:8080/debian-security bookworm-security"
    }
    assert sources_from_env_or_host(env) == [
        RepoSource("http://127.0.0.1:8080/debian", "bookworm", ("main",)),
        RepoSource("http://127.0.0.1:8080/debian", "bookworm-updates", ("main",)),
        RepoSource("http://127.0.0.1:8080/debian-security", "bookworm-security", ("main",), KR),
    ]


def test_env_bare_uri_rebases_host_sources(fake_apt: Path) -> None:
    (fake_apt / "sources.list.d" / "debian.sources").write_text(
        f"Types: deb\nURIs: http://host.invalid/debian\nSuites: bookworm\nComponents: main\n"
        f"Signed-By: {KR}\n\n"
        "Types: deb\nURIs: http://host.invalid/debian-security\nSuites: bookworm-security\n"
    )
    got = sources_from_env_or_host({"ASSAY_DEBIAN_MIRROR": "http://127.0.0.1:9999/m/"})
    assert got == [
        RepoSource("http://127.0.0.1:9999/m/debian", "bookworm", ("main",), KR),
        RepoSource("http://127.0.0.1:9999/m/debian-security", "bookworm-security", ("main",)),
    ]
    # Without the variable, the host sources as they are.
    assert [s.uri for s in sources_from_env_or_host({})] == [
        "http://host.invalid/debian",
        "http://host.invalid/debian-security",
    ]


def test_nothing_configured_is_a_clear_usage_error(fake_apt: Path) -> None:
    with pytest.raises(UsageError, match=r"no Debian repository configured.*ASSAY_DEBIAN_MIRROR"):
        sources_from_env_or_host({})
    with pytest.raises(UsageError, match="no Debian repository configured"):
        sources_from_env_or_host({"ASSAY_DEBIAN_MIRROR": "http://127.0.0.1:1"})
    with pytest.raises(UsageError, match="expected 'URI SUITE"):
        sources_from_env_or_host({"ASSAY_DEBIAN_MIRROR": "http://127.0.0.1:1/d ; x"})


def test_spec_repository_entries() -> None:
    got = parse_repository_entries(
        [
            {
                "uri": "http://127.0.0.1:1/debian/",
                "suites": ["bookworm", "bookworm-updates"],
                "components": ["main"],
                "signed-by": KR,
            },
            {"uri": "http://127.0.0.1:1/debian-security", "suites": "bookworm-security"},
            "http://127.0.0.1:1/extra s main contrib",
        ]
    )
    assert got == [
        RepoSource("http://127.0.0.1:1/debian", "bookworm", ("main",), KR),
        RepoSource("http://127.0.0.1:1/debian", "bookworm-updates", ("main",), KR),
        RepoSource("http://127.0.0.1:1/debian-security", "bookworm-security", ("main",)),
        RepoSource("http://127.0.0.1:1/extra", "s", ("main", "contrib")),
    ]


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ({"uri": "x"}, "must be a list"),
        ([{"suites": ["s"]}], "'uri' must be a non-empty string"),
        ([{"uri": "http://h.invalid/d"}], "at least one suite"),
        ([{"uri": "http://h.invalid/d", "suites": [1]}], "list of strings"),
        ([{"uri": "http://h.invalid/d", "suites": ["s"], "keyring": "x"}], "unknown key"),
        ([42], "expected a mapping"),
    ],
)
def test_spec_repository_entry_errors(entries: object, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_repository_entries(entries)  # type: ignore[arg-type]


def test_default_paths_follow_apt(fake_apt: Path) -> None:
    d = fake_apt / "sources.list.d"
    (fake_apt / "sources.list").write_text("deb http://h.invalid/main-list a\n")
    (d / "b.sources").write_text("Types: deb\nURIs: http://h.invalid/b\nSuites: b\n")
    (d / "a.list").write_text("deb http://h.invalid/a a\n")
    (d / "c.list.disabled").write_text("deb http://h.invalid/c c\n")
    (d / "d.sources.save").write_text("Types: deb\nURIs: http://h.invalid/d\nSuites: d\n")
    assert [s.uri for s in host_sources()] == [
        "http://h.invalid/main-list",
        "http://h.invalid/a",
        "http://h.invalid/b",
    ]


def test_host_sources_skip_what_assay_cannot_use(tmp_path: Path) -> None:
    """A cdrom line or a flat repo in the host config is skipped; explicit input still fails."""
    listing = tmp_path / "sources.list"
    listing.write_text(
        "deb cdrom:[Debian GNU/Linux 12]/ bookworm main\n"
        "deb http://h.invalid/flat ./\n"
        "deb\thttp://h.invalid/debian bookworm main\n"
    )
    assert [(s.uri, s.suite) for s in host_sources([listing])] == [
        ("http://h.invalid/debian", "bookworm")
    ]
    with pytest.raises(UsageError, match="not http"):
        parse_sources_list(listing.read_text())
    with pytest.raises(UsageError, match="not http"):
        parse_repository_entries([{"uri": "file:/srv/repo", "suites": ["s"]}])


def test_spec_relative_signed_by_needs_base_dir(tmp_path: Path) -> None:
    entry = {"uri": "http://127.0.0.1:1/d", "suites": ["s"], "signed-by": "keys/repo.asc"}
    with pytest.raises(UsageError, match="absolute keyring path"):
        parse_repository_entries([entry])
    (src,) = parse_repository_entries([entry], base_dir=tmp_path)
    assert src.signed_by == str(tmp_path / "keys" / "repo.asc")
    (src,) = parse_repository_entries([dict(entry, **{"signed-by": KR})], base_dir=tmp_path)
    assert src.signed_by == KR
