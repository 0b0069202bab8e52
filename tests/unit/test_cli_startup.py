"""Start-up: ``assay --help`` imports no command module; a command imports only its own.

The command table in cli/main.py draws ``--help`` without importing the commands; it must name
every command the modules register, with their own one-line help.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import typer
import typer.main

from assay.cli.main import COMMANDS, full_app

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
    # verify with a key needs httpx and cryptography, but not sigstore (keyless only)
    loaded = _loaded_after("verify", "--help")
    assert not loaded["sigstore"], loaded
    # httpx without its own command-line client (click, rich, pygments)
    assert loaded["httpx"] and not loaded["pygments"], loaded
