"""The command-line contract (README "Command-line conventions"), checked on every command.

Walks every parameter of the real ``assay`` app, so a new command that breaks a rule fails here.
"""

from __future__ import annotations

import enum
import types
import typing
from collections import defaultdict
from pathlib import Path
from typing import Any

from fixtures.cli import Param, walk_params

README = Path(__file__).resolve().parents[2] / "README.md"
PARAMS = walk_params()
VISIBLE = [p for p in PARAMS if p.kind == "option" and not p.hidden]


def _where(p: Param) -> str:
    return f"assay {' '.join(p.command)} {'/'.join(p.decls) or p.name}"


def _meaning(p: Param) -> tuple[Any, ...]:
    """What a value of this option means: its long name and its value set (Optional ignored)."""
    ann: Any = p.annotation
    args = [a for a in typing.get_args(ann) if a is not type(None)]
    if isinstance(ann, types.UnionType) or typing.get_origin(ann) is typing.Union:
        ann = args[0] if len(args) == 1 else ann
    if typing.get_origin(ann) is list:
        (ann,) = typing.get_args(ann)
    values: Any = ann
    if isinstance(ann, type) and issubclass(ann, enum.Enum):
        values = frozenset(m.value for m in ann)
    long = next((d for d in p.decls if d.startswith("--")), "")
    return long, values


def test_walk_sees_the_commands() -> None:
    commands = {p.command for p in PARAMS}
    # a broken walker would make every rule below pass vacuously
    assert {("build",), ("sbom",), ("scan",), ("verify",), ("vex", "apply")} <= commands
    assert len(VISIBLE) > 50


def test_o_is_always_output_and_always_a_format_choice() -> None:
    bad = []
    for p in VISIBLE:
        if "-o" in p.decls or "--output" in p.decls:
            choice = isinstance(p.annotation, type) and issubclass(p.annotation, enum.Enum)
            if set(p.decls) != {"-o", "--output"} or not choice:
                bad.append(_where(p))
    assert not bad, f"-o/--output must be a FORMAT choice: {bad}"


def test_no_json_format_or_capital_o_flags() -> None:
    banned = {"--json", "--format", "-O", "-f"}
    bad = [_where(p) for p in VISIBLE if banned & set(p.decls)]
    assert not bad, f"use -o FORMAT / --file PATH instead: {bad}"


def test_file_options_are_paths() -> None:
    files = [p for p in VISIBLE if "--file" in p.decls]
    assert files
    bad = [_where(p) for p in files if p.decls != ("--file",) or Path not in _types(p)]
    assert not bad, bad


def _types(p: Param) -> set[Any]:
    return {p.annotation, *typing.get_args(p.annotation)}


def test_hidden_options_are_deprecated_aliases() -> None:
    hidden = [p for p in PARAMS if p.hidden]
    bad = [_where(p) for p in hidden if "deprecated" not in p.help.lower()]
    assert not bad, bad


def test_one_env_var_per_option_and_one_meaning_per_env_var() -> None:
    meanings: dict[str, set[tuple[Any, ...]]] = defaultdict(set)
    where: dict[str, list[str]] = defaultdict(list)
    for p in PARAMS:
        assert len(p.envvar) <= 1, f"{_where(p)} reads several variables: {p.envvar}"
        for var in p.envvar:
            assert var.startswith("ASSAY_"), f"{_where(p)}: {var} is not an ASSAY_* variable"
            meanings[var].add(_meaning(p))
            where[var].append(_where(p))
    assert "ASSAY_OUTPUT" not in meanings  # one variable once fed several -o value sets
    shared = {v: where[v] for v, m in meanings.items() if len(m) > 1}
    assert not shared, f"one variable, several meanings: {shared}"


def test_every_env_var_is_in_the_readme() -> None:
    text = README.read_text()
    assert "## Command-line conventions" in text
    missing = sorted({v for p in PARAMS for v in p.envvar if f"`{v}`" not in text})
    assert not missing, f"README does not list {missing}"


def test_cli_format_choices_match_the_library() -> None:
    from assay.cli._choices import ScanFormat
    from assay.vuln.formats import OutputFormat

    assert {f.value for f in ScanFormat} == {f.value for f in OutputFormat}


def test_every_command_renders_its_help() -> None:
    """--help of every command renders (rich reads "[...]" in help text as markup: an unescaped
    "[/variant]" made `assay verify --help` crash)."""
    from typer.testing import CliRunner

    from assay.cli.main import app

    runner = CliRunner()
    commands = sorted({p.command for p in PARAMS})
    assert len(commands) > 20
    bad = []
    for command in commands:
        result = runner.invoke(app, [*command, "--help"])
        if result.exit_code != 0 or "Usage" not in result.output:
            bad.append(
                f"assay {' '.join(command)} --help: exit {result.exit_code} {result.exception!r}"
            )
    assert not bad, bad
