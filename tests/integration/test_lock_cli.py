"""``assay lock`` end to end: a signed fixture repository served on 127.0.0.1, the real CLI."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from assay.build.lock import read_lock
from fixtures.cli import run_script
from fixtures.debrepo import FakeRepo, sample_repo, signed_contents, test_key

__all__ = ["sample_repo", "test_key"]  # pytest fixtures used below


def spec_text(repo: FakeRepo, url: str, packages: list[str], archs: str = "[amd64, arm64]") -> str:
    contents = signed_contents(
        url, repo.key.keyring, json.dumps(packages), "[stable, stable-security]"
    )
    return contents + f"archs: {archs}\n"


class Result:
    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


_CAPFD: pytest.CaptureFixture[str] | None = None


def assay(*args: str, cache: Path) -> Result:
    """Run the CLI in this process (its import alone takes seconds on a loaded machine)."""
    from assay.cli.main import run

    assert _CAPFD is not None
    _CAPFD.readouterr()
    old_argv, old_env = sys.argv, dict(os.environ)
    sys.argv = ["assay", *args]
    os.environ["ASSAY_CACHE_DIR"] = str(cache)
    os.environ["COLUMNS"] = "200"
    os.environ.pop("ASSAY_DEBIAN_MIRROR", None)
    code = 0
    try:
        run()
    except SystemExit as exc:
        code = int(exc.code or 0)
    finally:
        sys.argv = old_argv
        os.environ.clear()
        os.environ.update(old_env)
    out, err = _CAPFD.readouterr()
    return Result(code, out, err)


@pytest.fixture(autouse=True)
def _capture(capfd: pytest.CaptureFixture[str]) -> Iterator[None]:
    global _CAPFD
    _CAPFD = capfd
    yield
    _CAPFD = None


@pytest.fixture
def workdir(tmp_path: Path, sample_repo: tuple[FakeRepo, str]) -> tuple[Path, FakeRepo, str]:
    repo, url = sample_repo
    return tmp_path, repo, url


def test_lock_writes_the_lock_and_summarises(workdir: tuple[Path, FakeRepo, str]) -> None:
    tmp, repo, url = workdir
    spec = tmp / "py.yaml"
    spec.write_text(spec_text(repo, url, ["python3.11-minimal", "ca-certificates"]))
    proc = assay("lock", str(spec), cache=tmp / "cache")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    assert "amd64: 6 packages" in proc.stderr and "arm64: 6 packages" in proc.stderr
    lock = read_lock(tmp / "py.lock.json")
    assert lock.spec == "py.yaml"
    names = {p.name: p for p in lock.packages["amd64"]}
    assert sorted(names) == [
        "ca-certificates",
        "libc6",
        "libpython3.11-minimal",
        "libssl3",
        "openssl",
        "python3.11-minimal",
    ]
    ssl = names["libssl3"]
    assert (ssl.version, ssl.suite) == ("3.0.15-1~deb12u1", "stable-security")
    # The pinned hashes are the real ones of the served files.
    import hashlib

    deb = repo.deb("libssl3", "3.0.15-1~deb12u1", "amd64")
    assert ssl.sha256 == hashlib.sha256(deb.read_bytes()).hexdigest()
    assert ssl.size == deb.stat().st_size
    assert ssl.url == f"{url}/{ssl.filename}"
    assert {r.suite for r in lock.releases} == {"stable", "stable-security"}
    for r in lock.releases:
        inrel = repo.inrelease(r.suite)
        assert r.sha256 == hashlib.sha256(inrel.read_bytes()).hexdigest()
    # A second run is byte-identical.
    first = (tmp / "py.lock.json").read_bytes()
    assert assay("lock", str(spec), cache=tmp / "cache").returncode == 0
    assert (tmp / "py.lock.json").read_bytes() == first


def test_why_prints_the_chain(workdir: tuple[Path, FakeRepo, str]) -> None:
    tmp, repo, url = workdir
    spec = tmp / "py.yaml"
    spec.write_text(spec_text(repo, url, ["python3.11-minimal", "ca-certificates"], "[amd64]"))
    proc = assay("lock", str(spec), "--why", "libssl3", cache=tmp / "cache")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "amd64: libssl3 3.0.15-1~deb12u1"
    assert "  python3.11-minimal → libssl3" in lines
    assert "  ca-certificates → openssl → libssl3" in lines
    proc = assay("lock", str(spec), "--why", "libssl3", "-o", "json", cache=tmp / "cache")
    chains = json.loads(proc.stdout)
    assert ["python3.11-minimal", "libssl3"] in chains["amd64"]
    proc = assay("lock", str(spec), "--why", "gawk", cache=tmp / "cache")
    assert proc.returncode == 2 and "gawk is not part of the resolved image" in proc.stderr


def test_why_reads_an_up_to_date_lock(workdir: tuple[Path, FakeRepo, str]) -> None:
    tmp, repo, url = workdir
    spec = tmp / "py.yaml"
    spec.write_text(spec_text(repo, url, ["python3.11-minimal", "ca-certificates"], "[amd64]"))
    assert assay("lock", str(spec), cache=tmp / "cache").returncode == 0
    # Drop one edge from the (still valid, still matching) lock: --why must reflect the lock.
    path = tmp / "py.lock.json"
    data = json.loads(path.read_text())
    for pkg in data["packages"]["amd64"]:
        if pkg["name"] == "python3.11-minimal":
            pkg["depends"].remove("libssl3")
    path.write_text(json.dumps(data))
    proc = assay("lock", str(spec), "--why", "libssl3", cache=tmp / "cache")
    assert proc.returncode == 0, proc.stderr
    assert "  python3.11-minimal → libssl3" not in proc.stdout.splitlines()
    assert "  ca-certificates → openssl → libssl3" in proc.stdout.splitlines()
    assert "Get " not in proc.stderr  # no repository access at all


def test_check_detects_a_stale_lock(workdir: tuple[Path, FakeRepo, str]) -> None:
    tmp, repo, url = workdir
    spec = tmp / "app.yaml"
    spec.write_text(spec_text(repo, url, ["openssl"], "[amd64]"))
    proc = assay("lock", str(spec), "--check", cache=tmp / "cache")
    assert proc.returncode == 1 and "does not exist" in proc.stderr
    assert assay("lock", str(spec), cache=tmp / "cache").returncode == 0
    proc = assay("lock", str(spec), "--check", cache=tmp / "cache")
    assert proc.returncode == 0, proc.stderr
    spec.write_text(spec.read_text() + "# a comment changes the digest\n")
    proc = assay("lock", str(spec), "--check", cache=tmp / "cache")
    assert proc.returncode == 1 and "stale" in proc.stderr


def test_unsatisfiable_on_one_arch_names_the_chain(workdir: tuple[Path, FakeRepo, str]) -> None:
    tmp, repo, url = workdir
    spec = tmp / "x.yaml"
    spec.write_text(spec_text(repo, url, ["needs-amd64-only"]))
    proc = assay("lock", str(spec), cache=tmp / "cache")
    assert proc.returncode == 1
    assert "needs-amd64-only → amd64-only → not available for arm64" in proc.stderr
    assert not (tmp / "x.lock.json").exists()
    # amd64 alone is fine.
    proc = assay("lock", str(spec), "--arch", "amd64", cache=tmp / "cache")
    assert proc.returncode == 0, proc.stderr
    assert read_lock(tmp / "x.lock.json").archs == ["amd64"]


def test_conflict_is_reported(workdir: tuple[Path, FakeRepo, str]) -> None:
    tmp, repo, url = workdir
    spec = tmp / "c.yaml"
    spec.write_text(spec_text(repo, url, ["sysvinit-core", "systemd-sysv"], "[amd64]"))
    proc = assay("lock", str(spec), cache=tmp / "cache")
    assert proc.returncode == 1
    assert "sysvinit-core conflicts with systemd-sysv" in proc.stderr


def test_unknown_package_suggests(workdir: tuple[Path, FakeRepo, str]) -> None:
    tmp, repo, url = workdir
    spec = tmp / "u.yaml"
    spec.write_text(spec_text(repo, url, ["pyhton3.11-minimal"], "[amd64]"))
    proc = assay("lock", str(spec), cache=tmp / "cache")
    assert proc.returncode == 1
    assert "did you mean python3.11-minimal" in proc.stderr


def test_bad_spec_is_a_usage_error(workdir: tuple[Path, FakeRepo, str]) -> None:
    tmp, repo, url = workdir
    spec = tmp / "b.yaml"
    spec.write_text(spec_text(repo, url, ["openssl"]) + "entrypiont: /x\n")
    proc = assay("lock", str(spec), cache=tmp / "cache")
    assert proc.returncode == 2
    assert "entrypiont: unknown key" in proc.stderr
    proc = assay("lock", str(tmp / "missing.yaml"), cache=tmp / "cache")
    assert proc.returncode == 2
    proc = assay("lock", str(spec), "--arch", "s390x", cache=tmp / "cache")
    assert proc.returncode == 2


def test_json_output_and_arch_merge(workdir: tuple[Path, FakeRepo, str]) -> None:
    tmp, repo, url = workdir
    spec = tmp / "j.yaml"
    spec.write_text(spec_text(repo, url, ["tzdata", "openssl"]))
    proc = assay("lock", str(spec), "-o", "json", cache=tmp / "cache")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.encode() == (tmp / "j.lock.json").read_bytes()
    # Re-locking one architecture keeps the other.
    proc = assay("lock", str(spec), "--arch", "arm64", cache=tmp / "cache")
    assert proc.returncode == 0, proc.stderr
    assert read_lock(tmp / "j.lock.json").archs == ["amd64", "arm64"]


def test_help_mentions_the_options() -> None:
    # The real console script, in a separate process.
    proc = run_script("lock", "--help", env={"COLUMNS": "200"}, timeout=120)
    assert proc.returncode == 0
    for word in ("--why", "--arch", "--check", "--output", "Exit codes"):
        assert word in proc.stdout
