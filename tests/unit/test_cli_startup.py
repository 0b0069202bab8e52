"""Start-up: ``assay --help`` imports no command module; a command imports only its own.

The command table in cli/main.py draws ``--help`` without importing the commands; it must name
every command the modules register, with their own one-line help. The import guards run the
installed console script with ``PYTHONPROFILEIMPORTTIME`` and read which modules it imported,
and through which chain of imports (no timing: what is imported is what is checked).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import typer
import typer.main

from assay.cli.main import COMMANDS, full_app
from fixtures.cli import run_script

SRC = Path(__file__).resolve().parents[2] / "src"
# (typer draws its own help with rich.table, so that one is not ours to avoid)
HEAVY = ["httpx", "cryptography", "sigstore", "rich.progress", "assay.oci.registry", "pygments"]


def _loaded_after(*argv: str) -> dict[str, bool]:
    """Which heavy modules ``assay ARGV`` (in a fresh interpreter) has imported when it exits."""
    code = (
        "import json, sys\n"
        f"sys.argv = ['assay', *{list(argv)!r}]\n"
        "from assay.cli.main import run\n"
        "try:\n    run()\nexcept SystemExit:\n    pass\n"
        f"print(json.dumps({{m: m in sys.modules for m in {HEAVY!r}}}), file=sys.stderr)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(SRC), COLUMNS="100")
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert r.returncode == 0, r.stderr
    loaded: dict[str, bool] = json.loads(r.stderr.strip().splitlines()[-1])
    return loaded


def test_the_table_names_every_command_with_its_help() -> None:
    group = typer.main.get_group(full_app())
    real = {name: (cmd.short_help or cmd.help or "") for name, cmd in group.commands.items()}
    missing = sorted(set(real) - set(COMMANDS))
    assert not missing, f"add {missing} to COMMANDS in src/assay/cli/main.py"
    assert set(COMMANDS) == set(real)
    for name, (_, summary) in COMMANDS.items():
        first = real[name].strip().split("\n\n")[0]
        assert " ".join(first.split()) == summary, name


def test_help_imports_no_heavy_library() -> None:
    loaded = _loaded_after("--help")
    assert not any(loaded.values()), loaded


def test_a_command_loads_only_what_it_uses() -> None:
    # scan's help needs neither the registry client nor crypto
    loaded = _loaded_after("scan", "--help")
    assert not loaded["cryptography"] and not loaded["sigstore"], loaded
    loaded = _loaded_after("verify", "--help")
    assert not loaded["sigstore"] and not loaded["httpx"], loaded


# What a command's help, or the start of a key-based verification, must not import: the
# registry's HTTP stack and the crypto (help), keyless verification, the store, Rego, pydantic,
# the webhook's web stack and httpx's own command-line client.
NOT_FOR_HELP = (
    "httpx",
    "httpcore",
    "cryptography",
    "sigstore",
    "sqlalchemy",
    "regopy",
    "pydantic",
    "rich.progress",
    "pygments",
    "jinja2",
    "starlette",
    "uvicorn",
    "assay.oci.registry",
    "assay.policy",
    "assay.store",
)
_VERIFY_NEEDS = {"httpx", "httpcore", "cryptography", "assay.oci.registry"}
NOT_FOR_VERIFY = (
    *(m for m in NOT_FOR_HELP if m not in _VERIFY_NEEDS),
    # the private-key KDF (scrypt): checking with a public key never derives a key
    "cryptography.hazmat.primitives.kdf",
)

_LINE = re.compile(r"import time:\s+\d+ \|\s+\d+ \|( *)(\S+)")


def _imports(stderr: str) -> dict[str, list[str]]:
    """Each module from ``-X importtime`` output -> the chain that imported it (outermost first).

    The output lists a module after everything it imported, each one indented by its depth, so
    the importer of a line is the next line that is less indented. (An import run inside a
    function, after start-up, begins a new chain at depth 0.)"""
    rows = [(len(m[1]) // 2, m[2]) for m in map(_LINE.match, stderr.splitlines()) if m]
    chains: dict[str, list[str]] = {}
    for i, (depth, name) in enumerate(rows):
        chain, want = [name], depth
        for d, parent in rows[i + 1 :]:
            if d < want:
                chain.insert(0, parent)
                want = d
                if d == 0:
                    break
        chains.setdefault(name, chain)
    return chains


def _offending(chains: dict[str, list[str]], forbidden: tuple[str, ...]) -> list[str]:
    """The import chains of forbidden modules (a module or any of its submodules)."""
    if "typer._adapters" in chains:
        # typer >= 0.29 coerces every parameter through pydantic itself (pyproject keeps typer
        # below it for that reason): that pydantic is typer's, not imported by assay.
        forbidden = tuple(f for f in forbidden if f != "pydantic")
    bad = []
    for name, chain in sorted(chains.items()):
        if any(name == f or name.startswith(f + ".") for f in forbidden):
            bad.append(" -> ".join(chain))
    return bad


def _script_imports(*args: str) -> dict[str, list[str]]:
    env = {"PYTHONPATH": str(SRC), "PYTHONPROFILEIMPORTTIME": "1", "COLUMNS": "100"}
    ran = run_script(*args, env=env, timeout=120)
    assert ran.returncode == 0, ran.stderr[-2000:]
    chains = _imports(ran.stderr)
    assert "assay.cli.main" in chains, ran.stderr[-2000:]  # the profile really was read
    return chains


def test_the_import_chains_are_read_from_importtime_output() -> None:
    sample = (
        "import time: self [us] | cumulative | imported package\n"
        "import time:        10 |         10 |     c\n"
        "import time:        10 |         20 |   b\n"
        "import time:        10 |         10 |   d\n"
        "import time:        10 |         40 | a\n"
        "import time:        10 |         10 | e\n"
    )
    chains = _imports(sample)
    assert chains == {
        "c": ["a", "b", "c"],
        "b": ["a", "b"],
        "d": ["a", "d"],
        "a": ["a"],
        "e": ["e"],
    }
    assert _offending(chains, ("c", "x")) == ["a -> b -> c"]
    assert _offending(chains, ("a",)) == ["a"]
    pydantic = {"pydantic.main": ["pydantic.main"]}
    assert _offending(pydantic, ("pydantic",)) == ["pydantic.main"]
    assert _offending({**pydantic, "typer._adapters": ["typer._adapters"]}, ("pydantic",)) == []


@pytest.mark.parametrize(
    "argv",
    [
        ("--help",),
        ("verify", "--help"),
        ("verify-attestation", "--help"),
        ("sign", "--help"),
        ("keygen", "--help"),
        ("push", "--help"),
        ("build", "--help"),
        ("update", "--help"),
    ],
    ids=" ".join,
)
def test_help_through_the_console_script_imports_no_heavy_library(argv: tuple[str, ...]) -> None:
    # the top-level help runs no command callback, so it needs no logging set up either
    extra = ("logging",) if argv == ("--help",) else ()
    bad = _offending(_script_imports(*argv), (*NOT_FOR_HELP, *extra))
    assert not bad, "\n".join(bad)


def test_the_http_module_keeps_httpcore_off_trio() -> None:
    """httpcore imports trio (0.1-0.2 s) for its async API under trio, which assay never uses."""
    code = (
        "import sys, assay._http, httpcore._synchronization as s\n"
        "print('trio' in sys.modules, s.trio is None)\n"
        "import trio\n"  # still importable for anyone who does use it
        "print('trio' in sys.modules)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(SRC))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["False", "True", "True"], r.stdout


def test_verify_starts_without_keyless_store_or_rego(tmp_path: Path) -> None:
    """``assay verify IMAGE --key K`` up to its first connection to the registry."""
    from assay.attest.keys import generate_keypair

    _, public_pem = generate_keypair(b"")
    pub = tmp_path / "cosign.pub"
    pub.write_bytes(public_pem)
    exe = shutil.which("assay")
    assert exe is not None, "the assay console script is not installed (pip install -e .)"
    env = dict(os.environ, PYTHONPATH=str(SRC), PYTHONPROFILEIMPORTTIME="1")
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        listener.settimeout(120)
        port = listener.getsockname()[1]
        argv = [exe, "verify", f"127.0.0.1:{port}/x:1", "--key", str(pub)]
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            conn, _ = listener.accept()  # the first request: everything verify needs is loaded
            conn.close()
        finally:
            proc.kill()
            _, err = proc.communicate(timeout=60)
    chains = _imports(err.decode(errors="replace"))
    assert "httpcore" in chains and "cryptography" in chains, sorted(chains)
    bad = _offending(chains, NOT_FOR_VERIFY)
    assert not bad, "\n".join(bad)


# The registry client and the crypto (most of verify's start-up) are loaded only once the
# arguments are checked and the key file is read: a usage error or a missing key says so first.
_REGISTRY_STACK = ("httpx", "httpcore", "cryptography", "assay.oci.registry", "assay.attest.remote")


@pytest.mark.parametrize(
    "argv",
    [
        ("verify", "registry.invalid/x:1", "--key", "MISSING"),
        ("verify", "registry.invalid/x:1", "--key", "KEY", "--platform", "linux"),
        ("verify", "registry.invalid/x:1"),
        ("verify", "registry.invalid/x:1", "registry.invalid/y:1", "--key", "KEY"),
        ("verify-attestation", "registry.invalid/x:1", "--key", "MISSING"),
        ("verify-attestation", "registry.invalid/x:1", "--key", "KEY", "--platform", "linux"),
    ],
    ids=lambda argv: " ".join(argv),
)
def test_verify_reports_bad_arguments_before_loading_the_registry_stack(
    tmp_path: Path, argv: tuple[str, ...]
) -> None:
    key = tmp_path / "cosign.pub"
    key.write_text("not read by this test\n")
    args = [{"MISSING": str(tmp_path / "missing.pub"), "KEY": str(key)}.get(a, a) for a in argv]
    env = {"PYTHONPATH": str(SRC), "PYTHONPROFILEIMPORTTIME": "1", "COLUMNS": "100"}
    ran = run_script(*args, env=env, timeout=120)
    assert ran.returncode == 2, ran.stderr[-2000:]
    messages = [ln for ln in ran.stderr.splitlines() if not ln.startswith("import time:")]
    assert len(messages) == 1 and messages[0].startswith("assay: error:"), messages
    chains = _imports(ran.stderr)
    assert "assay.cli.main" in chains, ran.stderr[-2000:]  # the profile really was read
    bad = _offending(chains, _REGISTRY_STACK)
    assert not bad, "\n".join(bad)


def _python(code: str) -> list[str]:
    env = dict(os.environ, PYTHONPATH=str(SRC))
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert r.returncode == 0, r.stderr
    return r.stdout.split()


def test_the_console_script_loads_modules_with_the_collector_paused_then_frozen() -> None:
    # the console script: collector paused while typer and the command load, then everything
    # they made frozen, and the collector running again for the command's own work
    seen = _python(
        "import atexit, gc, sys\n"
        "from assay.cli import _startup\n"
        "sys.argv = ['assay', 'verify', '--help']\n"
        "atexit.register(lambda: print(gc.isenabled(), gc.get_freeze_count() > 10000))\n"
        "from assay.cli.script import run\n"
        "run()\n"
    )
    assert seen[-2:] == ["True", "True"], seen
    inside = _python(
        "import gc\n"
        "from assay.cli import _startup\n"
        "_startup.enable()\n"
        "with _startup.loading():\n"
        "    print(gc.isenabled())\n"
        "print(gc.isenabled(), gc.get_freeze_count() > 0)\n"
    )
    assert inside == ["False", "True", "True"], inside


def test_importing_the_cli_leaves_the_collector_alone() -> None:
    # tests and other programs import assay.cli.main and run it in their own process
    seen = _python(
        "import gc, sys\n"
        "from assay.cli import _startup\n"
        "from assay.cli.main import run\n"
        "sys.argv = ['assay', '--version']\n"
        "try:\n    run()\nexcept SystemExit:\n    pass\n"
        "with _startup.loading():\n"
        "    print(gc.isenabled())\n"
        "print(gc.isenabled(), gc.get_freeze_count())\n"
    )
    assert seen[-3:] == ["True", "True", "0"], seen
