"""``assay rebuild --source DIR`` for specs that read files beside them, without the real mirror.

A signed fixture Debian repository on 127.0.0.1; a spec in a git checkout that copies a file in
by ``paths[].source`` and trusts a keyring named relative to it; a ``python:`` spec with a
``find-links`` wheelhouse. Every command runs through the ``assay`` entry point in a subprocess.
The provenance records each such file's sha256; the rebuild reproduces the image from the
checkout, refuses without ``--source`` (exit 2, naming the file) and refuses a checkout whose
file differs from the recorded one (exit 1, naming it).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fixtures.debrepo import FakePkg, TestKey, python_base, serve_stable, signed_contents, test_key
from fixtures.examples import assay
from fixtures.wheels import write_wheel

__all__ = ["test_key"]  # the pytest fixture, imported for use here

GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", "-c", "commit.gpgsign=0"]


@pytest.fixture(scope="module")
def repo_url(
    tmp_path_factory: pytest.TempPathFactory, test_key: TestKey
) -> Iterator[tuple[str, TestKey]]:
    hello = FakePkg("hello", "1.0-1", files={"usr/bin/hello": b"#!/bin/false\n"})
    root = tmp_path_factory.mktemp("rebuild-src-repo")
    with serve_stable(root, [*python_base(), hello], test_key) as url:
        yield url, test_key


def _run(
    *args: str, env: dict[str, str], cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return assay(*args, env=env, cwd=cwd, check=False)


def _one_line(proc: subprocess.CompletedProcess[str], *, progress: bool = False) -> str:
    """The one error line (after the build's progress lines when ``progress``)."""
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    if progress:
        lines = [line for line in lines if not line.startswith("• ")]
    assert len(lines) == 1 and lines[0].startswith("assay: error: "), proc.stderr
    return lines[0]


def _deps(provenance: Path, kind: str) -> list[dict[str, Any]]:
    doc = json.loads(provenance.read_text())
    deps = doc["predicate"]["buildDefinition"]["resolvedDependencies"]
    return [d for d in deps if d["annotations"]["kind"] == kind]


# ------------------------------------------------------------------ paths[].source, keyring, git


@pytest.fixture(scope="module")
def checkout_build(
    repo_url: tuple[str, TestKey], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    url, key = repo_url
    tmp = tmp_path_factory.mktemp("co")
    co = tmp / "checkout"
    (co / "deploy" / "conf").mkdir(parents=True)
    (co / "keys").mkdir()
    shutil.copyfile(key.keyring, co / "keys" / "repo.gpg")
    (co / "deploy" / "conf" / "hello.conf").write_text("greeting = hello\n")
    (co / "deploy" / "hello.yaml").write_text(
        f"""contents:
  repositories:
    - uri: {url}
      suites: [stable]
      components: [main]
  keyring: [../keys/repo.gpg]
  packages: [base-files, hello]
paths:
  - {{path: /etc/hello.conf, type: file, source: conf/hello.conf, permissions: 0o644}}
entrypoint: [/usr/bin/hello]
"""
    )
    subprocess.run(["git", "init", "-q"], cwd=co, check=True)
    subprocess.run([*GIT, "add", "-A"], cwd=co, check=True)
    subprocess.run([*GIT, "commit", "-qm", "spec"], cwd=co, check=True)
    env = {"ASSAY_CACHE_DIR": str(tmp / "cache")}
    out = tmp / "out"
    proc = assay(
        "build", "deploy/hello.yaml", "--dest", f"oci:{out}:v1", "-o", "json", "-q",
        cwd=co, env=env,
    )  # fmt: skip
    summary = json.loads(proc.stdout)
    provenance = Path(summary["evidence"]["amd64"]["provenance"])
    return {"co": co, "tmp": tmp, "ref": f"oci:{out}:v1", "prov": provenance, "summary": summary}


def test_provenance_records_the_files_the_spec_reads(checkout_build: dict[str, Any]) -> None:
    co, prov = checkout_build["co"], checkout_build["prov"]
    files = {d["annotations"]["path"]: d for d in _deps(prov, "file")}
    assert sorted(files) == ["../keys/repo.gpg", "conf/hello.conf"]
    conf = files["conf/hello.conf"]
    assert conf["uri"] == "file:conf/hello.conf"
    assert conf["annotations"]["role"] == "paths.source"
    want = hashlib.sha256((co / "deploy" / "conf" / "hello.conf").read_bytes()).hexdigest()
    assert conf["digest"]["sha256"] == want
    assert files["../keys/repo.gpg"]["annotations"]["role"] == "contents.keyring"
    source = json.loads(prov.read_text())["predicate"]["buildDefinition"]["externalParameters"]
    assert source["source"]["path"] == "deploy/hello.yaml"


def test_rebuild_with_source_is_identical(checkout_build: dict[str, Any], tmp_path: Path) -> None:
    b = checkout_build
    env = {"ASSAY_CACHE_DIR": str(tmp_path / "cache")}
    args = ("rebuild", b["ref"], "--provenance", str(b["prov"]), "-o", "json")
    proc = _run(*args, "--source", str(b["co"]), env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    (result,) = json.loads(proc.stdout)
    assert result["identical"] and result["notes"] == []
    assert result["actual"] == b["summary"]["images"][0]["digest"]
    # the environment variable works too, and a changed copy of the spec in the checkout is only
    # noted: the recorded spec is what is rebuilt
    spec = b["co"] / "deploy" / "hello.yaml"
    good = spec.read_text()
    try:
        spec.write_text(good + "# edited later\n")
        proc = _run(*args, env={**env, "ASSAY_REBUILD_SOURCE": str(b["co"])}, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        (result,) = json.loads(proc.stdout)
        assert result["identical"]
        assert any("differs from the spec the provenance records" in n for n in result["notes"])
    finally:
        spec.write_text(good)


def test_rebuild_without_source_names_the_first_file(
    checkout_build: dict[str, Any], tmp_path: Path
) -> None:
    b = checkout_build
    env = {"ASSAY_CACHE_DIR": str(tmp_path / "cache")}
    proc = _run("rebuild", b["ref"], "--provenance", str(b["prov"]), env=env, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    line = _one_line(proc)
    assert "paths[/etc/hello.conf].source conf/hello.conf" in line and "--source DIR" in line


@pytest.mark.parametrize(
    ("rel", "shown"),
    [("deploy/conf/hello.conf", "deploy/conf/hello.conf"), ("keys/repo.gpg", "keys/repo.gpg")],
)
def test_rebuild_refuses_a_changed_file(
    checkout_build: dict[str, Any], tmp_path: Path, rel: str, shown: str
) -> None:
    b = checkout_build
    co = tmp_path / "copy"
    shutil.copytree(b["co"], co, symlinks=True)
    target = co / rel
    target.write_bytes(target.read_bytes() + b"\n")
    env = {"ASSAY_CACHE_DIR": str(tmp_path / "cache")}
    proc = _run(
        "rebuild", b["ref"], "--provenance", str(b["prov"]), "--source", str(co),
        env=env, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    line = _one_line(proc)
    assert shown in line and "sha256" in line and "the provenance records" in line


def test_rebuild_refuses_a_file_outside_the_checkout(
    checkout_build: dict[str, Any], tmp_path: Path
) -> None:
    b = checkout_build
    co = tmp_path / "copy"
    shutil.copytree(b["co"], co, symlinks=True)
    # the same bytes, but reached through a symlink out of the checkout
    outside = tmp_path / "elsewhere.conf"
    shutil.copyfile(co / "deploy" / "conf" / "hello.conf", outside)
    (co / "deploy" / "conf" / "hello.conf").unlink()
    (co / "deploy" / "conf" / "hello.conf").symlink_to(outside)
    env = {"ASSAY_CACHE_DIR": str(tmp_path / "cache")}
    proc = _run(
        "rebuild", b["ref"], "--provenance", str(b["prov"]), "--source", str(co),
        env=env, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert "outside --source" in _one_line(proc)


# ------------------------------------------------------------------------- app: and paths trees


@pytest.fixture(scope="module")
def app_build(repo_url: tuple[str, TestKey], tmp_path_factory: pytest.TempPathFactory) -> Any:
    url, key = repo_url
    tmp = tmp_path_factory.mktemp("app")
    proj = tmp / "proj"
    (proj / "src" / "pkg").mkdir(parents=True)
    (proj / "src" / "main.py").write_bytes(b"print('hi')\n")
    (proj / "src" / "pkg" / "__init__.py").write_bytes(b"")
    (proj / "static").mkdir()
    (proj / "static" / "index.html").write_bytes(b"<p>hi</p>\n")
    spec = proj / "app.yaml"
    spec.write_text(
        f"""contents:
  repositories:
    - {{uri: {url}, suites: [stable], components: [main], signed-by: {key.keyring}}}
  packages: [base-files, hello]
paths: [{{path: /srv/static, type: directory, source: static}}]
app: ./src
entrypoint: [/usr/bin/hello]
"""
    )
    out = tmp / "out"
    env = {"ASSAY_CACHE_DIR": str(tmp / "cache")}
    proc = assay("build", str(spec), "--dest", f"oci:{out}:app", "-o", "json", "-q", env=env)
    summary = json.loads(proc.stdout)
    prov = summary["evidence"]["amd64"]["provenance"]
    return {"proj": proj, "ref": f"oci:{out}:app", "prov": prov}


def test_app_rebuild_with_source(app_build: dict[str, Any], tmp_path: Path) -> None:
    b = app_build
    files = _deps(Path(b["prov"]), "file")
    roles = {d["annotations"]["path"]: d["annotations"]["role"] for d in files}
    assert roles == {"./src": "app.source", "static": "paths.tree"}
    env = {"ASSAY_CACHE_DIR": str(tmp_path / "cache")}
    base = ("rebuild", b["ref"], "--provenance", b["prov"])
    proc = _run(*base, "-o", "json", env=env)
    assert proc.returncode == 2, proc.stderr
    assert "paths[/srv/static].source static" in _one_line(proc)

    proj = tmp_path / "proj"
    shutil.copytree(b["proj"], proj)
    proc = _run(*base, "--source", str(proj), "-o", "json", env=env)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)[0]["identical"]
    # an execute bit the image would get is a change as much as new content or a new file
    for change in ("chmod", "add"):
        if change == "chmod":
            (proj / "src" / "main.py").chmod(0o755)
        else:
            (proj / "src" / "main.py").chmod(0o644)
            (proj / "src" / "pkg" / "extra.py").write_bytes(b"")
        proc = _run(*base, "--source", str(proj), env=env)
        assert proc.returncode == 1, proc.stderr
        line = _one_line(proc)
        assert "app.source ./src" in line and "not the tree the image was built from" in line


def test_app_on_a_local_base_rebuilds_with_source(
    app_build: dict[str, Any], tmp_path: Path
) -> None:
    """``base: oci:DIR`` beside the spec: the lock pins its digest, the rebuild opens it from the
    checkout and the app tree is checked as above."""
    b = app_build
    proj = tmp_path / "proj"
    (proj / "src").mkdir(parents=True)
    (proj / "src" / "run").write_bytes(b"#!/bin/sh\n")
    shutil.copytree(Path(b["ref"].split(":")[1]), proj / "base")
    spec = proj / "app.yaml"
    spec.write_text("base: oci:base:app\napp: ./src\nentrypoint: [/app/run]\n")
    env = {"ASSAY_CACHE_DIR": str(tmp_path / "cache")}
    out = tmp_path / "out"
    proc = assay("build", str(spec), "--dest", f"oci:{out}:v1", "-o", "json", "-q", env=env)
    prov = json.loads(proc.stdout)["evidence"]["amd64"]["provenance"]
    base = ("rebuild", f"oci:{out}:v1", "--provenance", prov)
    proc = _run(*base, env=env)
    assert proc.returncode == 2 and "app.source ./src" in _one_line(proc), proc.stderr
    proc = _run(*base, "--source", str(proj), "-o", "json", env=env)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)[0]["identical"]


# ----------------------------------------------------------------------------- python: wheels


def _pure_wheel(house: Path) -> Path:
    path = house / "tiny_app-1.2.0-py3-none-any.whl"
    members = {
        "tinyapp/__init__.py": b"VERSION = '1.2.0'\n",
        "tiny_app-1.2.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: tiny-app\n"
        b"Version: 1.2.0\nLicense: MIT\n\n",
        "tiny_app-1.2.0.dist-info/WHEEL": b"Wheel-Version: 1.0\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n",
    }
    return write_wheel(path, members, "tiny_app-1.2.0.dist-info", (2020, 1, 1, 0, 0, 0))


@pytest.fixture(scope="module")
def python_build(
    repo_url: tuple[str, TestKey], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    url, key = repo_url
    tmp = tmp_path_factory.mktemp("py")
    proj = tmp / "proj"
    (proj / "wheels").mkdir(parents=True)
    wheel = _pure_wheel(proj / "wheels")
    sha = hashlib.sha256(wheel.read_bytes()).hexdigest()
    (proj / "requirements.txt").write_text(f"tiny-app==1.2.0 --hash=sha256:{sha}\n")
    spec = proj / "app.yaml"
    spec.write_text(
        signed_contents(url, key.keyring, "[base-files, python3.11-minimal]")
        + """\
python:
  requirements: requirements.txt
  find-links: wheels
entrypoint: [/usr/bin/python3.11]
"""
    )
    env = {"ASSAY_CACHE_DIR": str(tmp / "cache")}
    out = tmp / "out"
    proc = assay("build", str(spec), "--dest", f"oci:{out}:app", "-o", "json", "-q", env=env)
    summary = json.loads(proc.stdout)
    provenance = Path(summary["evidence"]["amd64"]["provenance"])
    return {
        "proj": proj,
        "ref": f"oci:{out}:app",
        "prov": provenance,
        "wheel": wheel.name,
        "cache": tmp / "cache",
    }


def test_python_rebuild_with_source(python_build: dict[str, Any], tmp_path: Path) -> None:
    b = python_build
    (req,) = _deps(b["prov"], "file")
    assert req["annotations"] == {
        "kind": "file",
        "path": "requirements.txt",
        "role": "python.requirements",
    }
    env = {"ASSAY_CACHE_DIR": str(tmp_path / "cache")}
    base = ("rebuild", b["ref"], "--provenance", str(b["prov"]))
    # a fresh cache and --no-cache: the wheel comes from the checkout's wheelhouse, by its pin
    proc = _run(*base, "--source", str(b["proj"]), "--no-cache", "-o", "json", env=env)
    assert proc.returncode == 0, proc.stderr
    (result,) = json.loads(proc.stdout)
    assert result["identical"], result

    proc = _run(*base, env=env)
    assert proc.returncode == 2, proc.stderr
    line = _one_line(proc)
    assert "python.requirements requirements.txt" in line and "--source DIR" in line


def test_python_rebuild_refuses_changed_requirements_or_wheel(
    python_build: dict[str, Any], tmp_path: Path
) -> None:
    b = python_build
    proj = tmp_path / "proj"
    shutil.copytree(b["proj"], proj)
    env = {"ASSAY_CACHE_DIR": str(tmp_path / "cache")}
    base = ("rebuild", b["ref"], "--provenance", str(b["prov"]), "--source", str(proj))
    req = proj / "requirements.txt"
    good = req.read_text()
    req.write_text(good + "# an extra line\n")
    proc = _run(*base, "--no-cache", env=env)
    assert proc.returncode == 1, proc.stderr
    line = _one_line(proc)
    assert "requirements.txt" in line and "the provenance records" in line

    req.write_text(good)
    wheel = proj / "wheels" / b["wheel"]
    data = wheel.read_bytes()
    wheel.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    proc = _run(*base, "--no-cache", env=env)
    assert proc.returncode == 1, proc.stderr
    line = _one_line(proc, progress=True)
    assert b["wheel"] in line and "sha256" in line
    # with the builder's cache, the pinned wheel is seeded from it (re-hashed while copied):
    # the damaged wheelhouse file is never read and the image is reproduced
    proc = _run(*base, "-o", "json", env={"ASSAY_CACHE_DIR": str(b["cache"])})
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)[0]["identical"]
