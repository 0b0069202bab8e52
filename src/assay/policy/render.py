"""Renderings of a :class:`Decision`: a table for people, JSON, and SARIF 2.1.0 for CI.

All three read the same decision object; nothing here decides anything.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from assay import __version__
from assay.policy.decision import CheckResult, Decision

__all__ = ["render_json", "render_sarif", "render_table"]

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_LEVEL = {"fail": "error", "error": "error", "warn": "warning"}


def render_json(decision: Decision) -> str:
    return json.dumps(decision.to_dict(), indent=2, sort_keys=True, ensure_ascii=True) + "\n"


def _clean(text: str) -> str:
    """One line, control characters shown escaped (outside input reaches these messages)."""
    out = []
    for ch in " ".join(text.split()):
        out.append(ch if ch.isprintable() else f"\\x{ord(ch):02x}")
    return "".join(out)


def render_table(decision: Decision) -> str:
    lines = []
    for image in decision.images:
        verdict = image.result.upper()
        lines.append(f"{verdict:5}  {_clean(image.reference)}")
        if image.digest:
            lines.append(f"       digest   {image.digest}")
        for policy in image.policies:
            lines.append(
                f"       policy   {_clean(policy.name)} [{policy.mode}] {policy.status}"
                + (f": {_clean(policy.reason)}" if policy.status != "pass" else "")
            )
            for item in (*policy.authorities, *policy.checks):
                lines.extend(_item_lines(item, 16))
        if not image.policies:
            lines.append(f"       {_clean(image.message)}")
        for warning in image.warnings:
            lines.append(f"       warning  {_clean(warning)}")
    verdict = "admitted" if decision.allowed else "denied"
    lines.append(f"{len(decision.images)} image(s) {verdict}")
    return "\n".join(lines) + "\n"


def _item_lines(item: CheckResult, indent: int) -> list[str]:
    pad = " " * indent
    out = [f"{pad}{item.status:7} {_clean(item.name)}: {_clean(item.reason)}"]
    for child in item.children:
        out.extend(_item_lines(child, indent + 2))
    return out


def _location(uri: str, image: str) -> dict[str, Any]:
    return {
        "physicalLocation": {"artifactLocation": {"uri": uri}},
        "logicalLocations": [{"name": image, "kind": "module"}],
    }


def render_sarif(decision: Decision, policy_files: Mapping[str, str] | None = None) -> str:
    """SARIF 2.1.0: one result per failing/warning policy, authority-less check or no-match.

    ``policy_files`` maps a policy name to the file it came from (the result's location).
    """
    files = dict(policy_files or {})
    rules: dict[str, dict[str, Any]] = {}
    results: list[dict[str, Any]] = []

    def rule(rule_id: str, text: str, controls: Sequence[str] = ()) -> None:
        if rule_id not in rules:
            entry: dict[str, Any] = {"id": rule_id, "shortDescription": {"text": text}}
            if controls:
                entry["properties"] = {"tags": sorted(controls)}
            rules[rule_id] = entry

    for image in decision.images:
        ref = image.reference
        if not image.policies and image.status != "pass":
            rule("no-matching-policies", "No policy matches the image")
            results.append(
                {
                    "ruleId": "no-matching-policies",
                    "level": _LEVEL.get(image.status, "note")
                    if image.result == "deny"
                    else "warning",
                    "message": {"text": _clean(image.message)},
                    "locations": [_location(ref, ref)],
                }
            )
        for policy in image.policies:
            if policy.status == "pass" and not policy.warnings:
                continue
            uri = files.get(policy.name, ref)
            failing = [c for c in policy.checks if c.status in ("fail", "error")]
            if failing:
                for check in failing:
                    rid = f"{policy.name}/{check.name}"
                    rule(rid, f"{policy.name}: {check.name}", check.controls)
                    results.append(
                        {
                            "ruleId": rid,
                            "level": "warning" if policy.mode == "warn" else "error",
                            "message": {"text": f"{ref}: {_clean(check.reason)}"},
                            "locations": [_location(uri, ref)],
                            "properties": {"status": check.status, "digest": image.digest},
                        }
                    )
                continue
            rule(policy.name, f"policy {policy.name}")
            text = policy.reason if policy.status != "pass" else "; ".join(policy.warnings)
            results.append(
                {
                    "ruleId": policy.name,
                    "level": _LEVEL.get(policy.status, "warning"),
                    "message": {"text": f"{ref}: {_clean(text)}"},
                    "locations": [_location(uri, ref)],
                    "properties": {"status": policy.status, "digest": image.digest},
                }
            )
    doc = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "assay",
                        "version": __version__,
                        "rules": [rules[k] for k in sorted(rules)],
                    }
                },
                "results": results,
            }
        ],
    }
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"
