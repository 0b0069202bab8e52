"""A table for people: findings grouped by severity, with fixed-in versions and due dates."""

from __future__ import annotations

from assay._text import printable
from assay.vuln.model import Finding, ScanResult, Severity

__all__ = ["TableFormatter"]

# EPSS: the score (probability of exploitation in the next 30 days, 0-1) and, as pNN, its
# percentile among all scored CVEs. DUE: see assay.vuln.severity.due_date.
_COLUMNS = (
    "PACKAGE",
    "VERSION",
    "VULNERABILITY",
    "STATE",
    "FIXED-IN",
    "RATED-BY",
    "KEV",
    "EPSS (PCTL)",
    "DUE",
    "VEX",
)


def _epss(f: Finding) -> str:
    if f.epss is None:
        return ""
    pct = f" (p{f.epss_percentile * 100:.0f})" if f.epss_percentile is not None else ""
    return f"{f.epss:.3f}{pct}"


def _rated_by(f: Finding) -> str:
    """Where the severity comes from: ``nvd 9.8``, ``osv 7.5``, ``debian`` (urgency)."""
    if f.severity_source in ("nvd", "osv") and f.cvss_score is not None:
        return f"{f.severity_source} {f.cvss_score:.1f}"
    return f.severity_source or "-"


def _row(f: Finding) -> tuple[str, ...]:
    state = f.state.value + (f" ({f.reason})" if f.reason else "")
    return (
        f.package,
        f.version,
        f.id,
        state,
        f.fixed_in or "-",
        _rated_by(f),
        "yes" if f.kev else "",
        _epss(f),
        f.due_date,
        (f.vex_status + (" (suppressed)" if f.suppressed else "")) if f.vex_status else "",
    )


class TableFormatter:
    def render(self, result: ScanResult) -> str:
        lines = [
            f"{result.subject_name}"
            + (f"@{result.subject_digest}" if result.subject_digest else "")
            + (f" — {result.distro}" if result.distro else "")
        ]
        for spot in result.blind_spots:
            lines.append(f"NOT SCANNED: {spot}")
        if not result.findings:
            lines.append(
                "no vulnerabilities found in what could be matched"
                if result.blind_spots
                else "no vulnerabilities found"
            )
        for sev in sorted(Severity, key=lambda s: -s.rank):
            group = [f for f in result.findings if f.severity is sev]
            if not group:
                continue
            open_n = sum(1 for f in group if not f.suppressed)
            lines.append("")
            lines.append(f"{sev.value.upper()} ({open_n} open, {len(group) - open_n} suppressed)")
            rows = [_COLUMNS, *(_row(f) for f in group)]
            widths = [max(len(r[i]) for r in rows) for i in range(len(_COLUMNS))]
            for r in rows:
                lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
        if result.hidden_negligible:
            lines.append("")
            lines.append(
                f"{result.hidden_negligible} negligible findings hidden"
                " (--show-negligible shows them)"
            )
        if result.updates is not None:
            lines.append("")
            lines.append(f"updates available ({len(result.updates)}):")
            for u in result.updates:
                cves = ", ".join(u["cves"]) if u["cves"] else "no CVE named"
                note = f" [{u['note']}]" if u.get("note") else ""
                lines.append(
                    f"  {u['package']} {u['installed']} -> {u['candidate']} ({u['suite']}): "
                    f"{cves}{note}"
                )
        if result.skipped:
            lines.append("")
            lines.append(f"skipped ({len(result.skipped)}):")
            for purl, reason in result.skipped:
                lines.append(f"  {purl or '-'}: {reason}")
        return printable("\n".join(lines) + "\n", keep_newlines=True)
