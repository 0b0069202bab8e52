"""``base:`` pieces that need no registry: the spec key, the lock field, the config overlay."""

from __future__ import annotations

import pytest

from assay.build.base import base_config, reused_layer, select_platform, with_parents
from assay.build.lock import Lock
from assay.build.spec import BaseImage, ImageSpec
from assay.errors import UsageError
from assay.oci import mediatypes as mt
from assay.oci.entry import Entry, EntryType
from assay.oci.model import Descriptor, Platform
from assay.oci.source import ImageManifest

DIGEST = "sha256:" + "a" * 64


def test_base_shorthand_and_full_form() -> None:
    spec = ImageSpec.from_yaml(f"base: reg.example/team/py@{DIGEST}\n")
    assert spec.base == BaseImage(ref=f"reg.example/team/py@{DIGEST}")
    assert spec.contents.packages == []
    spec = ImageSpec.from_yaml(
        f"base: {{ref: 'reg.example/py:3@{DIGEST}', verify: {{key: k.pub}}}}\n"
    )
    assert spec.base is not None and spec.base.verify is not None


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("base: reg.example/py:3\n", "names a tag, not a digest"),
        ("base: docker-archive:x.tar\n", "a base is a registry reference with a digest"),
        ("base: {ref: 'oci:x', verify: {key: k}}\n", "verify needs a registry reference"),
        (
            f"base: r.example/p@{DIGEST}\ncontents: {{packages: [hello]}}\n",
            "does not install .debs",
        ),
        (
            f"base: r.example/p@{DIGEST}\naccounts: {{users: [{{username: a, uid: 1}}]}}\n",
            "accounts.users/groups",
        ),
        (f"base: r.example/p@{DIGEST}\naccounts: {{run-as: nonroot}}\n", "run-as names user"),
        ("archs: [amd64]\n", "contents: required key is missing"),
        ("contents: {packages: []}\n", "contents.packages: list at least one package"),
    ],
)
def test_bad_base_specs_are_one_line_usage_errors(text: str, why: str) -> None:
    with pytest.raises(UsageError, match=why) as info:
        ImageSpec.from_yaml(text)
    assert "\n" not in str(info.value)


def _lock(**extra: object) -> Lock:
    return Lock.model_validate(
        {
            "lockVersion": 1,
            "spec": "a.yaml",
            "specDigest": "b" * 64,
            "sources": [],
            "releases": [],
            "packages": {"amd64": []},
            **extra,
        }
    )


def test_the_lock_names_its_base_only_when_there_is_one() -> None:
    assert b'"base"' not in _lock().to_json()
    lock = _lock(base={"ref": "oci:x", "digest": DIGEST, "manifests": {"amd64": DIGEST}})
    assert b'"base"' in lock.to_json()
    assert Lock.model_validate_json(lock.to_json()) == lock
    with pytest.raises(ValueError, match="digest"):
        _lock(base={"ref": "oci:x", "digest": "sha256:xyz", "manifests": {}})


def test_config_overlay() -> None:
    base = {
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Env": ["PATH=/bin", "LANG=C"],
            "Entrypoint": ["/bin/old"],
            "Cmd": ["--old"],
            "User": "0",
            "Labels": {"a": "1"},
        },
        "rootfs": {"type": "layers", "diff_ids": [DIGEST]},
        "history": [{"created_by": "base"}],
    }
    new = "sha256:" + "c" * 64
    doc = base_config(
        base,
        user="65532:65532",
        env={"LANG": "C.UTF-8", "MODE": "x"},
        entrypoint=["/app/run"],
        cmd=None,
        working_dir="/app",
        labels={"b": "2"},
        created="2023-11-14T22:13:20Z",
        diff_ids=[new],
        history=[{"created_by": "app"}],
    )
    inner = doc["config"]
    assert inner["Env"] == ["PATH=/bin", "LANG=C.UTF-8", "MODE=x"]
    assert inner["Entrypoint"] == ["/app/run"] and "Cmd" not in inner
    assert inner["User"] == "65532:65532" and inner["WorkingDir"] == "/app"
    assert inner["Labels"] == {"a": "1", "b": "2"}
    assert doc["rootfs"]["diff_ids"] == [DIGEST, new]
    assert doc["history"] == [{"created_by": "base"}, {"created_by": "app"}]
    assert base["config"]["Cmd"] == ["--old"]  # the input is not changed


def test_platform_choice_and_layer_media_types() -> None:
    def image(arch: str, variant: str = "") -> ImageManifest:
        d = Descriptor(mt.OCI_MANIFEST, DIGEST, 1)
        return ImageManifest(Platform("linux", arch, variant), {}, {}, d, d)

    images = [image("amd64"), image("arm64", "v8")]
    assert select_platform(images, Platform("linux", "arm64", "v8"), "b") is images[1]
    with pytest.raises(UsageError, match=r"has no linux/s390x image \(it has: linux/amd64"):
        select_platform(images, Platform("linux", "s390x"), "b")
    docker = Descriptor(mt.DOCKER_LAYER_GZIP, DIGEST, 5)
    assert reused_layer(docker) == Descriptor(mt.OCI_LAYER_GZIP, DIGEST, 5)
    with pytest.raises(UsageError, match="foreign"):
        reused_layer(Descriptor(mt.DOCKER_LAYER_FOREIGN_GZIP, DIGEST, 5))


def test_with_parents_adds_missing_directories_sorted() -> None:
    got = with_parents([Entry("etc/app/conf", EntryType.FILE, 0o644, data=b"x")], 7)
    assert [(e.path, e.type, e.mode, e.mtime) for e in got] == [
        ("etc", EntryType.DIR, 0o755, 7),
        ("etc/app", EntryType.DIR, 0o755, 7),
        ("etc/app/conf", EntryType.FILE, 0o644, 0),
    ]
