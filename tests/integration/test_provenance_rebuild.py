"""Issue 6 acceptance: SLSA provenance, verify-provenance and rebuild-from-provenance.

Builds the python example (amd64 + arm64) from the real mirror, pushes it to a real
docker-registry with signed attestations, and rebuilds it elsewhere. Marked network/slow.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from assay.build.provenance import BUILD_TYPE, DEFAULT_BUILDER_ID, PREDICATE_TYPE
from fixtures.examples import Built, assay, build_example, mirror_or_skip

pytestmark = [pytest.mark.network, pytest.mark.slow]

PASSWORD = {"ASSAY_PASSWORD": "provenance-test"}


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("keys")
    assay("keygen", "--output-key-prefix", str(d / "good"), env=PASSWORD)
    assay("keygen", "--output-key-prefix", str(d / "other"), env=PASSWORD)
    return {"key": d / "good.key", "pub": d / "good.pub", "other": d / "other.pub"}


@pytest.fixture(scope="module")
def pushed(
    tmp_path_factory: pytest.TempPathFactory, registry: Any, keys: dict[str, Path]
) -> Iterator[tuple[Built, str]]:
    mirror_or_skip()
    root = tmp_path_factory.mktemp("prov")
    ref = f"{registry.host}/prov/python:1"
    built = build_example(
        "python",
        root / "src",
        root / "cache",
        extra=("--push", ref, "--sign-key", str(keys["key"])),
        env=PASSWORD,
    )
    yield built, ref


def _statement(built: Built, arch: str) -> dict[str, Any]:
    return json.loads(built.evidence(arch, "provenance").read_text())  # type: ignore[no-any-return]


RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


@pytest.mark.parametrize("arch", ["amd64", "arm64"])
def test_provenance_fields_and_dependencies_equal_the_lock(
    pushed: tuple[Built, str], arch: str
) -> None:
    built, _ = pushed
    st = _statement(built, arch)
    assert st["_type"] == "https://in-toto.io/Statement/v1"
    assert st["predicateType"] == PREDICATE_TYPE
    subjects = {s["name"]: s["digest"]["sha256"] for s in st["subject"]}
    assert subjects["index"] == built.index.split(":")[1]
    assert built.digest(arch).split(":")[1] in subjects.values()
    pred = st["predicate"]
    bd, rd = pred["buildDefinition"], pred["runDetails"]
    # SLSA v1 field rules: required fields present and of the right type.
    assert bd["buildType"] == BUILD_TYPE
    assert (
        isinstance(bd["externalParameters"], dict) and bd["externalParameters"]["spec"]["content"]
    )
    assert bd["externalParameters"]["spec"]["content"] == built.spec.read_text()
    assert isinstance(bd["internalParameters"]["sourceDateEpoch"], int)
    assert rd["builder"]["id"] == DEFAULT_BUILDER_ID
    meta = rd["metadata"]
    assert RFC3339.match(meta["startedOn"]) and RFC3339.match(meta["finishedOn"])
    assert meta["startedOn"] <= meta["finishedOn"]
    assert re.match(r"^[0-9a-f-]{36}$", meta["invocationId"])
    for dep in bd["resolvedDependencies"]:
        assert set(dep) >= {"uri", "digest"} and re.match(
            r"^[0-9a-f]{64}$", dep["digest"]["sha256"]
        )
    byproducts = {b["name"] for b in rd["byproducts"]}
    assert byproducts == {
        built.evidence(arch, "spdx").name,
        built.evidence(arch, "cyclonedx").name,
    }
    # resolvedDependencies is exactly the lock.
    lock = json.loads((built.spec.parent / "python.lock.json").read_text())
    debs = {
        (d["uri"], d["digest"]["sha256"])
        for d in bd["resolvedDependencies"]
        if d["annotations"]["kind"] == "deb"
    }
    assert debs == {(p["url"], p["sha256"]) for p in lock["packages"][arch]}
    releases = {
        (d["uri"], d["digest"]["sha256"])
        for d in bd["resolvedDependencies"]
        if d["annotations"]["kind"] == "release"
    }
    assert releases == {(r["url"], r["sha256"]) for r in lock["releases"]}
    for dep in bd["resolvedDependencies"]:
        if dep["annotations"]["kind"] == "deb":
            assert dep["name"].startswith(f"pkg:deb/debian/{dep['annotations']['name']}@")


def test_provenance_validates_against_slsa_schema(pushed: tuple[Built, str]) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(
        (
            Path(__file__).parents[1] / "assets" / "provenance" / "slsa-provenance-v1.schema.json"
        ).read_text()
    )
    built, _ = pushed
    for arch in ("amd64", "arm64"):
        jsonschema.validate(_statement(built, arch), schema)


def test_rebuild_from_attestation_in_fresh_cache_and_cwd(
    pushed: tuple[Built, str], keys: dict[str, Path], tmp_path: Path
) -> None:
    _, ref = pushed
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    proc = assay(
        "rebuild",
        ref,
        "--key",
        str(keys["pub"]),
        "--no-cache",
        "-o",
        "json",
        cwd=cwd,
        env={"ASSAY_CACHE_DIR": str(tmp_path / "fresh-cache")},
    )
    results = json.loads(proc.stdout)
    assert {r["arch"] for r in results} == {"amd64", "arm64"}  # arm64 rebuilt on this machine
    for r in results:
        assert r["identical"], r
        assert r["expected"] == r["actual"]


def _tampered(built: Built, tmp_path: Path, edit: Any) -> Path:
    st = _statement(built, "amd64")
    edit(st)
    path = tmp_path / "tampered.json"
    path.write_text(json.dumps(st))
    return path


def _rebuild_file(path: Path, image: str, tmp_path: Path) -> Any:
    return assay(
        "rebuild",
        image,
        "--provenance",
        str(path),
        check=False,
        env={"ASSAY_CACHE_DIR": str(tmp_path / "cache")},
    )


def test_rebuild_detects_changed_dependency_digest(
    pushed: tuple[Built, str], tmp_path: Path
) -> None:
    built, _ = pushed

    def edit(st: dict[str, Any]) -> None:
        dep = next(
            d
            for d in st["predicate"]["buildDefinition"]["resolvedDependencies"]
            if d["annotations"].get("name") == "libssl3"
        )
        dep["digest"]["sha256"] = "0" * 64

    proc = _rebuild_file(_tampered(built, tmp_path, edit), built.ref, tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "libssl3" in proc.stderr and "0" * 64 in proc.stderr


def test_rebuild_detects_changed_spec(pushed: tuple[Built, str], tmp_path: Path) -> None:
    built, _ = pushed

    def edit(st: dict[str, Any]) -> None:
        spec = st["predicate"]["buildDefinition"]["externalParameters"]["spec"]
        spec["content"] = spec["content"].replace("LANG: C.UTF-8", "LANG: de_DE.UTF-8")
        assert "de_DE" in spec["content"]

    proc = _rebuild_file(_tampered(built, tmp_path, edit), built.ref, tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "config.Env" in proc.stderr and "de_DE.UTF-8" in proc.stderr


def test_rebuild_detects_changed_source_date_epoch(
    pushed: tuple[Built, str], tmp_path: Path
) -> None:
    built, _ = pushed

    def edit(st: dict[str, Any]) -> None:
        st["predicate"]["buildDefinition"]["internalParameters"]["sourceDateEpoch"] -= 86400

    proc = _rebuild_file(_tampered(built, tmp_path, edit), built.ref, tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "config   created" in proc.stderr
    assert "mtime:" in proc.stderr, "the file diff should point at the changed timestamps"


def test_verify_provenance_accepts_and_rejects(
    pushed: tuple[Built, str], keys: dict[str, Path], registry: Any, tmp_path: Path
) -> None:
    built, ref = pushed
    pub = str(keys["pub"])
    verify = ("verify-provenance", ref, "--key", pub, "--builder-id", DEFAULT_BUILDER_ID)
    ok = assay(*verify, "-o", "json")
    checked = json.loads(ok.stdout)
    assert {c["arch"] for c in checked} == {"amd64", "arm64"}
    source = checked[0]["source"]

    bad = assay(
        "verify-provenance",
        ref,
        "--key",
        pub,
        "--builder-id",
        "https://ci.example/other",
        check=False,
    )
    assert bad.returncode == 1
    assert (
        "runDetails.builder.id: expected https://ci.example/other, got " + DEFAULT_BUILDER_ID
        in bad.stderr
    )

    if source:
        good_src = assay(
            *verify, "--source-uri", source["uri"], "--source-commit", source["commit"]
        )
        assert good_src.returncode == 0
    wrong_src = assay(*verify, "--source-uri", "git+https://git.example/not/this", check=False)
    assert wrong_src.returncode == 1
    assert (
        "externalParameters.source.uri: expected git+https://git.example/not/this"
        in wrong_src.stderr
    )

    other_key = assay(
        "verify-provenance",
        ref,
        "--key",
        str(keys["other"]),
        "--builder-id",
        DEFAULT_BUILDER_ID,
        check=False,
    )
    assert other_key.returncode == 1 and "no valid attestation" in other_key.stderr

    # Unsigned: the same image pushed without a key has no provenance attestation.
    unsigned = f"{registry.host}/prov/unsigned:1"
    assay("push", built.ref, unsigned)
    proc = assay(
        "verify-provenance", unsigned, "--key", pub, "--builder-id", DEFAULT_BUILDER_ID, check=False
    )
    assert proc.returncode == 1 and "no valid attestation" in proc.stderr


def test_check_provenance_rejects_other_digest_subject(pushed: tuple[Built, str]) -> None:
    from assay.build.rebuild import ProvenanceCheck, check_provenance
    from assay.errors import VerificationError

    built, _ = pushed
    st = _statement(built, "amd64")
    other = "sha256:" + "ab" * 32
    with pytest.raises(VerificationError, match=f"subject: expected {other}"):
        check_provenance(st, other, ProvenanceCheck(DEFAULT_BUILDER_ID))
    # and the real digest passes
    check_provenance(st, built.digest("amd64"), ProvenanceCheck(DEFAULT_BUILDER_ID))
    assert datetime.fromisoformat(
        st["predicate"]["runDetails"]["metadata"]["finishedOn"].replace("Z", "+00:00")
    )


def test_rebuild_says_when_the_mirror_lacks_a_version_and_uses_a_snapshot_mirror(
    pushed: tuple[Built, str], tmp_path: Path
) -> None:
    """A mirror that no longer serves the recorded .debs is named, with the way out; a
    snapshot mirror (here: a directory served on 127.0.0.1 holding the pool) rebuilds."""
    import shutil

    from fixtures.debrepo import serve

    built, _ = pushed
    st = _statement(built, "amd64")
    debs = [
        d
        for d in st["predicate"]["buildDefinition"]["resolvedDependencies"]
        if d["annotations"]["kind"] == "deb"
    ]
    empty = tmp_path / "empty"
    empty.mkdir()
    pool = tmp_path / "snapshot"
    cache = built.spec.parent.parent / "cache" / "debs" / "sha256"
    for d in debs:
        target = pool / d["annotations"]["filename"]
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(cache / f"{d['digest']['sha256']}.deb", target)
    with serve(empty) as gone_url:
        # The mirror moved on: nothing is served under the recorded repositories any more.
        lock = st["predicate"]["buildDefinition"]["internalParameters"]["lock"]
        moved = {src["uri"]: f"{gone_url}/m{i}" for i, src in enumerate(lock["sources"])}
        for src in lock["sources"]:
            src["uri"] = moved[src["uri"]]
        for d in debs:
            d["annotations"]["repository"] = moved[d["annotations"]["repository"]]
            d["uri"] = f"{d['annotations']['repository']}/{d['annotations']['filename']}"
        for d in st["predicate"]["buildDefinition"]["resolvedDependencies"]:
            if d["annotations"]["kind"] == "release":  # their InRelease files moved too
                old = d["uri"].split("/dists/")[0]
                d["uri"] = d["uri"].replace(old, moved[old], 1)
        path = tmp_path / "moved.json"
        path.write_text(json.dumps(st))
        env = {"ASSAY_CACHE_DIR": str(tmp_path / "fresh")}
        proc = assay("rebuild", "--provenance", str(path), "--no-cache", check=False, env=env)
        assert proc.returncode == 1
        assert "--snapshot-mirror" in proc.stderr and gone_url in proc.stderr
    with serve(pool) as snapshot_url:
        proc = assay(
            "rebuild",
            "--provenance",
            str(path),
            "--no-cache",
            "--snapshot-mirror",
            snapshot_url,
            "-o",
            "json",
            env=env,
        )
    [result] = json.loads(proc.stdout)
    assert result["identical"] and result["actual"] == built.digest("amd64")
