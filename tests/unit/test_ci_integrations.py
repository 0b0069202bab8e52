"""The GitHub Action, the GitLab CI template and the README's example pipelines.

Each file is checked against the published schema (check-jsonschema's vendored, offline copies),
and the shell the wrappers run is executed with a recording ``assay`` on PATH; every command line
it records must parse with the real assay CLI, so a renamed option breaks this test.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import typer
import yaml

ROOT = Path(__file__).resolve().parents[2]
ACTION = ROOT / "action.yml"
GITLAB = ROOT / "ci" / "gitlab" / "assay.gitlab-ci.yml"
README = ROOT / "README.md"
DIGEST = "sha256:" + "ab" * 32


def _validate(schema: str, path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, *extra, str(path)],
        capture_output=True,
        text=True,
        check=False,
    )


def _readme_example(kind: str) -> str:
    m = re.search(rf"<!-- ci-example: {kind} -->\n```yaml\n(.*?)```", README.read_text(), re.S)
    assert m, f"README has no '{kind}' CI example"
    return m.group(1)


def test_action_matches_the_github_actions_schema() -> None:
    r = _validate("vendor.github-actions", ACTION)
    assert r.returncode == 0, r.stdout + r.stderr


def _merge(base: dict[str, Any], child: dict[str, Any]) -> dict[str, Any]:
    """GitLab's ``extends`` merge: mappings merge key by key, anything else the child replaces."""
    out = dict(base)
    for k, v in child.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _resolve(doc: dict[str, Any], name: str) -> dict[str, Any]:
    job = dict(doc[name])
    parent = job.pop("extends", None)
    return _merge(_resolve(doc, parent), job) if parent else job


def _concrete(template: dict[str, Any], path: Path) -> Path:
    """The hidden jobs as the jobs a pipeline gets by extending them (the schema does not check
    hidden keys, so validating the template file alone would accept anything)."""
    doc: dict[str, Any] = {"stages": ["build", "test"]}
    for name in (".assay-build", ".assay-scan", ".assay-verify"):
        doc[name.lstrip(".")] = _resolve(template, name)
    path.write_text(yaml.safe_dump(doc))
    return path


def test_gitlab_template_matches_the_gitlab_ci_schema(tmp_path: Path) -> None:
    r = _validate("vendor.gitlab-ci", GITLAB, "--data-transform", "gitlab-ci")
    assert r.returncode == 0, r.stdout + r.stderr
    concrete = _concrete(yaml.safe_load(GITLAB.read_text()), tmp_path / "jobs.yml")
    r = _validate("vendor.gitlab-ci", concrete)
    assert r.returncode == 0, r.stdout + r.stderr


def test_readme_examples_match_their_schemas(tmp_path: Path) -> None:
    gh = tmp_path / "workflow.yml"
    gh.write_text(_readme_example("github"))
    r = _validate("vendor.github-workflows", gh)
    assert r.returncode == 0, r.stdout + r.stderr
    gl = tmp_path / "gitlab-ci.yml"
    gl.write_text(_readme_example("gitlab"))
    r = _validate("vendor.gitlab-ci", gl, "--data-transform", "gitlab-ci")
    assert r.returncode == 0, r.stdout + r.stderr


def test_the_validator_rejects_broken_files(tmp_path: Path) -> None:
    """The schema checks above can fail: a run step without shell, a job with an unknown key."""
    action = yaml.safe_load(ACTION.read_text())
    del next(s for s in action["runs"]["steps"] if "run" in s)["shell"]
    bad = tmp_path / "action.yml"
    bad.write_text(yaml.safe_dump(action))
    assert _validate("vendor.github-actions", bad).returncode == 1
    template = yaml.safe_load(GITLAB.read_text())
    template[".assay-build"]["scripts"] = template[".assay-build"].pop("script")
    assert _validate("vendor.gitlab-ci", _concrete(template, tmp_path / "jobs.yml")).returncode == 1


def test_action_shape() -> None:
    action = yaml.safe_load(ACTION.read_text())
    assert action["runs"]["using"] == "composite"
    declared = set(action["inputs"])
    assert {"spec", "push", "sign-key", "policy", "fail-on"} <= declared
    assert action["inputs"]["spec"]["required"] is True
    text = ACTION.read_text()
    assert set(re.findall(r"inputs\.([a-z-]+)", text)) <= declared
    step_ids = {s.get("id") for s in action["runs"]["steps"]}
    for out in action["outputs"].values():
        assert re.fullmatch(r"\$\{\{ steps\.([a-z]+)\.outputs\.[a-z-]+ \}\}", out["value"])
        assert out["value"].split(".")[1] in step_ids
    for step in action["runs"]["steps"]:
        if "run" in step:
            assert step["shell"] == "bash"
            # values reach the shell only through env, never pasted into the script
            assert "${{" not in step["run"], step["name"]
    install = next(s for s in action["runs"]["steps"] if "pip install" in s.get("run", ""))
    assert install["env"]["ACTION_PATH"] == "${{ github.action_path }}"


def test_gitlab_template_has_only_hidden_jobs() -> None:
    template = yaml.safe_load(GITLAB.read_text())
    assert {".assay-build", ".assay-scan", ".assay-verify"} <= set(template)
    assert all(name.startswith(".") for name in template)
    for name in (".assay-build", ".assay-scan", ".assay-verify"):
        assert template[name]["extends"] == ".assay-setup"
        assert template[name]["script"]


# --- the scripts, run with a recording assay -----------------------------------------------


def _fake_assay(tmp_path: Path) -> tuple[Path, Path]:
    """An ``assay`` that logs its argv (and the sign key's mode) and prints a digest for build."""
    bindir, log = tmp_path / "bin", tmp_path / "assay.log"
    bindir.mkdir()
    fake = bindir / "assay"
    fake.write_text(
        f"#!{sys.executable}\n"
        "import json, os, stat, sys\n"
        "a = sys.argv[1:]\n"
        "mode = None\n"
        "if '--sign-key' in a:\n"
        "    p = a[a.index('--sign-key') + 1]\n"
        "    mode = stat.S_IMODE(os.stat(p).st_mode)\n"
        f"with open({str(log)!r}, 'a') as f:\n"
        "    f.write(json.dumps({'argv': a, 'keymode': mode}) + '\\n')\n"
        f"if a[:1] == ['build']: print({DIGEST!r})\n"
    )
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    return bindir, log


def _calls(log: Path) -> list[dict[str, Any]]:
    import json

    return [json.loads(line) for line in log.read_text().splitlines()]


def _assert_parses(argv: list[str], cwd: Path) -> None:
    """The real assay CLI accepts ``assay ARGV``: the command is resolved and its parameters are
    parsed and converted (unknown options, missing values, bad choices and missing files fail),
    without running it. In-process, because ``--help`` would skip conversions."""
    from assay.cli.main import app

    cmd: Any = typer.main.get_command(app)
    ctx = cmd.make_context("assay", [], resilient_parsing=True)
    rest = list(argv)
    while hasattr(cmd, "get_command") and rest and rest[0] in cmd.list_commands(ctx):
        cmd = cmd.get_command(ctx, rest[0])
        ctx = cmd.make_context(rest.pop(0), [], parent=ctx, resilient_parsing=True)
    assert not hasattr(cmd, "get_command"), f"assay {' '.join(argv)}: no such command"
    old = Path.cwd()
    os.chdir(cwd)
    try:
        cmd.make_context(ctx.info_name, rest, parent=ctx.parent)
    except Exception as e:  # the bundled click's UsageError/BadParameter
        raise AssertionError(f"assay {' '.join(argv)}: {e}") from None
    finally:
        os.chdir(old)


def _workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    (ws / "image").mkdir(parents=True)
    (ws / "image" / "assay.yaml").write_text("contents: {packages: [base-files]}\n")
    (ws / "image" / "cosign.pub").write_text("key\n")
    (ws / "image" / "policy.yaml").write_text("{}\n")
    return ws


def _step(action: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in action["runs"]["steps"] if s["name"] == name)


def test_action_scripts_run_with_options_assay_accepts(tmp_path: Path) -> None:
    bindir, log = _fake_assay(tmp_path)
    ws = _workspace(tmp_path)
    runner_temp = tmp_path / "runner"
    runner_temp.mkdir()
    action = yaml.safe_load(ACTION.read_text())
    inputs = {
        "inputs.spec": "image/assay.yaml",
        "inputs.dest": "",
        "inputs.push": "localhost:5000/acme/app:1.4",
        "inputs.sign-key": "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nx\n-----END-----",
        "inputs.sign-key-password": "pw",
        "inputs.insecure-registry": "true",
        "inputs.debian-mirror": "",
        "inputs.verify-key": "image/cosign.pub",
        "inputs.policy": "image/policy.yaml\n\nimage/policy.yaml\n",
        "inputs.scan-feeds": "debian-tracker osv",
        "inputs.fail-on": "high",
    }
    outputs: dict[str, str] = {}

    def run(name: str) -> None:
        step = _step(action, name)
        env = {"PATH": f"{bindir}:{os.environ['PATH']}", "RUNNER_TEMP": str(runner_temp)}
        out = tmp_path / f"out-{step.get('id', 'x')}"
        out.write_text("")
        env["GITHUB_OUTPUT"] = str(out)
        for k, v in step.get("env", {}).items():
            expr = re.fullmatch(r"\$\{\{ (.+) \}\}", v)
            assert expr, v
            key = expr.group(1)
            env[k] = outputs[key] if key.startswith("steps.") else inputs[key]
        subprocess.run(["bash", "-c", step["run"]], cwd=ws, env=env, check=True)
        for line in out.read_text().splitlines():
            k, _, v = line.partition("=")
            outputs[f"steps.{step['id']}.outputs.{k}"] = v

    run("Build")
    assert outputs["steps.build.outputs.digest"] == DIGEST
    assert outputs["steps.build.outputs.image"] == f"localhost:5000/acme/app@{DIGEST}"
    assert not (runner_temp / "assay-cosign.key").exists(), "the private key file is left behind"
    run("Verify")
    run("Scan")
    calls = _calls(log)
    assert [c["argv"][0] for c in calls] == ["build", "verify", "db", "scan", "scan"]
    assert calls[0]["keymode"] == 0o600
    assert "--push" in calls[0]["argv"] and "--insecure-registry" in calls[0]["argv"]
    assert calls[1]["argv"].count("--policy") == 2
    assert calls[4]["argv"][-2:] == ["--fail-on", "high"]
    # the key file is gone by now: parse the build call with a stand-in at the same path
    (runner_temp / "assay-cosign.key").write_text("k")
    for c in calls:
        _assert_parses(c["argv"], ws)


def test_gitlab_scripts_run_with_options_assay_accepts(tmp_path: Path) -> None:
    bindir, log = _fake_assay(tmp_path)
    ws = _workspace(tmp_path)
    template = yaml.safe_load(GITLAB.read_text())
    key = tmp_path / "cosign.key"
    key.write_text("k")
    key.chmod(0o600)
    base = {
        "PATH": f"{bindir}:{os.environ['PATH']}",
        **template[".assay-setup"]["variables"],
        "ASSAY_CI_SPEC": "image/assay.yaml",
        "ASSAY_CI_PUSH": "localhost:5000/acme/app",
        "ASSAY_CI_SIGN_KEY": str(key),
        "ASSAY_CI_FAIL_ON": "critical",
        "ASSAY_CI_VERIFY_KEY": "image/cosign.pub",
        "ASSAY_CI_POLICY": "image/policy.yaml",
    }

    def run(job: str, env: dict[str, str]) -> None:
        script = "\n".join(template[job]["script"])
        subprocess.run(["sh", "-c", script], cwd=ws, env=env, check=True)

    run(".assay-build", base)
    dotenv = dict(line.split("=", 1) for line in (ws / "assay-build.env").read_text().splitlines())
    image = f"localhost:5000/acme/app@{DIGEST}"
    assert dotenv == {"ASSAY_CI_DIGEST": DIGEST, "ASSAY_CI_IMAGE": image}
    run(".assay-scan", base)
    run(".assay-verify", {**base, **dotenv})
    calls = _calls(log)
    assert [c["argv"][0] for c in calls] == ["build", "db", "scan", "scan", "verify"]
    assert calls[3]["argv"][-2:] == ["--fail-on", "critical"]
    for c in calls:
        _assert_parses(c["argv"], ws)


def test_gitlab_setup_without_install_requirement_stops(tmp_path: Path) -> None:
    template = yaml.safe_load(GITLAB.read_text())
    script = "\n".join(template[".assay-setup"]["before_script"])
    r = subprocess.run(
        ["sh", "-c", script],
        cwd=tmp_path,
        env={"PATH": os.environ["PATH"], "ASSAY_CI_INSTALL": ""},
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 2
    assert "ASSAY_CI_INSTALL" in r.stderr
