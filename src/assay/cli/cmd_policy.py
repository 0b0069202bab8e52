"""``assay policy lint`` and the ``--policy`` side of ``assay verify``."""

from __future__ import annotations

import enum
import json
from collections.abc import Sequence
from pathlib import Path

import typer

from assay.cli import _console
from assay.errors import UsageError


class PolicyOutput(enum.StrEnum):
    table = "table"
    json = "json"
    sarif = "sarif"


class LintOutput(enum.StrEnum):
    table = "table"
    json = "json"


class NoMatch(enum.StrEnum):
    deny = "deny"
    warn = "warn"
    allow = "allow"


class OnError(enum.StrEnum):
    deny = "deny"
    allow = "allow"


def verify_with_policy(
    images: Sequence[str],
    policies: Sequence[Path],
    *,
    output: str,
    no_match: str,
    on_error: str,
    insecure_registry: bool,
    timeout: float = 30.0,
) -> None:
    """Decide ``images`` with the policy engine; print the decision; exit 0 admit, 1 deny."""
    from assay.attest.remote import parse_image_ref
    from assay.policy import Engine, load_policies
    from assay.policy.render import render_json, render_sarif, render_table

    if output not in {o.value for o in PolicyOutput}:
        raise UsageError(f"-o {output}: with --policy use table, json or sarif")
    if no_match not in {o.value for o in NoMatch}:
        raise UsageError(f"--no-match {no_match}: use deny, warn or allow")
    if on_error not in {o.value for o in OnError}:
        raise UsageError(f"--on-error {on_error}: use deny or allow")
    policy_set = load_policies(list(policies))
    hosts = frozenset(parse_image_ref(i).host for i in images) if insecure_registry else frozenset()
    if insecure_registry:
        _console.warn("--insecure-registry: talking to registries without TLS verification")
    if on_error == "allow":
        _console.warn("--on-error allow: images that cannot be checked are admitted (fail open)")
    with Engine(
        policy_set,
        no_match=no_match,  # type: ignore[arg-type]
        on_error=on_error,  # type: ignore[arg-type]
        insecure_registries=hosts,
        timeout=timeout,
    ) as engine:
        decision = engine.decide(list(images))
    if output == PolicyOutput.json:
        _console.emit(render_json(decision))
    elif output == PolicyOutput.sarif:
        files = {p.name: p.where.rsplit("#", 1)[0] for p in policy_set.policies}
        _console.emit(render_sarif(decision, files))
    else:
        _console.emit(render_table(decision))
    for warning in decision.warnings:
        _console.warn(warning)
    if not decision.allowed:
        for image in decision.images:
            if image.result == "deny":
                _console.error(f"{image.reference}: {image.message}")
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    group = typer.Typer(
        name="policy",
        help="Check ClusterImagePolicy and ImagePolicy files (decide with: assay verify --policy).",
        no_args_is_help=True,
    )

    @group.command("lint")
    def lint(
        paths: list[Path] = typer.Argument(..., help="Policy files or directories."),
        output: LintOutput = typer.Option(
            LintOutput.table,
            "--output",
            "-o",
            envvar="ASSAY_POLICY_LINT_OUTPUT",
            help="table or json",
        ),
        strict: bool = typer.Option(
            False, "--strict", help="Exit 1 when anything is unsupported or a pitfall is found."
        ),
    ) -> None:
        """Validate policies with policy-controller's rules; name what assay cannot evaluate
        and warn on known pitfalls. Exit 0 valid, 2 invalid, 1 with --strict and findings."""
        from assay.policy import load_policies
        from assay.policy.lint import lint_policies

        policy_set = load_policies(paths)
        findings = lint_policies(policy_set.policies)
        if output is LintOutput.json:
            doc = {
                "policies": [
                    {"name": p.name, "kind": p.kind, "where": p.where} for p in policy_set.policies
                ],
                "digest": policy_set.digest,
                "findings": [f.to_dict() for f in findings],
            }
            _console.emit(json.dumps(doc, indent=2, sort_keys=True) + "\n")
        else:
            lines = [f"{f.level:11} {f.where} {f.policy} {f.field}: {f.message}" for f in findings]
            lines.append(f"{len(policy_set.policies)} policies valid; {len(findings)} finding(s)")
            _console.emit("\n".join(lines) + "\n")
        if strict and findings:
            raise typer.Exit(1)

    app.add_typer(group)
