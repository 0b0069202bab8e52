"""assay's own JSON result: every finding, suppressed ones included with their VEX statement."""

from __future__ import annotations

import json
from typing import Any

from assay.vuln.model import Finding, ScanResult, Severity

__all__ = ["JsonFormatter", "finding_to_json", "result_to_json"]


def finding_to_json(f: Finding) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": f.id,
        "aliases": list(f.aliases),
        "severity": f.severity.value,
        "state": f.state.value,
        "package": {
            "name": f.package,
            "version": f.version,
            "purl": f.purl,
            "ecosystem": f.ecosystem,
        },
        "fixed_in": f.fixed_in or None,
        "reason": f.reason or None,
        "data_source": f.source,
        "severity_source": f.severity_source or None,
        "cvss": (
            {
                "score": f.cvss_score,
                "vector": f.cvss_vector,
                "source": f.cvss_source or None,
                "provider": f.cvss_provider or None,
            }
            if f.cvss_vector
            else None
        ),
        "debian_urgency": f.urgency or None,
        "kev": {"listed": f.kev, "due_date": f.kev_due or None},
        "epss": (
            {"score": f.epss, "percentile": f.epss_percentile} if f.epss is not None else None
        ),
        "first_seen": f.first_seen or None,
        "due_date": f.due_date or None,
        "description": f.description or None,
        "locations": list(f.locations),
        "vex_status": f.vex_status or None,
        "suppressed": f.suppressed,
        "suppressed_by": f.suppressed_by,
    }
    if f.source_name:
        out["package"]["source"] = {"name": f.source_name, "version": f.source_version}
    return out


def result_to_json(result: ScanResult) -> dict[str, Any]:
    by_sev = {s.value: 0 for s in sorted(Severity, key=lambda s: -s.rank)}
    for f in result.findings:
        if not f.suppressed:
            by_sev[f.severity.value] += 1
    return {
        "schema": "https://assay.dev/schemas/scan/v1",
        "subject": {
            "name": result.subject_name,
            "digest": result.subject_digest or None,
            "purl": result.subject_purl or None,
            "distro": result.distro or None,
        },
        "database": dict(sorted(result.db_built.items())),
        "summary": {
            "findings": len(result.findings),
            "unsuppressed": sum(1 for f in result.findings if not f.suppressed),
            "suppressed": sum(1 for f in result.findings if f.suppressed),
            "hidden_negligible": result.hidden_negligible,
            "unsuppressed_by_severity": by_sev,
        },
        "findings": [finding_to_json(f) for f in result.findings],
        "skipped": [{"purl": p or None, "reason": r} for p, r in result.skipped],
        "not_scanned": list(result.blind_spots),
        **({"updates": list(result.updates)} if result.updates is not None else {}),
    }


class JsonFormatter:
    def render(self, result: ScanResult) -> str:
        return json.dumps(result_to_json(result), indent=2, ensure_ascii=False) + "\n"


def _f(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def result_from_json(doc: Any, where: str = "scan result") -> ScanResult:
    """Read back a result written by :class:`JsonFormatter` (for ``vex apply``)."""
    from assay.errors import InputError
    from assay.vuln.model import State, VulnId

    if not isinstance(doc, dict):
        raise InputError(f"{where} is not an assay JSON scan result (not a JSON object)")
    try:
        if doc.get("schema") != "https://assay.dev/schemas/scan/v1":
            raise InputError(f"{where} is not an assay JSON scan result (schema field)")
        subj = doc["subject"]
        findings = []
        for f in doc["findings"]:
            pkg = f["package"]
            src = pkg.get("source") or {}
            cvss = f.get("cvss") or {}
            kev = f.get("kev") or {}
            epss = f.get("epss") or {}
            findings.append(
                Finding(
                    id=VulnId(str(f["id"])),
                    aliases=tuple(str(a) for a in f.get("aliases") or ()),
                    package=str(pkg["name"]),
                    version=str(pkg["version"]),
                    purl=str(pkg["purl"]),
                    ecosystem=str(pkg.get("ecosystem") or ""),
                    state=State(f["state"]),
                    severity=Severity(f["severity"]),
                    source=str(f.get("data_source") or ""),
                    source_name=str(src.get("name") or ""),
                    source_version=str(src.get("version") or ""),
                    fixed_in=str(f.get("fixed_in") or ""),
                    reason=str(f.get("reason") or ""),
                    urgency=str(f.get("debian_urgency") or ""),
                    cvss_score=_f(cvss.get("score")),
                    cvss_vector=str(cvss.get("vector") or ""),
                    severity_source=str(f.get("severity_source") or ""),
                    cvss_source=str(cvss.get("source") or ""),
                    cvss_provider=str(cvss.get("provider") or ""),
                    description=str(f.get("description") or ""),
                    kev=bool(kev.get("listed")),
                    kev_due=str(kev.get("due_date") or ""),
                    epss=_f(epss.get("score")),
                    epss_percentile=_f(epss.get("percentile")),
                    first_seen=str(f.get("first_seen") or ""),
                    due_date=str(f.get("due_date") or ""),
                    locations=tuple(str(x) for x in f.get("locations") or ()),
                    suppressed_by=f.get("suppressed_by") or None,
                    vex_status=str(f.get("vex_status") or ""),
                )
            )
        return ScanResult(
            subject_name=str(subj["name"]),
            subject_digest=str(subj.get("digest") or ""),
            subject_purl=str(subj.get("purl") or ""),
            distro=str(subj.get("distro") or ""),
            findings=tuple(findings),
            skipped=tuple(
                (str(s.get("purl") or ""), str(s["reason"])) for s in doc.get("skipped") or ()
            ),
            db_built={str(k): str(v) for k, v in (doc.get("database") or {}).items()},
            hidden_negligible=int(doc.get("summary", {}).get("hidden_negligible") or 0),
            blind_spots=tuple(str(x) for x in doc.get("not_scanned") or ()),
        )
    except KeyError as exc:
        raise InputError(
            f"{where} is not a valid assay JSON scan result: no {str(exc.args[0])[:40]!r} field; "
            "give the output of `assay scan -o json`"
        ) from None
    except (TypeError, ValueError, AttributeError):
        raise InputError(
            f"{where} is not a valid assay JSON scan result: a field has the wrong type or "
            "value; give the output of `assay scan -o json`"
        ) from None
