"""Fuzz the one archive reader: tar headers, PAX/GNU records, merging, the sbom view.

    python3 fuzz/fuzz_tar.py --runs 1000000 --seed 1 [--atheris]

Each input is read as a plain layer and, every fourth run, gzip-compressed: through
``read_layer`` + ``apply_layers`` (inspect/run/diff), ``view_of_layers`` (sbom/scan) and the
strict .deb mode of ``read_tar``. Only ``AssayError`` may escape.
"""

from __future__ import annotations

import contextlib
import io
import sys
import zlib

from _harness import main

from assay.oci.layer import apply_layers, read_layer, read_tar
from assay.sbom.catalogers.dpkg import DpkgCataloger
from assay.sbom.layers import LayerInput, view_of_layers
from fixtures import tarcraft as tc

_WANTS = DpkgCataloger().wants
_runs = 0


def seeds() -> list[bytes]:
    gnu = {"magic": b"ustar ", "version": b" \x00"}
    return [
        tc.archive(
            tc.directory("var/lib/dpkg/"),
            tc.file("var/lib/dpkg/status", tc.status_stanza("a")),
            tc.symlink("etc/x", "../var"),
            tc.hardlink("var/lib/dpkg/status.d/a", "var/lib/dpkg/status"),
        ),
        tc.archive(
            tc.pax(tc.pax_record("path", "var/lib/dpkg/status") + tc.pax_record("mtime", "1.5")),
            tc.file("x", b"data"),
            tc.gnu_long(b"opt/" + b"n" * 120),
            tc.file("y", b"1"),
            tc.gnu_long(b"target" * 30, b"K"),
            tc.symlink("z", "t"),
            tc.pax(tc.pax_record("comment", "g"), b"g"),
        ),
        tc.archive(
            tc.member("status", b"s", prefix_field=b"00000000000\x00junk", **gnu),
            tc.member("dev/null", b"", b"3", devmajor=1, devminor=3),
            tc.member("p", b"", b"6"),
            tc.file("a/.wh.b", b""),
            tc.file("a/.wh..wh..opq", b""),
        ),
        tc.archive(
            tc.symlink("var/lib/dpkg", "/opt/db"),
            tc.file("var/lib/dpkg/status.d/x", tc.status_stanza("x")),
            tc.member("legacy/", b"", b"\0"),
            tc.member("s", b"x" * 700, b"S", **gnu),
        ),
    ]


def target(data: bytes) -> None:
    global _runs
    _runs += 1
    blob = zlib.compress(data, 1, wbits=31) if _runs % 4 == 0 else data
    apply_layers([read_layer(io.BytesIO(blob))])
    view_of_layers([LayerInput(open=lambda: contextlib.nullcontext(io.BytesIO(blob)))], _WANTS)
    for _ in read_tar(io.BytesIO(data), whiteouts=False, devices="refuse"):
        pass


if __name__ == "__main__":
    sys.exit(main("tar", seeds, target))
