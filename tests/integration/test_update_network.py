"""``assay update`` against the real Debian mirror of this host's apt sources (network)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fixtures.examples import assay, bookworm_sources_or_skip


def _repo(uri: str, suites: list[str], keyring: str) -> str:
    return (
        "contents:\n  repositories:\n"
        f"    - uri: {uri}\n      suites: [{', '.join(suites)}]\n      components: [main]\n"
        f"      signed-by: {keyring}\n  packages: [libssl3]\narchs: [amd64]\n"
    )


@pytest.mark.network
def test_point_release_lock_updated_with_security_suite_names_changelog_cves(
    tmp_path: Path,
) -> None:
    main, sec = bookworm_sources_or_skip()
    keyring = main.signed_by or "/usr/share/keyrings/debian-archive-keyring.gpg"
    env = {"ASSAY_CACHE_DIR": str(tmp_path / "cache"), "ASSAY_VULN_DB": str(tmp_path / "none")}
    spec = tmp_path / "ssl.yaml"
    spec.write_text(_repo(main.uri, ["bookworm"], keyring))
    locked = assay("lock", str(spec), env=env, check=False)
    if locked.returncode != 0:
        pytest.skip(f"SKIPPED LOUDLY: Debian mirror unreachable: {locked.stderr.strip()[-300:]}")
    if sec.uri == main.uri:
        spec.write_text(_repo(main.uri, ["bookworm", "bookworm-security"], keyring))
    else:
        spec.write_text(
            _repo(main.uri, ["bookworm"], keyring).replace(
                "  packages:",
                f"    - uri: {sec.uri}\n      suites: [bookworm-security]\n"
                f"      components: [main]\n      signed-by: {keyring}\n  packages:",
            )
        )
    proc = assay("update", str(spec), "--dry-run", "-o", "json", env=env, check=False)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)["updates"][0]
    ssl = [p for p in out["packages"] if p["name"] == "libssl3"]
    if not ssl:
        pytest.skip("SKIPPED LOUDLY: bookworm-security has no newer libssl3 than bookworm now")
    assert ssl[0]["suite"] == "bookworm-security" and ssl[0]["change"] == "upgraded"
    cves = {c["id"] for c in out["fixed"] if c["package"] == "libssl3"}
    assert cves and all(c.startswith("CVE-") for c in cves), out
    assert all(c["source"] == "changelog" for c in out["fixed"])
