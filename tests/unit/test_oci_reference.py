"""Image reference parsing (skopeo transport syntax, no implicit registry)."""

from __future__ import annotations

import pytest

from assay.errors import UsageError
from assay.oci.reference import ImageRef, parse_image_ref

HEX = "a" * 64

OK = [
    ("oci:./out", ImageRef("oci", path="./out")),
    ("oci:./out:python", ImageRef("oci", path="./out", tag="python")),
    ("oci:/abs/dir:v1.2-rc", ImageRef("oci", path="/abs/dir", tag="v1.2-rc")),
    ("oci:out:team/app:1.0", ImageRef("oci", path="out", tag="team/app:1.0")),
    ("oci-archive:img.tar", ImageRef("oci-archive", path="img.tar")),
    ("oci-archive:img.tar:latest", ImageRef("oci-archive", path="img.tar", tag="latest")),
    ("docker-archive:save.tar", ImageRef("docker-archive", path="save.tar")),
    ("docker-archive:save.tar:app:1", ImageRef("docker-archive", path="save.tar", tag="app:1")),
    ("docker-archive:save.tar:@1", ImageRef("docker-archive", path="save.tar", tag="@1")),
    ("dir:./rootfs", ImageRef("dir", path="./rootfs")),
    (
        "docker://localhost:5000/base/python:3.11",
        ImageRef("docker", registry="localhost:5000", repository="base/python", tag="3.11"),
    ),
    (
        "localhost:5000/base/python:3.11",
        ImageRef("docker", registry="localhost:5000", repository="base/python", tag="3.11"),
    ),
    (
        f"localhost:5000/base/python@sha256:{HEX}",
        ImageRef(
            "docker", registry="localhost:5000", repository="base/python", digest=f"sha256:{HEX}"
        ),
    ),
    (
        f"127.0.0.1:5000/a/b:t@sha256:{HEX}",
        ImageRef(
            "docker", registry="127.0.0.1:5000", repository="a/b", tag="t", digest=f"sha256:{HEX}"
        ),
    ),
    ("registry.test/x", ImageRef("docker", registry="registry.test", repository="x")),
    ("localhost/x_y__z-w.v", ImageRef("docker", registry="localhost", repository="x_y__z-w.v")),
    ("[::1]:5000/app:1", ImageRef("docker", registry="[::1]:5000", repository="app", tag="1")),
]


@pytest.mark.parametrize(("text", "expected"), OK, ids=[t for t, _ in OK])
def test_parse_ok(text: str, expected: ImageRef) -> None:
    assert parse_image_ref(text) == expected


BAD = [
    ("", "empty image reference"),
    ("python:3.11", "no registry host"),
    ("ubuntu", "no registry host"),
    ("localhost:5000", "no repository after the registry host"),
    ("registry.test", "no repository after the registry host"),
    ("ubuntu:22.04", "no registry host"),
    ("python:3", "no registry host"),
    ("library/ubuntu:22.04", "no registry host"),
    ("docker://python", "no registry host"),
    ("docker:localhost:5000/a", "written docker://"),
    ("oci:", "needs a path"),
    ("oci::tag", "needs a path"),
    ("oci:dir:bad tag", "whitespace"),
    ("oci:dir:-bad", "not a valid OCI layout tag"),
    ("localhost:5000/UPPER:1", "must be lowercase"),
    ("localhost:5000/a:bad!tag", "tag 'bad!tag'"),
    ("localhost:5000/a@sha256:abc", "64 lowercase hex"),
    (f"localhost:5000/a@md5:{HEX}", "64 lowercase hex"),
    ("containers-storage:foo", "not supported"),
    ("dir:", "needs a path"),
]


@pytest.mark.parametrize(("text", "message"), BAD, ids=[t or "empty" for t, _ in BAD])
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_image_ref(text)


def test_no_registry_error_suggests_full_reference() -> None:
    with pytest.raises(UsageError) as e:
        parse_image_ref("python:3.11")
    assert "localhost:5000/" in str(e.value) and "oci:DIR" in str(e.value)


@pytest.mark.parametrize(
    "text", [t for t, _ in OK if not t.startswith("localhost") and "://" not in t]
)
def test_str_round_trips(text: str) -> None:
    ref = parse_image_ref(text)
    assert parse_image_ref(str(ref)) == ref


def test_registry_str_and_name() -> None:
    ref = parse_image_ref(f"localhost:5000/a/b:t@sha256:{HEX}")
    assert str(ref) == f"docker://localhost:5000/a/b:t@sha256:{HEX}"
    assert ref.name == "localhost:5000/a/b" and ref.is_registry
