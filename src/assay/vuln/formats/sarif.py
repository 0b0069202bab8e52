"""SARIF 2.1.0: one rule per vulnerability id, one result per (vulnerability, package).

``level`` comes from the severity; ``properties.security-severity`` (the score code-scanning
tools sort by) is the CVSS base score when the severity came from CVSS, else a representative
score for the severity band. Suppressed findings stay, with a SARIF ``suppressions`` entry.
"""

from __future__ import annotations

import json
from typing import Any

from assay import __version__
from assay.vuln.model import Finding, ScanResult, Severity

__all__ = ["SarifFormatter", "level_for", "security_severity"]

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"

_BAND = {
    Severity.CRITICAL: "9.5",
    Severity.HIGH: "8.0",
    Severity.MEDIUM: "5.5",
    Severity.LOW: "2.0",
    Severity.NEGLIGIBLE: "0.0",
    Severity.UNKNOWN: "0.0",
}


def level_for(sev: Severity) -> str:
    if sev in (Severity.CRITICAL, Severity.HIGH):
        return "error"
    if sev is Severity.MEDIUM:
        return "warning"
    return "note"


def security_severity(f: Finding) -> str:
    if f.cvss_score is not None and f.cvss_vector and f.severity_source in ("nvd", "osv"):
        return f"{f.cvss_score:.1f}"
    return _BAND[f.severity]


def _uri(f: Finding) -> str:
    if f.locations:
        return f.locations[0].lstrip("/")
    return f.purl


def _message(f: Finding) -> str:
    text = f"{f.package} {f.version} is affected by {f.id} ({f.severity.value}, {f.state.value})"
    if f.fixed_in:
        text += f"; fixed in {f.fixed_in}"
    if f.reason:
        text += f"; {f.reason}"
    return text + "."


class SarifFormatter:
    def render(self, result: ScanResult) -> str:
        worst: dict[str, Finding] = {}
        for f in result.findings:
            cur = worst.get(f.id)
            if cur is None or f.severity.rank > cur.severity.rank:
                worst[f.id] = f
        rule_ids = sorted(worst)
        index = {rid: i for i, rid in enumerate(rule_ids)}
        rules = []
        for rid in rule_ids:
            f = worst[rid]
            rule: dict[str, Any] = {
                "id": rid,
                "name": rid.replace("-", ""),
                "shortDescription": {"text": f"{rid} ({f.severity.value})"},
                "fullDescription": {"text": f.description or rid},
                "defaultConfiguration": {"level": level_for(f.severity)},
                "properties": {
                    "security-severity": security_severity(f),
                    "tags": ["security", "vulnerability", f.severity.value],
                },
            }
            if f.aliases:
                rule["properties"]["aliases"] = list(f.aliases)
            rules.append(rule)
        results = []
        for f in result.findings:
            res: dict[str, Any] = {
                "ruleId": f.id,
                "ruleIndex": index[f.id],
                "level": level_for(f.severity),
                "message": {"text": _message(f)},
                "locations": [
                    {
                        "physicalLocation": {"artifactLocation": {"uri": _uri(f)}},
                        "logicalLocations": [{"name": f.package, "fullyQualifiedName": f.purl}],
                    }
                ],
                "partialFingerprints": {"assay/v1": f"{f.id}|{f.purl}"},
                "properties": {
                    "security-severity": security_severity(f),
                    "severity": f.severity.value,
                    "severitySource": f.severity_source,
                    "cvssVector": f.cvss_vector,
                    "state": f.state.value,
                    "purl": f.purl,
                    "installedVersion": f.version,
                    "fixedVersion": f.fixed_in,
                    "kev": f.kev,
                    "dueDate": f.due_date,
                },
            }
            if f.suppressed_by is not None:
                sb = f.suppressed_by
                just = sb.get("justification") or sb.get("impact_statement") or sb.get("status", "")
                res["suppressions"] = [
                    {
                        "kind": "external",
                        "status": "accepted",
                        "justification": f"OpenVEX {sb.get('status')}: {just}",
                        "properties": {"openvex": sb},
                    }
                ]
            results.append(res)
        doc = {
            "$schema": SCHEMA,
            "version": "2.1.0",
            "runs": [
                {
                    "tool": {
                        "driver": {
                            "name": "assay",
                            "version": __version__,
                            "semanticVersion": __version__,
                            "rules": rules,
                        }
                    },
                    "automationDetails": {"id": f"assay-scan/{result.subject_name}"},
                    "invocations": [
                        {
                            "executionSuccessful": True,
                            "toolExecutionNotifications": [
                                {"level": "warning", "message": {"text": f"not scanned: {spot}"}}
                                for spot in result.blind_spots
                            ],
                        }
                    ],
                    "results": results,
                    "properties": {
                        "subject": result.subject_name,
                        "digest": result.subject_digest,
                    },
                }
            ],
        }
        return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
