"""Archive bombs through the installed console script, peak memory measured per child process.

Each bomb is a small image on disk (a few MB) that expands to gigabytes: 3,000 PAX headers of
1 MiB, 40 dpkg status files of 60 MiB, two 3 GiB files of zeros. ``assay sbom`` / ``assay run``
must refuse them with a one-line error (exit 2) and a peak RSS under 512 MB (per command,
measured by ``fixtures.peak``).
(The bombs are built by fixtures.layerbombs.)
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from fixtures.layerbombs import pax_bomb, status_bomb, zero_files_bomb
from fixtures.peak import run_measured

LIMIT_KB = 512 * 1024


def _run(args: list[str], cwd: Path) -> tuple[int, str, int]:
    """Exit code, stderr and the command's own peak RSS (KiB, see fixtures.peak)."""
    code, err, peak = run_measured(args, cwd=cwd)
    print(f"{' '.join(args[:2])}: exit {code}, peak RSS {peak // 1024} MiB")
    return code, err, peak


@pytest.mark.slow
@pytest.mark.parametrize(
    "build,match",
    [(pax_bomb, "header bomb"), (status_bomb, "exceed 268435456 bytes in total")],
)
def test_sbom_bombs_fail_cleanly_in_bounded_memory(build, match, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    layout = build(tmp_path / "img")
    code, err, rss_kb = _run(
        ["assay", "sbom", f"oci:{layout}:latest", "-o", "spdx-json"], cwd=tmp_path
    )
    assert code == 2, err
    assert match in err and "Traceback" not in err
    assert rss_kb < LIMIT_KB, f"peak RSS {rss_kb // 1024} MiB"


@pytest.mark.slow
@pytest.mark.skipif(
    shutil.which("runc") is None or os.geteuid() != 0, reason="assay run needs runc and root"
)
def test_run_of_zero_file_bomb_is_refused_in_bounded_memory(tmp_path: Path) -> None:
    layout = zero_files_bomb(tmp_path / "img")
    code, err, rss_kb = _run(
        ["assay", "run", f"oci:{layout}:latest", "--", "/bin/true"], cwd=tmp_path
    )
    assert code == 2, err
    assert "over the 4294967296-byte limit of assay run" in err and "Traceback" not in err
    assert rss_kb < LIMIT_KB, f"peak RSS {rss_kb // 1024} MiB"
