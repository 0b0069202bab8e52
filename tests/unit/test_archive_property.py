"""Property/fuzz tests for the one archive reader and the .deb reader (short, seeded).

Whatever bytes come in — random, or a valid archive mutated — only ``AssayError`` escapes, and
a valid archive written by ``tarfile`` in any format reads back to the same members. The
seeded campaigns of fuzz/ also run here for a few thousand inputs each.
"""

from __future__ import annotations

import contextlib
import io
import os
import resource
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from assay.debian.debfile import iter_data, open_deb
from assay.errors import AssayError
from assay.oci.entry import EntryType
from assay.oci.layer import apply_layers, read_layer, read_tar
from assay.sbom.layers import LayerInput, view_of_layers
from fixtures import tarcraft as tc

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)

SEED_TAR = tc.archive(
    tc.directory("var/lib/dpkg/"),
    tc.file("var/lib/dpkg/status", tc.status_stanza("a")),
    tc.pax(tc.pax_record("path", "opt/p") + tc.pax_record("mtime", "2.5")),
    tc.file("x", b"pax"),
    tc.gnu_long(b"opt/" + b"n" * 120),
    tc.file("y", b"gnu"),
    tc.symlink("var/lib/link", "dpkg"),
    tc.hardlink("var/lib/dpkg/status.d/a", "var/lib/dpkg/status"),
    tc.member("s", b"g", prefix_field=b"00000000000\x00j", magic=b"ustar ", version=b" \x00"),
    tc.file("a/.wh.b", b""),
)


def _all_readers(data: bytes) -> None:
    apply_layers([read_layer(io.BytesIO(data))])
    view_of_layers(
        [LayerInput(open=lambda: contextlib.nullcontext(io.BytesIO(data)))], lambda p: True
    )
    for _ in read_tar(io.BytesIO(data), whiteouts=False, devices="refuse"):
        pass


def _only_assay_errors(data: bytes) -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with contextlib.suppress(AssayError):
        _all_readers(data)
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown < 256 * 1024, f"peak RSS grew by {grown // 1024} MiB"


@seed(20261126)
@SETTINGS
@given(st.binary(max_size=4096))
def test_random_bytes_raise_only_assay_errors(data: bytes) -> None:
    _only_assay_errors(data)


@seed(20261126)
@SETTINGS
@given(
    st.lists(
        st.tuples(st.integers(0, len(SEED_TAR) - 1), st.integers(0, 255)), min_size=1, max_size=8
    ),
    st.integers(0, len(SEED_TAR)),
)
def test_mutated_archives_raise_only_assay_errors(edits: list[tuple[int, int]], cut: int) -> None:
    buf = bytearray(SEED_TAR)
    for pos, value in edits:
        buf[pos] = value
    _only_assay_errors(bytes(buf[:cut]))
    _only_assay_errors(bytes(buf))


_NAME = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x2FF, exclude_characters="/."),
    min_size=1,
    max_size=40,
)


@seed(20261126)
@SETTINGS
@given(
    st.lists(
        st.tuples(st.lists(_NAME, min_size=1, max_size=6), st.binary(max_size=700)),
        min_size=1,
        max_size=8,
        unique_by=lambda t: "/".join(t[0]),
    ),
    st.sampled_from([tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT]),
)
def test_tarfile_archives_read_back_in_every_format(
    files: list[tuple[list[str], bytes]], fmt: int
) -> None:
    buf = io.BytesIO()
    expected: dict[str, bytes] = {}
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for parts, data in files:
            name = "/".join(parts)
            if any(name.startswith(p + "/") or p.startswith(name + "/") for p in expected):
                continue
            if fmt == tarfile.USTAR_FORMAT and (len(name.encode()) > 99 or not name.isascii()):
                continue
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
            expected[name] = data
    got = {
        e.path: e.data for e in read_layer(io.BytesIO(buf.getvalue())) if e.type is EntryType.FILE
    }
    assert got == expected


@seed(20261126)
@SETTINGS
@given(
    st.lists(st.tuples(st.integers(0, 2000), st.integers(0, 255)), min_size=1, max_size=6),
    st.integers(0, 3000),
)
def test_mutated_debs_raise_only_assay_errors(edits: list[tuple[int, int]], cut: int) -> None:
    data = tc.archive(
        tc.directory("./"), tc.file("./usr/a", b"abc"), tc.hardlink("./usr/b", "./usr/a")
    )
    buf = bytearray(tc.deb(data))
    for pos, value in edits:
        if pos < len(buf):
            buf[pos] = value
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "t.deb"
        for blob in (bytes(buf), bytes(buf[:cut])):
            path.write_bytes(blob)
            with contextlib.suppress(AssayError):
                deb = open_deb(path)
                for _ in iter_data(path, package="t", deb=deb):
                    pass


@pytest.mark.parametrize("script", ["fuzz_tar.py", "fuzz_deb.py"])
def test_short_seeded_fuzz_campaign(script: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "fuzz" / script), "--runs", "1500", "--seed", "0"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "1500 executions" in proc.stdout and ", 0 unexpected exceptions" in proc.stdout
