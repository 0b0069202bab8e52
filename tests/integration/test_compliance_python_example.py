"""Issue 14's HTML acceptance on the real thing: the python example, built by assay from the
Debian mirror, pushed to the real registry with ``build --push --sign-key`` (signature, SBOM and
provenance attestations), scanned with fixture feeds that carry a KEV entry for its openssl,
the scan attested, and ``assay report -o html`` rendered in headless Chromium.

Every step runs through the installed console script, as a user would type it. Needs the Debian
mirror (skips loudly without it).
"""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest

from fixtures.assets import ASSETS
from fixtures.chromium import render
from fixtures.examples import EXAMPLES, assay, mirror_or_skip

pytestmark = [pytest.mark.network, pytest.mark.slow]

NOW = "2026-11-20"
# The fixture tracker states openssl's CVE open in bookworm, so whatever libssl3 the mirror
# serves today matches; the fixture KEV catalog lists it with due date 2024-01-23.
TRACKER = {
    "openssl": {
        "CVE-2023-0464": {
            "description": "fixture: X.509 policy constraints resource consumption",
            "scope": "remote",
            "releases": {
                "bookworm": {
                    "status": "open",
                    "repositories": {"bookworm": "3.0.0-1"},
                    "urgency": "high",
                }
            },
        }
    }
}


@pytest.fixture(scope="module")
def reported(registry: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    mirror_or_skip()
    tmp = tmp_path_factory.mktemp("python-report")
    env = {"ASSAY_PASSWORD": "", "ASSAY_CACHE_DIR": str(tmp / "cache")}
    assay("keygen", "--output-key-prefix", str(tmp / "release"), env=env)
    ref = f"{registry.host}/compliance/{uuid.uuid4().hex[:8]}/python:1"
    spec = tmp / "python.yaml"
    shutil.copyfile(EXAMPLES / "python.yaml", spec)
    if (EXAMPLES / "python.lock.json").exists():  # not in git: a fresh clone locks anew
        shutil.copyfile(EXAMPLES / "python.lock.json", tmp / "python.lock.json")
    assay(
        "build",
        str(spec),
        "--arch",
        "amd64",
        "--dest",
        f"oci:{tmp / 'out'}:python",
        "--push",
        ref,
        "--sign-key",
        str(tmp / "release.key"),
        "--quiet",
        cwd=tmp,
        env=env,
    )
    (tmp / "tracker.json").write_text(json.dumps(TRACKER))
    db = tmp / "vuln.db"
    assay(
        "db",
        "import",
        "--db",
        str(db),
        "--debian-tracker",
        str(tmp / "tracker.json"),
        "--kev",
        str(ASSETS / "vuln" / "kev.json"),
        env=env,
    )
    scan = tmp / "scan.json"
    ran = assay("scan", ref, "--db", str(db), "-o", "json", "--file", str(scan), check=False)
    assert ran.returncode == 0, ran.stderr
    findings = json.loads(scan.read_text())
    assert "CVE-2023-0464" in json.dumps(findings), "the fixture KEV CVE must be found in libssl3"
    # assay's scan JSON has no scan times: attesting it as a cosign vuln predicate is refused
    attest_vuln = ["attest", ref, "--key", str(tmp / "release.key"), "--type", "vuln"]
    attest_vuln += ["--predicate", str(scan)]
    raw = assay(*attest_vuln, env=env, check=False)
    assert raw.returncode == 2 and "assay scan IMAGE -o cosign-vuln" in raw.stderr, raw.stderr
    assert len(raw.stderr.strip().splitlines()) == 1, raw.stderr
    ran = assay("scan", ref, "--db", str(db), "-o", "cosign-vuln", "--file", str(scan), check=False)
    assert ran.returncode == 0, ran.stderr
    predicate = json.loads(scan.read_text())
    assert predicate["scanner"]["result"]["findings"] == findings["findings"]
    assert predicate["metadata"]["scanStartedOn"] <= predicate["metadata"]["scanFinishedOn"]
    assay(*attest_vuln, env=env)
    pem = (tmp / "release.pub").read_text().strip().splitlines()
    policy = tmp / "policy.yaml"
    policy.write_text(
        "apiVersion: assay.dev/v1alpha1\nkind: ImagePolicy\nmetadata:\n  name: release\n"
        "spec:\n  images:\n  - glob: '**'\n  authorities:\n  - name: release-key\n    key:\n"
        "      data: |\n"
        + "".join(f"        {line}\n" for line in pem)
        + "  require:\n    runAsNonRoot: true\n    noShell: true\n    noPackageManager: true\n"
        "    sbom: {formats: [spdx, cyclonedx], ntia: true}\n"
        "    vulnerabilities:\n      noKEV: true\n"
    )
    out: dict[str, Any] = {"ref": ref, "tmp": tmp}
    for fmt in ("html", "json"):
        page = tmp / f"report.{fmt}"
        ran = assay(
            "report",
            ref,
            "--key",
            str(tmp / "release.pub"),
            "--policy",
            str(policy),
            "-o",
            fmt,
            "--file",
            str(page),
            "--now",
            NOW,
            check=False,
        )
        assert ran.returncode == 0, ran.stderr
        out[fmt] = page
    return out


def test_python_example_report_renders_in_chromium(reported: dict[str, Any]) -> None:
    import html5lib

    page: Path = reported["html"]
    html5lib.HTMLParser(strict=True).parse(page.read_bytes())
    shot = reported["tmp"] / "report.png"
    dom = render(page, shot)
    doc = json.loads(reported["json"].read_text())
    assert len(doc["frameworks"]) == 8
    for fw in doc["frameworks"]:
        assert f'{fw["title"]}: <span class="{fw["result"]}">{fw["result"]}</span>' in dom
    # the KEV finding of the real libssl3 is listed with its BOD 22-01 due date
    assert "CVE-2023-0464" in dom and "libssl3" in dom and "2024-01-23" in dom
    assert "<svg" in dom


def test_python_example_report_states_evidence_from_the_build(reported: dict[str, Any]) -> None:
    doc = json.loads(reported["json"].read_text())
    text = json.dumps(doc)
    # the KEV entry fails the FedRAMP framework; the build's own evidence satisfies SBOM controls
    fedramp = next(fw for fw in doc["frameworks"] if "FedRAMP" in fw["title"])
    assert fedramp["result"] != "satisfied"
    ntia = next(fw for fw in doc["frameworks"] if "NTIA" in fw["title"])
    assert ntia["result"] == "satisfied", ntia
    assert "slsa" in text.lower() and "spdx" in text.lower()
