"""Usage errors of the installed ``assay`` console script: one line on stderr, exit 2.

Every command is tried (unknown option, missing argument, a value outside an option's list, a
number that is not one, a bad value in an option's environment variable), through the real
console script in a subprocess, as a user would meet them.
"""

from __future__ import annotations

import enum
import os
import shutil
import subprocess
import typing
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from fixtures.cli import Ran, run_inprocess, walk_params

SRC = Path(__file__).resolve().parents[2] / "src"
PARAMS = walk_params()
COMMANDS = sorted({p.command for p in PARAMS})


def _assay(
    args: list[str], extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("assay")
    assert exe, "the assay console script is not installed (pip install -e .)"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")}
    env.pop("COSIGN_PASSWORD", None)
    env.update(PYTHONPATH=str(SRC), COLUMNS="200", **(extra_env or {}))
    return subprocess.run(
        [exe, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def _one_line_usage_error(r: subprocess.CompletedProcess[str] | Ran, args: list[str]) -> str:
    lines = r.stderr.splitlines()
    assert r.returncode == 2, f"assay {' '.join(args)}: exit {r.returncode}\n{r.stderr[-2000:]}"
    assert len(lines) == 1, f"assay {' '.join(args)}: {len(lines)} lines\n{r.stderr[-2000:]}"
    assert lines[0].startswith("assay: error: "), lines[0]
    assert "Traceback" not in r.stderr and r.stdout == ""
    return lines[0]


def _filler(command: tuple[str, ...], skip: str) -> list[str]:
    """Values for the command's required parameters (after the one under test)."""
    args: list[str] = []
    for p in PARAMS:
        if p.command == command and p.required and p.name != skip:
            args += ["x"] if p.kind == "argument" else [p.decls[0], "x"]
    return args


def _bare(ann: typing.Any) -> typing.Any:
    args = [a for a in typing.get_args(ann) if a is not type(None)]
    return args[0] if len(args) == 1 else ann


def _console_cases() -> list[tuple[list[str], dict[str, str], str]]:
    """Per command, through the console script: (argv, extra env, a word the line contains)."""
    cases: list[tuple[list[str], dict[str, str], str]] = [
        (["no-such-command"], {}, "no-such-command"),
        (["--no-such-option"], {}, "--no-such-option"),
    ]
    # a value of another command's -o in verify's variable once crashed it (issue 11)
    (verify_var,) = next(
        p.envvar for p in PARAMS if p.command == ("verify",) and p.name == "output"
    )
    cases.append((["verify", "x"], {verify_var: "spdx-json"}, "spdx-json"))
    for cmd in COMMANDS:
        cases.append(([*cmd, "--no-such-option", *_filler(cmd, "")], {}, "--no-such-option"))
        if any(p.required for p in PARAMS if p.command == cmd):
            cases.append(([*cmd], {}, "Missing"))
    return cases


def _value_cases() -> list[tuple[list[str], dict[str, str], str]]:
    """Per option, in-process: a value outside the list, not a number, a bad env value."""
    cases: list[tuple[list[str], dict[str, str], str]] = []
    for p in PARAMS:
        if p.kind != "option" or p.hidden:
            continue
        ann = _bare(p.annotation)
        flag = p.decls[0]
        rest = _filler(p.command, p.name)
        if isinstance(ann, type) and issubclass(ann, enum.Enum):
            cases.append(([*p.command, flag, "not-a-choice", *rest], {}, "not-a-choice"))
            for var in p.envvar:  # e.g. ASSAY_VERIFY_OUTPUT=spdx-json must not crash
                cases.append(([*p.command, *rest], {var: "not-a-choice"}, ""))
        elif ann in (int, float):
            cases.append(([*p.command, flag, "not-a-number", *rest], {}, flag))
    return cases


CONSOLE_CASES = _console_cases()
VALUE_CASES = _value_cases()


def test_cases_cover_every_kind() -> None:
    assert len(CONSOLE_CASES) > 2 * 20 and len(VALUE_CASES) > 20
    assert {"Missing", "--no-such-option"} <= {w for _, _, w in CONSOLE_CASES}
    assert any(a[-1:] != ["x"] and "not-a-choice" in a for a, _, _ in VALUE_CASES)
    assert any(env for _, env, _ in VALUE_CASES)
    assert any(w == "--jobs" for _, _, w in VALUE_CASES)


def _failures(
    cases: Sequence[tuple[list[str], dict[str, str], str]],
    results: Sequence[subprocess.CompletedProcess[str] | Ran],
) -> list[str]:
    """Why each case whose result is not a one-line usage error naming its word fails."""
    failures = []
    for (args, env, word), r in zip(cases, results, strict=True):
        try:
            line = _one_line_usage_error(r, args)
            assert word in line, f"assay {' '.join(args)} {env}: {word!r} not in {line!r}"
        except AssertionError as exc:
            failures.append(str(exc))
    return failures


def test_console_script_usage_errors_are_one_line_and_exit_2() -> None:
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda c: _assay(c[0], c[1]), CONSOLE_CASES))
    failures = _failures(CONSOLE_CASES, results)
    assert not failures, "\n".join(failures[:20])


def test_bad_values_are_one_line_and_exit_2() -> None:
    base = {k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")}
    results = [run_inprocess(*args, env={**base, **env}) for args, env, _ in VALUE_CASES]
    failures = _failures(VALUE_CASES, results)
    assert not failures, "\n".join(failures[:20])


def test_old_spellings_are_usage_errors_or_warn() -> None:
    # -o was a file in vex create: now a usage error, not a silently different meaning
    r = _assay(["vex", "merge", "a.json", "-o", "out.json"])
    _one_line_usage_error(r, ["vex", "merge"])
    # build --output was the destination: the format list does not contain it
    r = _assay(["build", "spec.yaml", "--output", "oci:out"])
    assert "oci:out" in _one_line_usage_error(r, ["build"])


def test_help_and_version_exit_0() -> None:
    for args in (["--help"], ["--version"], ["verify", "--help"], ["vex", "apply", "--help"]):
        r = _assay(args)
        assert r.returncode == 0 and r.stdout and not r.stderr, (args, r.stderr)


def test_keygen_without_a_terminal_names_assay_password(tmp_path: Path) -> None:
    prefix = tmp_path / "k"
    r = _assay(["keygen", "--output-key-prefix", str(prefix)])  # stdin is not a TTY here
    line = _one_line_usage_error(r, ["keygen"])
    assert "ASSAY_PASSWORD" in line
    assert not list(tmp_path.iterdir())
    r = _assay(["keygen", "--output-key-prefix", str(prefix)], {"ASSAY_PASSWORD": ""})
    assert r.returncode == 0, r.stderr
    assert prefix.with_suffix(".key").is_file() and prefix.with_suffix(".pub").is_file()


def test_old_spellings_still_work_with_a_warning(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")}
    spec = tmp_path / "spec.yaml"
    spec.write_text("contents: 1\n")
    cases = [
        (["build", str(spec), "-O", f"oci:{tmp_path}/o"], "build -O is deprecated"),
        (["build", str(spec), "--dest", f"oci:{tmp_path}/o", "--json"], "build --json"),
        (["sbom", f"dir:{tmp_path}/none", "-f", str(tmp_path / "s.json")], "sbom -f"),
        (
            ["vex", "apply", str(tmp_path / "r.json"), "--vex", "v", "--format", "json"],
            "vex apply --format",
        ),
    ]
    for args, warning in cases:
        r = run_inprocess(*args, env=env)
        assert f"assay: warning: {warning}" in r.stderr, (args, r.stderr)
        assert r.returncode != 0  # each then fails on its (deliberately bad) input


def test_an_unusable_key_file_is_named_in_the_error(tmp_path: Path) -> None:
    """Every command taking a --key names the file when it is no key at all (a cosign.pub mixed
    up with another file is the usual mistake), for public and private keys alike."""
    not_pem = tmp_path / "notes.txt"
    not_pem.write_text("this is no key\n")
    cases = [
        ["verify", "registry.invalid/x:1", "--key", str(not_pem)],
        ["verify-attestation", "registry.invalid/x:1", "--key", str(not_pem)],
        ["sign", "registry.invalid/x:1", "--key", str(not_pem)],
    ]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda a: _assay(a, {"ASSAY_PASSWORD": ""}), cases))
    for args, r in zip(cases, results, strict=True):
        line = _one_line_usage_error(r, args)
        assert f"{not_pem}: " in line and "not a PEM block" in line, line
