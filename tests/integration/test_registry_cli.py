"""``assay push`` / ``assay copy`` as a user runs them, against a real docker-registry."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from test_registry_push import build_layout

from assay.oci.layout import OciLayout
from fixtures.cli import Ran, run_script
from fixtures.registry import RunningRegistry


def assay(*args: str) -> Ran:
    return run_script(*args, timeout=120)


def test_push_prints_the_digest_and_second_push_uploads_nothing(
    registry: RunningRegistry, tmp_path: Path
) -> None:
    lay = build_layout(tmp_path / "out")
    dest = f"{registry.host}/base/cli-{uuid.uuid4().hex[:8]}:3.11"
    first = assay("push", f"oci:{tmp_path / 'out'}:python", dest)
    assert first.returncode == 0, first.stderr
    digest = lay.resolve("python").digest
    assert first.stdout == digest + "\n"
    assert "uploaded" in first.stderr
    second = assay("push", "-o", "json", f"oci:{tmp_path / 'out'}:python", f"docker://{dest}")
    assert second.returncode == 0, second.stderr
    doc = json.loads(second.stdout)
    assert doc["digest"] == digest
    assert doc["reference"].endswith(f"@{digest}")
    assert doc["blobs"] == {"uploaded": 0, "skipped": 5, "mounted": 0, "uploadedBytes": 0}
    assert sorted(m["platform"] for m in doc["manifests"]) == ["linux/amd64", "linux/arm64"]


def test_copy_registry_to_layout_and_registry(registry: RunningRegistry, tmp_path: Path) -> None:
    lay = build_layout(tmp_path / "out")
    digest = lay.resolve("python").digest
    src = f"{registry.host}/base/cli-src-{uuid.uuid4().hex[:8]}:v1"
    assert assay("push", "-q", f"oci:{tmp_path / 'out'}:python", src).returncode == 0
    pulled = assay("copy", src, f"oci:{tmp_path / 'pulled'}:got")
    assert pulled.returncode == 0, pulled.stderr
    assert OciLayout.open(tmp_path / "pulled").resolve("got").digest == digest
    other = f"{registry.host}/team/cli-dst-{uuid.uuid4().hex[:8]}:v2"
    copied = assay("copy", "-o", "json", src, other)
    assert copied.returncode == 0, copied.stderr
    assert json.loads(copied.stdout)["blobs"]["mounted"] == 5


def test_bad_references_exit_2(registry: RunningRegistry, tmp_path: Path) -> None:
    build_layout(tmp_path / "out")
    no_host = assay("push", f"oci:{tmp_path / 'out'}:python", "base/python:3.11")
    assert no_host.returncode == 2 and "registry host" in no_host.stderr
    missing_tag = assay("push", f"oci:{tmp_path / 'out'}:nope", f"{registry.host}/a/b:1")
    assert missing_tag.returncode == 2 and "no tag 'nope'" in missing_tag.stderr
    to_digest = assay(
        "push", f"oci:{tmp_path / 'out'}:python", f"{registry.host}/a/b@sha256:{'a' * 64}"
    )
    assert to_digest.returncode == 2


def test_unreachable_registry_exits_1(tmp_path: Path) -> None:
    import socket

    build_layout(tmp_path / "out")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = assay("push", f"oci:{tmp_path / 'out'}:python", f"127.0.0.1:{port}/a/b:1")
    assert r.returncode == 1 and "cannot reach registry" in r.stderr
