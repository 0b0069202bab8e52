"""Benchmark: assay's deterministic layer writer and streaming reader against the usual tools.

Loads a directory tree into memory as ``Entry`` values (default: Debian's /usr/lib/python3.11,
else the stdlib; site-packages skipped), then in one run, ``--repeat`` times each, median wall
time:

  * write: ``assay.oci.layer.write_layer`` (gzip, default level and all cores) against the
    reproducible-tar idiom ``tar --sort=name --mtime=@E --owner=0 --group=0 --numeric-owner
    --pax-option=delete=atime,delete=ctime -c DIR | gzip -6 -n``, and against Python's
    ``tarfile`` + ``gzip`` at level 6 (single-threaded);
  * read: ``read_layer`` over the gzip blob with diff_id verification against ``tarfile``
    streaming (``r|gz``) reading every member's data (no verification).

Ratios are assay / peer (< 1 means assay is faster). Sizes are printed too. The numbers depend
on how busy the machine is; compare ratios from the same run only.

    python bench/layer.py [--tree DIR] [--repeat 3]
"""

from __future__ import annotations

import argparse
import gzip
import io
import os
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from assay.oci.entry import Entry, EntryType
from assay.oci.layer import read_layer, write_layer

EPOCH = 1_700_000_000
SKIP = ("site-packages", "dist-packages")  # installed packages: large and changing


def load_tree(root: Path) -> list[Entry]:
    entries: list[Entry] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP)
        rel = os.path.relpath(dirpath, root)
        if rel != ".":
            entries.append(Entry(rel, EntryType.DIR, 0o755))
        for name in sorted(filenames):
            full = os.path.join(dirpath, name)
            path = os.path.normpath(os.path.join(rel, name))
            if os.path.islink(full):
                entries.append(Entry(path, EntryType.SYMLINK, 0o777, link=os.readlink(full)))
            elif os.path.isfile(full):
                with open(full, "rb") as fh:
                    entries.append(Entry(path, EntryType.FILE, 0o644, data=fh.read()))
    return entries


def timed(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    default = Path("/usr/lib/python3.11")  # Debian's python3.11: ~50 MiB of .py, .pyc, .so
    if not default.is_dir():
        default = Path(sysconfig.get_paths()["stdlib"])
    ap.add_argument("--tree", type=Path, default=default)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    if not shutil.which("tar") or not shutil.which("gzip"):
        sys.exit("bench/layer.py needs GNU tar and gzip")

    entries = load_tree(args.tree)
    total = sum(e.size for e in entries)
    print(f"tree: {args.tree}  entries: {len(entries)}  content: {total / 2**20:.1f} MiB")
    work = Path(tempfile.mkdtemp(prefix="assay-bench-layer-"))
    try:
        blob = write_layer(entries, work / "assay", source_date_epoch=EPOCH)
        t_assay = timed(
            lambda: write_layer(entries, work / "assay", source_date_epoch=EPOCH), args.repeat
        )
        gnu_out = work / "gnu.tar.gz"
        cmd = (
            f"tar --sort=name --mtime=@{EPOCH} --owner=0 --group=0 --numeric-owner "
            "--pax-option=delete=atime,delete=ctime {excl} -C {src} -c . | gzip -6 -n > {out}"
        ).format(src=args.tree, out=gnu_out, excl=" ".join(f"--exclude=./{d}" for d in SKIP))
        t_gnu = timed(lambda: subprocess.run(cmd, shell=True, check=True), args.repeat)
        gnu_size = gnu_out.stat().st_size

        def py_tarfile() -> bytes:
            buf = io.BytesIO()
            with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
                for e in sorted(entries, key=lambda x: x.path.split("/")):
                    info = tarfile.TarInfo(e.path)
                    info.mtime, info.mode = min(e.mtime, EPOCH), e.mode
                    if e.type is EntryType.DIR:
                        info.type = tarfile.DIRTYPE
                        tf.addfile(info)
                    elif e.type is EntryType.SYMLINK:
                        info.type, info.linkname = tarfile.SYMTYPE, e.link
                        tf.addfile(info)
                    else:
                        info.size = len(e.data)
                        tf.addfile(info, io.BytesIO(e.data))
            return gzip.compress(buf.getvalue(), 6, mtime=0)

        py_size = len(py_tarfile())
        t_py = timed(py_tarfile, args.repeat)

        def assay_read() -> int:
            with open(blob.path, "rb") as fh:
                return sum(1 for _ in read_layer(fh, diff_id=blob.diff_id))

        def tarfile_read() -> int:
            n = 0
            with tarfile.open(blob.path, mode="r|gz") as tf:
                for m in tf:
                    if m.isfile():
                        f = tf.extractfile(m)
                        assert f is not None
                        f.read()
                    n += 1
            return n

        t_read = timed(assay_read, args.repeat)
        t_tfread = timed(tarfile_read, args.repeat)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"uncompressed tar: {blob.uncompressed_size / 2**20:.1f} MiB")
    print("write (gzip -6)                 time      size")
    print(f"  assay write_layer          {t_assay:7.2f}s  {blob.size / 2**20:6.2f} MiB")
    print(f"  GNU tar | gzip -6 -n       {t_gnu:7.2f}s  {gnu_size / 2**20:6.2f} MiB")
    print(f"  tarfile + gzip.compress    {t_py:7.2f}s  {py_size / 2**20:6.2f} MiB")
    print(f"  ratio assay/GNU tar+gzip   {t_assay / t_gnu:7.2f}")
    print(f"  ratio assay/tarfile+gzip   {t_assay / t_py:7.2f}")
    print("read (gzip, every file's data)")
    print(f"  assay read_layer (+diff_id check) {t_read:6.2f}s")
    print(f"  tarfile r|gz                      {t_tfread:6.2f}s")
    print(f"  ratio assay/tarfile               {t_read / t_tfread:6.2f}")


if __name__ == "__main__":
    main()
