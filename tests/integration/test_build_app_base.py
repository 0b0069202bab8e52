"""App images: ``app:`` files in a layer of their own, and ``base:`` — an app built on top of an
image assay built and pushed to a real registry, pinned by digest, its signature required.

All through the installed ``assay`` command in a subprocess, against the signed fixture Debian
repository and the real docker-registry on 127.0.0.1.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fixtures.debrepo import DEBIAN_OS_RELEASE, DEP5_MIT, FakePkg, TestKey, serve_stable, test_key
from fixtures.debrepo import SOURCE_DATE_EPOCH as DATE
from fixtures.examples import assay
from fixtures.registry import RunningRegistry

__all__ = ["test_key"]  # the pytest fixture, imported for use here


@pytest.fixture(scope="module")
def repo(
    tmp_path_factory: pytest.TempPathFactory, test_key: TestKey
) -> Iterator[tuple[str, TestKey]]:
    pkgs = [
        FakePkg("base-files", "12.4", files={"usr/lib/os-release": DEBIAN_OS_RELEASE}),
        FakePkg(
            "hello",
            "1.0-1",
            files={"usr/bin/hello": b"#!/bin/false\n", "usr/share/doc/hello/copyright": DEP5_MIT},
        ),
    ]
    root = tmp_path_factory.mktemp("appbase-repo")
    with serve_stable(root, pkgs, test_key, ("amd64", "arm64")) as url:
        yield url, test_key


def _write_app(d: Path) -> None:
    (d / "src" / "pkg").mkdir(parents=True)
    (d / "src" / "main.py").write_bytes(b"print('hi')\n")
    (d / "src" / "pkg" / "__init__.py").write_bytes(b"")
    (d / "src" / "run").write_bytes(b"#!/bin/sh\n")
    os.chmod(d / "src" / "run", 0o755)
    (d / "static").mkdir()
    (d / "static" / "index.html").write_bytes(b"<p>hi</p>\n")


def _package_spec(d: Path, url: str, key: TestKey, extra: str = "") -> Path:
    spec = d / "base.yaml"
    spec.write_text(
        f"""contents:
  repositories:
    - {{uri: {url}, suites: [stable], components: [main], signed-by: {key.keyring}}}
  packages: [base-files, hello]
entrypoint: [/usr/bin/hello]
environment: {{LANG: C.UTF-8}}
archs: [amd64, arm64]
{extra}"""
    )
    return spec


def _layout_json(layout: Path, digest: str) -> Any:
    return json.loads((layout / "blobs" / "sha256" / digest.split(":")[1]).read_bytes())


def _layer_members(layout: Path, digest: str) -> dict[str, tarfile.TarInfo]:
    raw = (layout / "blobs" / "sha256" / digest.split(":")[1]).read_bytes()
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(raw))) as tar:
        return {m.name.rstrip("/"): m for m in tar.getmembers()}


def _build(spec: Path, dest: str, cache: Path, *more: str, **kw: Any) -> Any:
    proc = assay(
        "build",
        str(spec),
        "--dest",
        dest,
        "-o",
        "json",
        "-q",
        *more,
        env={"ASSAY_CACHE_DIR": str(cache), **kw.pop("env", {})},
        **kw,
    )
    return json.loads(proc.stdout) if proc.returncode == 0 else proc


def test_app_files_are_their_own_reproducible_layer(
    repo: tuple[str, TestKey], tmp_path: Path
) -> None:
    url, key = repo
    extra = "app: ./src\npaths: [{path: /srv/static, type: directory, source: static}]\n"
    results = []
    for name in ("a", "b"):
        d = tmp_path / name
        d.mkdir()
        _write_app(d)
        if name == "b":  # other mtimes and modes on the host change nothing
            os.utime(d / "src" / "main.py", (5, 5))
            os.chmod(d / "src" / "main.py", 0o600)
        results.append(_build(_package_spec(d, url, key, extra), f"oci:{d}/out:v1", d / "cache"))
    a, b = results
    assert a["digest"] == b["digest"]
    layout = tmp_path / "a" / "out"
    amd64 = next(i for i in a["images"] if i["arch"] == "amd64")
    manifest = _layout_json(layout, amd64["digest"])
    app_layer = _layer_members(layout, manifest["layers"][-1]["digest"])
    assert sorted(app_layer) == ["app", "app/main.py", "app/pkg", "app/pkg/__init__.py", "app/run"]
    assert {m.uid for m in app_layer.values()} == {0}
    assert {m.mtime for m in app_layer.values()} == {DATE}
    assert app_layer["app/main.py"].mode == 0o644 and app_layer["app/run"].mode == 0o755
    rootfs = _layer_members(layout, manifest["layers"][0]["digest"])
    assert "srv/static/index.html" in rootfs and "app/main.py" not in rootfs
    config = _layout_json(layout, manifest["config"]["digest"])
    assert config["history"][-1]["created_by"] == "assay build: app files ./src"


def test_app_sources_escaping_the_spec_directory_are_refused(
    repo: tuple[str, TestKey], tmp_path: Path
) -> None:
    url, key = repo
    _write_app(tmp_path)
    os.symlink("/etc", tmp_path / "src" / "etc")
    spec = _package_spec(tmp_path, url, key, "app: ./src\n")
    proc = _build(spec, f"oci:{tmp_path}/out", tmp_path / "c", check=False)
    assert proc.returncode == 2
    assert (
        proc.stderr.strip()
        .splitlines()[-1]
        .endswith(
            "app: etc is a symbolic link; only regular files and directories are copied — remove "
            "it or copy its target instead"
        )
    )
    spec.write_text(spec.read_text().replace("app: ./src", "app: ../"))
    (tmp_path / "base.lock.json").unlink()
    proc = _build(spec, f"oci:{tmp_path}/out", tmp_path / "c", check=False)
    assert proc.returncode == 2 and "outside the spec's directory" in proc.stderr


@pytest.fixture(scope="module")
def pushed_base(
    repo: tuple[str, TestKey], registry: RunningRegistry, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, Path]:
    """A base image built by assay from the fixture repository, pushed and signed."""
    url, key = repo
    d = tmp_path_factory.mktemp("pushed-base")
    spec = _package_spec(d, url, key)
    built = _build(spec, f"oci:{d}/out:1", d / "cache", "--push", f"{registry.host}/app/base:1")
    digest = built["digest"]
    env = {"ASSAY_PASSWORD": "pw"}
    assay("keygen", cwd=d, env=env)
    assay("sign", f"{registry.host}/app/base@{digest}", "--key", "cosign.key", cwd=d, env=env)
    (d / "other").mkdir()
    assay("keygen", cwd=d / "other", env=env)
    return f"{registry.host}/app/base@{digest}", d


def _app_spec(d: Path, base: str, extra: str = "") -> Path:
    spec = d / "app.yaml"
    spec.write_text(
        f"""base: {base}
app: ./src
entrypoint: [/app/run]
environment: {{MODE: prod}}
accounts: {{run-as: "65532:65532"}}
annotations: {{org.opencontainers.image.title: app}}
archs: [amd64, arm64]
{extra}"""
    )
    return spec


def test_app_on_a_base_by_digest(pushed_base: tuple[str, Path], tmp_path: Path) -> None:
    base, base_dir = pushed_base
    _write_app(tmp_path)
    spec = _app_spec(tmp_path, base)
    out = _build(spec, f"oci:{tmp_path}/out:app", tmp_path / "cache")
    again = _build(spec, f"oci:{tmp_path}/out2:app", tmp_path / "cache2")
    assert out["digest"] == again["digest"]
    lock = json.loads((tmp_path / "app.lock.json").read_text())
    assert lock["base"]["ref"] == base and lock["base"]["digest"] == base.split("@")[1]
    assert lock["packages"] == {"amd64": [], "arm64": []}

    base_layout = base_dir / "out"
    base_index = _layout_json(base_layout, base.split("@")[1])
    layout = tmp_path / "out"
    for image in out["images"]:
        arch = image["arch"]
        base_desc = next(
            m for m in base_index["manifests"] if m["platform"]["architecture"] == arch
        )
        base_manifest = _layout_json(base_layout, base_desc["digest"])
        base_config = _layout_json(base_layout, base_manifest["config"]["digest"])
        manifest = _layout_json(layout, image["digest"])
        config = _layout_json(layout, manifest["config"]["digest"])
        # the base's blobs and diff_ids as they are, then one app layer
        n = len(base_manifest["layers"])
        assert manifest["layers"][:n] == base_manifest["layers"]
        assert len(manifest["layers"]) == n + 1
        assert config["rootfs"]["diff_ids"][:n] == base_config["rootfs"]["diff_ids"]
        assert (
            manifest["annotations"]["org.opencontainers.image.base.digest"] == (base_desc["digest"])
        )
        # the base's config with the spec laid over it
        assert config["config"]["Entrypoint"] == ["/app/run"]
        assert config["config"]["User"] == "65532:65532"
        assert "LANG=C.UTF-8" in config["config"]["Env"]  # from the base
        assert "MODE=prod" in config["config"]["Env"]
        assert config["config"]["Labels"]["org.opencontainers.image.title"] == "app"
        assert config["history"][: len(base_config["history"])] == base_config["history"]
        # provenance: the base is a resolved dependency, pinned
        prov = json.loads(Path(out["evidence"][arch]["provenance"]).read_text())
        deps = prov["predicate"]["buildDefinition"]["resolvedDependencies"]
        files = [d for d in deps if d["annotations"]["kind"] == "file"]  # what app: read
        assert [d["annotations"] for d in files] == [
            {"kind": "file", "path": "./src", "role": "app.source"}
        ]
        deps = [d for d in deps if d["annotations"]["kind"] != "file"]
        assert deps == [
            {
                "uri": base,
                "digest": {"sha256": base.split("@sha256:")[1]},
                "annotations": {"kind": "base-image", "manifests": {arch: base_desc["digest"]}},
            }
        ]
        # the SBOM lists the base's packages, catalogued from its layers
        spdx = json.loads(Path(out["evidence"][arch]["spdx"]).read_text())
        names = {p["name"] for p in spdx["packages"]}
        assert {"base-files", "hello"} <= names, names
    # the in-process parse of the provenance gives the lock's base back (rebuild reads it)
    from assay.build.provenance import parse_provenance

    parsed = parse_provenance(Path(out["evidence"]["amd64"]["provenance"]).read_bytes())
    assert parsed.lock["base"]["digest"] == lock["base"]["digest"]


def test_base_signature_required(pushed_base: tuple[str, Path], tmp_path: Path) -> None:
    base, base_dir = pushed_base
    _write_app(tmp_path)
    good = f"\n  verify: {{key: {base_dir / 'cosign.pub'}}}"
    spec = _app_spec(tmp_path, f"\n  ref: {base}{good}")
    assert _build(spec, f"oci:{tmp_path}/ok", tmp_path / "c")["digest"].startswith("sha256:")
    # the same build with the lock now present verifies again (fail closed on every build)
    assert _build(spec, f"oci:{tmp_path}/ok2", tmp_path / "c")["digest"].startswith("sha256:")

    wrong = f"\n  verify: {{key: {base_dir / 'other' / 'cosign.pub'}}}"
    spec = _app_spec(tmp_path, f"\n  ref: {base}{wrong}")
    (tmp_path / "app.lock.json").unlink()
    proc = _build(spec, f"oci:{tmp_path}/bad", tmp_path / "c", check=False)
    assert proc.returncode == 1, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert f"base {base}: no valid signature" in last
    assert not (tmp_path / "bad").exists()


def test_unsigned_base_is_refused(
    repo: tuple[str, TestKey],
    registry: RunningRegistry,
    pushed_base: tuple[str, Path],
    tmp_path: Path,
) -> None:
    url, key = repo
    _, base_dir = pushed_base
    d = tmp_path / "unsigned"
    d.mkdir()
    built = _build(
        _package_spec(d, url, key, "cmd: [x]\n"),
        f"oci:{d}/out",
        d / "c",
        "--push",
        f"{registry.host}/app/unsigned:1",
    )
    _write_app(tmp_path)
    ref = f"{registry.host}/app/unsigned@{built['digest']}"
    spec = _app_spec(tmp_path, f"\n  ref: {ref}\n  verify: {{key: {base_dir / 'cosign.pub'}}}")
    proc = _build(spec, f"oci:{tmp_path}/bad", tmp_path / "c", check=False)
    assert proc.returncode == 1
    assert "no cosign signatures found" in proc.stderr.strip().splitlines()[-1]


def test_base_from_an_oci_layout_is_pinned_in_the_lock(
    pushed_base: tuple[str, Path], tmp_path: Path
) -> None:
    _, base_dir = pushed_base
    _write_app(tmp_path)
    spec = _app_spec(tmp_path, f"oci:{base_dir}/out:1")
    out = _build(spec, f"oci:{tmp_path}/out", tmp_path / "c")
    lock = json.loads((tmp_path / "app.lock.json").read_text())
    index = json.loads((base_dir / "out" / "index.json").read_text())
    tagged = next(
        m
        for m in index["manifests"]
        if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == "1"
    )
    assert lock["base"]["digest"] == tagged["digest"]
    assert out["sourceDateEpoch"] == DATE  # the base's created time when nothing else is set


@pytest.mark.parametrize(
    ("base", "extra", "why"),
    [
        ("127.0.0.1:1/app/base:1", "", "names a tag, not a digest"),
        (
            "127.0.0.1:1/app/base@sha256:" + "a" * 64,
            "contents: {packages: [hello]}\n",
            "does not install .debs on top of another image's package database",
        ),
        ("oci:layout", "", ""),
    ],
)
def test_base_spec_errors_are_one_line_usage_errors(
    tmp_path: Path, base: str, extra: str, why: str
) -> None:
    if not why:  # verify needs a registry reference
        base = "\n  ref: oci:layout\n  verify: {key: cosign.pub}"
        why = "verify needs a registry reference"
    _write_app(tmp_path)
    spec = _app_spec(tmp_path, base, extra)
    proc = _build(spec, f"oci:{tmp_path}/out", tmp_path / "c", check=False)
    assert proc.returncode == 2
    assert why in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_an_oci_layout_base_that_moved_is_refused(
    pushed_base: tuple[str, Path], tmp_path: Path
) -> None:
    import shutil

    _, base_dir = pushed_base
    layout = tmp_path / "base-layout"
    shutil.copytree(base_dir / "out", layout)
    _write_app(tmp_path)
    spec = _app_spec(tmp_path, "oci:base-layout:1")  # relative to the spec's directory
    assay("lock", str(spec))
    assay("lock", "--check", str(spec))
    pinned = json.loads((tmp_path / "app.lock.json").read_text())["base"]["digest"]
    # retag: tag 1 now names the amd64 manifest, not the index the lock pins
    index = json.loads((layout / "index.json").read_text())
    top = index["manifests"][0]
    amd64 = next(
        m
        for m in _layout_json(layout, top["digest"])["manifests"]
        if m["platform"]["architecture"] == "amd64"
    )
    index["manifests"] = [{**amd64, "annotations": top["annotations"]}]
    (layout / "index.json").write_text(json.dumps(index))
    check = assay("lock", "--check", str(spec), check=False)
    assert check.returncode == 1 and f"is now {amd64['digest']}" in check.stderr
    proc = _build(spec, f"oci:{tmp_path}/out", tmp_path / "c", check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == (
        f"assay: error: base oci:base-layout:1 is now {amd64['digest']} but the lock pins "
        f"{pinned}; run `assay lock SPEC` if the new base is intended"
    )
