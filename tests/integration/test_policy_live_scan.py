"""``require.vulnerabilities.source: live|either``: the verified image's layers are scanned with
the local advisory DB (fixture Debian tracker feed) when the policy says so (real registry)."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

import pytest

from assay.oci.entry import Entry, EntryType
from assay.oci.registry import RegistryClient
from assay.policy import Engine, load_policies
from assay.vuln.db import AdvisoryDB
from assay.vuln.feeds import FEEDS
from integration.policy_helpers import attest, new_key, push_layers, sign
from integration.test_policy_cli import SRC

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "vuln"
NOW = 1_795_000_000.0  # 2026-11-18
OS_RELEASE = b'ID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n'
STATUS = (
    b"Package: libfoo\nStatus: install ok installed\nArchitecture: amd64\nSource: libfoo\n"
    b"Version: 1.5-1\nMaintainer: Foo <foo@example.invalid>\nDescription: foo\n"
)


def _entries() -> list[Entry]:
    d = [Entry(p, EntryType.DIR, 0o755) for p in ("etc", "var", "var/lib", "var/lib/dpkg")]
    return [
        *d,
        Entry("var/lib/dpkg/status.d", EntryType.DIR, 0o755),
        Entry("etc/os-release", EntryType.FILE, 0o644, data=OS_RELEASE),
        Entry("var/lib/dpkg/status.d/libfoo", EntryType.FILE, 0o644, data=STATUS),
    ]


@pytest.fixture()
def db(tmp_path: Path) -> Path:
    path = tmp_path / "vuln.db"
    with AdvisoryDB(path) as adb:
        FEEDS["debian-tracker"].import_path(adb, ASSETS / "tracker.json")
    return path


def _policy(tmp: Path, pub: str, source: str, extra: str = "") -> Path:
    pem = "".join(f"        {line}\n" for line in pub.strip().splitlines())
    path = tmp / f"live-{source}.yaml"
    path.write_text(
        "apiVersion: assay.dev/v1alpha1\nkind: ImagePolicy\n"
        f"metadata:\n  name: live-{source}\nspec:\n  images:\n  - glob: '**'\n"
        f"  authorities:\n  - key:\n      data: |\n{pem}"
        f"  require:\n    vulnerabilities:\n      source: {source}\n      maxSeverity: low\n"
        f"      maxScanAgeDays: 1\n      maxDbAgeDays: 30\n{extra}"
    )
    return path


def _image(client: RegistryClient, registry: Any, tmp: Path, key: Any) -> str:
    repo = f"live/{uuid.uuid4().hex[:8]}/img"
    digest = push_layers(client, repo, "v1", [_entries()], tmp / uuid.uuid4().hex[:8])
    ref = f"{registry.host}/{repo}@{digest}"
    sign(client, ref, key)
    return ref


def _checks(decision: Any) -> dict[str, Any]:
    return {c.name: c for c in decision.images[0].policies[0].checks}


def test_live_scan_finds_what_the_local_db_knows(
    registry: Any, client: RegistryClient, tmp_path: Path, db: Path
) -> None:
    key, pub = new_key()
    ref = _image(client, registry, tmp_path, key)
    digest = ref.rsplit("@", 1)[1]
    with Engine(
        load_policies([_policy(tmp_path, pub, "live")]), clock=lambda: NOW, vuln_db=db
    ) as e:
        denied = e.decide([ref])
    checks = _checks(denied)
    assert not denied.allowed
    scan = checks["vulnerabilities.scan"]
    assert scan.status == "pass"
    assert scan.reason.startswith("live scan of 1 package(s) (linux/amd64) with the local advisory")
    assert "debian-tracker data of " in scan.reason
    assert len(scan.evidence) == 1  # the one layer read
    assert checks["vulnerabilities.maxSeverity"].status == "fail"
    assert "CVE-2024-11111 (medium)" in checks["vulnerabilities.maxSeverity"].reason
    assert checks["vulnerabilities.maxScanAgeDays"].status == "pass"
    assert checks["vulnerabilities.maxDbAgeDays"].status == "pass"
    assert "FedRAMP:RA-5" in scan.controls
    # a verified VEX attestation applies to the live scan as to an attested one
    vex = {
        "@context": "https://openvex.dev/ns/v0.2.0",
        "@id": "https://example.test/vex/live",
        "author": "test",
        "timestamp": "2026-11-17T00:00:00Z",
        "version": 1,
        "statements": [
            {
                "vulnerability": {"name": "CVE-2024-11111"},
                "products": [{"@id": digest}],
                "status": "not_affected",
                "justification": "vulnerable_code_not_present",
            }
        ],
    }
    attest(client, ref, key, "openvex", vex)
    with Engine(
        load_policies([_policy(tmp_path, pub, "live")]), clock=lambda: NOW, vuln_db=db
    ) as e:
        admitted = e.decide([ref])
    assert admitted.allowed, admitted.images[0].message


def test_db_age_applies_to_the_live_scan(
    registry: Any, client: RegistryClient, tmp_path: Path, db: Path
) -> None:
    key, pub = new_key()
    ref = _image(client, registry, tmp_path, key)
    later = NOW + 400 * 86400  # the DB's data is over a year old by then
    with Engine(
        load_policies([_policy(tmp_path, pub, "live")]), clock=lambda: later, vuln_db=db
    ) as e:
        checks = _checks(e.decide([ref]))
    assert checks["vulnerabilities.maxDbAgeDays"].status == "fail"
    assert "limit 30" in checks["vulnerabilities.maxDbAgeDays"].reason


def test_either_prefers_a_verified_scan_attestation(
    registry: Any, client: RegistryClient, tmp_path: Path, db: Path
) -> None:
    from integration.test_policy_require import _scan

    key, pub = new_key()
    ref = _image(client, registry, tmp_path, key)
    attestation_only = _policy(tmp_path, pub, "attestation")
    either = _policy(tmp_path, pub, "either")
    with Engine(load_policies([attestation_only]), clock=lambda: NOW, vuln_db=db) as e:
        checks = _checks(e.decide([ref]))
    assert checks["vulnerabilities"].reason == "no verified vulnerability scan attestation"
    with Engine(load_policies([either]), clock=lambda: NOW, vuln_db=db) as e:
        checks = _checks(e.decide([ref]))
    assert checks["vulnerabilities.scan"].reason.startswith(
        "no verified scan attestation; live scan of 1 package(s)"
    )
    attest(client, ref, key, "vuln", _scan([], finished=NOW - 3600, db=NOW - 7200))
    with Engine(load_policies([either]), clock=lambda: NOW, vuln_db=db) as e:
        decision = e.decide([ref])
    checks = _checks(decision)
    assert "vulnerabilities.scan" not in checks  # the attested (clean) scan was used
    assert decision.allowed, decision.images[0].message


def test_missing_db_is_an_error_not_a_pass(
    registry: Any, client: RegistryClient, tmp_path: Path
) -> None:
    key, pub = new_key()
    ref = _image(client, registry, tmp_path, key)
    missing = tmp_path / "none.db"
    with Engine(
        load_policies([_policy(tmp_path, pub, "live")]), clock=lambda: NOW, vuln_db=missing
    ) as e:
        decision = e.decide([ref])
    check = _checks(decision)["vulnerabilities"]
    assert not decision.allowed and check.status == "error"
    assert check.reason == (
        f"no local advisory database at {missing}; run `assay db update` (or set ASSAY_VULN_DB) "
        "so a live scan can run"
    )


def test_verify_cli_live_scan_with_assay_vuln_db(
    registry: Any, client: RegistryClient, tmp_path: Path, db: Path
) -> None:
    import shutil
    import subprocess

    key, pub = new_key()
    ref = _image(client, registry, tmp_path, key)
    exe = shutil.which("assay")
    assert exe is not None
    env = dict(os.environ, PYTHONPATH=str(SRC), ASSAY_VULN_DB=str(db))
    proc = subprocess.run(
        [exe, "verify", ref, "--policy", str(_policy(tmp_path, pub, "live")), "-o", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 1, proc.stderr
    checks = {c["name"]: c for c in json.loads(proc.stdout)["images"][0]["policies"][0]["checks"]}
    assert checks["vulnerabilities.scan"]["status"] == "pass"
    assert "CVE-2024-11111" in checks["vulnerabilities.maxSeverity"]["reason"]
