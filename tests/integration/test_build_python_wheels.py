"""``python:`` end to end without the network: a signed fixture Debian repository on 127.0.0.1
and a --find-links wheelhouse of wheels made here (one built by pip, per-architecture ones made
by hand), through the installed ``assay`` command: lock pins a wheel per arch with the right tags,
two builds with separate caches agree, the wheel layer holds the installed files, the SBOMs list
the PyPI packages, and a lock that widens trust or an sdist-only requirement is refused.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fixtures.debrepo import SOURCE_DATE_EPOCH as DATE
from fixtures.debrepo import TestKey, python_base, serve_stable, signed_contents, test_key

__all__ = ["test_key"]  # the pytest fixture, imported for use here
from fixtures.examples import assay
from fixtures.wheels import write_wheel

ELF_MACHINE = {"amd64": 62, "arm64": 183}  # EM_X86_64, EM_AARCH64
SITE = "usr/local/lib/python3.11/dist-packages"
PIP_WHEEL = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]


@pytest.fixture(scope="module")
def repo_url(
    tmp_path_factory: pytest.TempPathFactory, test_key: TestKey
) -> Iterator[tuple[str, TestKey]]:
    root = tmp_path_factory.mktemp("py-repo")
    with serve_stable(root, python_base(), test_key, ("amd64", "arm64")) as url:
        yield url, test_key


def _elf(machine: int) -> bytes:
    """The first 20 bytes of a little-endian 64-bit ELF shared object for ``machine``."""
    return b"\x7fELF\x02\x01\x01" + b"\0" * 9 + struct.pack("<HH", 3, machine) + b"fake"


def _native_wheel(house: Path, platform: str, machine: int) -> Path:
    path = house / f"native-1.0-cp311-cp311-{platform}.whl"
    members = {
        "native/__init__.py": b"from native._speed import *\n",
        "native/_speed.cpython-311.so": _elf(machine),
        "native-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: native\nVersion: 1.0\n"
        b"License: MIT\nRequires-Dist: tiny-app\n\n",
        "native-1.0.dist-info/WHEEL": b"Wheel-Version: 1.0\nRoot-Is-Purelib: false\n"
        + f"Tag: cp311-cp311-{platform}\n".encode(),
    }
    return write_wheel(path, members, "native-1.0.dist-info")


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = tmp_path_factory.mktemp("tiny")
    (src / "tinyapp").mkdir()
    (src / "tinyapp" / "__init__.py").write_text("VERSION = '1.2.0'\n")
    (src / "tinyapp" / "cli.py").write_text("def main():\n    print('tinyapp ok')\n")
    (src / "setup.py").write_text("from setuptools import setup\nsetup()\n")
    (src / "setup.cfg").write_text(
        "[metadata]\nname = tiny-app\nversion = 1.2.0\nlicense = MIT\n"
        "[options]\npackages = tinyapp\n"
        "[options.entry_points]\nconsole_scripts =\n    tinyapp = tinyapp.cli:main\n"
    )
    house = tmp_path_factory.mktemp("house")
    subprocess.run(
        [*PIP_WHEEL, "-w", str(house), str(src)],
        check=True,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    _native_wheel(house, "manylinux_2_17_x86_64.manylinux2014_x86_64", ELF_MACHINE["amd64"])
    _native_wheel(house, "manylinux_2_17_aarch64.manylinux2014_aarch64", ELF_MACHINE["arm64"])
    # needs a newer glibc than the image's 2.36: must never be chosen although it ranks first
    _native_wheel(house, "manylinux_2_39_x86_64", ELF_MACHINE["amd64"])
    return house


def _requirements(house: Path) -> str:
    lines = []
    for name, version, pattern in (
        ("native", "1.0", "native-*.whl"),
        ("tiny-app", "1.2.0", "tiny_app-*.whl"),
    ):
        hashes = " ".join(
            f"--hash=sha256:{hashlib.sha256(p.read_bytes()).hexdigest()}"
            for p in sorted(house.glob(pattern))
        )
        lines.append(f"{name}=={version} {hashes}\n")
    return "".join(lines)


def _project(tmp: Path, url: str, key: TestKey, house: Path, reqs: str | None = None) -> Path:
    tmp.mkdir(parents=True, exist_ok=True)
    shutil.copytree(house, tmp / "wheels", dirs_exist_ok=True)
    (tmp / "requirements.txt").write_text(reqs if reqs is not None else _requirements(house))
    spec = tmp / "app.yaml"
    spec.write_text(
        signed_contents(url, key.keyring, "[base-files, python3.11-minimal]")
        + """\
python:
  requirements: requirements.txt
  find-links: wheels
entrypoint: [/usr/bin/python3.11]
archs: [amd64, arm64]
sbom: {embed: true}
"""
    )
    return spec


def _files(ref: str, arch: str) -> dict[str, Any]:
    from assay.oci.layer import apply_layers, read_layer
    from assay.oci.reference import parse_image_ref
    from assay.oci.source import open_local_image

    with open_local_image(parse_image_ref(ref)) as src:
        img = next(i for i in src.manifests() if i.platform.architecture == arch)
        return dict(
            apply_layers(
                [read_layer(src.open_layer(d), media_type=d.media_type) for d in img.layers]
            )
        )


def _build(spec: Path, cache: Path, *, check: bool = True) -> subprocess.CompletedProcess[str]:
    out = spec.parent / "out"
    return assay(
        "build",
        str(spec),
        "--dest",
        f"oci:{out}:app",
        "-o",
        "json",
        "-q",
        env={"ASSAY_CACHE_DIR": str(cache)},
        check=check,
    )


def test_wheels_are_locked_per_arch_and_built_reproducibly(
    repo_url: tuple[str, TestKey], wheelhouse: Path, tmp_path: Path
) -> None:
    url, key = repo_url
    spec = _project(tmp_path / "a", url, key, wheelhouse)
    env = {"ASSAY_CACHE_DIR": str(tmp_path / "ca")}
    assay("lock", str(spec), env=env)
    lock = json.loads((tmp_path / "a" / "app.lock.json").read_text())
    py = lock["python"]
    assert (py["version"], py["requirements"]) == ("3.11", "requirements.txt")
    for arch, machine in (("amd64", "x86_64"), ("arm64", "aarch64")):
        assert py["archs"][arch]["glibc"] == "2.36"
        wheels = {w["name"]: w for w in py["archs"][arch]["wheels"]}
        assert sorted(wheels) == ["native", "tiny-app"]
        native = wheels["native"]
        assert native["filename"] == (
            f"native-1.0-cp311-cp311-manylinux_2_17_{machine}.manylinux2014_{machine}.whl"
        )
        assert native["tags"] == sorted(
            [f"cp311-cp311-manylinux_2_17_{machine}", f"cp311-cp311-manylinux2014_{machine}"]
        )
        data = (wheelhouse / native["filename"]).read_bytes()
        assert (native["sha256"], native["size"]) == (hashlib.sha256(data).hexdigest(), len(data))
        assert (native["origin"], native["url"]) == ("find-links", "")
        assert wheels["tiny-app"]["tags"] == ["py3-none-any"]
    assert assay("lock", str(spec), "--check", env=env).returncode == 0
    # re-locking one architecture keeps the other's wheels: the same lock, byte for byte
    before = (tmp_path / "a" / "app.lock.json").read_bytes()
    assay("lock", str(spec), "--arch", "arm64", env=env)
    assert (tmp_path / "a" / "app.lock.json").read_bytes() == before

    a = json.loads(_build(spec, tmp_path / "ca").stdout)
    # the same project elsewhere, with its own cache: the lock is copied, the wheels re-verified
    b_dir = tmp_path / "b"
    spec_b = _project(b_dir, url, key, wheelhouse)
    shutil.copyfile(tmp_path / "a" / "app.lock.json", b_dir / "app.lock.json")
    b = json.loads(_build(spec_b, tmp_path / "cb").stdout)
    assert a["index"] == b["index"]
    assert list((tmp_path / "cb" / "wheels" / "sha256").glob("*.whl"))

    ref = f"oci:{tmp_path / 'a' / 'out'}:app"
    for arch in ("amd64", "arm64"):
        files = _files(ref, arch)
        so = files[f"{SITE}/native/_speed.cpython-311.so"]
        assert struct.unpack_from("<H", so.data, 18)[0] == ELF_MACHINE[arch]
        launcher = files["usr/local/bin/tinyapp"]
        assert launcher.data.startswith(b"#!/usr/bin/python3.11\n") and launcher.mode == 0o755
        installers = [p for p in files if p.endswith(".dist-info/INSTALLER")]
        assert len(installers) == 2 and all(files[p].data == b"assay\n" for p in installers)
        assert not [p for p in files if p.endswith(".pyc")]
        embedded = files[f"var/lib/db/sbom/app-{arch}.spdx.json"].data.decode()
        assert "pkg:pypi/native@1.0" in embedded and "pkg:pypi/tiny-app@1.2.0" in embedded
        mine = [e for p, e in files.items() if p.startswith("usr/local/")]
        assert all(e.uid == 0 and e.gid == 0 and e.mtime == DATE for e in mine)

        # the build's SBOM and a catalogue of the image agree on the PyPI packages
        spdx = json.loads(Path(a["evidence"][arch]["spdx"]).read_text())
        purls = {
            r["referenceLocator"]
            for p in spdx["packages"]
            for r in p.get("externalRefs", [])
            if r["referenceType"] == "purl"
        }
        assert {"pkg:pypi/native@1.0", "pkg:pypi/tiny-app@1.2.0"} <= purls
        built_pypi = sorted(p for p in purls if p.startswith("pkg:pypi/"))
        catalog = json.loads(assay("sbom", ref, "--arch", arch, "-o", "json").stdout)
        listed = [p["purl"] for p in catalog["packages"]]
        assert sorted(p for p in listed if p.startswith("pkg:pypi/")) == built_pypi
        assert len(listed) == len(set(listed))  # nothing reported twice
        assert any(p.startswith("pkg:deb/debian/python3.11-minimal@") for p in listed)
        # the provenance names every wheel as a resolved dependency, and keeps the pins
        from assay.build.provenance import parse_provenance

        raw = Path(a["evidence"][arch]["provenance"]).read_bytes()
        deps = json.loads(raw)["predicate"]["buildDefinition"]["resolvedDependencies"]
        wheel_deps = [d for d in deps if d["annotations"]["kind"] == "wheel"]
        assert {d["name"] for d in wheel_deps} == {"pkg:pypi/native@1.0", "pkg:pypi/tiny-app@1.2.0"}
        assert {d["annotations"]["lockArch"] for d in wheel_deps} == {arch}
        assert list(parse_provenance(raw).lock["python"]["archs"]) == [arch]
        locked = {w["name"]: w for w in lock["python"]["archs"][arch]["wheels"]}
        native = next(p for p in spdx["packages"] if p["name"] == "native")
        assert native["checksums"][0]["checksumValue"] == locked["native"]["sha256"]


def test_a_lock_that_widens_trust_is_refused(
    repo_url: tuple[str, TestKey], wheelhouse: Path, tmp_path: Path
) -> None:
    url, key = repo_url
    spec = _project(tmp_path, url, key, wheelhouse)
    env = {"ASSAY_CACHE_DIR": str(tmp_path / "c")}
    assay("lock", str(spec), env=env)
    lock_path = tmp_path / "app.lock.json"
    good = lock_path.read_text()
    lock = json.loads(good)
    # a wheel the requirements file does not pin (its hash swapped for the other arch's)
    wheels = lock["python"]["archs"]["amd64"]["wheels"]
    tiny = next(w for w in wheels if w["name"] == "tiny-app")
    tiny["sha256"] = "0" * 64
    lock_path.write_text(json.dumps(lock))
    proc = _build(spec, tmp_path / "c", check=False)
    assert proc.returncode == 1, proc.stderr
    assert tiny["filename"] in proc.stderr and "pins" in proc.stderr
    check = assay("lock", str(spec), "--check", env=env, check=False)
    assert check.returncode == 1 and tiny["filename"] in check.stderr
    assert not (tmp_path / "out").exists()
    # an edited requirements file makes the lock stale
    lock_path.write_text(good)
    (tmp_path / "requirements.txt").write_text(_requirements(wheelhouse).replace("1.2.0", "1.3"))
    proc = _build(spec, tmp_path / "c", check=False)
    assert proc.returncode == 1 and "requirements.txt changed" in proc.stderr


def test_sdist_only_requirement_is_a_clear_input_error(
    repo_url: tuple[str, TestKey], wheelhouse: Path, tmp_path: Path
) -> None:
    url, key = repo_url
    house = tmp_path / "house"
    house.mkdir()
    (house / "onlysdist-2.0.tar.gz").write_bytes(b"not really an sdist")
    sha = hashlib.sha256(b"not really an sdist").hexdigest()
    spec = _project(tmp_path / "p", url, key, house, reqs=f"onlysdist==2.0 --hash=sha256:{sha}\n")
    proc = assay("lock", str(spec), env={"ASSAY_CACHE_DIR": str(tmp_path / "c")}, check=False)
    assert proc.returncode == 2, proc.stderr
    assert "onlysdist==2.0" in proc.stderr and "amd64" in proc.stderr
    assert "source distribution" in proc.stderr


def test_requirements_outside_the_spec_directory_are_refused(
    repo_url: tuple[str, TestKey], wheelhouse: Path, tmp_path: Path
) -> None:
    url, key = repo_url
    spec = _project(tmp_path / "p", url, key, wheelhouse)
    spec.write_text(spec.read_text().replace("requirements.txt", "../requirements.txt"))
    proc = assay("lock", str(spec), env={"ASSAY_CACHE_DIR": str(tmp_path / "c")}, check=False)
    assert proc.returncode == 2 and "python.requirements" in proc.stderr
    (tmp_path / "p" / "link.txt").symlink_to("/etc/hostname")
    spec.write_text(spec.read_text().replace("../requirements.txt", "link.txt"))
    proc = assay("lock", str(spec), env={"ASSAY_CACHE_DIR": str(tmp_path / "c")}, check=False)
    assert proc.returncode == 2 and "outside the spec's directory" in proc.stderr


def test_find_links_given_on_the_command_line(
    repo_url: tuple[str, TestKey], wheelhouse: Path, tmp_path: Path
) -> None:
    url, key = repo_url
    spec = _project(tmp_path / "p", url, key, wheelhouse)
    spec.write_text(spec.read_text().replace("  find-links: wheels\n", ""))
    house = tmp_path / "elsewhere"
    shutil.copytree(wheelhouse, house)
    cache = tmp_path / "c"
    assay("lock", str(spec), "--find-links", str(house), env={"ASSAY_CACHE_DIR": str(cache)})
    lock = json.loads((tmp_path / "p" / "app.lock.json").read_text())
    assert {w["origin"] for w in lock["python"]["archs"]["amd64"]["wheels"]} == {"find-links"}
    # a fresh cache and no wheelhouse: the build cannot know where the wheels are
    proc = _build(spec, tmp_path / "fresh", check=False)
    assert proc.returncode == 2 and "--find-links" in proc.stderr
    # a wheelhouse file that changed since the lock fails closed
    tiny = next(house.glob("tiny_app-*.whl"))
    good = tiny.read_bytes()
    tiny.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))
    out = spec.parent / "out"
    cmd = ("build", str(spec), "--dest", f"oci:{out}:app", "-q", "--find-links", str(house))
    proc = assay(*cmd, env={"ASSAY_CACHE_DIR": str(tmp_path / "fresh")}, check=False)
    assert proc.returncode == 1 and tiny.name in proc.stderr and "sha256" in proc.stderr
    assert not out.exists()
    tiny.write_bytes(good)
    assay(*cmd, env={"ASSAY_CACHE_DIR": str(tmp_path / "fresh")})
    files = _files(f"oci:{out}:app", "arm64")
    assert f"{SITE}/tinyapp/cli.py" in files
