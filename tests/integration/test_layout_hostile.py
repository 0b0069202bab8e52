"""Hostile OCI layouts: special files never hang a reader, symlinks never redirect a write,
and a push checks each blob before any byte of it goes to the (real) registry."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from assay.errors import InputError, VerificationError
from assay.oci import mediatypes as mt
from assay.oci.archive import OciArchive
from assay.oci.layout import OciLayout
from assay.oci.model import Descriptor
from assay.oci.push import push_image
from assay.oci.reference import parse_image_ref
from assay.oci.registry import RegistryClient
from fixtures.hang import fail_after
from fixtures.ociimage import put_tar_image
from fixtures.registry import RunningRegistry

ASSAY = shutil.which("assay") or "assay"


@pytest.fixture(autouse=True)
def _no_hang() -> Iterator[None]:
    """Opening a FIFO used to block forever: fail the test after 20 s instead."""
    with fail_after(20, "a read of the layout hung"):
        yield


def _layout(path: Path, layer: bytes = b"layer-bytes" * 100) -> tuple[OciLayout, Descriptor]:
    lay = OciLayout.create(path)
    blob = lay.put_blob(layer, mt.OCI_LAYER_TAR)
    lay.tag("t", put_tar_image(lay, [blob]))
    return lay, blob


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ASSAY, *args], capture_output=True, text=True, timeout=120, check=False, cwd=cwd
    )


def test_fifo_as_index_json_is_refused_without_hanging(tmp_path: Path) -> None:
    _layout(tmp_path / "img")
    (tmp_path / "img" / "index.json").unlink()
    os.mkfifo(tmp_path / "img" / "index.json")
    with pytest.raises(InputError, match=r"index\.json is a FIFO, not a regular file"):
        OciLayout.open(tmp_path / "img")
    proc = _run("inspect", f"oci:{tmp_path}/img:t", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "is a FIFO" in proc.stderr and "Traceback" not in proc.stderr


def test_fifo_or_symlink_as_a_blob_is_refused(tmp_path: Path) -> None:
    lay, blob = _layout(tmp_path / "img")
    path = lay.blob_path(blob.digest)
    path.unlink()
    os.mkfifo(path)
    with pytest.raises(InputError, match="is a FIFO"):
        lay.read_blob(blob.digest)
    with pytest.raises(InputError, match="is a FIFO"):
        lay.open_blob(blob.digest)
    path.unlink()
    os.symlink("/dev/zero", path)
    with pytest.raises(InputError, match="is a symbolic link"):
        lay.read_blob(blob.digest)


def test_fifo_as_an_oci_archive_is_refused(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "img.tar")
    with pytest.raises(InputError, match="is a FIFO"):
        OciArchive(tmp_path / "img.tar")
    proc = _run("inspect", f"oci-archive:{tmp_path}/img.tar", cwd=tmp_path)
    assert proc.returncode == 2 and "is a FIFO" in proc.stderr, proc.stderr


@pytest.mark.parametrize("link", ["blobs/sha256", "blobs"])
def test_writes_refuse_a_symlinked_blob_directory(tmp_path: Path, link: str) -> None:
    lay, _ = _layout(tmp_path / "img")
    outside = tmp_path / "outside"
    shutil.copytree(tmp_path / "img" / link, outside)
    before = sorted(p.name for p in outside.rglob("*"))
    shutil.rmtree(tmp_path / "img" / link)
    os.symlink(outside, tmp_path / "img" / link)
    with pytest.raises(InputError, match="not a directory; refusing to write through it"):
        lay.put_blob(b"new content", mt.OCI_LAYER_TAR)
    with pytest.raises(InputError, match="refusing to write through it"):
        lay.gc()
    assert sorted(p.name for p in outside.rglob("*")) == before


def test_index_json_symlink_is_not_written_through(tmp_path: Path) -> None:
    lay, blob = _layout(tmp_path / "img")
    outside = tmp_path / "outside.json"
    outside.write_bytes((tmp_path / "img" / "index.json").read_bytes())
    (tmp_path / "img" / "index.json").unlink()
    os.symlink(outside, tmp_path / "img" / "index.json")
    with pytest.raises(InputError):
        lay.tag("other", Descriptor(mt.OCI_LAYER_TAR, blob.digest, blob.size))
    assert b'"other"' not in outside.read_bytes()


def _client(registry: RunningRegistry, seen: list[tuple[str, str]]) -> RegistryClient:
    def hook(request: httpx.Request) -> None:
        seen.append((request.method, str(request.url)))

    http = httpx.Client(timeout=30, event_hooks={"request": [hook]})
    return RegistryClient(registry.host, http=http)  # type: ignore[arg-type]


def test_copy_into_a_layout_with_symlinked_blobs_writes_nothing_outside(
    registry: RunningRegistry, tmp_path: Path
) -> None:
    src, _ = _layout(tmp_path / "src")
    repo = f"hostile/copy-{uuid.uuid4().hex[:8]}"
    with _client(registry, []) as c:
        push_image(src, "t", parse_image_ref(f"{registry.host}/{repo}:t"), c)
    dest = tmp_path / "dest"
    _layout(dest, layer=b"other layer")
    outside = tmp_path / "outside"
    shutil.move(dest / "blobs" / "sha256", outside)
    os.symlink(outside, dest / "blobs" / "sha256")
    before = sorted(p.name for p in outside.iterdir())
    proc = _run(
        "copy", "--insecure-registry", f"{registry.host}/{repo}:t", f"oci:{dest}:t", cwd=tmp_path
    )
    assert proc.returncode == 2, proc.stderr
    assert "refusing to write through it" in proc.stderr and "Traceback" not in proc.stderr
    assert sorted(p.name for p in outside.iterdir()) == before


@pytest.mark.parametrize("attack", ["symlink", "wrong-content"])
def test_push_checks_each_blob_before_any_byte_is_sent(
    registry: RunningRegistry, tmp_path: Path, attack: str
) -> None:
    lay, blob = _layout(tmp_path / "img", layer=os.urandom(3 << 20))
    path = lay.blob_path(blob.digest)
    secret = tmp_path / "secret"
    if attack == "symlink":
        secret.write_bytes(path.read_bytes())  # same bytes: only the symlink is wrong
        path.unlink()
        os.symlink(secret, path)
        expected: type[Exception] = InputError
    else:
        path.write_bytes(os.urandom(3 << 20))
        expected = VerificationError
    seen: list[tuple[str, str]] = []
    repo = f"hostile/push-{uuid.uuid4().hex[:8]}"
    with _client(registry, seen) as c:
        c.monolithic_limit = 1 << 20  # the 3 MiB layer would go up in PATCH chunks
        with pytest.raises(expected):
            push_image(lay, "t", parse_image_ref(f"{registry.host}/{repo}:t"), c, jobs=1)
        assert not c.blob_exists(repo, blob.digest)
    started = [u for m, u in seen if m in ("POST", "PATCH") and blob.digest not in u]
    sent = [u for m, u in seen if m in ("PATCH", "PUT") and "/blobs/uploads/" in u]
    # Other blobs (the config) may go up; nothing of the bad layer, not even a session for it.
    assert len(started) <= 1 and not any(blob.digest in u for u in sent)
    assert all(m != "PATCH" for m, _ in seen)
    proc = _run(
        "push",
        "--insecure-registry",
        f"oci:{tmp_path}/img:t",
        f"{registry.host}/{repo}:t",
        cwd=tmp_path,
    )
    assert proc.returncode == (2 if attack == "symlink" else 1), proc.stderr
    assert "Traceback" not in proc.stderr
