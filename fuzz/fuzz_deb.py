"""Fuzz the .deb reader: the ar container, control.tar(.gz), data.tar, the control stanza.

    python3 fuzz/fuzz_deb.py --runs 1000000 --seed 1 [--atheris]

Each input is written to a file in /dev/shm (or the temp directory) and read with
``open_deb`` + ``iter_data`` as the build does. Only ``AssayError`` may escape.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from _harness import main

from assay.debian.debfile import iter_data, open_deb
from fixtures import tarcraft as tc

_DIR = Path("/dev/shm") if os.path.isdir("/dev/shm") else Path(tempfile.gettempdir())
_PATH = _DIR / f"assay-fuzz-deb-{os.getpid()}.deb"


def seeds() -> list[bytes]:
    data = tc.archive(
        tc.directory("./"),
        tc.directory("./usr/"),
        tc.file("./usr/a", b"abc"),
        tc.hardlink("./usr/b", "./usr/a"),
        tc.symlink("./usr/c", "a"),
        tc.gnu_long(b"./usr/" + b"l" * 120),
        tc.file("x", b"long"),
    )
    ctl = tc.archive(
        tc.directory("./"),
        tc.file("./control", b"Package: t\nVersion: 1\nDescription: x\n more\n"),
        tc.file("./md5sums", b"0" * 32 + b"  usr/a\n"),
        tc.file("./conffiles", b"/etc/x\n"),
    )
    return [tc.deb(data), tc.deb(data, control_tar=ctl), tc.deb(tc.archive())]


def target(data: bytes) -> None:
    _PATH.write_bytes(data)
    deb = open_deb(_PATH, package_hint="t")
    for _ in iter_data(_PATH, package="t", deb=deb):
        pass


if __name__ == "__main__":
    try:
        sys.exit(main("deb", seeds, target))
    finally:
        _PATH.unlink(missing_ok=True)
