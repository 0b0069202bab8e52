"""Assembly of real bookworm packages: libc6, libssl3, ca-certificates, base-files and
python3.11-minimal's closure. Checked against glibc's ldconfig and ca-certificates' own
update-ca-certificates script, and (as root) by running the assembled python3.11 in a chroot.

The .deb files come from ``ASSAY_TEST_DEB_DIR`` or the host's apt cache when they are all there;
otherwise the test is a ``network`` test and fetches them with ``apt-get download`` (the host's
configured apt sources).
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from test_ldcache import LDCONFIG, ldconfig_listing, materialise

from assay.build.rootfs import AssemblyResult, assemble
from assay.debian.version import compare_versions
from assay.oci.entry import EntryType

# dependency order, as the resolver would give it
PACKAGES = [
    "gcc-12-base",
    "libgcc-s1",
    "libc6",
    "base-files",
    "zlib1g",
    "libexpat1",
    "libssl3",
    "ca-certificates",
    "libpython3.11-minimal",
    "python3.11-minimal",
]


def _pick(directory: Path) -> dict[str, Path] | None:
    found: dict[str, Path] = {}
    for name in PACKAGES:
        cands = [p for a in ("amd64", "all") for p in directory.glob(f"{name}_*_{a}.deb")]
        if not cands:
            return None

        def ver(p: Path) -> str:
            return p.name.split("_")[1].replace("%3a", ":")

        found[name] = max(
            cands, key=functools.cmp_to_key(lambda a, b: compare_versions(ver(a), ver(b)))
        )
    return found


def _local() -> dict[str, Path] | None:
    for d in (os.environ.get("ASSAY_TEST_DEB_DIR", ""), "/var/cache/apt/archives"):
        if d and Path(d).is_dir() and (got := _pick(Path(d))):
            return got
    return None


LOCAL = _local()
pytestmark = [pytest.mark.slow] + ([] if LOCAL else [pytest.mark.network])


@dataclass(frozen=True)
class Pkg:
    name: str


@pytest.fixture(scope="module")
def debs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    if LOCAL:
        return LOCAL
    if shutil.which("apt-get") is None:
        pytest.skip("LOUD SKIP: no local .debs and no apt-get to fetch them")
    out = tmp_path_factory.mktemp("debs")
    proc = subprocess.run(
        ["apt-get", "download", *PACKAGES], cwd=out, capture_output=True, text=True, timeout=300
    )
    got = _pick(out)
    if proc.returncode != 0 or got is None:
        pytest.skip(f"LOUD SKIP: cannot fetch the real packages: {proc.stderr.strip()[-300:]}")
    return got


@pytest.fixture(scope="module")
def assembled(debs: dict[str, Path]) -> AssemblyResult:
    return assemble([(Pkg(n), debs[n]) for n in PACKAGES], arch="amd64")


@pytest.fixture(scope="module")
def root(assembled: AssemblyResult, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("rootfs") / "root"
    out.mkdir()
    materialise([e for e in assembled.entries if e.type is not EntryType.HARDLINK], out)
    for e in assembled.entries:
        if e.type is EntryType.HARDLINK:
            os.link(out / e.link, out / e.path)
    return out


def test_layout_and_package_db(assembled: AssemblyResult) -> None:
    got = {e.path: e for e in assembled.entries}
    assert got["usr/bin/python3.11"].owner == "python3.11-minimal"
    assert got["lib64/ld-linux-x86-64.so.2"].type is EntryType.SYMLINK
    assert got["lib/x86_64-linux-gnu/libc.so.6"].owner == "libc6"
    assert got["etc/os-release"].owner == "base-files"  # base-files' own symlink kept
    assert got["usr/share/doc/libc6/copyright"].data
    assert not any(p.startswith("usr/share/man/") for p in got)
    for name in PACKAGES:
        stanza = got[f"var/lib/dpkg/status.d/{name}"].data.decode()
        assert stanza.startswith(f"Package: {name}\nStatus: install ok installed\n")
        md5 = got.get(f"var/lib/dpkg/status.d/{name}.md5sums")
        assert md5 is not None and md5.data, name
        for line in md5.data.decode().splitlines():  # every listed file exists with that digest
            digest, path = line.split(None, 1)
            entry = got[path]
            data = entry.data if entry.type is EntryType.FILE else got[entry.link].data
            assert hashlib.md5(data).hexdigest() == digest, path
        assert assembled.owners[name], name
    for e in assembled.entries:
        assert e.type is not EntryType.DIR or e.mode & 0o700 == 0o700 or e.path == "home/nonroot"
        assert not (e.type is EntryType.FILE and e.mode & 0o6000)


@pytest.mark.skipif(LDCONFIG is None, reason="glibc ldconfig not installed")
def test_ld_so_cache_matches_ldconfig(root: Path) -> None:
    subprocess.run(
        [str(LDCONFIG), "-X", "-r", str(root), "-C", "/etc/ref.cache"],
        check=True,
        capture_output=True,
    )
    theirs = ldconfig_listing(root / "etc/ref.cache")
    assert ldconfig_listing(root / "etc/ld.so.cache") == theirs
    assert any("libssl.so.3" in line for line in theirs) and len(theirs) > 20


def test_ca_bundle_matches_update_ca_certificates(root: Path, tmp_path: Path) -> None:
    bundle = (root / "etc/ssl/certs/ca-certificates.crt").read_bytes()
    assert bundle.startswith(b"-----BEGIN CERTIFICATE-----\n")
    assert bundle.count(b"-----BEGIN CERTIFICATE-----") > 100
    assert bundle.count(b"-----BEGIN") == bundle.count(b"-----END CERTIFICATE-----\n")
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed: cannot run update-ca-certificates for comparison")
    sysroot = tmp_path / "sys"
    shutil.copytree(root / "usr/share/ca-certificates", sysroot / "usr/share/ca-certificates")
    (sysroot / "etc/ssl/certs").mkdir(parents=True)
    (sysroot / "usr/local/share/ca-certificates").mkdir(parents=True)
    subprocess.run(
        [
            "sh",
            str(root / "usr/sbin/update-ca-certificates"),
            "--default",
            "--sysroot",
            str(sysroot),
            "--hooksdir",
            str(tmp_path / "no-hooks"),
        ],
        check=True,
        capture_output=True,
        env={**os.environ, "LC_ALL": "C"},
    )
    assert (sysroot / "etc/ssl/certs/ca-certificates.crt").read_bytes() == bundle


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("chroot") is None, reason="needs root")
def test_python_runs_in_the_tree_using_the_cache(root: Path) -> None:
    proc = subprocess.run(
        [
            shutil.which("chroot") or "chroot",
            str(root),
            "/usr/bin/python3.11",
            "-c",
            "import ssl, zlib, pyexpat, pwd, os; print(ssl.OPENSSL_VERSION);"
            "print(pwd.getpwuid(65532).pw_dir)",
        ],
        capture_output=True,
        text=True,
        env={"LD_DEBUG": "libs", "PATH": "/usr/bin"},
        timeout=60,
    )
    if proc.returncode != 0 and "Operation not permitted" in proc.stderr:
        pytest.skip(f"chroot not permitted here: {proc.stderr.strip()[-200:]}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith("OpenSSL 3.") and "/home/nonroot" in proc.stdout
    assert "search cache=/etc/ld.so.cache" in proc.stderr
    assert "trying file=/usr/lib/x86_64-linux-gnu/libssl.so.3" in proc.stderr
