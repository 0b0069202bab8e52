"""A FIFO given as any file input is refused at once, never read (issue 10: nothing hangs).

Reading a FIFO blocks until a writer appears, so a command that opens one without checking
waits forever. Each case runs the installed ``assay`` console script with a FIFO in one input
position (the others valid or unreachable) and expects one line naming it, exit 2, within the
subprocess timeout. Registry references point at 127.0.0.1:1, which nothing listens on: a
command that got past the FIFO would fail there instead of passing the check.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from fixtures.minidocs import EMPTY_SCAN_RESULT, PASS_POLICY
from fixtures.peak import SRC

REG = "127.0.0.1:1/x/y:1"
SPEC = "contents:\n  packages: [base-files]\narchs: [amd64]\n"
RESULT = EMPTY_SCAN_RESULT
KEYLESS = ["--certificate-identity", "a@example.invalid", "--certificate-oidc-issuer", "https://i"]
P = "pipe"

# (case, argv after `assay`): every command option or argument that names a file to read.
CASES: list[tuple[str, list[str]]] = [
    ("lock-spec", ["lock", P]),
    ("lock-check-lockfile", ["lock", "s.yaml", "--check"]),  # s.lock.json is the FIFO
    ("build-spec", ["build", P, "--dest", "oci:out"]),
    ("update-spec", ["update", P, "--dry-run"]),
    ("vex-merge", ["vex", "merge", P]),
    ("vex-apply-result", ["vex", "apply", P, "--vex", "r.json"]),
    ("vex-apply-vex", ["vex", "apply", "r.json", "--vex", P]),
    ("scan-vex", ["scan", "dir:empty", "--vex", P, "--db", "v.db"]),
    ("scan-sbom", ["scan", P, "--db", "v.db"]),  # neither an SBOM file nor an image: not read
    ("policy-lint", ["policy", "lint", P]),
    ("verify-policy", ["verify", REG, "--policy", P]),
    ("report-policy", ["report", REG, "--key", "cosign.pub", "--policy", P]),
    ("audit-policy", ["admission", "audit", "-p", P, "--from", "p.yaml"]),
    ("audit-from", ["admission", "audit", "-p", "p.yaml", "--from", P]),
    (
        "serve-policy",
        ["admission", "serve", "-p", P, "--tls-cert", "r.json", "--tls-key", "r.json"],
    ),
    ("serve-tls-cert", ["admission", "serve", "-p", "p.yaml", "--tls-cert", P, "--tls-key", P]),
    ("manifests-ca-bundle", ["admission", "manifests", "--url", "https://x", "--ca-bundle", P]),
    ("attest-predicate", ["attest", REG, "--key", "cosign.key", "--predicate", P]),
    ("attest-key", ["attest", REG, "--key", P, "--predicate", "r.json"]),
    ("sign-key", ["sign", REG, "--key", P]),
    ("verify-key", ["verify", REG, "--key", P]),
    ("verify-bundle", ["verify", "r.json", "--bundle", P, *KEYLESS]),
    ("verify-attestation-key", ["verify-attestation", REG, "--key", P]),
    ("verify-provenance-key", ["verify-provenance", REG, "--key", P, "--builder-id", "b"]),
    ("rebuild-provenance", ["rebuild", "--provenance", P]),
    ("rebuild-key", ["rebuild", REG, "--key", P]),
    ("report-key", ["report", REG, "--key", P]),
    ("scan-key", ["scan", REG, "--key", P, "--db", "v.db"]),
    ("evidence-verify-bundle", ["evidence", "verify", P, "--key", "cosign.pub"]),
    ("evidence-verify-key", ["evidence", "verify", "r.json", "--key", P]),
    ("db-import-tracker", ["db", "import", "--db", "v.db", "--debian-tracker", P]),
    ("db-import-osv", ["db", "import", "--db", "v.db", "--osv", P]),
    ("db-import-nvd", ["db", "import", "--db", "v.db", "--nvd", P]),
    ("db-import-kev", ["db", "import", "--db", "v.db", "--kev", P]),
    ("db-import-epss", ["db", "import", "--db", "v.db", "--epss", P]),
    ("inspect-oci-archive", ["inspect", f"oci-archive:{P}"]),
    ("inspect-docker-archive", ["inspect", f"docker-archive:{P}"]),
    ("sbom-oci-archive", ["sbom", f"oci-archive:{P}"]),
    ("push-oci-archive", ["push", f"oci-archive:{P}", REG]),
    ("diff-oci-archive", ["diff", f"oci-archive:{P}", f"oci-archive:{P}"]),
]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("fifo")
    env = {**os.environ, "PYTHONPATH": SRC, "ASSAY_PASSWORD": ""}
    subprocess.run(["assay", "keygen"], cwd=tmp, env=env, check=True, capture_output=True)
    os.mkfifo(tmp / P)
    os.mkfifo(tmp / "s.lock.json")
    (tmp / "s.yaml").write_text(SPEC)
    (tmp / "p.yaml").write_text(PASS_POLICY)
    (tmp / "r.json").write_text(RESULT)
    (tmp / "k").write_text("not a key")
    (tmp / "empty").mkdir()
    return tmp


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_fifo_input_is_refused_without_blocking(case: tuple[str, list[str]], world: Path) -> None:
    name, args = case
    env = {
        **os.environ,
        "PYTHONPATH": SRC,
        "ASSAY_PASSWORD": "",
        "ASSAY_CACHE_DIR": str(world / "cache"),
    }
    try:
        proc = subprocess.run(
            ["assay", *args], cwd=world, env=env, capture_output=True, text=True, timeout=60
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{name}: assay {' '.join(args)} blocked on the FIFO")
    err = proc.stderr.strip()
    assert "Traceback" not in err, err[-2000:]
    errors = [line for line in err.splitlines() if "error:" in line]
    assert proc.returncode == 2 and len(errors) == 1, err[-2000:]
    assert any(w in errors[0] for w in ("FIFO", "not a regular file", "neither an SBOM file")), err
