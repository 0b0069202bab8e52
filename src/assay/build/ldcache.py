"""Write ``/etc/ld.so.cache`` in glibc's ``glibc-ld.so.cache1.1`` format, without ldconfig.

What ``ldconfig -X`` (no link updates) would write for the assembled tree:

* directories: those named by ``/etc/ld.so.conf`` (``include`` globs honoured) when it exists —
  otherwise, as if it said ``include /etc/ld.so.conf.d/*.conf`` (libc-bin, which ships that file,
  is usually not in a minimal image) — then glibc's built-in ones for the Debian architecture
  (``/lib/<triplet>``, ``/usr/lib/<triplet>``, ``/lib``, ``/usr/lib``). A directory reached twice
  (also through symlinks) is scanned once.
* files: names starting with ``lib`` or ``ld-`` and containing ``.so``; ELF shared objects
  (``ET_DYN``) of the image's machine and class (others are skipped). The key is the
  ``DT_SONAME`` (else the file name); a symlink keeps its own name when it is the soname or a
  ``libX.so`` development link. One entry per soname and directory (a real file beats a link).
* entries sorted as ldconfig sorts them (descending by ``_dl_cache_libcmp``, which compares digit
  runs numerically), so the dynamic loader's binary search works.
* flags: ``FLAG_ELF_LIBC6`` plus the architecture's ABI flag (x86-64 0x0303, aarch64 0x0a03, …);
  hwcap 0; ``glibc-hwcaps`` subdirectories are not scanned (bookworm packages ship none).

Layout (little or big endian as the target): a 48-byte header, 24-byte entries, a string table
(each value ``dir/soname``; the key points at the soname inside it), then the extension area
with the generator string.
"""

from __future__ import annotations

import functools
import posixpath
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from assay.oci.entry import Entry, EntryType

__all__ = ["ARCHES", "TreeView", "build_cache", "libcmp", "parse_cache"]

MAGIC = b"glibc-ld.so.cache1.1"
EXT_MAGIC = 0xEAA42174
GENERATOR = b"assay (ld.so.cache writer for glibc-ld.so.cache1.1)"
FLAG_ELF_LIBC6 = 0x0003


@dataclass(frozen=True)
class _Arch:
    triplet: str
    elfclass: int  # 1 = 32-bit, 2 = 64-bit
    machine: int
    little: bool
    flags: int


ARCHES: dict[str, _Arch] = {
    "amd64": _Arch("x86_64-linux-gnu", 2, 62, True, 0x0300 | FLAG_ELF_LIBC6),
    "arm64": _Arch("aarch64-linux-gnu", 2, 183, True, 0x0A00 | FLAG_ELF_LIBC6),
    "i386": _Arch("i386-linux-gnu", 1, 3, True, FLAG_ELF_LIBC6),
    "armhf": _Arch("arm-linux-gnueabihf", 1, 40, True, 0x0900 | FLAG_ELF_LIBC6),
    "ppc64el": _Arch("powerpc64le-linux-gnu", 2, 21, True, 0x0500 | FLAG_ELF_LIBC6),
    "s390x": _Arch("s390x-linux-gnu", 2, 22, False, 0x0400 | FLAG_ELF_LIBC6),
    "riscv64": _Arch("riscv64-linux-gnu", 2, 243, True, 0x1000 | FLAG_ELF_LIBC6),
}

MAX_SYMLINK_HOPS = 40
ET_DYN = 3
PT_LOAD, PT_DYNAMIC = 1, 2
DT_NULL, DT_STRTAB, DT_SONAME = 0, 5, 14


class TreeView(Protocol):
    def lookup(self, path: str) -> Entry | None: ...
    def read(self, path: str) -> bytes | None: ...
    def listdir(self, path: str) -> list[str]: ...


def libcmp(p1: str, p2: str) -> int:
    """glibc's ``_dl_cache_libcmp``: digit runs compare numerically."""
    i = j = 0
    n1, n2 = len(p1), len(p2)
    while i < n1:
        c1 = p1[i]
        c2 = p2[j] if j < n2 else "\0"
        if c1.isdigit() and c1.isascii():
            if c2.isdigit() and c2.isascii():
                si = i
                while i < n1 and p1[i].isascii() and p1[i].isdigit():
                    i += 1
                sj = j
                while j < n2 and p2[j].isascii() and p2[j].isdigit():
                    j += 1
                v1, v2 = int(p1[si:i]), int(p2[sj:j])
                if v1 != v2:
                    return v1 - v2
            else:
                return 1
        elif c2.isdigit() and c2.isascii():
            return -1
        elif c1 != c2:
            return ord(c1) - ord(c2)
        else:
            i += 1
            j += 1
    return 0 - (ord(p2[j]) if j < n2 else 0)


# -------------------------------------------------------------------------------- tree paths


def _resolve(tree: TreeView, path: str) -> str | None:
    """Resolve every symlink in ``path`` (absolute links are rooted at the tree); None = missing."""
    parts = [p for p in path.split("/") if p]
    done: list[str] = []
    hops = 0
    while parts:
        comp = parts.pop(0)
        if comp == ".":
            continue
        if comp == "..":
            if done:
                done.pop()
            continue
        cand = "/".join([*done, comp])
        node = tree.lookup(cand)
        if node is None:
            return None
        if node.type is EntryType.SYMLINK:
            hops += 1
            if hops > MAX_SYMLINK_HOPS:
                return None
            if node.link.startswith("/"):
                done = []
            parts = [p for p in node.link.split("/") if p] + parts
            continue
        done.append(comp)
    return "/".join(done)


def _content(tree: TreeView, path: str) -> bytes | None:
    real = _resolve(tree, path)
    if real is None:
        return None
    node = tree.lookup(real)
    if node is None or node.type not in (EntryType.FILE, EntryType.HARDLINK):
        return None
    return tree.read(real)


def _conf_dirs(tree: TreeView, conf: str, depth: int = 0) -> Iterator[str]:
    data = _content(tree, conf)
    if data is None or depth > 8:
        return
    for raw in data.decode("utf-8", "replace").splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("include") and line[7:8] in (" ", "\t"):
            for pattern in line[8:].split():
                if not pattern.startswith("/"):
                    pattern = posixpath.join(posixpath.dirname(conf), pattern)
                yield from _glob_confs(tree, pattern, depth)
        elif line.startswith("hwcap"):
            continue
        else:
            for item in line.replace(",", " ").replace(":", " ").split():
                # "dir=TYPE" (libc4/5 era) is accepted by ldconfig; keep the directory part
                yield item.split("=", 1)[0]


def _glob_confs(tree: TreeView, pattern: str, depth: int) -> Iterator[str]:
    import fnmatch

    directory, _, name_pat = pattern.rpartition("/")
    real = _resolve(tree, directory)
    if real is None:
        return
    for name in tree.listdir(real):  # sorted, like glob(3)
        if fnmatch.fnmatchcase(name, name_pat):
            yield from _conf_dirs(tree, f"{directory}/{name}", depth + 1)


def _scan_dirs(tree: TreeView, arch: _Arch) -> list[str]:
    if tree.lookup("etc/ld.so.conf") is not None:
        conf = list(_conf_dirs(tree, "/etc/ld.so.conf"))
    else:
        conf = list(_glob_confs(tree, "/etc/ld.so.conf.d/*.conf", 0))
    system = [f"/lib/{arch.triplet}", f"/usr/lib/{arch.triplet}", "/lib", "/usr/lib"]
    out: list[str] = []
    seen_real: set[str] = set()
    for d in [*conf, *system]:
        d = "/" + posixpath.normpath(d).strip("/")
        real = _resolve(tree, d)
        if real is None or real in seen_real:
            continue
        node = tree.lookup(real) if real else None
        if real and (node is None or node.type is not EntryType.DIR):
            continue
        seen_real.add(real)
        out.append(d.rstrip("/") or "/")
    return out


# --------------------------------------------------------------------------------------- ELF


def _elf_soname(data: bytes, arch: _Arch) -> tuple[bool, str | None]:
    """(is a shared object for ``arch``, DT_SONAME or None)."""
    if len(data) < 52 or data[:4] != b"\x7fELF":
        return False, None
    if data[4] != arch.elfclass or data[5] != (1 if arch.little else 2):
        return False, None
    end = "<" if arch.little else ">"
    is64 = arch.elfclass == 2
    try:
        if is64:
            e_type, e_machine = struct.unpack_from(end + "HH", data, 16)
            e_phoff = struct.unpack_from(end + "Q", data, 32)[0]
            e_phentsize, e_phnum = struct.unpack_from(end + "HH", data, 54)
        else:
            e_type, e_machine = struct.unpack_from(end + "HH", data, 16)
            e_phoff = struct.unpack_from(end + "I", data, 28)[0]
            e_phentsize, e_phnum = struct.unpack_from(end + "HH", data, 42)
        if e_machine != arch.machine or e_type != ET_DYN:
            return False, None
        loads: list[tuple[int, int, int]] = []  # vaddr, offset, filesz
        dyn_off = dyn_size = -1
        for k in range(min(e_phnum, 512)):
            off = e_phoff + k * e_phentsize
            if is64:
                p_type, _fl, p_offset, p_vaddr, _pa, p_filesz = struct.unpack_from(
                    end + "IIQQQQ", data, off
                )
            else:
                p_type, p_offset, p_vaddr, _pa, p_filesz = struct.unpack_from(
                    end + "IIIII", data, off
                )
            if p_type == PT_LOAD:
                loads.append((p_vaddr, p_offset, p_filesz))
            elif p_type == PT_DYNAMIC:
                dyn_off, dyn_size = p_offset, p_filesz
        if dyn_off < 0:
            return False, None
        strtab = soname_off = None
        step = 16 if is64 else 8
        fmt = end + ("qQ" if is64 else "iI")
        for pos in range(dyn_off, min(dyn_off + dyn_size, len(data)) - step + 1, step):
            tag, val = struct.unpack_from(fmt, data, pos)
            if tag == DT_NULL:
                break
            if tag == DT_STRTAB:
                strtab = val
            elif tag == DT_SONAME:
                soname_off = val
        if strtab is None or soname_off is None:
            return True, None
        for vaddr, offset, filesz in loads:
            if vaddr <= strtab < vaddr + filesz:
                start = offset + (strtab - vaddr) + soname_off
                stop = data.find(b"\0", start, start + 4096)
                if start >= len(data) or stop < 0:
                    return True, None
                return True, data[start:stop].decode("utf-8", "replace")
        return True, None
    except struct.error:
        return False, None


# -------------------------------------------------------------------------------- the cache


@dataclass(frozen=True)
class _Lib:
    soname: str
    path: str
    flags: int


def _scan(tree: TreeView, directory: str, arch: _Arch) -> list[_Lib]:
    real_dir = _resolve(tree, directory)
    if real_dir is None:
        return []
    found: dict[str, tuple[str, bool]] = {}  # soname -> (name, is_link)
    order: list[str] = []
    for name in tree.listdir(real_dir):
        if not (name.startswith(("lib", "ld-")) and ".so" in name):
            continue
        if name.endswith((".#prelink#",)) or ".#prelink#." in name:
            continue
        path = f"{real_dir}/{name}" if real_dir else name
        node = tree.lookup(path)
        if node is None or node.type is EntryType.DIR:
            continue
        is_link = node.type is EntryType.SYMLINK
        data = _content(tree, path)
        if data is None:
            continue
        ok, soname = _elf_soname(data, arch)
        if not ok:
            continue
        soname = soname or name
        if is_link and name != soname and not (name.endswith(".so") and soname.startswith(name)):
            is_link = False
        if is_link:
            soname = name
        if soname in found:
            prev_name, prev_link = found[soname]
            if (not is_link and prev_link) or (
                is_link == prev_link and libcmp(prev_name, name) < 0
            ):
                found[soname] = (name, is_link)
            continue
        found[soname] = (name, is_link)
        order.append(soname)
    base = directory.rstrip("/")
    # ldconfig pushes each new library at the head of its list, then adds them in list order
    return [_Lib(s, f"{base}/{s}", arch.flags) for s in reversed(order)]


def _compare(a: _Lib, b: _Lib) -> int:
    res = libcmp(b.soname, a.soname)
    if res == 0:
        if a.flags < b.flags:
            return 1
        if a.flags > b.flags:
            return -1
    return res


def build_cache(tree: TreeView, arch: str) -> bytes:
    """The ``ld.so.cache`` bytes for the tree, for Debian architecture ``arch``."""
    if arch not in ARCHES:
        raise ValueError(f"no ld.so.cache flags known for architecture {arch!r}")
    spec = ARCHES[arch]
    libs: list[_Lib] = []
    for d in _scan_dirs(tree, spec):
        libs.extend(_scan(tree, d, spec))
    libs.sort(key=functools.cmp_to_key(_compare))  # stable: equal keys keep directory order
    end = "<" if spec.little else ">"
    header_size, entry_size = 48, 24
    strings = bytearray()
    offsets: dict[str, int] = {}
    base = header_size + entry_size * len(libs)
    records = []
    for lib in libs:
        if lib.path not in offsets:
            offsets[lib.path] = base + len(strings)
            strings += lib.path.encode("utf-8", "surrogateescape") + b"\0"
        value = offsets[lib.path]
        key = (
            value
            + len(lib.path.encode("utf-8", "surrogateescape"))
            - len(lib.soname.encode("utf-8", "surrogateescape"))
        )
        records.append(struct.pack(end + "iIIIQ", lib.flags, key, value, 0, 0))
    ext_offset = base + len(strings)
    pad = (-ext_offset) % 4
    ext_offset += pad
    gen_offset = ext_offset + 8 + 16
    header = struct.pack(
        end + "20sIIB3xI12x",
        MAGIC,
        len(libs),
        len(strings),
        2 if spec.little else 3,  # cache_file_new_flags_endian_little / _big
        ext_offset,
    )
    ext = struct.pack(end + "II", EXT_MAGIC, 1) + struct.pack(
        end + "IIII", 0, 0, gen_offset, len(GENERATOR)
    )
    return header + b"".join(records) + bytes(strings) + b"\0" * pad + ext + GENERATOR


def parse_cache(data: bytes) -> list[tuple[str, int, str]]:
    """(soname, flags, path) of each entry, in file order; for tests and ``inspect``."""
    if data[:20] != MAGIC:
        raise ValueError("not a glibc-ld.so.cache1.1 file")
    end = "<" if data[28] == 2 else ">"
    nlibs = struct.unpack_from(end + "I", data, 20)[0]

    def cstr(off: int) -> str:
        return data[off : data.index(b"\0", off)].decode("utf-8", "surrogateescape")

    out = []
    for k in range(nlibs):
        flags, key, value, _osv, _hw = struct.unpack_from(end + "iIIIQ", data, 48 + 24 * k)
        out.append((cstr(key), flags, cstr(value)))
    return out
