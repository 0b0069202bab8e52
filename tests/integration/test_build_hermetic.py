"""``assay build`` end to end without the real mirror: a signed fixture repository on 127.0.0.1.

Runs even where the Debian mirror cannot be reached, so the build path is always exercised:
lock → fetch → assemble → layers → layout, reproducibility, the package DB, and ``assay run``
of a statically linked program (this host's /sbin/ldconfig, packaged into a test .deb).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fixtures.debrepo import (
    DEBIAN_OS_RELEASE,
    DEP5_MIT,
    FakePkg,
    TestKey,
    serve_stable,
    signed_contents,
    test_key,
)
from fixtures.debrepo import SOURCE_DATE_EPOCH as DATE

__all__ = ["test_key"]  # the pytest fixture, imported for use here
from fixtures.examples import assay


@pytest.fixture(scope="module")
def repo_url(
    tmp_path_factory: pytest.TempPathFactory, test_key: TestKey
) -> Iterator[tuple[str, TestKey]]:
    static = Path("/sbin/ldconfig").read_bytes() if Path("/sbin/ldconfig").exists() else b""
    pkgs = [
        FakePkg(
            "base-files",
            "12.4",
            files={
                "etc/debian_version": b"12.4\n",
                "usr/lib/os-release": DEBIAN_OS_RELEASE,
            },
        ),
        FakePkg(
            "hello",
            "1.0-1",
            depends="libhello (>= 1.0) | libalt",
            files={
                "usr/bin/hello": static or b"#!/bin/false\n",
                "usr/share/doc/hello/copyright": DEP5_MIT,
                "usr/share/man/man1/hello.1": b".TH HELLO 1\n",
            },
        ),
        FakePkg("libhello", "1.2-1", files={"usr/lib/libhello.so.1": b"\x7fELF fake\n"}),
    ]
    root = tmp_path_factory.mktemp("hermetic-repo")
    with serve_stable(root, pkgs, test_key, ("amd64", "arm64")) as url:
        yield url, test_key


def _spec(tmp: Path, url: str, key: TestKey, extra: str = "") -> Path:
    spec = tmp / "hello.yaml"
    spec.write_text(
        signed_contents(url, key.keyring, "[base-files, hello]")
        + f"entrypoint: [/usr/bin/hello]\narchs: [amd64, arm64]\n{extra}"
    )
    return spec


def test_build_is_reproducible_and_complete(repo_url: tuple[str, TestKey], tmp_path: Path) -> None:
    url, key = repo_url
    a_dir, b_dir = tmp_path / "a", tmp_path / "b"
    a_dir.mkdir()
    b_dir.mkdir()
    a = json.loads(
        assay(
            "build",
            str(_spec(a_dir, url, key)),
            "--dest",
            f"oci:{a_dir}/out:h",
            "-o",
            "json",
            "-q",
            env={"ASSAY_CACHE_DIR": str(tmp_path / "ca")},
        ).stdout
    )
    old = os.umask(0o027)
    try:
        b = json.loads(
            assay(
                "build",
                str(_spec(b_dir, url, key)),
                "--dest",
                f"oci:{b_dir}/out:h",
                "-o",
                "json",
                "-q",
                env={"ASSAY_CACHE_DIR": str(tmp_path / "cb"), "TZ": "Asia/Kathmandu"},
                cwd=tmp_path,
            ).stdout
        )
    finally:
        os.umask(old)
    assert a["index"] == b["index"]
    assert a["sourceDateEpoch"] == DATE  # the Release Date, never the wall clock
    lock = json.loads((a_dir / "hello.lock.json").read_text())
    assert sorted(p["name"] for p in lock["packages"]["amd64"]) == [
        "base-files",
        "hello",
        "libhello",
    ]

    from assay.oci.layer import apply_layers, read_layer
    from assay.oci.reference import parse_image_ref
    from assay.oci.source import open_local_image

    with open_local_image(parse_image_ref(f"oci:{a_dir}/out:h")) as src:
        img = next(i for i in src.manifests() if i.platform.architecture == "arm64")
        files = apply_layers(
            [read_layer(src.open_layer(d), media_type=d.media_type) for d in img.layers]
        )
        assert img.config["config"]["User"] == "65532:65532"
        assert img.config["created"] == "2023-11-14T22:13:20Z"
    assert "usr/lib/libhello.so.1" in files and "usr/bin/hello" in files
    assert "usr/share/man/man1/hello.1" not in files  # docs left out
    assert "usr/share/doc/hello/copyright" in files  # copyright kept
    status = files["var/lib/dpkg/status.d/hello"].data.decode()
    assert status.startswith("Package: hello\nStatus: install ok installed\n")
    assert "nonroot:x:65532:65532:" in files["etc/passwd"].data.decode()
    assert all(e.mtime <= DATE for e in files.values())
    for arch in ("amd64", "arm64"):
        assert a["evidence"][arch]["spdx"] == str(a_dir / "out" / f"out-h-{arch}.spdx.json")
        spdx = json.loads(Path(a["evidence"][arch]["spdx"]).read_text())
        hello = next(p for p in spdx["packages"] if p["name"] == "hello")
        assert hello["licenseConcluded"] == "MIT" or hello.get("licenseDeclared") == "MIT"
        prov = json.loads((a_dir / "out" / f"out-h-{arch}.provenance.json").read_text())
        assert (
            len(
                [
                    d
                    for d in prov["predicate"]["buildDefinition"]["resolvedDependencies"]
                    if d["annotations"]["kind"] == "deb"
                ]
            )
            == 3
        )


def test_stale_lock_is_reported(repo_url: tuple[str, TestKey], tmp_path: Path) -> None:
    url, key = repo_url
    spec = _spec(tmp_path, url, key)
    env = {"ASSAY_CACHE_DIR": str(tmp_path / "c")}
    assay("lock", str(spec), env=env)
    spec.write_text(spec.read_text() + "cmd: [--verbose]\n")
    proc = assay("build", str(spec), "--dest", f"oci:{tmp_path}/out:h", "-q", check=False, env=env)
    assert proc.returncode == 2
    assert "does not match" in proc.stderr and "assay lock" in proc.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("runc") or not Path("/sbin/ldconfig").exists(),
    reason="assay run needs root, runc and a static /sbin/ldconfig to package",
)
def test_run_static_binary_as_nonroot(repo_url: tuple[str, TestKey], tmp_path: Path) -> None:
    url, key = repo_url
    spec = _spec(tmp_path, url, key).read_text().replace("archs: [amd64, arm64]", "archs: [amd64]")
    (tmp_path / "hello.yaml").write_text(spec)
    env = {"ASSAY_CACHE_DIR": str(tmp_path / "c")}
    assay("build", str(tmp_path / "hello.yaml"), "--dest", f"oci:{tmp_path}/out:h", "-q", env=env)
    proc = assay("run", f"oci:{tmp_path}/out:h", "--", "--version")
    assert "ldconfig" in proc.stdout
    bad = assay("run", f"oci:{tmp_path}/out:h", "--", "--no-such-option", check=False)
    assert bad.returncode != 0


def test_build_push_sign_without_dest(
    repo_url: tuple[str, TestKey], registry: Any, tmp_path: Path
) -> None:
    """Issue 4's command as users type it: no --dest, a temporary layout, pushed and signed."""
    url, key = repo_url
    env = {"ASSAY_CACHE_DIR": str(tmp_path / "c"), "ASSAY_PASSWORD": "pw"}
    assay("keygen", "--output-key-prefix", str(tmp_path / "cosign"), env=env)
    ref = f"{registry.host}/hermetic/hello:1"
    work = tmp_path / "work"
    work.mkdir()
    spec = _spec(work, url, key)
    private_tmp = tmp_path / "tmp"  # the build's own TMPDIR: other tests run in parallel
    private_tmp.mkdir()
    out = assay(
        "build", str(spec), "--push", ref, "--sign-key", str(tmp_path / "cosign.key"),
        "-o", "json", "-q", env={**env, "TMPDIR": str(private_tmp)},
    )  # fmt: skip
    built = json.loads(out.stdout)
    assert built["pushed"]["reference"].startswith(f"{registry.host}/hermetic/hello@sha256:")
    pub = str(tmp_path / "cosign.pub")
    verified = json.loads(assay("verify", ref, "--key", pub, "-o", "json").stdout)
    signed = {v["critical"]["image"]["docker-manifest-digest"] for v in verified}
    assert built["index"] in signed  # (verify also reports each platform's signature)
    for image in built["images"]:
        pinned = f"{registry.host}/hermetic/hello@{image['digest']}"
        assay("verify-attestation", pinned, "--key", pub, "--type", "slsaprovenance1")
    # nothing left behind: no layout beside the spec, no temporary directory
    assert sorted(os.listdir(work)) == ["hello.lock.json", "hello.yaml"]
    assert os.listdir(private_tmp) == []
    # and neither a destination nor a registry is a usage error
    r = assay("build", str(spec), check=False, env=env)
    assert r.returncode == 2 and "--dest" in r.stderr and len(r.stderr.splitlines()) == 1
