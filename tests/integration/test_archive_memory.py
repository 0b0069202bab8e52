"""Archive bombs through the installed console script, peak memory measured per child process.

Each bomb is a small image on disk (a few MB) that expands to gigabytes: 3,000 PAX headers of
1 MiB, 40 dpkg status files of 60 MiB, two 3 GiB files of zeros. ``assay sbom`` / ``assay run``
must refuse them with a one-line error (exit 2) and a peak RSS under 512 MB (per command,
measured by ``fixtures.peak``).
gzip members concatenate, so each blob is built from a few compressed pieces repeated.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import zlib
from pathlib import Path

import pytest

from fixtures import tarcraft as tc
from fixtures.peak import run_measured

LIMIT_KB = 512 * 1024


def _gz(data: bytes) -> bytes:
    c = zlib.compressobj(9, wbits=31)
    return c.compress(data) + c.flush()


def _gz_zeros(n: int) -> bytes:
    c = zlib.compressobj(9, wbits=31)
    chunk = bytes(1 << 20)
    out = []
    for _ in range(n >> 20):
        out.append(c.compress(chunk))
    out.append(c.compress(bytes(n & ((1 << 20) - 1))))
    out.append(c.flush())
    return b"".join(out)


def _layout(root: Path, pieces: list[tuple[bytes, bytes | int]]) -> Path:
    """One-layer OCI layout; ``pieces`` are (gzip member, its plain bytes or a zero count)."""
    blob = b"".join(gz for gz, _ in pieces)
    diff = hashlib.sha256()
    zero = bytes(1 << 20)
    for _, plain in pieces:
        if isinstance(plain, int):
            for _ in range(plain >> 20):
                diff.update(zero)
            diff.update(bytes(plain & ((1 << 20) - 1)))
        else:
            diff.update(plain)
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def put(data: bytes) -> dict[str, object]:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return {"digest": "sha256:" + digest, "size": len(data)}

    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["/bin/true"]},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + diff.hexdigest()]},
    }
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            **put(json.dumps(config).encode()),
        },
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **put(blob)}],
    }
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                **put(json.dumps(manifest).encode()),
                "annotations": {"org.opencontainers.image.ref.name": "latest"},
                "platform": {"architecture": "amd64", "os": "linux"},
            }
        ],
    }
    (root / "index.json").write_text(json.dumps(index))
    (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    assert len(blob) < 10 << 20, len(blob)
    return root


def _pax_bomb(root: Path) -> Path:
    record = tc.pax_record("comment", "a" * ((1 << 20) - 30))
    one = tc.pax(record) + tc.file("f", b"")
    gz_one = _gz(one)
    return _layout(root, [(gz_one, one)] * 3000 + [(_gz(bytes(1024)), bytes(1024))])


def _status_bomb(root: Path) -> Path:
    big = 60 << 20
    head = b"".join(
        tc.directory(d) for d in ("var/", "var/lib/", "var/lib/dpkg/", "var/lib/dpkg/status.d/")
    )
    zeros = _gz_zeros(big)
    pieces: list[tuple[bytes, bytes | int]] = [(_gz(head), head)]
    for i in range(40):
        h = tc.header(f"var/lib/dpkg/status.d/p{i}", size=big)
        pieces += [(_gz(h), h), (zeros, big)]
    pieces.append((_gz(bytes(1024)), bytes(1024)))
    return _layout(root, pieces)


def _zero_files_bomb(root: Path) -> Path:
    size = 3 << 30
    zeros = _gz_zeros(256 << 20)
    pieces: list[tuple[bytes, bytes | int]] = []
    for name in ("a", "b"):
        h = tc.header(name, size=size)
        pieces.append((_gz(h), h))
        pieces += [(zeros, 256 << 20)] * (size // (256 << 20))
    pieces.append((_gz(bytes(1024)), bytes(1024)))
    return _layout(root, pieces)


def _run(args: list[str], cwd: Path) -> tuple[int, str, int]:
    """Exit code, stderr and the command's own peak RSS (KiB, see fixtures.peak)."""
    code, err, peak = run_measured(args, cwd=cwd)
    print(f"{' '.join(args[:2])}: exit {code}, peak RSS {peak // 1024} MiB")
    return code, err, peak


@pytest.mark.slow
@pytest.mark.parametrize(
    "build,match",
    [(_pax_bomb, "header bomb"), (_status_bomb, "exceed 268435456 bytes in total")],
)
def test_sbom_bombs_fail_cleanly_in_bounded_memory(build, match, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    layout = build(tmp_path / "img")
    code, err, rss_kb = _run(
        ["assay", "sbom", f"oci:{layout}:latest", "-o", "spdx-json"], cwd=tmp_path
    )
    assert code == 2, err
    assert match in err and "Traceback" not in err
    assert rss_kb < LIMIT_KB, f"peak RSS {rss_kb // 1024} MiB"


@pytest.mark.slow
@pytest.mark.skipif(
    shutil.which("runc") is None or os.geteuid() != 0, reason="assay run needs runc and root"
)
def test_run_of_zero_file_bomb_is_refused_in_bounded_memory(tmp_path: Path) -> None:
    layout = _zero_files_bomb(tmp_path / "img")
    code, err, rss_kb = _run(
        ["assay", "run", f"oci:{layout}:latest", "--", "/bin/true"], cwd=tmp_path
    )
    assert code == 2, err
    assert "over the 4294967296-byte limit of assay run" in err and "Traceback" not in err
    assert rss_kb < LIMIT_KB, f"peak RSS {rss_kb // 1024} MiB"
