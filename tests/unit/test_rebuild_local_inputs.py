"""The files a spec reads beside it: which they are, how provenance records them, and how a
rebuild finds and checks them in a checkout (hostile provenance values included)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from assay.build.localinputs import input_digests, local_inputs
from assay.build.lock import Lock
from assay.build.provenance import (
    GitSource,
    ParsedProvenance,
    Subject,
    build_provenance,
    parse_provenance,
)
from assay.build.rebuild import check_local_inputs, source_spec_dir
from assay.build.spec import ImageSpec
from assay.errors import InputError, UsageError, VerificationError

SPEC = """contents:
  packages: [hello]
  keyring: [keys/extra.gpg, /usr/share/keyrings/host.gpg]
paths:
  - {path: /etc/a.conf, type: file, source: conf/a.conf}
  - {path: /etc/b.conf, type: file, content: "inline"}
  - {path: /etc/c.conf, type: file, source: conf/a.conf}
  - {path: /usr/bin/sh, type: symlink, source: /bin/busybox}
python:
  requirements: requirements.txt
  find-links: wheels
"""


def _project(root: Path) -> Path:
    (root / "conf").mkdir(parents=True)
    (root / "keys").mkdir()
    (root / "wheels").mkdir()
    (root / "conf" / "a.conf").write_bytes(b"a = 1\n")
    (root / "keys" / "extra.gpg").write_bytes(b"not really a keyring\n")
    (root / "requirements.txt").write_bytes(b"tiny-app==1.0 --hash=sha256:" + b"0" * 64 + b"\n")
    return root


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_local_inputs_lists_each_file_once_in_spec_order() -> None:
    spec = ImageSpec.from_yaml(SPEC)
    got = [(i.role, i.path) for i in local_inputs(spec)]
    assert got == [
        ("paths.source", "conf/a.conf"),  # once, although two paths copy it
        ("python.requirements", "requirements.txt"),
        ("python.find-links", "wheels"),
        ("contents.keyring", "keys/extra.gpg"),  # the absolute keyring is the host's
    ]
    assert local_inputs(ImageSpec.from_yaml("contents: {packages: [hello]}\n")) == []


def _statement(files: dict[str, tuple[str, str]], git: GitSource | None = None) -> dict[str, Any]:
    now = datetime(2024, 1, 1, tzinfo=UTC)
    return build_provenance(
        subjects=[Subject("linux/amd64", "sha256:" + "a" * 64)],
        spec_path="/somewhere/app.yaml",
        spec_content=SPEC,
        git=git,
        lock={"lockVersion": 1, "packages": {"amd64": []}, "releases": []},
        internal={"sourceDateEpoch": 1},
        builder_id="urn:test",
        started=now,
        finished=now,
        files=files,
    )


def test_digests_round_trip_through_the_provenance(tmp_path: Path) -> None:
    root = _project(tmp_path)
    digests = input_digests(ImageSpec.from_yaml(SPEC), root)
    assert digests == {
        "conf/a.conf": ("paths.source", _sha(root / "conf" / "a.conf")),
        "requirements.txt": ("python.requirements", _sha(root / "requirements.txt")),
        "keys/extra.gpg": ("contents.keyring", _sha(root / "keys" / "extra.gpg")),
    }
    statement = _statement(dict(digests))
    deps = statement["predicate"]["buildDefinition"]["resolvedDependencies"]
    assert [d["uri"] for d in deps] == [
        "file:conf/a.conf",
        "file:keys/extra.gpg",
        "file:requirements.txt",
    ]
    assert parse_provenance(statement).files == digests


@pytest.mark.parametrize(
    ("annotations", "sha", "message"),
    [
        ({"path": "/etc/passwd", "role": "paths.source"}, "b" * 64, "relative path"),
        ({"path": "a\0b", "role": "paths.source"}, "b" * 64, "relative path"),
        ({"path": "", "role": "paths.source"}, "b" * 64, "relative path"),
        ({"path": ["x"], "role": "paths.source"}, "b" * 64, "relative path"),
        ({"path": "a.conf", "role": "anything"}, "b" * 64, "role"),
        ({"path": "a.conf", "role": "paths.source"}, "xyz", "SHA-256"),
    ],
)
def test_hostile_file_dependencies_are_refused(
    annotations: dict[str, Any], sha: str, message: str
) -> None:
    statement = _statement({})
    deps = statement["predicate"]["buildDefinition"]["resolvedDependencies"]
    deps.append({"uri": "file:x", "digest": {"sha256": sha}, "annotations": {"kind": "file"}})
    deps[-1]["annotations"].update(annotations)
    with pytest.raises(InputError, match=message):
        parse_provenance(statement)


def test_a_file_recorded_twice_differently_is_refused() -> None:
    statement = _statement({"a.conf": ("paths.source", "b" * 64)})
    deps = statement["predicate"]["buildDefinition"]["resolvedDependencies"]
    deps.append({**deps[-1], "digest": {"sha256": "c" * 64}})
    with pytest.raises(InputError, match="second time"):
        parse_provenance(statement)


def _prov(source: dict[str, str] | None, files: dict[str, tuple[str, str]]) -> ParsedProvenance:
    parsed = parse_provenance(_statement(files))
    return ParsedProvenance(**{**parsed.__dict__, "source": source})


def test_spec_dir_in_the_checkout(tmp_path: Path) -> None:
    (tmp_path / "deploy").mkdir()
    assert source_spec_dir(tmp_path, _prov(None, {})) == tmp_path.resolve()
    git = {"uri": "git+file:///x", "commit": "1" * 40, "path": "deploy/app.yaml"}
    assert source_spec_dir(tmp_path, _prov(git, {})) == (tmp_path / "deploy").resolve()
    with pytest.raises(UsageError, match="no directory other"):
        source_spec_dir(tmp_path, _prov({**git, "path": "other/app.yaml"}, {}))
    for bad in ("../up/app.yaml", "/etc/app.yaml", "a\\b/app.yaml"):
        with pytest.raises(InputError, match=r"source\.path"):
            source_spec_dir(tmp_path, _prov({**git, "path": bad}, {}))
    (tmp_path / "out").symlink_to("/")
    with pytest.raises(VerificationError, match="outside it"):
        source_spec_dir(tmp_path, _prov({**git, "path": "out/app.yaml"}, {}))
    with pytest.raises(UsageError, match="not a directory"):
        source_spec_dir(tmp_path / "missing", _prov(None, {}))


def _lock(requirements_sha: str | None) -> Lock:
    doc: dict[str, Any] = {
        "lockVersion": 1,
        "spec": "app.yaml",
        "specDigest": "0" * 64,
        "sources": [],
        "releases": [],
        "packages": {},
    }
    if requirements_sha is not None:
        doc["python"] = {
            "version": "3.11",
            "requirements": "requirements.txt",
            "requirementsSha256": requirements_sha,
            "index": "https://pypi.org/pypi",
            "archs": {},
        }
    return Lock.model_validate(doc)


def test_check_local_inputs(tmp_path: Path) -> None:
    root = _project(tmp_path / "co")
    spec = ImageSpec.from_yaml(SPEC)
    digests = dict(input_digests(spec, root))
    req_sha = digests["requirements.txt"][1]
    notes: list[str] = []
    check_local_inputs(spec, root, root, _prov(None, digests), _lock(req_sha), notes)
    assert notes == []

    # the lock's requirements digest is checked even when the provenance has none for the file
    partial = {k: v for k, v in digests.items() if k != "requirements.txt"}
    with pytest.raises(VerificationError, match=r"requirements\.txt .*lock's requirementsSha256"):
        check_local_inputs(spec, root, root, _prov(None, partial), _lock("f" * 64), [])

    # an older provenance that records no file digests: noted, not silently trusted
    check_local_inputs(spec, root, root, _prov(None, {}), _lock(req_sha), notes)
    assert [n.split(":")[0] for n in notes] == [
        "paths[/etc/a.conf].source conf/a.conf",
        "contents.keyring keys/extra.gpg",
    ]

    (root / "keys" / "extra.gpg").write_bytes(b"another key\n")
    git = {"uri": "git+file:///x", "commit": "1" * 40, "path": "app.yaml"}
    with pytest.raises(VerificationError) as err:
        check_local_inputs(spec, root, root, _prov(git, digests), _lock(req_sha), [])
    assert "keys/extra.gpg in --source" in str(err.value)
    assert f"check out commit {'1' * 40}" in str(err.value)

    (root / "wheels").rmdir()
    (root / "keys" / "extra.gpg").write_bytes(b"not really a keyring\n")
    with pytest.raises(UsageError, match=r"python\.find-links wheels: --source .* has no wheels"):
        check_local_inputs(spec, root, root, _prov(None, digests), _lock(req_sha), [])


def test_absolute_paths_source_cannot_be_rebuilt_from_a_checkout(tmp_path: Path) -> None:
    root = _project(tmp_path)
    spec = ImageSpec.from_yaml(
        "contents: {packages: [hello]}\n"
        f"paths: [{{path: /etc/a.conf, type: file, source: {root}/conf/a.conf}}]\n"
    )
    assert input_digests(spec, root) == {}  # not recordable by a relative path
    with pytest.raises(UsageError, match="absolute path"):
        check_local_inputs(spec, root, root, _prov(None, {}), _lock(None), [])


def test_trees_and_base_inputs(tmp_path: Path) -> None:
    spec = ImageSpec.from_yaml(
        "base: oci:images/base:1\napp: ./src\n"
        "paths: [{path: /srv/www, type: directory, source: www}]\n"
    )
    got = [(i.role, i.path, i.recorded) for i in local_inputs(spec)]
    assert got == [
        ("paths.tree", "www", True),
        ("app.source", "./src", True),
        ("base.ref", "images/base", False),  # pinned by the lock's digest instead
    ]
    signed = ImageSpec.from_yaml(
        "base: {ref: 'r.example/b@sha256:" + "a" * 64 + "', verify: {key: keys/cosign.pub}}\n"
    )
    got_signed = [(i.role, i.path) for i in local_inputs(signed)]
    assert got_signed == [("base.verify.key", "keys/cosign.pub")]

    (tmp_path / "src" / "pkg").mkdir(parents=True)
    (tmp_path / "src" / "run").write_bytes(b"#!/bin/sh\n")
    (tmp_path / "www").mkdir()
    first = input_digests(spec, tmp_path)
    assert sorted(first) == ["./src", "www"]
    (tmp_path / "src" / "run").chmod(0o755)  # the image gets 0755 instead of 0644
    second = input_digests(spec, tmp_path)
    assert second["./src"] != first["./src"] and second["www"] == first["www"]
    (tmp_path / "src" / "pkg" / "empty").mkdir()  # an empty directory is copied, so it counts
    assert input_digests(spec, tmp_path)["./src"] != second["./src"]


def test_a_malformed_source_is_refused() -> None:
    statement = _statement({})
    statement["predicate"]["buildDefinition"]["externalParameters"]["source"] = ["x"]
    with pytest.raises(InputError, match=r"externalParameters\.source"):
        parse_provenance(statement)
    git = GitSource("git+file:///x", "1" * 40, "deploy/app.yaml")
    assert parse_provenance(_statement({}, git)).source == {
        "uri": "git+file:///x",
        "commit": "1" * 40,
        "path": "deploy/app.yaml",
    }
