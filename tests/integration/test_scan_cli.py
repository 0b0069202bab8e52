"""The ``assay db``, ``scan`` and ``vex`` commands end to end through the console entry point."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest

from fixtures.cli import Ran, run_inprocess
from fixtures.vulnfeeds import import_args

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "vuln"
DIGEST = "sha256:" + "ab" * 32
SSL_PURL = "pkg:deb/debian/libssl3@3.0.8-1?arch=amd64&upstream=openssl&distro=debian-12"


def assay(*args: str, env: dict[str, str]) -> Ran:
    """Run the real console entry point in-process (exit code, stdout, stderr)."""
    return run_inprocess(*args, env=env)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("cli")
    e = dict(os.environ, ASSAY_VULN_DB=str(d / "vuln.db"), ASSAY_CACHE_DIR=str(d / "cache"))
    e.pop("SOURCE_DATE_EPOCH", None)
    r = assay("db", "import", *import_args(), env=e)
    assert r.returncode == 0, r.stderr
    return e


def _cdx(path: Path) -> Path:
    path.write_text(
        json.dumps(
            {
                "bomFormat": "CycloneDX",
                "specVersion": "1.6",
                "metadata": {
                    "component": {
                        "type": "container",
                        "name": "python",
                        "purl": f"pkg:oci/python@{DIGEST.replace(':', '%3A')}",
                    }
                },
                "components": [
                    {"type": "operating-system", "name": "debian", "version": "12"},
                    {
                        "type": "library",
                        "name": "libssl3",
                        "version": "3.0.8-1",
                        "purl": SSL_PURL,
                    },
                    {
                        "type": "library",
                        "name": "lodash",
                        "version": "4.17.20",
                        "purl": "pkg:npm/lodash@4.17.20",
                    },
                ],
            }
        )
    )
    return path


def _spdx_package(spdx_id: str, name: str, purl: str) -> dict[str, object]:
    ref = {"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl"}
    return {
        "SPDXID": spdx_id,
        "name": name,
        "downloadLocation": "NOASSERTION",
        "externalRefs": [{**ref, "referenceLocator": purl}],
    }


def _spdx(path: Path) -> Path:
    path.write_text(
        json.dumps(
            {
                "spdxVersion": "SPDX-2.3",
                "SPDXID": "SPDXRef-DOCUMENT",
                "name": "python",
                "dataLicense": "CC0-1.0",
                "documentNamespace": "https://example.invalid/x",
                "creationInfo": {"created": "2025-01-01T00:00:00Z", "creators": ["Tool: t"]},
                "packages": [
                    _spdx_package("SPDXRef-img", "python", f"pkg:oci/python@{DIGEST}"),
                    _spdx_package("SPDXRef-ssl", "libssl3", SSL_PURL),
                ],
            }
        )
    )
    return path


def test_db_status_json(env: dict[str, str]) -> None:
    r = assay("db", "status", "-o", "json", env=env)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert {s["source"]: s["records"] for s in doc["sources"]} == {
        "debian-tracker": 16,
        "epss": 4,
        "kev": 2,
        "osv": 7,
    }


def test_scan_cyclonedx_sbom_json_and_fail_on(env: dict[str, str], tmp_path: Path) -> None:
    sbom = _cdx(tmp_path / "s.cdx.json")
    r = assay("scan", str(sbom), "-o", "json", env=env)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    ids = {(f["id"], f["package"]["name"]) for f in doc["findings"]}
    assert ("CVE-2023-0464", "libssl3") in ids and ("CVE-2021-23337", "lodash") in ids
    assert doc["subject"]["digest"] == DIGEST
    r = assay("scan", str(sbom), "--fail-on", "high", "-o", "sarif", env=env)
    assert r.returncode == 1 and "--fail-on" in r.stderr
    assert json.loads(r.stdout)["version"] == "2.1.0"  # the result is still written
    assert assay("scan", str(sbom), "--fail-on", "critical", env=env).returncode == 0
    assert assay("scan", str(sbom), "--fail-on", "bogus", env=env).returncode == 2


def test_vex_create_then_scan_suppresses_and_fail_on_passes(
    env: dict[str, str], tmp_path: Path
) -> None:
    sbom = _cdx(tmp_path / "s.cdx.json")
    vex = tmp_path / "my.vex.json"
    r = assay(
        "vex",
        "create",
        "--product",
        f"pkg:oci/python@{DIGEST}",
        "--vuln",
        "CVE-2021-23337",
        "--status",
        "not_affected",
        "--justification",
        "vulnerable_code_not_in_execute_path",
        "--file",
        str(vex),
        env=env,
    )
    assert r.returncode == 0, r.stderr
    r = assay("scan", str(sbom), "--vex", str(vex), "--fail-on", "high", "-o", "json", env=env)
    assert r.returncode == 0, r.stderr
    lo = next(f for f in json.loads(r.stdout)["findings"] if f["id"] == "CVE-2021-23337")
    assert lo["suppressed"] and lo["suppressed_by"]["status"] == "not_affected"
    # missing justification is a usage error
    r = assay(
        "vex",
        "create",
        "--product",
        f"pkg:oci/python@{DIGEST}",
        "--vuln",
        "CVE-1",
        "--status",
        "not_affected",
        env=env,
    )
    assert r.returncode == 2 and "justification" in r.stderr


def test_vex_merge_and_apply(env: dict[str, str], tmp_path: Path) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    prod = f"pkg:oci/python@{DIGEST}"
    create = ("vex", "create", "--product", prod, "--vuln", "CVE-2023-0464", "--status")
    r = assay(*create, "under_investigation", "--file", str(a), env=env)
    assert r.returncode == 0, r.stderr
    e2 = dict(env, SOURCE_DATE_EPOCH="4102444800")  # 2100: later than a
    r = assay(*create, "fixed", "--file", str(b), env=e2)
    assert r.returncode == 0, r.stderr
    merged = tmp_path / "m.json"
    r = assay("vex", "merge", str(a), str(b), "--file", str(merged), env=env)
    assert r.returncode == 0, r.stderr
    stmts = json.loads(merged.read_text())["statements"]
    assert [s["status"] for s in stmts] == ["fixed"]
    res = tmp_path / "res.json"
    sbom = _cdx(tmp_path / "s.cdx.json")
    assert assay("scan", str(sbom), "-o", "json", "--file", str(res), env=env).returncode == 0
    r = assay("vex", "apply", str(res), "--vex", str(merged), "-o", "json", env=env)
    assert r.returncode == 0, r.stderr
    f = next(f for f in json.loads(r.stdout)["findings"] if f["id"] == "CVE-2023-0464")
    assert f["suppressed"] and f["vex_status"] == "fixed"


def test_scan_spdx_sbom(env: dict[str, str], tmp_path: Path) -> None:
    r = assay("scan", str(_spdx(tmp_path / "s.spdx.json")), "-o", "json", "--only-fixed", env=env)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["subject"]["distro"] == "debian 12 (bookworm)"
    assert all(f["fixed_in"] for f in doc["findings"]) and doc["findings"]


def test_scan_dir_rootfs(env: dict[str, str], tmp_path: Path) -> None:
    pytest.importorskip("assay.sbom.catalog", reason="the SBOM catalogers (assay.sbom) are missing")
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    (root / "etc/os-release").write_text(
        'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n'
        "VERSION_CODENAME=bookworm\n"
    )
    sd = root / "var/lib/dpkg/status.d"
    sd.mkdir(parents=True)
    (sd / "libssl3").write_text(
        "Package: libssl3\nStatus: install ok installed\nPriority: optional\nSection: libs\n"
        "Maintainer: Debian OpenSSL Team <pkg-openssl-devel@alioth-lists.debian.net>\n"
        "Architecture: amd64\nMulti-Arch: same\nSource: openssl\nVersion: 3.0.8-1+b1\n"
        "Description: Secure Sockets Layer toolkit - shared libraries\n"
    )
    r = assay("scan", f"dir:{root}", "-o", "json", env=env)
    assert r.returncode == 0, r.stderr
    found = {
        (f["id"], f["package"]["name"], f["package"].get("source", {}).get("version"))
        for f in json.loads(r.stdout)["findings"]
    }
    assert ("CVE-2023-0464", "libssl3", "3.0.8-1") in found


def test_stale_db_warns_and_max_db_age_fails(env: dict[str, str], tmp_path: Path) -> None:
    e = dict(env, ASSAY_VULN_DB=str(tmp_path / "old.db"))
    assert assay("db", "import", "--kev", str(ASSETS / "kev.json"), env=e).returncode == 0
    with sqlite3.connect(tmp_path / "old.db") as c:
        c.execute("UPDATE sources SET imported_at='2020-01-01T00:00:00Z'")
    sbom = _cdx(tmp_path / "s.cdx.json")
    r = assay("scan", str(sbom), env=e)
    assert r.returncode == 0 and "days old" in r.stderr
    r = assay("scan", str(sbom), "--max-db-age", "30", env=e)
    assert r.returncode == 1 and "max-db-age" in r.stderr
    assert "kev" in assay("db", "status", env=e).stderr  # the warning names the source


def test_missing_db_is_a_usage_error(tmp_path: Path) -> None:
    e = dict(os.environ, ASSAY_VULN_DB=str(tmp_path / "none.db"))
    r = assay("scan", str(_cdx(tmp_path / "s.json")), env=e)
    assert r.returncode == 2 and "db update" in r.stderr
