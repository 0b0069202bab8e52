"""assay.build.pylock and the python: parts of the spec, the lock and the wheel cache: the image's
Python and glibc from the locked packages, wheel pins per arch from a PyPI-style JSON index
served on 127.0.0.1, the trust check of wheel pins against the requirements file."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from assay.build.lock import Lock, LockedPackage, LockedWheel, read_lock, write_lock
from assay.build.pylock import (
    PypiJsonIndex,
    glibc_version,
    lock_python,
    python_problems,
    python_version,
)
from assay.build.spec import ImageSpec
from assay.debian.fetch import DebCache, make_client
from assay.errors import InputError, UsageError, VerificationError
from fixtures.debrepo import serve

ARCHS = ("amd64", "arm64")
NATIVE = {
    "amd64": "native-1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    "arm64": "native-1.0-cp311-cp311-manylinux_2_17_aarch64.manylinux2014_aarch64.whl",
    "new-glibc": "native-1.0-cp311-cp311-manylinux_2_39_x86_64.whl",
}


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _pkg(name: str, version: str, arch: str = "amd64") -> LockedPackage:
    filename = f"pool/main/{name[0]}/{name}/{name}_{version}_{arch}.deb"
    return LockedPackage.model_validate(
        {
            "name": name,
            "version": version,
            "architecture": arch,
            "source": name,
            "sourceVersion": version,
            "filename": filename,
            "url": f"http://127.0.0.1:1/debian/{filename}",
            "size": 1,
            "sha256": "a" * 64,
            "repository": "http://127.0.0.1:1/debian",
            "suite": "stable",
            "component": "main",
        }
    )


PACKAGES = {
    arch: [_pkg("libc6", "2.36-9+deb12u9", arch), _pkg("python3.11-minimal", "3.11.2-6", arch)]
    for arch in ARCHS
}


def test_python_and_glibc_come_from_the_locked_packages() -> None:
    assert python_version(PACKAGES["amd64"], None) == (3, 11)
    assert python_version(PACKAGES["amd64"], "3.12") == (3, 12)  # the spec's word wins
    assert python_version([_pkg("libpython3.13-minimal", "3.13.1-1")], None) == (3, 13)
    with pytest.raises(UsageError, match=r"python\.version"):
        python_version([_pkg("libc6", "2.36-9")], None)
    with pytest.raises(UsageError, match="several"):
        python_version([_pkg("python3.11-minimal", "1"), _pkg("python3.12-minimal", "1")], None)
    assert glibc_version(PACKAGES["arm64"]) == (2, 36)
    assert glibc_version([_pkg("libc6", "2.41-6")]) == (2, 41)
    with pytest.raises(UsageError, match="libc6"):
        glibc_version([_pkg("python3.11-minimal", "3.11.2-6")])


def test_spec_python_key_is_validated() -> None:
    base = "contents: {packages: [python3.11-minimal]}\npython: "
    spec = ImageSpec.from_yaml(base + "{requirements: req.txt, find-links: wheels}")
    assert spec.python is not None
    assert (spec.python.requirements, spec.python.find_links) == ("req.txt", "wheels")
    assert spec.python.index == "https://pypi.org/pypi"
    assert ImageSpec.from_yaml("contents: {packages: [a1]}\n").python is None
    for bad, where in (
        ("{requirements: ../req.txt}", "python.requirements"),
        ("{requirements: /etc/req.txt}", "python.requirements"),
        ("{requirements: r.txt, find-links: a/../../b}", "python.find-links"),
        ("{requirements: r.txt, index: http://pypi.org/pypi}", "python.index"),
        ("{requirements: r.txt, version: '3'}", "python.version"),
        ("{requirements: r.txt, pip: yes}", "python.pip"),
        ("{}", "python.requirements"),
    ):
        with pytest.raises(UsageError, match=where.replace(".", r"\.")):
            ImageSpec.from_yaml(base + bad)


def _entry(filename: str, sha: str, url: str) -> dict[str, object]:
    return {"filename": filename, "url": url, "digests": {"sha256": sha}, "size": 100}


@pytest.fixture
def index_root(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A PyPI-like JSON API on 127.0.0.1: ``native`` only as the project document, ``pure`` as
    a release document, ``rel`` with the relative file URLs a mirror writes (which resolve to
    this http:// server, so they must be refused: wheels come over https only)."""
    root = tmp_path / "index"
    (root / "pypi" / "native").mkdir(parents=True)
    (root / "pypi" / "pure" / "2.0").mkdir(parents=True)
    native = [_entry(f, _sha(f), f"https://f.invalid/{f}") for f in NATIVE.values()]
    native.append(_entry("native-1.0.tar.gz", _sha("sdist"), "https://f.invalid/native.tar.gz"))
    (root / "pypi" / "rel" / "1.0").mkdir(parents=True)
    rel = {"urls": [_entry("rel-1.0-py3-none-any.whl", _sha("rel"), "../../../packages/r.whl")]}
    (root / "pypi" / "rel" / "1.0" / "json").write_text(json.dumps(rel))
    project = {"info": {}, "urls": [], "releases": {"1.0": native, "0.9": []}}
    (root / "pypi" / "native" / "json").write_text(json.dumps(project))
    pure = {"urls": [_entry("pure-2.0-py3-none-any.whl", _sha("pure"), "https://f.invalid/p")]}
    (root / "pypi" / "pure" / "2.0" / "json").write_text(json.dumps(pure))
    with serve(root) as url:
        yield url, tmp_path


def _project(tmp_path: Path, requirements: str) -> ImageSpec:
    (tmp_path / "requirements.txt").write_text(requirements)
    return ImageSpec.from_yaml(
        "contents: {packages: [python3.11-minimal]}\npython: {requirements: requirements.txt}\n"
    )


REQS = (
    f"native==1.0 --hash=sha256:{_sha(NATIVE['amd64'])} --hash=sha256:{_sha(NATIVE['arm64'])}\n"
    f'pure==2.0 ; platform_machine == "aarch64" --hash=sha256:{_sha("pure")}\n'
)


def test_lock_pins_one_wheel_per_arch_from_a_json_index(index_root: tuple[str, Path]) -> None:
    url, tmp_path = index_root
    spec = _project(tmp_path, REQS)
    with make_client() as http:
        index = PypiJsonIndex(f"{url}/pypi", http)
        locked = lock_python(spec, tmp_path, PACKAGES, index=index)
    assert locked is not None and locked.version == "3.11"
    amd64 = {w.name: w for w in locked.archs["amd64"].wheels}
    arm64 = {w.name: w for w in locked.archs["arm64"].wheels}
    # the manylinux_2_39 wheel needs a newer glibc than 2.36; the marker keeps pure off amd64
    assert list(amd64) == ["native"] and amd64["native"].filename == NATIVE["amd64"]
    assert list(arm64) == ["native", "pure"] and arm64["native"].filename == NATIVE["arm64"]
    assert amd64["native"].url == f"https://f.invalid/{NATIVE['amd64']}"
    assert arm64["pure"].url == "https://f.invalid/p"
    assert locked.archs["arm64"].glibc == "2.36"
    assert arm64["native"].tags == [
        "cp311-cp311-manylinux2014_aarch64",
        "cp311-cp311-manylinux_2_17_aarch64",
    ]
    assert python_problems(locked, spec, tmp_path, PACKAGES) == []
    # a Debian-12-era glibc 2.17 keeps the same choice; glibc 2.12 has no wheel at all
    old = {a: [_pkg("libc6", "2.12-1", a), PACKAGES[a][1]] for a in ARCHS}
    with make_client() as http, pytest.raises(InputError, match=r"amd64.*native==1\.0"):
        lock_python(spec, tmp_path, old, index=PypiJsonIndex(f"{url}/pypi", http))


def test_a_pin_the_requirements_do_not_vouch_for_is_a_problem(
    index_root: tuple[str, Path],
) -> None:
    url, tmp_path = index_root
    spec = _project(tmp_path, REQS)
    with make_client() as http:
        locked = lock_python(spec, tmp_path, PACKAGES, index=PypiJsonIndex(f"{url}/pypi", http))
    assert locked is not None

    def edited(arch: str, which: str, **change: object) -> object:
        target = locked.archs[arch]
        wheels = [w.model_copy(update=change) if w.name == which else w for w in target.wheels]
        archs = {**locked.archs, arch: target.model_copy(update={"wheels": wheels})}
        return locked.model_copy(update={"archs": archs})

    cases = {
        "not one requirements.txt pins": edited("amd64", "native", sha256="0" * 64),
        "requirements.txt pins 1.0": edited("amd64", "native", version="1.1"),
        "is not a requirement": edited("arm64", "pure", name="other"),
    }
    for message, lock in cases.items():
        problems = python_problems(lock, spec, tmp_path, PACKAGES)  # type: ignore[arg-type]
        assert any(message in p for p in problems), (message, problems)
    dropped = locked.model_copy(
        update={
            "archs": {
                **locked.archs,
                "arm64": locked.archs["arm64"].model_copy(
                    update={"wheels": locked.archs["arm64"].wheels[:1]}
                ),
            }
        }
    )
    assert python_problems(dropped, spec, tmp_path, PACKAGES) == [
        "arm64: requirement pure==2.0 has no wheel pinned"
    ]
    assert python_problems(None, spec, tmp_path, PACKAGES) == [
        "the spec has python: but the lock pins no wheels"
    ]
    (tmp_path / "requirements.txt").write_text(REQS + "\n")
    assert python_problems(locked, spec, tmp_path, PACKAGES) == [
        "requirements.txt changed since the lock was made"
    ]


def test_a_release_missing_from_the_index_is_an_input_error(
    index_root: tuple[str, Path],
) -> None:
    url, tmp_path = index_root
    spec = _project(tmp_path, f"absent==1.0 --hash=sha256:{'1' * 64}\n")
    with make_client() as http, pytest.raises(InputError, match=r"absent==1\.0 is not on the"):
        lock_python(spec, tmp_path, PACKAGES, index=PypiJsonIndex(f"{url}/pypi", http))
    spec = _project(tmp_path, f"rel==1.0 --hash=sha256:{_sha('rel')}\n")
    with make_client() as http, pytest.raises(InputError, match="malformed file entry"):
        lock_python(spec, tmp_path, PACKAGES, index=PypiJsonIndex(f"{url}/pypi", http))


def test_lock_without_python_is_unchanged_and_wheel_pins_are_checked(tmp_path: Path) -> None:
    lock = Lock.model_validate(
        {
            "lockVersion": 1,
            "spec": "a.yaml",
            "specDigest": "b" * 64,
            "sources": [],
            "releases": [],
            "packages": {},
        }
    )
    assert b'"python"' not in lock.to_json()
    wheel = {
        "name": "native",
        "version": "1.0",
        "filename": NATIVE["arm64"],
        "origin": "index",
        "url": "https://f.invalid/n.whl",
        "size": 1,
        "sha256": "c" * 64,
        "tags": ["cp311-cp311-manylinux2014_aarch64", "cp311-cp311-manylinux_2_17_aarch64"],
    }
    LockedWheel.model_validate(wheel)
    path = tmp_path / "a.lock.json"
    for bad in (
        {"name": "other"},
        {"version": "1.1"},
        {"tags": ["py3-none-any"]},
        {"url": "http://f.invalid/n.whl"},
        {"origin": "find-links"},  # with a url
        {"filename": "../" + NATIVE["arm64"]},
    ):
        doc = json.loads(lock.to_json())
        doc["python"] = {
            "version": "3.11",
            "requirements": "r.txt",
            "requirementsSha256": "d" * 64,
            "index": "https://pypi.org/pypi",
            "archs": {"arm64": {"glibc": "2.36", "wheels": [{**wheel, **bad}]}},
        }
        path.write_text(json.dumps(doc))
        with pytest.raises(InputError, match="invalid lock"):
            read_lock(path)
    doc["python"]["archs"]["arm64"]["wheels"] = [wheel]
    path.write_text(json.dumps(doc))
    again = read_lock(path)
    write_lock(tmp_path / "b.lock.json", again)
    assert read_lock(tmp_path / "b.lock.json") == again


def test_wheel_cache_copies_a_local_file_only_when_it_matches(tmp_path: Path) -> None:
    src = tmp_path / "w.whl"
    src.write_bytes(b"wheel bytes")
    sha = hashlib.sha256(b"wheel bytes").hexdigest()
    with DebCache(tmp_path / "cache", kind="wheels", suffix=".whl") as cache:
        with pytest.raises(VerificationError, match="expected sha256"):
            cache.add_file(src, "e" * 64, len(b"wheel bytes"))
        with pytest.raises(VerificationError):
            cache.add_file(src, sha, 5)
        assert not list((tmp_path / "cache" / "wheels" / "sha256").iterdir())  # nothing half-kept
        path = cache.add_file(src, sha, len(b"wheel bytes"))
    assert path == tmp_path / "cache" / "wheels" / "sha256" / f"{sha}.whl"
    assert path.read_bytes() == b"wheel bytes"
