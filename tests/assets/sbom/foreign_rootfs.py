"""Builds the foreign test images for the SBOM tests: a Debian rootfs with a dpkg database,
DEP-5 copyright files, a pip-installed wheel, a Debian-packaged Python module and npm packages;
a distroless-style rootfs (``status.d/``); an Alpine-style rootfs (apk ``installed``).

Everything is written by this module (no network, no host packages), then packed as an OCI
layout (``oci-dir``) and as a ``docker save`` archive so that assay and syft read the same bytes.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

OS_RELEASE_DEBIAN = """PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
HOME_URL="https://www.debian.org/"
"""

OS_RELEASE_ALPINE = """NAME="Alpine Linux"
ID=alpine
VERSION_ID=3.19.1
PRETTY_NAME="Alpine Linux v3.19"
"""

DEP5_GLIBC = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: glibc

Files: *
Copyright: 1991-2023 Free Software Foundation, Inc.
License: LGPL-2.1+
 This library is free software; you can redistribute it and/or
 modify it under the terms of the GNU Lesser General Public License.

Files: debian/*
Copyright: 1998-2023 Debian glibc team
License: GPL-2+
 On Debian systems the full text is in /usr/share/common-licenses/GPL-2.

Files: sunrpc/*
Copyright: 2010 Oracle America, Inc.
License: BSD-3-clause
 Redistribution and use in source and binary forms ...
"""

DEP5_SIX = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: six

Files: *
Copyright: 2010-2020 Benjamin Peterson
License: Expat
 Permission is hereby granted, free of charge, to any person obtaining a copy ...
"""

DEP5_GCC = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/

Files: *
Copyright: Free Software Foundation
License: GPL-3+ with GCC-exception-3.1 or GPL-3+
 Long text.

Files: libiberty/*
Copyright: FSF
License: LGPL-2+ and Artistic
"""

DEP5_BISON = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/

Files: *
Copyright: FSF
License: GPL-3+

Files: doc/*
Copyright: FSF
License: GFDL-NIV-1.3+
 Some text.
"""

NOT_DEP5 = """This is Debian's prepackaged version of the base-files package.
Copyright (C) 1995-2011 Santiago Vila
This program is free software; you can redistribute it under the GPL.
"""

# name, version, arch, source field, maintainer, depends, status, files, copyright, multiarch
DEB_PACKAGES: list[dict[str, object]] = [
    {
        "name": "base-files",
        "version": "12.4+deb12u5",
        "arch": "amd64",
        "maintainer": "Santiago Vila <sanvila@debian.org>",
        "files": ["/etc/debian_version", "/usr/share/doc/base-files/copyright"],
        "copyright": NOT_DEP5,
    },
    {
        "name": "gcc-12-base",
        "version": "12.2.0-14",
        "arch": "amd64",
        "source": "gcc-12",
        "maintainer": "Debian GCC Maintainers <debian-gcc@lists.debian.org>",
        "files": ["/usr/share/doc/gcc-12-base/copyright"],
        "copyright": DEP5_GCC,
        "multiarch": "same",
    },
    {
        "name": "libgcc-s1",
        "version": "12.2.0-14",
        "arch": "amd64",
        "source": "gcc-12",
        "maintainer": "Debian GCC Maintainers <debian-gcc@lists.debian.org>",
        "depends": "gcc-12-base (= 12.2.0-14), libc6 (>= 2.35)",
        "files": ["/usr/lib/x86_64-linux-gnu/libgcc_s.so.1"],
        "multiarch": "same",
    },
    {
        "name": "libc6",
        "version": "2.36-9+deb12u4",
        "arch": "amd64",
        "source": "glibc",
        "maintainer": "GNU Libc Maintainers <debian-glibc@lists.debian.org>",
        "depends": "libgcc-s1",
        "files": [
            "/usr/lib/x86_64-linux-gnu/libc.so.6",
            "/usr/share/doc/libc6/copyright",
        ],
        "copyright": DEP5_GLIBC,
        "multiarch": "same",
    },
    {
        "name": "zlib1g",
        "version": "1:1.2.13.dfsg-1",
        "arch": "amd64",
        "source": "zlib",
        "maintainer": "Mark Brown <broonie@debian.org>",
        "depends": "libc6 (>= 2.14)",
        "files": ["/usr/lib/x86_64-linux-gnu/libz.so.1.2.13"],
        "multiarch": "same",
    },
    {
        "name": "bison",
        "version": "2:3.8.2+dfsg-1+b1",
        "arch": "amd64",
        "source": "bison (2:3.8.2+dfsg-1)",
        "maintainer": "Chuan-kai Lin <cklin@debian.org>",
        "depends": "m4, libc6 (>= 2.34)",
        "files": ["/usr/bin/bison", "/usr/share/doc/bison/copyright"],
        "copyright": DEP5_BISON,
    },
    {
        "name": "python3-six",
        "version": "1.16.0-4",
        "arch": "all",
        "source": "six",
        "maintainer": "Debian Python Team <team+python@tracker.debian.org>",
        "depends": "python3:any",
        "files": [
            "/usr/lib/python3/dist-packages/six-1.16.0.dist-info/INSTALLER",
            "/usr/lib/python3/dist-packages/six-1.16.0.dist-info/METADATA",
            "/usr/lib/python3/dist-packages/six-1.16.0.dist-info/WHEEL",
            "/usr/lib/python3/dist-packages/six-1.16.0.dist-info/top_level.txt",
            "/usr/lib/python3/dist-packages/six.py",
            "/usr/share/doc/python3-six/copyright",
        ],
        "copyright": DEP5_SIX,
    },
    {
        "name": "oldpkg",
        "version": "0.9-1",
        "arch": "amd64",
        "maintainer": "Nobody <nobody@example.org>",
        "status": "deinstall ok config-files",
        "files": ["/etc/oldpkg.conf"],
    },
]

SIX_METADATA = """Metadata-Version: 2.1
Name: six
Version: 1.16.0
Summary: Python 2 and 3 compatibility utilities
Author: Benjamin Peterson
License: MIT

Six is a Python 2 and 3 compatibility library.
"""

REQUESTS_METADATA = """Metadata-Version: 2.1
Name: requests
Version: 2.31.0
Summary: Python HTTP for Humans.
Author: Kenneth Reitz
License: Apache 2.0
Classifier: License :: OSI Approved :: Apache Software License
Requires-Dist: idna (<4,>=2.5)
Requires-Dist: certifi (>=2017.4.17)

Requests is an HTTP library.
"""

FOOBAR_METADATA = """Metadata-Version: 2.1
Name: Foo_Bar
Version: 1.0
Author-email: Foo Dev <foo@example.org>
License-Expression: MIT
"""

LEGACY_PKG_INFO = """Metadata-Version: 1.1
Name: legacy-egg
Version: 0.4
License: BSD
"""


def _deb_paragraph(p: dict[str, object]) -> str:
    lines = [f"Package: {p['name']}", f"Status: {p.get('status', 'install ok installed')}"]
    lines.append("Priority: optional")
    lines.append("Section: misc")
    lines.append("Installed-Size: 12")
    lines.append(f"Maintainer: {p['maintainer']}")
    lines.append(f"Architecture: {p['arch']}")
    if p.get("multiarch"):
        lines.append(f"Multi-Arch: {p['multiarch']}")
    if p.get("source"):
        lines.append(f"Source: {p['source']}")
    lines.append(f"Version: {p['version']}")
    if p.get("depends"):
        lines.append(f"Depends: {p['depends']}")
    lines.append(f"Description: test package {p['name']}")
    lines.append(" A package for the assay SBOM tests.")
    return "\n".join(lines) + "\n"


def _write(root: Path, rel: str, data: str | bytes) -> None:
    path = root / rel.lstrip("/")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)


def _write_owned_files(root: Path, p: dict[str, object]) -> None:
    for f in p["files"]:  # type: ignore[attr-defined]
        path = root / str(f).lstrip("/")
        if path.exists():
            continue
        if str(f).endswith("/copyright") and p.get("copyright"):
            _write(root, str(f), str(p["copyright"]))
        elif str(f).endswith("METADATA") and p["name"] == "python3-six":
            _write(root, str(f), SIX_METADATA)
        elif str(f).endswith("INSTALLER"):
            _write(root, str(f), "debian\n")
        elif str(f).endswith("top_level.txt"):
            _write(root, str(f), "six\n")
        else:
            _write(root, str(f), f"content of {f}\n")


def _list_lines(files: list[str]) -> str:
    dirs: set[str] = {"/."}
    for f in files:
        parts = f.strip("/").split("/")
        for i in range(1, len(parts)):
            dirs.add("/" + "/".join(parts[:i]))
    return "\n".join(sorted(dirs) + list(files)) + "\n"


def build_debian_rootfs(root: Path) -> None:
    """A Debian rootfs with ``var/lib/dpkg/status`` + ``info/*.list``, Python and npm packages."""
    _write(root, "etc/os-release", OS_RELEASE_DEBIAN)
    _write(root, "etc/debian_version", "12.5\n")
    status = "\n".join(_deb_paragraph(p) for p in DEB_PACKAGES)
    _write(root, "var/lib/dpkg/status", status)
    for p in DEB_PACKAGES:
        files = [str(f) for f in p["files"]]  # type: ignore[attr-defined]
        listname = f"{p['name']}:{p['arch']}" if p.get("multiarch") == "same" else str(p["name"])
        _write(root, f"var/lib/dpkg/info/{listname}.list", _list_lines(files))
        if not p.get("status"):
            _write_owned_files(root, p)
    # A wheel installed by pip (not owned by any dpkg package).
    site = "usr/local/lib/python3.11/dist-packages"
    _write(root, f"{site}/requests-2.31.0.dist-info/METADATA", REQUESTS_METADATA)
    _write(root, f"{site}/requests-2.31.0.dist-info/INSTALLER", "pip\n")
    _write(
        root,
        f"{site}/requests-2.31.0.dist-info/RECORD",
        "requests/__init__.py,sha256=AAAA,10\nrequests-2.31.0.dist-info/METADATA,,\n",
    )
    _write(root, f"{site}/requests/__init__.py", "# requests\n")
    _write(root, f"{site}/Foo_Bar-1.0.dist-info/METADATA", FOOBAR_METADATA)
    _write(root, f"{site}/legacy_egg-0.4-py3.11.egg-info", LEGACY_PKG_INFO)
    # npm packages installed globally, one scoped, one nested.
    nm = "usr/local/lib/node_modules"
    _write(
        root,
        f"{nm}/left-pad/package.json",
        json.dumps(
            {"name": "left-pad", "version": "1.3.0", "license": "WTFPL", "author": "azer"},
            indent=2,
        ),
    )
    _write(
        root,
        f"{nm}/@scope/util/package.json",
        json.dumps(
            {
                "name": "@scope/util",
                "version": "2.0.1",
                "license": "MIT",
                "author": {"name": "Scope Maintainers", "email": "dev@scope.example"},
                "dependencies": {"left-pad": "^1.3.0"},
            }
        ),
    )
    _write(
        root,
        f"{nm}/@scope/util/node_modules/ms/package.json",
        json.dumps({"name": "ms", "version": "2.1.3", "license": "MIT", "author": "Vercel"}),
    )


def build_distroless_rootfs(root: Path) -> None:
    """A distroless-style rootfs: one paragraph per file in ``var/lib/dpkg/status.d/``."""
    _write(root, "etc/os-release", OS_RELEASE_DEBIAN)
    for p in DEB_PACKAGES:
        if p.get("status"):
            continue
        name = str(p["name"])
        _write(root, f"var/lib/dpkg/status.d/{name}", _deb_paragraph(p))
        md5 = "".join(
            f"{hashlib.md5(str(f).encode()).hexdigest()}  {str(f).lstrip('/')}\n"
            for f in p["files"]  # type: ignore[attr-defined]
        )
        _write(root, f"var/lib/dpkg/status.d/{name}.md5sums", md5)
        _write_owned_files(root, p)


APK_INSTALLED = """C:Q1abcdefabcdefabcdefabcdefabcdefabc=
P:musl
V:1.2.4_git20230717-r4
A:x86_64
S:383152
I:622592
T:the musl c library (libc) implementation
U:https://musl.libc.org/
L:MIT
o:musl
m:Timo Teräs <timo.teras@iki.fi>
t:1705426069
c:ca7f1a0a4e7b7d9bcbd6bf05a7c2a1c3cf1a9a1b
F:lib
R:ld-musl-x86_64.so.1
a:0:0:755
Z:Q1aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa=

C:Q1bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb=
P:busybox-binsh
V:1.36.1-r15
A:x86_64
S:1542
I:1
T:busybox ash /bin/sh
U:https://busybox.net/
L:GPL-2.0-only
o:busybox
m:Sören Tempel <soeren+alpine@soeren-tempel.net>
D:busybox=1.36.1-r15
F:bin
R:sh

C:Q1ccccccccccccccccccccccccccccccccc=
P:busybox
V:1.36.1-r15
A:x86_64
S:509014
I:946176
T:Size optimized toolbox of many common UNIX utilities
U:https://busybox.net/
L:GPL-2.0-only
o:busybox
m:Sören Tempel <soeren+alpine@soeren-tempel.net>
D:so:libc.musl-x86_64.so.1
p:cmd:busybox=1.36.1-r15
F:bin
R:busybox

"""


def build_alpine_rootfs(root: Path) -> None:
    _write(root, "etc/os-release", OS_RELEASE_ALPINE)
    _write(root, "lib/apk/db/installed", APK_INSTALLED)
    _write(root, "lib/ld-musl-x86_64.so.1", "musl\n")
    _write(root, "bin/busybox", "busybox\n")


# -- packing -------------------------------------------------------------------------------


def layer_tar(root: Path) -> bytes:
    """A deterministic uncompressed tar of ``root`` (sorted, uid 0, mtime 0)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for name in sorted(dirnames + filenames):
                full = Path(dirpath) / name
                arc = str(full.relative_to(root))
                info = tar.gettarinfo(str(full), arcname=arc)
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                info.mtime = 0
                if info.isreg():
                    with open(full, "rb") as fh:
                        tar.addfile(info, fh)
                else:
                    tar.addfile(info)
    return buf.getvalue()


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _config(layers_raw: list[bytes], arch: str) -> bytes:
    return json.dumps(
        {
            "architecture": arch,
            "os": "linux",
            "created": "2024-01-02T03:04:05Z",
            "config": {"Labels": {"org.opencontainers.image.vendor": "Assay Test Fixtures"}},
            "rootfs": {"type": "layers", "diff_ids": [_sha(raw) for raw in layers_raw]},
        },
        sort_keys=True,
    ).encode()


def write_oci_layout(
    out: Path, layers_raw: list[bytes], tag: str = "test", arch: str = "amd64"
) -> str:
    """Write an OCI image layout; return the manifest digest."""
    blobs = out / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)

    def put(data: bytes) -> str:
        d = _sha(data)
        (blobs / d.split(":")[1]).write_bytes(data)
        return d

    layer_descs = []
    for raw in layers_raw:
        gz = gzip.compress(raw, mtime=0)
        layer_descs.append(
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": put(gz),
                "size": len(gz),
            }
        )
    cfg = _config(layers_raw, arch)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": put(cfg),
                "size": len(cfg),
            },
            "layers": layer_descs,
        },
        sort_keys=True,
    ).encode()
    mdigest = put(manifest)
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": mdigest,
                "size": len(manifest),
                "annotations": {"org.opencontainers.image.ref.name": tag},
                "platform": {"architecture": arch, "os": "linux"},
            }
        ],
    }
    (out / "index.json").write_text(json.dumps(index, sort_keys=True))
    (out / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    return mdigest


def write_foreign_images(base: Path) -> None:
    """The Debian, distroless and Alpine test images under ``base``: ``KIND-rootfs/``, the OCI
    layout ``KIND-oci`` (tag ``test``) and the ``docker save`` archive ``KIND.tar``
    (``fixtures/KIND:1``)."""
    for kind, build in (
        ("debian", build_debian_rootfs),
        ("distroless", build_distroless_rootfs),
        ("alpine", build_alpine_rootfs),
    ):
        root = base / f"{kind}-rootfs"
        build(root)
        layer = layer_tar(root)
        write_oci_layout(base / f"{kind}-oci", [layer], tag="test")
        write_docker_archive(base / f"{kind}.tar", [layer], tag=f"fixtures/{kind}:1")


def write_docker_archive(
    out: Path, layers_raw: list[bytes], tag: str = "test/image:1", arch: str = "amd64"
) -> None:
    """Write a ``docker save`` tarball: manifest.json, config JSON, one layer.tar per layer."""
    cfg = _config(layers_raw, arch)
    cfg_name = _sha(cfg).split(":")[1] + ".json"
    members: list[tuple[str, bytes]] = [(cfg_name, cfg)]
    layer_names = []
    for raw in layers_raw:
        name = _sha(raw).split(":")[1] + "/layer.tar"
        layer_names.append(name)
        members.append((name, raw))
    manifest = [{"Config": cfg_name, "RepoTags": [tag], "Layers": layer_names}]
    members.append(("manifest.json", json.dumps(manifest).encode()))
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))


def single_arch_layout(src: Path, dest: Path, arch: str | None = "amd64", tag: str = "") -> None:
    """A layout whose index.json points straight at one platform's manifest (blobs shared):
    the entry tagged ``tag`` (no tag: the first entry), and within a nested index the manifest
    for ``arch`` (None: the first).

    syft's ``oci-dir:`` cannot follow a nested image index (what ``assay build`` writes for a
    multi-arch image); this gives it the same manifest and blobs without copying.
    """
    index = json.loads((src / "index.json").read_text())
    entries = index["manifests"]
    if tag:
        entries = [
            e
            for e in entries
            if (e.get("annotations") or {}).get("org.opencontainers.image.ref.name") == tag
        ]
    desc = entries[0]
    while desc["mediaType"] == "application/vnd.oci.image.index.v1+json":
        inner = json.loads((src / "blobs/sha256" / desc["digest"].split(":")[1]).read_text())
        desc = next(
            m
            for m in inner["manifests"]
            if arch is None or (m.get("platform") or {}).get("architecture") == arch
        )
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (dest / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [desc]}))
    (dest / "blobs").symlink_to((src / "blobs").resolve())
