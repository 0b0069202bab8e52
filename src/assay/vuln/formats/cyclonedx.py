"""CycloneDX 1.6 VEX (a BOM whose ``vulnerabilities`` carry ``analysis``) for the scan result."""

from __future__ import annotations

import json
import uuid
from typing import Any

from assay import __version__
from assay.vuln.model import Finding, ScanResult, Severity, State

__all__ = ["CycloneDxVexFormatter"]

_JUSTIFICATION = {
    "component_not_present": "code_not_present",
    "vulnerable_code_not_present": "code_not_present",
    "vulnerable_code_not_in_execute_path": "code_not_reachable",
    "vulnerable_code_cannot_be_controlled_by_adversary": "protected_by_mitigating_control",
    "inline_mitigations_already_exist": "protected_by_mitigating_control",
}


def _rating(f: Finding) -> dict[str, Any]:
    r: dict[str, Any] = {
        "severity": "info" if f.severity is Severity.NEGLIGIBLE else f.severity.value
    }
    if f.cvss_vector and f.cvss_score is not None:
        r["score"] = f.cvss_score
        r["vector"] = f.cvss_vector
        r["method"] = (
            "CVSSv4"
            if f.cvss_vector.startswith("CVSS:4")
            else ("CVSSv31" if f.cvss_vector.startswith("CVSS:3.1") else "CVSSv3")
        )
    else:
        r["method"] = "other"
    if f.cvss_vector and f.cvss_source == "nvd":
        r["source"] = {"name": "NVD"}
    else:
        r["source"] = {"name": "Debian security tracker" if f.source == "debian-tracker" else "OSV"}
    return r


def _analysis(f: Finding) -> dict[str, Any]:
    sb = f.suppressed_by
    if sb is not None:
        if sb.get("status") == "fixed":
            return {"state": "resolved", "detail": sb.get("status_notes") or "fixed (OpenVEX)"}
        a: dict[str, Any] = {"state": "not_affected"}
        j = _JUSTIFICATION.get(str(sb.get("justification") or ""))
        if j:
            a["justification"] = j
        a["detail"] = str(sb.get("impact_statement") or sb.get("justification") or "OpenVEX")
        return a
    if f.vex_status == "under_investigation" or f.state is State.UNDETERMINED:
        return {"state": "in_triage"}
    a = {"state": "exploitable"}
    if f.state is State.WONT_FIX:
        a["response"] = ["will_not_fix"]
        a["detail"] = f.reason
    elif f.fixed_in:
        a["response"] = ["update"]
        a["detail"] = f"fixed in {f.fixed_in}"
    return a


class CycloneDxVexFormatter:
    def render(self, result: ScanResult) -> str:
        seed = f"{result.subject_name}|{result.subject_digest}|" + "|".join(
            f"{f.id}:{f.purl}" for f in result.findings
        )
        serial = uuid.uuid5(uuid.NAMESPACE_URL, "assay-vex:" + seed)
        root_ref = result.subject_purl or f"subject:{result.subject_name}"
        components: dict[str, dict[str, Any]] = {}
        vulns: dict[str, dict[str, Any]] = {}
        for f in result.findings:
            components.setdefault(
                f.purl,
                {
                    "type": "library",
                    "bom-ref": f.purl,
                    "name": f.package,
                    "version": f.version,
                    "purl": f.purl,
                },
            )
            key = f"{f.id}|{f.purl}"
            v: dict[str, Any] = {
                "bom-ref": key,
                "id": f.id,
                "source": {
                    "name": "Debian security tracker" if f.source == "debian-tracker" else "OSV"
                },
                "ratings": [_rating(f)],
            }
            if f.aliases:
                v["references"] = [
                    {"id": a, "source": {"name": a.split("-", 1)[0]}} for a in f.aliases
                ]
            if f.description:
                v["description"] = f.description
            if f.fixed_in:
                v["recommendation"] = f"Upgrade {f.package} to a version including {f.fixed_in}"
            v["analysis"] = _analysis(f)
            v["affects"] = [{"ref": f.purl}]
            if f.kev:
                v["properties"] = [{"name": "assay:kev:dueDate", "value": f.kev_due}]
            vulns[key] = v
        doc = {
            "bomFormat": "CycloneDX",
            "specVersion": "1.6",
            "serialNumber": f"urn:uuid:{serial}",
            "version": 1,
            "metadata": {
                "tools": {
                    "components": [{"type": "application", "name": "assay", "version": __version__}]
                },
                "component": {
                    "type": "container",
                    "bom-ref": root_ref,
                    "name": result.subject_name,
                    **({"version": result.subject_digest} if result.subject_digest else {}),
                    **({"purl": result.subject_purl} if result.subject_purl else {}),
                },
            },
            "components": [components[k] for k in sorted(components)],
            "vulnerabilities": [vulns[k] for k in sorted(vulns)],
        }
        return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
