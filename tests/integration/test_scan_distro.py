"""Packages whose distro cannot be determined are not silently "clean"; ``--distro`` overrides.

A rootfs with Debian packages but no ``/etc/os-release`` used to scan as "no vulnerabilities
found", exit 0 even with ``--fail-on low``. Now: a loud warning, ``not_scanned`` in the JSON, and
``--fail-on`` fails (exit 1: a gate that cannot see does not pass). All through the console script.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fixtures.cli import run_script

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "vuln"
LIBSSL = (
    "Package: libssl3\nStatus: install ok installed\nArchitecture: amd64\nSource: openssl\n"
    "Version: 3.0.8-1\nMaintainer: Debian OpenSSL Team <x@example.invalid>\n"
    "Description: Secure Sockets Layer toolkit - shared libraries\n"
)


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    env = {"ASSAY_VULN_DB": str(tmp_path_factory.mktemp("db") / "v.db")}
    r = run_script("db", "import", "--debian-tracker", str(ASSETS / "tracker.json"), env=env)
    assert r.returncode == 0, r.stderr
    return env


def _rootfs(root: Path, os_release: str | None) -> str:
    sd = root / "var/lib/dpkg/status.d"
    sd.mkdir(parents=True)
    (sd / "libssl3").write_text(LIBSSL)
    if os_release is not None:
        (root / "etc").mkdir()
        (root / "etc/os-release").write_text(os_release)
    return f"dir:{root}"


def test_unknown_distro_warns_and_fail_on_fails(db: dict[str, str], tmp_path: Path) -> None:
    target = _rootfs(tmp_path / "r", None)
    r = run_script("scan", target, env=db)
    assert r.returncode == 0, r.stderr  # without a gate: a warning, not a failure
    assert "NOT SCANNED: 1 Debian package(s) not matched: the distro is unknown" in r.stderr
    assert "--distro" in r.stderr
    assert "no vulnerabilities found in what could be matched" in r.stdout
    doc = json.loads(run_script("scan", target, "-o", "json", env=db).stdout)
    assert doc["findings"] == [] and len(doc["not_scanned"]) == 1
    r = run_script("scan", target, "--fail-on", "critical", env=db)
    assert r.returncode == 1
    assert "--fail-on critical cannot pass" in r.stderr and "distro is unknown" in r.stderr


def test_distro_override_matches(db: dict[str, str], tmp_path: Path) -> None:
    target = _rootfs(tmp_path / "r", None)
    for value in ("debian:12", "debian:bookworm", "debian:12.8"):
        r = run_script("scan", target, "--distro", value, "-o", "json", env=db)
        assert r.returncode == 0, r.stderr
        doc = json.loads(r.stdout)
        assert (
            doc["subject"]["distro"] == f"debian {value[7:].replace('bookworm', '12')} (bookworm)"
        )
        assert "CVE-2023-0464" in {f["id"] for f in doc["findings"]}
        assert doc["not_scanned"] == [] and "NOT SCANNED" not in r.stderr
    r = run_script("scan", target, env={**db, "ASSAY_DISTRO": "debian:bookworm"})
    assert "CVE-2023-0464" in r.stdout


def test_other_distro_is_not_clean(db: dict[str, str], tmp_path: Path) -> None:
    target = _rootfs(tmp_path / "r", 'ID=ubuntu\nVERSION_ID="22.04"\n')
    r = run_script("scan", target, "--fail-on", "low", env=db)
    assert r.returncode == 1 and "the distro is ubuntu 22.04" in r.stderr
    # an override wins over what the image says
    r = run_script("scan", target, "--distro", "debian:12", "--fail-on", "high", env=db)
    assert r.returncode == 0, r.stderr


def test_no_data_for_the_release_is_not_clean(db: dict[str, str], tmp_path: Path) -> None:
    target = _rootfs(tmp_path / "r", None)
    r = run_script("scan", target, "--distro", "debian:trixie", "--fail-on", "low", env=db)
    assert r.returncode == 1
    assert "no Debian tracker (or OSV Debian:13) data for trixie" in r.stderr


@pytest.mark.parametrize("bad", ["bookworm", "debian", "debian:99", "debian:12;rm"])
def test_bad_distro_is_a_usage_error(db: dict[str, str], tmp_path: Path, bad: str) -> None:
    r = run_script("scan", _rootfs(tmp_path / "r", None), "--distro", bad, env=db)
    assert r.returncode == 2 and "--distro" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
