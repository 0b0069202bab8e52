"""Issue 16 acceptance: assay's own image (deploy/assay.yaml) builds reproducibly with assay, and
``assay run`` of it prints ``assay --version``.

Network: the real Debian mirror and PyPI (the wheels of requirements.txt). Two builds from the
same commit and lock, each with its own cache and work directory, must give the same digest.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fixtures.examples import ROOT, mirror_or_skip

pytestmark = [pytest.mark.network, pytest.mark.slow]

SCRIPT = ROOT / "deploy" / "make-image.sh"


def _pypi_or_skip() -> None:
    import httpx

    try:
        httpx.head("https://pypi.org/simple/", timeout=15).raise_for_status()
    except httpx.HTTPError as exc:
        pytest.skip(f"NETWORK TEST SKIPPED: PyPI is unreachable: {exc}")


def _make_image(work: Path, dest: str, cache: Path) -> str:
    env = {k: v for k, v in os.environ.items() if k != "SOURCE_DATE_EPOCH"}
    bindir = Path(sys.executable).parent
    env.update(
        ASSAY_DEPLOY_WORK=str(work),
        ASSAY_CACHE_DIR=str(cache),
        PATH=f"{bindir}:{env.get('PATH', '')}",
        ASSAY=f"{sys.executable} -m assay",
    )
    proc = subprocess.run(
        ["sh", str(SCRIPT), dest, "-q"],
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc.stdout.strip().splitlines()[-1]


def test_assay_image_is_reproducible_and_runs_the_cli(tmp_path: Path) -> None:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs a git checkout (the image is built from the committed state)")
    mirror_or_skip()
    _pypi_or_skip()
    a = _make_image(tmp_path / "wa", f"oci:{tmp_path}/a:img", tmp_path / "ca")
    # the same lock and pins, a separate cache and work directory
    (tmp_path / "wb").mkdir()
    for name in ("assay.lock.json", "requirements-image.txt"):
        shutil.copy(tmp_path / "wa" / name, tmp_path / "wb" / name)
    b = _make_image(tmp_path / "wb", f"oci:{tmp_path}/b:img", tmp_path / "cb")
    assert a.startswith("sha256:") and a == b
    if os.geteuid() != 0 or not shutil.which("runc"):
        pytest.skip("built twice to the same digest; `assay run` needs root and runc")
    run = subprocess.run(
        [sys.executable, "-m", "assay", "run", f"oci:{tmp_path}/a:img", "--", "--version"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    from assay import __version__

    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == f"assay {__version__}"
