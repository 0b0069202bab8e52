"""Evaluate one image's verified evidence against the control catalog.

Each control comes out ``satisfied``, ``not-satisfied`` (with the reason), ``not-applicable``
(the policy engine skipped every check it names, saying why) or ``not-assessed`` (nothing
assay can verify shows it, or the policy checks it relies on were not run). Missing evidence
never counts as a pass: a control that needs an SBOM and has no verified SBOM attestation is
not satisfied.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from assay.compliance.catalog import Catalog, Control
from assay.compliance.model import (
    REMEDIATION_DAYS,
    ControlResult,
    EvidenceRef,
    FrameworkResult,
    ImageEvidence,
    Report,
    ReportFinding,
    Result,
)
from assay.policy import CheckResult

__all__ = ["deadline", "evaluate", "policy_checks"]

#: Checks that only ask whether a kind of evidence exists; the evidence itself shows them.
_EXISTENCE_CHECKS = frozenset({"sbom", "provenance", "signatures"})

_KIND_WORDS = {
    "signature": "signature verified with the given key",
    "sbom": "SBOM attestation",
    "provenance": "SLSA provenance attestation",
    "scan": "vulnerability scan attestation",
    "vex": "OpenVEX attestation",
    "config": "image config",
    "decision": "policy decision (pass --policy)",
    "findings": "store findings (pass --store)",
}


def _date(text: str) -> _dt.date | None:
    if not text:
        return None
    try:
        return _dt.date.fromisoformat(text[:10])
    except ValueError:
        return None


def deadline(severity: str, first_seen: str, kev_due: str = "") -> str:
    """FedRAMP deadline: first seen + 30/90/180 days by severity, or the KEV due date if sooner."""
    dates: list[_dt.date] = []
    seen = _date(first_seen)
    days = REMEDIATION_DAYS.get(severity)
    if seen and days:
        dates.append(seen + _dt.timedelta(days=days))
    due = _date(kev_due)
    if due:
        dates.append(due)
    return min(dates).isoformat() if dates else ""


def policy_checks(evidence: ImageEvidence) -> dict[str, list[CheckResult]]:
    """Check results by check id for this image from the policy decision (``signatures`` =
    the policies' key/keyless authorities)."""
    out: dict[str, list[CheckResult]] = {}
    if evidence.decision is None:
        return out
    for image in evidence.decision.images:
        if image.digest not in (None, evidence.digest):
            continue
        for policy in image.policies:
            for check in policy.checks:
                out.setdefault(check.name, []).append(check)
            for auth in policy.authorities:
                if auth.kind == "authority":
                    out.setdefault("signatures", []).append(auth)
    return out


_Outcome = tuple[Result, str, tuple[ReportFinding, ...]]


def _open(evidence: ImageEvidence, severities: Iterable[str]) -> list[ReportFinding]:
    want = set(severities)
    return [f for f in evidence.findings if f.severity in want]


def _ids(findings: Sequence[ReportFinding], limit: int = 5) -> str:
    text = ", ".join(f"{f.vuln} in {f.package}" for f in findings[:limit])
    return text + (f" and {len(findings) - limit} more" if len(findings) > limit else "")


def _rule_scan_age(c: Control, ev: ImageEvidence, today: _dt.date) -> _Outcome:
    days = int(c.param("days"))
    when = _date(ev.scan_date)
    if when is None:
        return "not-satisfied", "the verified scan does not say when it ran", ()
    age = (today - when).days
    if age > days:
        return "not-satisfied", f"newest verified scan is {age} days old (limit {days})", ()
    return "satisfied", f"scanned {ev.scan_date[:10]}, {age} days ago (limit {days})", ()


def _rule_remediation(c: Control, ev: ImageEvidence, today: _dt.date) -> _Outcome:
    sev = c.param("severities")
    found = _open(ev, sev)
    late = [f for f in found if f.overdue(today)]
    if late:
        return (
            "not-satisfied",
            f"{len(late)} finding(s) past the deadline: {_ids(late)}",
            tuple(late),
        )
    if not found:
        return "satisfied", f"no open {'/'.join(sev)} findings", ()
    return (
        "satisfied",
        f"{len(found)} open {'/'.join(sev)} finding(s), none past the deadline",
        tuple(found),
    )


def _rule_kev_due(c: Control, ev: ImageEvidence, today: _dt.date) -> _Outcome:
    kev = [f for f in ev.findings if f.kev]
    late = [f for f in kev if (d := _date(f.kev_due)) is not None and d < today]
    if late:
        return "not-satisfied", f"KEV finding(s) past CISA's due date: {_ids(late)}", tuple(late)
    if kev:
        return "satisfied", f"{len(kev)} open KEV finding(s), all before the due date", tuple(kev)
    return "satisfied", "no open finding is in the KEV catalog", ()


def _rule_no_kev(c: Control, ev: ImageEvidence, today: _dt.date) -> _Outcome:
    kev = [f for f in ev.findings if f.kev]
    if kev:
        return "not-satisfied", f"known exploited vulnerabilities open: {_ids(kev)}", tuple(kev)
    return "satisfied", "no open finding is in the KEV catalog", ()


def _rule_no_open(c: Control, ev: ImageEvidence, today: _dt.date) -> _Outcome:
    sev = c.param("severities")
    fixable = [f for f in _open(ev, sev) if f.fixed_in]
    if fixable:
        return (
            "not-satisfied",
            f"{len(fixable)} {'/'.join(sev)} finding(s) with a fix available: {_ids(fixable)}",
            tuple(fixable),
        )
    return "satisfied", f"no {'/'.join(sev)} finding with a fix available", ()


def _rule_patched_within(c: Control, ev: ImageEvidence, today: _dt.date) -> _Outcome:
    days = int(c.param("days"))
    sev = c.param("severities")
    late = [
        f
        for f in _open(ev, sev)
        if f.fixed_in and (age := f.age_days(today)) is not None and age > days
    ]
    if late:
        return (
            "not-satisfied",
            f"{'/'.join(sev)} finding(s) with a fix, open over {days} days: {_ids(late)}",
            tuple(late),
        )
    return "satisfied", f"no {'/'.join(sev)} finding with a fix has been open over {days} days", ()


def _rule_non_root(c: Control, ev: ImageEvidence, today: _dt.date) -> _Outcome:
    if ev.config is None:
        return "not-satisfied", "no image config", ()
    inner = ev.config.get("config")
    user = inner.get("User") if isinstance(inner, dict) else None
    user = user if isinstance(user, str) else ""
    name = user.split(":", 1)[0]
    if name in ("", "0", "root"):
        return "not-satisfied", f"image runs as {user or 'root (no User set)'}", ()
    return "satisfied", f"image config User is {user}", ()


def _rule_provenance_signed(c: Control, ev: ImageEvidence, today: _dt.date) -> _Outcome:
    prov = ev.of_kind("provenance")
    builders = sorted({p.tool for p in prov if p.tool})
    return (
        "satisfied",
        "provenance signature verified with the given key; builder "
        + (", ".join(builders) or "not named"),
        (),
    )


def _rule_digest(c: Control, ev: ImageEvidence, today: _dt.date) -> _Outcome:
    if not ev.digest.startswith("sha256:"):
        return "not-satisfied", "image has no content digest", ()
    return "satisfied", f"identified by {ev.digest}", ()


_RULES: dict[str, Callable[[Control, ImageEvidence, _dt.date], _Outcome]] = {
    "scan-age": _rule_scan_age,
    "remediation": _rule_remediation,
    "kev-due": _rule_kev_due,
    "no-kev": _rule_no_kev,
    "no-open": _rule_no_open,
    "patched-within": _rule_patched_within,
    "non-root": _rule_non_root,
    "provenance-signed": _rule_provenance_signed,
    "digest-identifier": _rule_digest,
}


def _control(
    framework: str,
    c: Control,
    ev: ImageEvidence,
    checks: dict[str, list[CheckResult]],
    today: _dt.date,
) -> ControlResult:
    def result(
        res: Result, reason: str, refs: Iterable[EvidenceRef] = (), fs: Iterable[ReportFinding] = ()
    ) -> ControlResult:
        unique = tuple(dict.fromkeys(refs))
        return ControlResult(framework, c.id, c.title, res, reason, unique, tuple(fs))

    if c.manual:
        return result("not-assessed", c.reason)
    refs: list[EvidenceRef] = []
    missing: list[str] = []
    for kind in c.evidence:
        if kind == "decision":
            if ev.decision is None:
                return result("not-assessed", "no policy decision: run with --policy")
            refs.append(EvidenceRef("decision", ev.policy_digest, detail="policy set digest"))
            continue
        have = ev.of_kind(kind)
        if not have:
            missing.append(_KIND_WORDS[kind])
        refs.extend(have)
    if missing:
        return result("not-satisfied", f"no verified {' and no '.join(missing)}", refs)
    # the policy engine's verdicts for the checks this control lists
    ran = [r for name in c.checks for r in checks.get(name, [])]
    for r in ran:
        refs.extend(EvidenceRef("decision", d, detail=f"policy check {r.name}") for d in r.evidence)
    failed = [r for r in ran if r.status == "fail"]
    if failed:
        why = "; ".join(f"{r.name}: {r.reason}" for r in failed)
        return result("not-satisfied", f"policy check failed: {why}", refs)
    errors = [r for r in ran if r.status == "error"]
    if errors:
        why = "; ".join(f"{r.name}: {r.reason}" for r in errors)
        return result("not-assessed", f"policy check could not decide: {why}", refs)
    reasons = [f"policy {r.name}: {r.status}" for r in ran if r.status in ("pass", "warn")]
    if c.rule:
        res, why, fs = _RULES[c.rule](c, ev, today)
        if res != "satisfied":
            return result(res, why, refs, fs)
        return result("satisfied", "; ".join([why, *reasons]), refs, fs)
    if ran and all(r.status == "skipped" for r in ran):
        return result("not-applicable", "; ".join(f"{r.name}: {r.reason}" for r in ran), refs)
    substantive = [n for n in c.checks if n not in _EXISTENCE_CHECKS]
    if substantive and not any(checks.get(n) for n in substantive):
        wanted = ", ".join(substantive)
        if ev.decision is None:
            return result("not-assessed", f"needs policy check {wanted}: run with --policy", refs)
        return result("not-assessed", f"the policy does not run {wanted}", refs)
    if reasons:
        return result("satisfied", "; ".join(reasons), refs)
    if c.evidence:
        kinds = ", ".join(_KIND_WORDS[k] for k in c.evidence)
        note = "" if not c.checks or ev.decision is not None else " (no --policy checks run)"
        return result("satisfied", f"verified {kinds}{note}", refs)
    wanted = ", ".join(c.checks)
    if ev.decision is None:
        return result("not-assessed", f"needs policy check {wanted}: run with --policy")
    return result("not-assessed", f"the policy does not run {wanted}")


def evaluate(catalog: Catalog, evidence: ImageEvidence, today: _dt.date) -> Report:
    """The image's report against every framework of ``catalog`` as of ``today``."""
    checks = policy_checks(evidence)
    frameworks = tuple(
        FrameworkResult(
            id=fw.id,
            title=fw.title,
            source=fw.source,
            controls=tuple(_control(fw.id, c, evidence, checks, today) for c in fw.controls),
        )
        for fw in catalog.frameworks
    )
    decision: dict[str, Any] | None = (
        evidence.decision.to_dict() if evidence.decision is not None else None
    )
    return Report(
        reference=evidence.reference,
        digest=evidence.digest,
        date=today.isoformat(),
        catalog_version=catalog.version,
        frameworks=frameworks,
        evidence=tuple(sorted(set(evidence.items), key=lambda e: (e.kind, e.digest))),
        findings=tuple(
            sorted(evidence.findings, key=lambda f: (f.due_date or "9999", f.vuln, f.package))
        ),
        problems=evidence.problems,
        decision=decision,
    )
