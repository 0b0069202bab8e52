"""Peak memory of every command that reads outside input, on worst-case inputs of at most 10 MB.

Issue 10: no input of at most 10 MB may drive a command above 512 MiB (``LIMIT_KIB``). Each case
runs the installed ``assay`` console script in its own process (``fixtures.peak``: the command's
own peak RSS) and asserts one ``error:`` line (or success), the expected exit code, no traceback
and the bound. ``-s`` prints the figures.

Commands and the outside input each reads (R = registry documents: manifests, indexes, configs,
signatures, DSSE envelopes, bundles, tokens — each through ``assay._json`` with a size limit;
image = an OCI layout, oci-/docker-archive, ``dir:`` or registry image, its layers through the
one tar reader in ``oci/``):

=====================  =====================================================  ==================
command                outside input                                          measured in
=====================  =====================================================  ==================
lock / build / update  spec YAML (1 MiB), lock JSON (64 MiB), apt sources,    here (spec),
                       keyrings, Debian InRelease/Packages from the mirror     test_feed_memory
                                                                              (lock, spec)
diff                   two images (+ advisory DB)                             here (layer bombs)
run                    image (layers unpacked)                                here, test_archive_
                                                                              memory (zero files)
inspect                image (layout index.json, layers)                      here
push / copy            image / R                                              here (layout
                                                                              index, manifest)
keygen                 (nothing; password from env)                           —
sign                   --key PEM (64 KiB)                                     here (--key)
verify                 R; --key; --bundle (16 MiB); --policy YAML (1 MiB)     here, test_feed_
                                                                              memory (bundle)
attest                 --predicate JSON (16 MiB), --key; R                    here (+ registry)
verify-attestation     R (DSSE envelopes 16 MiB), --key                       here (registry)
verify-provenance      R, --key                                               here (registry)
rebuild                --provenance JSON (64 MiB), R, --source files          here
policy lint            policy YAML (1 MiB each)                               here
sbom                   image (dpkg status, status.d, apk, Python, npm         here, test_archive_
                       metadata)                                              memory
scan                   image or SPDX/CycloneDX JSON (256 MiB), --vex, DB      here, test_feed_
                                                                              memory (SPDX)
db import              tracker, OSV, NVD, KEV JSON, EPSS CSV (.gz too)        here (plain),
                                                                              test_feed_memory
                                                                              (gzip bombs)
db update              the same, downloaded                                   (same parsers)
db status / rescan     local DB / evidence store                              (not outside)
vex create / merge     merge: OpenVEX JSON                                    test_feed_memory
vex apply              scan result JSON (256 MiB), --vex                      here
admission serve        AdmissionReview bodies (3 MiB), policies, TLS files    here (server RSS)
admission audit        --from YAML/JSON (64 MiB), policies                    here
admission manifests    --ca-bundle PEM                                        here
admission certs        (nothing)                                              —
report                 R, --policy, --key, --db                               here (registry;
                                                                              --policy: lint's)
evidence bundle        R, --key, --sign-key, --policy                         (R, as report)
evidence verify        bundle tar (1 GiB), --key                              here
remediation status     evidence store                                         (not outside)
=====================  =====================================================  ==================

The JSON worst case is ``[[],[],…]`` (the most Python objects per byte), YAML's the same in
flow style (``_flow_lists``), images' the layer bombs of ``fixtures.layerbombs`` (PAX headers,
status files of zeros, millions of dpkg stanzas; each as layout, oci-archive: and docker-archive:)
and ``dir:`` trees holding a 10 MB dpkg status.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
from collections.abc import Callable, Iterator
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest

from fixtures.layerbombs import (
    as_docker_archive,
    as_oci_archive,
    files_layout,
    pax_bomb,
    stanza_bomb,
    status_bomb,
)
from fixtures.minidocs import EMPTY_SCAN_RESULT, PASS_POLICY
from fixtures.peak import LIMIT_KIB, SRC, run_measured
from fixtures.vulnfeeds import db_import

TEN_MB = 10 << 20
RESULT = EMPTY_SCAN_RESULT.encode()
REG = "127.0.0.1:1/x/y:1"  # nothing listens: a command that gets past its files fails here


def _nested_lists(n: int) -> bytes:
    """A JSON array of about ``n`` bytes of empty arrays: the shape that costs most memory."""
    return b"[" + b"[]," * ((n - 1) // 3 - 1) + b"[]]"


def _flow_lists(n: int) -> bytes:
    """The same as a YAML flow sequence (one node per three bytes)."""
    return b"[" + b"[]," * (n // 3 - 2) + b"[]]\n"


def _w(tmp: Path, name: str, data: bytes) -> str:
    assert len(data) <= TEN_MB, (name, len(data))
    (tmp / name).write_bytes(data)
    return name


def _measure(
    name: str, args: list[str], cwd: Path, code_expected: int, match: str = ""
) -> tuple[int, str]:
    code, err, peak = run_measured(["assay", *args], cwd=cwd, env={"ASSAY_PASSWORD": ""})
    errors = [line for line in err.splitlines() if "error:" in line]
    print(f"{name}: exit {code}, peak RSS {peak // 1024} MiB | {' '.join(errors)[:160]}")
    assert "Traceback" not in err, err[-2000:]
    assert code == code_expected, err[-2000:]
    assert len(errors) == (0 if code == 0 else 1), err[-2000:]
    assert match.lower() in err.lower(), err[-2000:]
    assert peak < LIMIT_KIB, f"{name}: peak RSS {peak // 1024} MiB"
    return peak, err


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with a cosign key pair (empty password), a valid policy and scan result."""
    tmp = tmp_path_factory.mktemp("memory")
    env = {**os.environ, "PYTHONPATH": SRC, "ASSAY_PASSWORD": ""}
    subprocess.run(["assay", "keygen"], cwd=tmp, env=env, check=True, capture_output=True)
    (tmp / "p.yaml").write_text(PASS_POLICY)
    (tmp / "r.json").write_bytes(RESULT)
    (tmp / "empty").mkdir()
    return tmp


# -- images: the layer bombs ------------------------------------------------------------------


@pytest.fixture(scope="module")
def bombs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Each bomb as ``oci:`` layout (``pax``), ``oci-archive:`` (``pax.oa``) and
    ``docker-archive:`` (``pax.da``) image."""
    tmp = tmp_path_factory.mktemp("bombs")
    images = {}
    for name, build in (("pax", pax_bomb), ("status", status_bomb), ("stanzas", stanza_bomb)):
        layout = build(tmp / name)
        images[name] = f"oci:{layout}:latest"
        images[f"{name}.oa"] = f"oci-archive:{as_oci_archive(layout, tmp / f'{name}.oa.tar')}"
        images[f"{name}.da"] = f"docker-archive:{as_docker_archive(layout, tmp / f'{name}.da.tar')}"
    return images


def _image_args(command: str, image: str) -> Callable[[dict[str, str]], list[str]]:
    db = ["--db", "v.db"] if command == "scan" else []
    return lambda i: [command, i[image], *db]


IMAGE_CASES = [
    ("scan", "pax", lambda i: ["scan", i["pax"], "--db", "v.db"], "header bomb"),
    ("scan", "status", lambda i: ["scan", i["status"], "--db", "v.db"], "268435456 bytes"),
    ("inspect", "pax", lambda i: ["inspect", i["pax"]], "header bomb"),
    ("inspect", "status", lambda i: ["inspect", i["status"]], "268435456 bytes"),
    ("diff", "status+pax", lambda i: ["diff", i["status"], i["pax"]], ""),
    ("diff", "pax+status", lambda i: ["diff", i["pax"], i["status"]], ""),
    ("sbom", "stanzas", lambda i: ["sbom", i["stanzas"]], "40000 packages"),
    ("scan", "stanzas", lambda i: ["scan", i["stanzas"], "--db", "v.db"], "40000 packages"),
    ("diff", "stanzas", lambda i: ["diff", i["stanzas"], i["stanzas"]], "40000 packages"),
    ("inspect", "stanzas", lambda i: ["inspect", i["stanzas"]], "40000 packages"),
    *[
        (command, f"{bomb}.{kind}", _image_args(command, f"{bomb}.{kind}"), match)
        for kind in ("oa", "da")
        for bomb, match in (
            ("pax", "header bomb"),
            ("status", "268435456 bytes"),
            ("stanzas", "40000 packages"),
        )
        for command in ("sbom", "scan", "inspect")
    ],
]


@pytest.mark.slow
@pytest.mark.parametrize("case", IMAGE_CASES, ids=[f"{c[0]}-{c[1]}" for c in IMAGE_CASES])
def test_layer_bomb_is_refused_in_bounded_memory(
    case: tuple[str, str, Callable[[dict[str, str]], list[str]], str],
    bombs: dict[str, str],
    world: Path,
) -> None:
    command, bomb, args, match = case
    _measure(f"{command} {bomb}", args(bombs), world, 2, match)


RUN_CASES = [
    ("pax", 2, "header bomb"),  # refused while unpacking
    # unpacked (2.4 GB / 240 MB of files, under run's 4 GiB limit) and handed to runc, which
    # finds no /bin/true in a rootfs of status files: runc's exit code 1 passes through
    ("status", 1, "stat /bin/true: no such file"),
    ("stanzas", 1, "stat /bin/true: no such file"),
]


@pytest.mark.slow
@pytest.mark.skipif(
    shutil.which("runc") is None or os.geteuid() != 0, reason="assay run needs runc and root"
)
@pytest.mark.parametrize("case", RUN_CASES, ids=[c[0] for c in RUN_CASES])
def test_run_of_a_layer_bomb_stays_in_bounded_memory(
    case: tuple[str, int, str], bombs: dict[str, str], world: Path
) -> None:
    """``assay run`` unpacks the layer itself (test_archive_memory has the zero-file bomb)."""
    bomb, code_expected, match = case
    args = ["assay", "run", bombs[bomb], "--", "/bin/true"]
    code, err, peak = run_measured(args, cwd=world)
    print(f"run {bomb}: exit {code}, peak RSS {peak // 1024} MiB | {err.strip()[-160:]}")
    assert "Traceback" not in err, err[-2000:]
    assert code == code_expected, err[-2000:]
    assert match in err, err[-2000:]
    if code == 2:
        assert len([line for line in err.splitlines() if "error:" in line]) == 1, err[-2000:]
    assert peak < LIMIT_KIB, f"run {bomb}: peak RSS {peak // 1024} MiB"


# -- dir: images whose package database is the bomb --------------------------------------------


def _status_dir(root: Path, body: bytes) -> str:
    (root / "etc").mkdir(parents=True)
    (root / "etc/os-release").write_text('ID=debian\nVERSION_ID="12"\n')
    (root / "var/lib/dpkg").mkdir(parents=True)
    assert len(body) <= TEN_MB
    (root / "var/lib/dpkg/status").write_bytes(body)
    return f"dir:{root}"


def _stanza(i: int, extra: bytes = b"") -> bytes:
    return b"Package: p%d\nStatus: install ok installed\nVersion: 1\n%s\n" % (i, extra)


def _many_packages() -> bytes:
    """180,000 installed packages in 10 MB (real images list a few thousand)."""
    return b"".join(_stanza(i) for i in range(180_000))


def _all_depend_on_all() -> bytes:
    """1,150 packages each depending on all the others: 1.3 million SPDX relationships."""
    deps = b"Depends: " + ", ".join(f"p{i}" for i in range(1150)).encode() + b"\n"
    return b"".join(_stanza(i, deps) for i in range(1150))


def _largest_accepted() -> bytes:
    """40,000 packages (the limit) with two dependencies and a description each: a pass."""
    n = 40_000
    return b"".join(
        _stanza(i, b"Depends: p%d, p%d\nDescription: %s\n" % ((i + 1) % n, (i + 2) % n, b"x" * 99))
        for i in range(n)
    )


STATUS_CASES = [
    ("many-packages", _many_packages, ["-o", "spdx-json"], 2, "more than 40000 packages"),
    ("all-depend-on-all", _all_depend_on_all, ["-o", "spdx-json"], 2, "100000 dependencies"),
    ("largest-accepted-spdx", _largest_accepted, ["-o", "spdx-json"], 0, ""),
    ("largest-accepted-cdx", _largest_accepted, ["-o", "cyclonedx-json"], 0, ""),
]


@pytest.mark.slow
@pytest.mark.parametrize("case", STATUS_CASES, ids=[c[0] for c in STATUS_CASES])
def test_sbom_of_a_ten_mb_dpkg_status_stays_in_bounded_memory(
    case: tuple[str, Callable[[], bytes], list[str], int, str], tmp_path: Path
) -> None:
    name, body, output, code, match = case
    image = _status_dir(tmp_path / "root", body())
    _measure(f"sbom {name}", ["sbom", image, *output], tmp_path, code, match)


def test_scan_of_a_ten_mb_dpkg_status_stays_in_bounded_memory(tmp_path: Path) -> None:
    image = _status_dir(tmp_path / "root", _many_packages())
    _measure("scan many-packages", ["scan", image, "--db", "v.db"], tmp_path, 2, "40000 packages")


# -- non-dpkg catalogers: npm and Python metadata --------------------------------------------

# just under the image path cap (oci.layer.MAX_IMAGE_ENTRIES: files_layout writes no directory
# members), so the most a layer can make the catalogers see; about 3.7 MB of gzip per layer
_N_PACKAGES = 299_000


def _npm_manifests() -> Iterator[tuple[str, bytes]]:
    n = _N_PACKAGES
    for i in range(n):
        doc = b'{"name": "p%d", "version": "1.0.0", "dependencies": {"p%d": "1"}}' % (
            i,
            (i + 1) % n,
        )
        yield f"usr/lib/node_modules/p{i}/package.json", doc


def _dist_infos() -> Iterator[tuple[str, bytes]]:
    n = _N_PACKAGES
    for i in range(n):
        meta = b"Metadata-Version: 2.1\nName: p%d\nVersion: 1\nRequires-Dist: p%d\n" % (
            i,
            (i + 1) % n,
        )
        yield f"usr/lib/python3/dist-packages/p{i}-1.dist-info/METADATA", meta


def _package_lock() -> Iterator[tuple[str, bytes]]:
    """One 10 MB package-lock.json of 100,000 packages: no cataloger reads lock files."""
    entries = b",".join(
        b'"node_modules/p%d": {"version": "1.0.0", "resolved": "x", "integrity": "y"}' % i
        for i in range(100_000)
    )
    doc = b'{"lockfileVersion": 3, "packages": {' + entries + b"}}"
    assert len(doc) <= TEN_MB
    yield "app/package-lock.json", doc


def _npm_manifest_4mib() -> Iterator[tuple[str, bytes]]:
    """The largest package.json npm's cataloger parses, as nested lists (skipped: no dict)."""
    yield "usr/lib/node_modules/a/package.json", _nested_lists((4 << 20) - 1)


CATALOGER_CASES = [
    ("npm-manifests", _npm_manifests, 2, "40000 packages"),
    ("python-dist-infos", _dist_infos, 2, "40000 packages"),
    ("npm-package-lock-10mb", _package_lock, 0, ""),
    ("npm-manifest-4mib", _npm_manifest_4mib, 0, ""),
]


@pytest.mark.slow
@pytest.mark.parametrize("case", CATALOGER_CASES, ids=[c[0] for c in CATALOGER_CASES])
def test_non_dpkg_catalogers_stay_in_bounded_memory(
    case: tuple[str, Callable[[], Iterator[tuple[str, bytes]]], int, str], world: Path
) -> None:
    """npm and Python catalogers stop at the package limit (they counted only after the whole
    view: 387 MiB for 200,000 package.json files, then 222 MiB)."""
    name, files, code, match = case
    layout = files_layout(world / name, files())
    blob = max((layout / "blobs/sha256").iterdir(), key=lambda f: f.stat().st_size)
    assert blob.stat().st_size <= TEN_MB
    _measure(f"sbom {name}", ["sbom", f"oci:{layout}:latest"], world, code, match)


# -- many paths: every member costs memory while layers merge, wanted or not ---------------------

_N_PATHS = 780_000  # empty files: one 512-byte header each, about 8 MB of gzip


def _empty_files() -> Iterator[tuple[str, bytes]]:
    for i in range(_N_PATHS):
        yield f"f/{i:06d}", b""


@pytest.fixture(scope="module")
def many_paths(world: Path) -> Path:
    layout = files_layout(world / "many-paths", _empty_files())
    blob = max((layout / "blobs/sha256").iterdir(), key=lambda f: f.stat().st_size)
    assert blob.stat().st_size <= TEN_MB
    return layout


@pytest.mark.slow
@pytest.mark.parametrize("command", ["sbom", "inspect", "scan"])
def test_image_of_too_many_paths_is_refused_in_bounded_memory(
    command: str, many_paths: Path, world: Path
) -> None:
    """780,000 empty files in one layer drove sbom to 810 MiB and inspect to 493 MiB before the
    merged view was capped (oci.layer.MAX_IMAGE_ENTRIES, 300,000 paths)."""
    args = [command, f"oci:{many_paths}:latest"]
    if command == "scan":
        args += ["--db", "empty/v.db"]
    _measure(f"{command} many-paths", args, world, 2, "more than 300000 paths")


# -- documents ----------------------------------------------------------------------------------

DocCase = tuple[str, Callable[[Path], list[str]], int, str]
NVD_HEAD = b'{"format": "NVD_CVE", "vulnerabilities": '


def _bundle_envelope(t: Path) -> list[str]:
    """An evidence bundle whose manifest.dsse.json is 10 MB of nested lists."""
    out = BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in (("manifest.json", b"{}"), ("manifest.dsse.json", None)):
            data = data if data is not None else _nested_lists(TEN_MB - 8192)
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, BytesIO(data))
    return ["evidence", "verify", _w(t, "b.tar", out.getvalue()), "--key", "cosign.pub"]


def _bundle_signed_manifest(t: Path) -> list[str]:
    """A bundle whose manifest (4 MB of nested lists) is validly signed by the given key: the
    signature verifies, so the manifest itself is parsed."""
    from assay.attest.dsse import Envelope, pae
    from assay.attest.keys import load_private_key

    key = load_private_key((t / "cosign.key").read_bytes(), b"")
    manifest = _nested_lists(4 << 20)
    ptype = "application/vnd.assay.evidence-manifest.v1+json"
    env = Envelope(ptype, manifest, (("", key.sign(pae(ptype, manifest))),)).to_json()
    out = BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in (("manifest.json", manifest), ("manifest.dsse.json", env)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, BytesIO(data))
    return ["evidence", "verify", _w(t, "b2.tar", out.getvalue()), "--key", "cosign.pub"]


def _layout_index(t: Path) -> list[str]:
    (t / "lay").mkdir(exist_ok=True)
    (t / "lay/oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    _w(
        t,
        "lay/index.json",
        b'{"schemaVersion": 2, "manifests": ' + _nested_lists(TEN_MB - 99) + b"}",
    )
    return ["inspect", "oci:lay"]


def _layout_manifest(t: Path, size: int = TEN_MB) -> str:
    """A layout whose index is valid and whose manifest blob is ``size`` bytes of nested lists
    (10 MB: refused by size; 4 MiB, the manifest limit: parsed, then refused as no manifest)."""
    import hashlib

    blob = b'{"schemaVersion": 2, "layers": ' + _nested_lists(size - 99) + b"}"
    digest = hashlib.sha256(blob).hexdigest()
    (t / "lm/blobs/sha256").mkdir(parents=True, exist_ok=True)
    _w(t, f"lm/blobs/sha256/{digest}", blob)
    (t / "lm/oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    desc = {
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": f"sha256:{digest}",
        "size": len(blob),
        "annotations": {"org.opencontainers.image.ref.name": "latest"},
    }
    (t / "lm/index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [desc]}))
    return "oci:lm:latest"


DOC_CASES: list[DocCase] = [
    ("push-layout-index", lambda t: ["push", _layout_index(t)[1], REG], 2, "index"),
    ("copy-layout-index", lambda t: ["copy", _layout_index(t)[1], REG], 2, "index"),
    ("push-layout-manifest", lambda t: ["push", _layout_manifest(t), REG], 2, ""),
    ("copy-layout-manifest", lambda t: ["copy", _layout_manifest(t), REG], 2, ""),
    ("inspect-layout-manifest", lambda t: ["inspect", _layout_manifest(t)], 2, ""),
    ("push-layout-manifest-4mib", lambda t: ["push", _layout_manifest(t, 4 << 20), REG], 2, ""),
    ("copy-layout-manifest-4mib", lambda t: ["copy", _layout_manifest(t, 4 << 20), REG], 2, ""),
    (
        "vex-apply-result",
        lambda t: ["vex", "apply", _w(t, "x.json", _nested_lists(TEN_MB)), "--vex", "r.json"],
        2,
        "scan result",
    ),
    (
        "vex-apply-vex",
        lambda t: ["vex", "apply", "r.json", "--vex", _w(t, "v.json", _nested_lists(TEN_MB))],
        2,
        "",
    ),
    (
        "scan-vex",
        lambda t: ["scan", "dir:empty", "--vex", _w(t, "v.json", _nested_lists(TEN_MB))],
        2,
        "VEX file",
    ),
    (
        "scan-cyclonedx",
        lambda t: [
            "scan",
            _w(
                t,
                "s.cdx.json",
                b'{"bomFormat": "CycloneDX", "specVersion": "1.6", "components": '
                + _nested_lists(TEN_MB - 100)
                + b"}",
            ),
            "--db",
            "v.db",
        ],
        2,
        "",
    ),
    (
        "rebuild-provenance",
        lambda t: ["rebuild", "--provenance", _w(t, "p.json", _nested_lists(TEN_MB))],
        2,
        "provenance",
    ),
    (
        "attest-predicate",  # read, then the (absent) registry: exit 1
        lambda t: [
            "attest",
            REG,
            "--key",
            "cosign.key",
            "--predicate",
            _w(t, "pred.json", _nested_lists(TEN_MB)),
        ],
        1,
        "cannot reach registry",
    ),
    (
        "policy-lint-10mb",
        lambda t: ["policy", "lint", _w(t, "big.yaml", _flow_lists(TEN_MB))],
        2,
        "",
    ),
    (
        "policy-lint-1mib",  # the largest policy file accepted, as dense as YAML gets
        lambda t: ["policy", "lint", _w(t, "p1.yaml", _flow_lists(1 << 20))],
        2,
        "nodes",
    ),
    (
        "verify-policy-1mib",
        lambda t: ["verify", REG, "--policy", _w(t, "p1.yaml", _flow_lists(1 << 20))],
        2,
        "nodes",
    ),
    ("lock-spec-10mb", lambda t: ["lock", _w(t, "s.yaml", _flow_lists(TEN_MB))], 2, "spec"),
    (
        "update-spec-10mb",
        lambda t: ["update", _w(t, "s.yaml", _flow_lists(TEN_MB)), "--dry-run"],
        2,
        "spec",
    ),
    (
        "verify-key-10mb",
        lambda t: ["verify", REG, "--key", _w(t, "k.pub", _nested_lists(TEN_MB))],
        2,
        "public key",
    ),
    (
        "manifests-ca-bundle-10mb",
        lambda t: [
            "admission",
            "manifests",
            "--url",
            "https://x.invalid/",
            "--ca-bundle",
            _w(t, "ca.pem", _nested_lists(TEN_MB)),
        ],
        2,
        "ca-bundle",
    ),
    ("inspect-layout-index", _layout_index, 2, "index"),
    ("evidence-verify-envelope", _bundle_envelope, 1, "DSSE envelope"),
    ("evidence-verify-signed-manifest", _bundle_signed_manifest, 1, "manifest"),
    (
        "db-import-kev-plain",
        lambda t: db_import(
            "--kev", _w(t, "kev.json", b'{"vulnerabilities": ' + _nested_lists(TEN_MB - 99) + b"}")
        ),
        2,
        "KEV",
    ),
    (
        "db-import-nvd-plain",
        lambda t: db_import(
            "--nvd", _w(t, "nvd.json", NVD_HEAD + _nested_lists(TEN_MB - 99) + b"}")
        ),
        2,
        "NVD",
    ),
    (
        "db-import-tracker-plain",
        lambda t: db_import(
            "--debian-tracker",
            _w(t, "t.json", b'{"linux": {"CVE-1": ' + _nested_lists(TEN_MB - 99) + b"}}"),
        ),
        2,
        "tracker",
    ),
    (
        "db-import-osv-plain",
        lambda t: db_import("--osv", _w(t, "o.json", _nested_lists(TEN_MB))),
        2,
        "OSV",
    ),
    (
        "db-import-epss-rows",  # 750,000 valid rows: imported
        lambda t: db_import(
            "--epss",
            _w(t, "e.csv", b"cve,epss,percentile\n" + b"CVE-1,0.1,0.2\n" * (TEN_MB // 14 - 2)),
        ),
        0,
        "",
    ),
]


@pytest.mark.parametrize("case", DOC_CASES, ids=[c[0] for c in DOC_CASES])
def test_ten_mb_document_stays_in_bounded_memory(
    case: DocCase, world: Path, tmp_path: Path
) -> None:
    name, build, code, match = case
    for f in ("cosign.key", "cosign.pub", "r.json", "p.yaml"):
        (tmp_path / f).write_bytes((world / f).read_bytes())
    (tmp_path / "empty").mkdir()
    _measure(name, build(tmp_path), tmp_path, code, match)


@pytest.mark.slow
@pytest.mark.parametrize("shape", ["flow", "block"])
def test_admission_audit_of_a_ten_mb_yaml_stays_in_bounded_memory(
    shape: str, world: Path, tmp_path: Path
) -> None:
    """A dense 10 MB --from file is refused after 400,000 YAML nodes (it peaked at 1.3 GB and
    took minutes while the node count was checked only after composing the whole stream)."""
    body = _flow_lists(TEN_MB) if shape == "flow" else b"- []\n" * (TEN_MB // 5)
    (tmp_path / "p.yaml").write_text(PASS_POLICY)
    args = ["admission", "audit", "-p", "p.yaml", "--from", _w(tmp_path, "a.yaml", body)]
    _measure(f"audit --from {shape}", args, tmp_path, 2, "400000 nodes")


# -- the webhook server --------------------------------------------------------------------------


def _vm_hwm_kib(pid: int) -> int:
    """Peak resident set of a live process (and its children, for a multi-process server)."""
    total = 0
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    for p in pids:
        for line in Path(f"/proc/{p}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                total += int(line.split()[1])
    return total


@pytest.mark.slow
def test_admission_server_refuses_ten_mb_reviews_in_bounded_memory(tmp_path: Path) -> None:
    """``admission serve`` reads at most 3 MiB of a body: a 10 MB review is refused while it
    streams in, a 3 MiB review of nested lists is parsed and refused; the server's own peak
    stays under the bound and it still answers afterwards."""
    from test_admission_serve import serve

    with serve(tmp_path, PASS_POLICY) as server:
        big = b'{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": '
        bodies = {
            "10 MB": big + _nested_lists(TEN_MB - 200) + b"}",
            "3 MiB": big + _nested_lists((3 << 20) - 200) + b"}",
        }
        for name, body in bodies.items():
            r = server.client.post(
                "/validate", content=body, headers={"content-type": "application/json"}
            )
            peak = _vm_hwm_kib(server.proc.pid)
            print(
                f"admission serve, {name} body: HTTP {r.status_code}, peak RSS {peak // 1024} MiB"
            )
            assert r.status_code in (400, 413), r.text[:500]
            assert peak < LIMIT_KIB, f"peak RSS {peak // 1024} MiB"
        assert server.client.get("/healthz").status_code == 200
    log = (tmp_path / "serve.log").read_text()
    assert "Traceback" not in log, log[-2000:]


def test_worst_case_builders_make_what_they_say() -> None:
    doc = _nested_lists(3000)
    assert 2990 < len(doc) <= 3000 and json.loads(doc) == [[]] * 999
    assert len(_flow_lists(TEN_MB)) <= TEN_MB


# -- registry documents: a 10 MB attestation pushed next to an image -----------------------------


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["custom", "slsaprovenance1"])
def test_ten_mb_attestation_in_a_registry_stays_in_bounded_memory(
    kind: str, registry: Any, world: Path, tmp_path: Path
) -> None:
    """``attest`` of a 10 MB predicate (nested lists inside the object the type wants), then
    ``verify-attestation`` / ``verify-provenance`` / ``report`` of the image, which download
    and parse the 13 MB DSSE envelope and the Sigstore bundle referrer holding it."""
    from test_attest_registry import IMAGE_DIGEST, _layout_blob, push_manifest_tree

    from assay.oci.registry import RegistryClient

    repo = "memory/" + kind
    with RegistryClient(registry.host) as client:
        push_manifest_tree(client, repo, _layout_blob(IMAGE_DIGEST), "v1")
    image = f"{registry.host}/{repo}:v1"
    for f in ("cosign.key", "cosign.pub"):
        (tmp_path / f).write_bytes((world / f).read_bytes())
    fill = _nested_lists(TEN_MB - 200)
    if kind == "custom":
        predicate = b'{"data": ' + fill + b"}"
    else:
        predicate = (
            b'{"buildDefinition": {"buildType": "t", "externalParameters": {"x": '
            + fill
            + b'}}, "runDetails": {"builder": {"id": "b"}}}'
        )
    _w(tmp_path, "pred.json", predicate)
    attest = ["attest", image, "--key", "cosign.key", "--type", kind, "--predicate", "pred.json"]
    _measure(f"attest {kind}", attest, tmp_path, 0)
    verify = ["verify-attestation", image, "--key", "cosign.pub", "--type", kind]
    _measure(f"verify-attestation {kind}", verify, tmp_path, 0)
    if kind == "slsaprovenance1":
        prov = ["verify-provenance", image, "--key", "cosign.pub", "--builder-id", "other"]
        _measure("verify-provenance", prov, tmp_path, 1, "provenance")
    report = ["report", image, "--key", "cosign.pub", "-o", "json", "--file", "r.json"]
    _measure(f"report {kind}", report, tmp_path, 0)
