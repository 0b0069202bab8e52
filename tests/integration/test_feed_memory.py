"""Peak memory of commands that read outside files of at most 10 MB, per child process.

Issue 10: no input of at most 10 MB may drive a command above 512 MB. Each case runs the
installed ``assay`` console script in its own process and reads that process's own peak RSS
(``os.wait4``). The feed cases are 10 MB gzip bombs shaped per feed (whitespace that expands to
gigabytes, one oversized piece, millions of tiny rows): the streamed import refuses each with one
line and exit 2. The realistic tracker (~80 MB of JSON, under 10 MB gzipped) must import.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from pathlib import Path

import pytest

from fixtures.peak import LIMIT_KIB, run_measured
from fixtures.trackergen import write_tracker

TEN_MB = 10 << 20


def _gz(data: bytes) -> bytes:
    c = zlib.compressobj(9, wbits=31)
    return c.compress(data) + c.flush()


def _bomb(path: Path, head: bytes, unit: bytes) -> Path:
    """``head`` then ``unit`` repeated until the file is ~10 MB of concatenated gzip members
    (gigabytes once decompressed)."""
    block = _gz(unit * ((64 << 20) // len(unit)))
    first = _gz(head)
    n = (TEN_MB - len(first)) // len(block)
    path.write_bytes(first + block * n)
    assert 9 << 20 < path.stat().st_size <= TEN_MB
    return path


FeedCase = tuple[str, str, bytes, bytes, str]
SLOW_UNITS = (b" ", b"\n", b"\t", b"CVE-1,0.1,0.2\n")
FEED_BOMBS: list[FeedCase] = [
    # (name, import option, head, repeated unit, expected message)
    ("tracker-spaces", "--debian-tracker", b'{"linux": {"CVE-1": ', b" ", "decompression bomb"),
    ("tracker-one-piece", "--debian-tracker", b'{"linux": {"CVE-1": [', b"[],", "larger than"),
    ("tracker-string", "--debian-tracker", b'{"linux": {"CVE-1": "', b"a", "larger than"),
    ("nvd-spaces", "--nvd", b'{"format": "NVD_CVE", "vulnerabilities": [', b" ", "bomb"),
    ("nvd-one-piece", "--nvd", b'{"vulnerabilities": [{"cve": [', b"{},", "larger than"),
    ("kev-spaces", "--kev", b'{"vulnerabilities": [', b"\n", "decompression bomb"),
    ("osv-list", "--osv", b"[", b"\t", "decompression bomb"),
    ("osv-one-record", "--osv", b'[{"id": "X-1", "affected": [', b"[],", "larger than"),
    ("epss-rows", "--epss", b"cve,epss,percentile\n", b"CVE-1,0.1,0.2\n", "rows"),
    ("epss-line", "--epss", b"cve,epss,percentile\n", b"x", "line over"),
]


@pytest.mark.parametrize(
    "case",
    # the bombs that expand to the whole ratio limit (~1 GB) take a minute on a busy machine
    [pytest.param(c, marks=pytest.mark.slow) if c[3] in SLOW_UNITS else c for c in FEED_BOMBS],
    ids=lambda c: c[0],
)
def test_feed_bomb_is_refused_in_bounded_memory(case: FeedCase, tmp_path: Path) -> None:
    name, option, head, unit, match = case
    suffix = ".csv.gz" if option == "--epss" else ".json.gz"
    bomb = _bomb(tmp_path / f"{name}{suffix}", head, unit)
    code, err, peak = run_measured(
        ["assay", "db", "import", "--db", "v.db", option, str(bomb)], cwd=tmp_path
    )
    print(f"{name}: exit {code}, peak RSS {peak // 1024} MiB")
    assert code == 2 and "Traceback" not in err, err[-2000:]
    assert len(err.strip().splitlines()) == 1 and match in err, err[-2000:]
    assert peak < LIMIT_KIB, f"{name}: peak RSS {peak // 1024} MiB"


@pytest.mark.slow
def test_realistic_tracker_imports_in_bounded_memory(tmp_path: Path) -> None:
    """~80 MB of tracker JSON (json.loads of it alone peaks above 500 MB) imports streamed."""
    tracker = tmp_path / "tracker.json.gz"
    size = write_tracker(tracker, sources=44_000)
    assert size > 75 << 20 and tracker.stat().st_size <= TEN_MB, (size, tracker.stat().st_size)
    code, err, peak = run_measured(
        ["assay", "db", "import", "--db", "v.db", "--debian-tracker", str(tracker)], cwd=tmp_path
    )
    print(f"tracker of {size >> 20} MB: exit {code}, peak RSS {peak // 1024} MiB")
    assert code == 0, err[-2000:]
    assert peak < LIMIT_KIB, f"peak RSS {peak // 1024} MiB"
    # everything arrived: the linux entry (15,000 CVEs x 5 releases) and the rest
    code, err, _ = run_measured(
        ["assay", "db", "status", "--db", "v.db", "-o", "json"], cwd=tmp_path
    )
    assert code == 0, err


def _nested_lists(n: int) -> bytes:
    """A JSON array of about ``n`` bytes of empty arrays: the shape that costs most memory."""
    return b"[" + b"[]," * (n // 3 - 1) + b"[]]"


DocCase = tuple[str, Callable[[Path], list[str]], int, str]


def _write(tmp: Path, name: str, data: bytes) -> str:
    (tmp / name).write_bytes(data)
    assert len(data) <= TEN_MB
    return name


VEX_HEAD = (
    b'{"@context": "https://openvex.dev/ns/v0.2.0", "@id": "https://example.invalid/v",'
    b' "author": "t", "timestamp": "2024-01-01T00:00:00Z", "version": 1, "statements": '
)
DOC_CASES: list[DocCase] = [
    (
        "vex-merge",
        lambda t: [
            "vex",
            "merge",
            _write(t, "v.json", VEX_HEAD + _nested_lists(TEN_MB - 300) + b"}"),
        ],
        2,
        "statement",
    ),
    (
        "scan-sbom",
        lambda t: [
            "scan",
            _write(
                t,
                "s.spdx.json",
                b'{"spdxVersion": "SPDX-2.3", "packages": ' + _nested_lists(TEN_MB - 100) + b"}",
            ),
            "--db",
            "v.db",
        ],
        2,
        "",
    ),
    (
        "lock-check",
        lambda t: [
            "lock",
            _write(t, "s.yaml", b"contents:\n  packages: [base-files]\narchs: [amd64]\n"),
            "--check",
            *(_write(t, "s.lock.json", _nested_lists(TEN_MB)) and []),
        ],
        2,
        "lock",
    ),
    (
        "spec",
        lambda t: [
            "build",
            _write(t, "s.yaml", b"a: [" + b"[]," * (TEN_MB // 3 - 3) + b"[]]\n"),
            "--dest",
            "oci:out",
        ],
        2,
        "",
    ),
    (
        "keyless-bundle",
        lambda t: [
            "verify",
            _write(t, "blob", b"x"),
            "--bundle",
            _write(t, "b.json", b'{"mediaType": ' + _nested_lists(TEN_MB - 100) + b"}"),
            "--certificate-identity",
            "a@example.invalid",
            "--certificate-oidc-issuer",
            "https://issuer.example.invalid",
        ],
        1,  # a verification failure
        "",
    ),
]


@pytest.mark.parametrize("case", DOC_CASES, ids=lambda c: c[0])
def test_ten_mb_document_stays_in_bounded_memory(case: DocCase, tmp_path: Path) -> None:
    name, build, code_expected, match = case
    code, err, peak = run_measured(["assay", *build(tmp_path)], cwd=tmp_path)
    print(f"{name}: exit {code}, peak RSS {peak // 1024} MiB, {err.strip()[:160]}")
    assert "Traceback" not in err, err[-2000:]
    assert code == code_expected and len(err.strip().splitlines()) == 1, err[-2000:]
    assert match.lower() in err.lower(), err[-2000:]
    assert peak < LIMIT_KIB, f"{name}: peak RSS {peak // 1024} MiB"
