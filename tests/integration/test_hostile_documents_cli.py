"""Every kind of outside document, made hostile, through the installed ``assay`` console
script: one line on stderr, exit 2 (1 for verification), never a traceback."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import cast

import pytest

from fixtures.minidocs import PASS_POLICY
from fixtures.vulnfeeds import db_import

DEEP = 100_000
DEEP_JSON = b"[" * DEEP + b"]" * DEEP
DEEP_OBJ = b'{"a":' * DEEP + b"1" + b"}" * DEEP
HUGE_INT = b'{"schemaVersion": ' + b"9" * 5000 + b"}"
SPEC = "contents:\n  packages: [base-files]\narchs: [amd64]\n"
ALIAS_BOMB = "\n".join(
    ["a: &a [x, x, x, x, x, x, x, x, x]"]
    + [
        f"{n}: &{n} [{', '.join('*' + p for _ in range(9))}]"
        for p, n in zip("abcdefgh", "bcdefghi", strict=True)
    ]
)
DEEP_BLOCK = "a:\n" + "".join(" " * (i + 1) + "- \n" for i in range(200))
VEX_OK = {
    "@context": "https://openvex.dev/ns/v0.2.0",
    "@id": "https://example.invalid/vex/1",
    "author": "t",
    "timestamp": "2024-01-01T00:00:00Z",
    "version": 1,
    "statements": [
        {
            "vulnerability": {"name": "CVE-2024-0001"},
            "products": [{"@id": "pkg:deb/debian/foo@1"}],
            "status": "not_affected",
            "justification": "component_not_present",
        }
    ],
}
RESULT_OK = {
    "schema": "https://assay.dev/schemas/scan/v1",
    "subject": {"name": "img"},
    "findings": [
        {
            "id": "CVE-2024-0001",
            "package": {
                "name": "foo\x1b]0;pwned\x07\x1b[31m",
                "version": "1\x9b2J",
                "purl": "pkg:deb/debian/foo@1",
            },
            "state": "affected",
            "severity": "high",
        }
    ],
}


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "ASSAY_CACHE_DIR": str(cwd / "cache"), **(env or {})}
    return subprocess.run(
        ["assay", *args], capture_output=True, text=True, cwd=cwd, env=full, timeout=120
    )


def _one_line(proc: subprocess.CompletedProcess[str], code: int, match: str) -> None:
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == code, proc.stderr[-3000:]
    assert len(lines) == 1 and lines[0].startswith("assay: error:"), proc.stderr[-3000:]
    assert match.lower() in lines[0].lower(), lines[0]
    assert "\x1b" not in proc.stderr


def _layout(tmp: Path, manifest: bytes | None = None, index: bytes | None = None) -> Path:
    """An OCI layout whose index (or one manifest) is ``index``/``manifest`` verbatim."""
    root = tmp / "layout"
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    if manifest is not None:
        (blobs / _sha(manifest).split(":")[1]).write_bytes(manifest)
        desc = {
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": _sha(manifest),
            "size": len(manifest),
            "platform": {"architecture": "amd64", "os": "linux"},
        }
        index = json.dumps({"schemaVersion": 2, "manifests": [desc]}).encode()
    assert index is not None
    (root / "index.json").write_bytes(index)
    return root


Case = Callable[[Path], list[str]]


def _lock(tmp: Path, data: bytes) -> list[str]:
    """Write the lock beside ``s.yaml`` (where ``assay lock s.yaml`` looks); no extra args."""
    (tmp / "s.lock.json").write_bytes(data)
    return []


def _write(tmp: Path, name: str, data: bytes | str) -> str:
    path = tmp / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return name


def _vex_statement(tmp: Path, **fields: object) -> str:
    """``v.json``: VEX_OK with these fields of its one statement replaced."""
    (first,) = cast("list[dict[str, object]]", VEX_OK["statements"])
    statement = {**first, **fields}
    return _write(tmp, "v.json", json.dumps({**VEX_OK, "statements": [statement]}))


CASES: dict[str, tuple[Case, int, str]] = {
    # OCI documents
    "index-deep": (lambda t: ["inspect", f"oci:{_layout(t, index=DEEP_JSON)}"], 2, "nested"),
    "index-huge-int": (lambda t: ["inspect", f"oci:{_layout(t, index=HUGE_INT)}"], 2, "digits"),
    "manifest-deep": (lambda t: ["inspect", f"oci:{_layout(t, manifest=DEEP_OBJ)}"], 2, "nested"),
    "manifest-huge-int": (
        lambda t: ["sbom", f"oci:{_layout(t, manifest=HUGE_INT)}"],
        2,
        "digits",
    ),
    "docker-archive-bad-index": (
        lambda t: ["inspect", f"docker-archive:{_write(t, 'a.tar', b'')}:@abc"],
        2,
        "@N",
    ),
    # specs (YAML) and locks
    "spec-alias-bomb": (
        lambda t: ["build", _write(t, "s.yaml", ALIAS_BOMB), "--dest", "oci:out"],
        2,
        "alias",
    ),
    "spec-deep": (
        lambda t: ["build", _write(t, "s.yaml", "[" * DEEP + "]" * DEEP), "--dest", "oci:out"],
        2,
        "nested",
    ),
    "spec-epoch-1e18": (
        lambda t: [
            "build",
            _write(t, "s.yaml", SPEC + "source-date-epoch: 1.0e+18\n"),
            "--dest",
            "oci:out",
        ],
        2,
        "source-date-epoch",
    ),
    "spec-epoch-digits": (
        lambda t: [
            "build",
            _write(t, "s.yaml", SPEC + "source-date-epoch: " + "9" * 5000),
            "--dest",
            "oci:out",
        ],
        2,
        "digits",
    ),
    "lock-deep": (
        lambda t: ["lock", _write(t, "s.yaml", SPEC), "--check", *_lock(t, DEEP_OBJ)],
        2,
        "nested",
    ),
    # multi-document YAML: policies and `admission audit --from`
    "policy-second-doc-deep": (
        lambda t: [
            "policy",
            "lint",
            _write(t, "p.yaml", PASS_POLICY + "---\n" + "[" * DEEP + "]" * DEEP + "\n"),
        ],
        2,
        "nested",
    ),
    "policy-second-doc-block-deep": (
        lambda t: ["policy", "lint", _write(t, "p.yaml", PASS_POLICY + "---\n" + DEEP_BLOCK)],
        2,
        "nested more than 64",
    ),
    "policy-second-doc-alias": (
        lambda t: ["policy", "lint", _write(t, "p.yaml", PASS_POLICY + "---\na: &a 1\nb: *a\n")],
        2,
        "alias",
    ),
    "policy-second-doc-huge-int": (
        lambda t: ["policy", "lint", _write(t, "p.yaml", PASS_POLICY + "---\na: " + "9" * 5000)],
        2,
        "digits",
    ),
    "audit-from-alias-bomb": (
        lambda t: [
            "admission",
            "audit",
            "--policy",
            _write(t, "p.yaml", PASS_POLICY),
            "--from",
            _write(t, "w.yaml", "kind: List\nitems: []\n---\n" + ALIAS_BOMB),
        ],
        2,
        "alias bomb",
    ),
    "audit-from-deep": (
        lambda t: [
            "admission",
            "audit",
            "--policy",
            _write(t, "p.yaml", PASS_POLICY),
            "--from",
            _write(t, "w.yaml", "kind: List\nitems: []\n---\n" + "[" * DEEP + "]" * DEEP),
        ],
        2,
        "nested",
    ),
    # feeds
    "tracker-deep": (
        lambda t: db_import("--debian-tracker", _write(t, "t.json", DEEP_OBJ)),
        2,
        "nested",
    ),
    "tracker-gz-bomb": (
        lambda t: db_import(
            "--debian-tracker", _write(t, "t.json.gz", gzip.compress(b" " * (256 << 20), 9))
        ),
        2,
        "decompression bomb",
    ),
    "osv-severity-number": (
        lambda t: db_import("--osv", _write(t, "o.json", json.dumps({"id": "X-1", "severity": 5}))),
        2,
        "severity must be a list",
    ),
    "osv-deep": (
        lambda t: db_import("--osv", _write(t, "o.json", DEEP_JSON)),
        2,
        "nested",
    ),
    "kev-huge-int": (
        lambda t: db_import("--kev", _write(t, "k.json", HUGE_INT)),
        2,
        "digits",
    ),
    "epss-huge-field": (
        lambda t: db_import(
            "--epss", _write(t, "e.csv", 'cve,epss,percentile\n"' + "x" * 200_000 + '",0.1,0.2\n')
        ),
        2,
        "not valid CSV",
    ),
    # VEX, scan results, SBOM inputs
    "vex-identifiers-string": (
        lambda t: ["vex", "merge", _vex_statement(t, products=[{"identifiers": "x"}])],
        2,
        "identifiers must be an object",
    ),
    "vex-aliases-number": (
        lambda t: [
            "vex",
            "merge",
            _vex_statement(t, vulnerability={"name": "CVE-1", "aliases": 5}),
        ],
        2,
        "aliases must be a list",
    ),
    "vex-deep": (lambda t: ["vex", "merge", _write(t, "v.json", DEEP_OBJ)], 2, "nested"),
    "scan-result-deep": (
        lambda t: [
            "vex",
            "apply",
            _write(t, "r.json", DEEP_OBJ),
            "--vex",
            _write(t, "v.json", json.dumps(VEX_OK)),
        ],
        2,
        "nested",
    ),
    "sbom-spdx-packages-number": (
        lambda t: [
            "scan",
            _write(t, "s.spdx.json", json.dumps({"spdxVersion": "SPDX-2.3", "packages": 5})),
            "--db",
            "v.db",
        ],
        2,
        "packages must be a list",
    ),
    "sbom-deep": (
        lambda t: ["scan", _write(t, "s.spdx.json", DEEP_OBJ), "--db", "v.db"],
        2,
        "nested",
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_document_is_one_line_exit_2(name: str, tmp_path: Path) -> None:
    build, code, match = CASES[name]
    args = build(tmp_path)
    _one_line(_cli(*args, cwd=tmp_path), code, match)


def test_package_names_with_escapes_are_printed_escaped(tmp_path: Path) -> None:
    _write(tmp_path, "r.json", json.dumps(RESULT_OK))
    _write(tmp_path, "v.json", json.dumps(VEX_OK))
    proc = _cli("vex", "apply", "r.json", "--vex", "v.json", "-o", "table", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "\x1b" not in proc.stdout and "\x9b" not in proc.stdout and "\x07" not in proc.stdout
    assert "foo\\x1b]0;pwned\\x07\\x1b[31m" in proc.stdout


class _EvilRegistry:
    """Answers every request with HTTP 400 and a registry error whose message holds terminal
    escape sequences."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        body = json.dumps(
            {"errors": [{"code": "DENIED", "message": "\x1b]0;owned\x07\x1b[2J\x1b[32mOK"}]}
        ).encode()
        self.response = (
            b"HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                try:
                    conn.recv(65536)
                    conn.sendall(self.response)
                except OSError:
                    pass


@pytest.fixture()
def evil_registry() -> Iterator[_EvilRegistry]:
    server = _EvilRegistry()
    yield server
    server.sock.close()


def test_registry_error_text_is_printed_escaped(
    evil_registry: _EvilRegistry, tmp_path: Path
) -> None:
    proc = _cli("sbom", f"127.0.0.1:{evil_registry.port}/x/y:latest", cwd=tmp_path)
    assert proc.returncode in (1, 2), proc.stderr
    assert "\x1b" not in proc.stderr and "\x07" not in proc.stderr
    assert "\\x1b" in proc.stderr and "DENIED" in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_gzip_bomb_feed_stays_within_memory(tmp_path: Path) -> None:
    """A 1 MB gzip bomb (1 GB of spaces) is refused at 100x its size; the child's peak RSS is
    measured by a wrapper process (RUSAGE_CHILDREN of a fresh parent holds only this child)."""
    bomb = tmp_path / "t.json.gz"
    bomb.write_bytes(gzip.compress(b" " * (1 << 30), 9))
    assert bomb.stat().st_size < (2 << 20)
    wrapper = (
        "import resource, subprocess, sys\n"
        "p = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "print(p.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
        "sys.stderr.write(p.stderr)\n"
    )
    args = ["assay", "db", "import", "--db", "v.db", "--debian-tracker", str(bomb)]
    proc = subprocess.run(
        [sys.executable, "-c", wrapper, *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    code, peak_kib = (int(x) for x in proc.stdout.split())
    assert code == 2 and "decompression bomb" in proc.stderr, proc.stderr
    assert peak_kib < 512 * 1024, f"peak RSS {peak_kib // 1024} MiB"
