"""The remediation commands as a user types them (console script), and the summary formats."""

from __future__ import annotations

import json
from pathlib import Path

from assay.remediation import CveChange, PackageChange
from assay.remediation.summary import UpdateSummary, render_json, render_markdown, render_table
from fixtures.examples import assay


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    spec = tmp_path / "a.yaml"
    spec.write_text("contents:\n  packages: [hello]\n")
    env = {"ASSAY_CACHE_DIR": str(tmp_path / "c")}
    r = assay("update", str(spec), "--sign-key", "k", env=env, check=False)
    assert r.returncode == 2 and "--sign-key needs --push" in r.stderr
    r = assay("update", str(spec), str(spec), "--dest", f"oci:{tmp_path}/o", env=env, check=False)
    assert r.returncode == 2 and "one SPEC" in r.stderr
    r = assay("update", str(spec), "-o", "yaml", env=env, check=False)
    assert r.returncode == 2
    r = assay("diff", "oci:/nonexistent/a", env=env, check=False)
    assert r.returncode == 2


def test_remediation_status_of_an_empty_store(tmp_path: Path) -> None:
    env = {"ASSAY_STORE": f"sqlite:///{tmp_path / 's.db'}", "ASSAY_CACHE_DIR": str(tmp_path)}
    r = assay("remediation", "status", "-o", "json", env=env)
    assert json.loads(r.stdout) == {"remediation": []}


def test_summary_formats() -> None:
    s = UpdateSummary(
        "app.yaml",
        True,
        (PackageChange("amd64", "libssl3", "3.0.11-1", "3.0.13-1", "bookworm-security"),),
        (
            CveChange("CVE-2024-0727", "libssl3", "changelog"),
            CveChange("CVE-2024-0727", "libssl3", "db", "medium", kev=True, kev_due="2024-02-01"),
        ),
        (CveChange("CVE-2024-9999", "libssl3", "db", "low"),),
        "sha256:" + "a" * 64,
        "sha256:" + "b" * 64,
    )
    md = render_markdown([s, UpdateSummary("other.yaml", False)])
    assert "| amd64 | libssl3 | upgraded | 3.0.11-1 | 3.0.13-1 | bookworm-security |" in md
    assert "| CVE-2024-0727 | libssl3 | changelog+db |" in md
    assert "**KEV entries closed:** CVE-2024-0727" in md and "- CVE-2024-9999" in md
    assert "No update needed" in md
    data = json.loads(render_json([s]))
    assert data["updated"] is True and data["updates"][0]["kevClosed"] == ["CVE-2024-0727"]
    assert "fixed CVE-2024-0727" in render_table([s]).replace("  ", " ").replace("  ", " ")
