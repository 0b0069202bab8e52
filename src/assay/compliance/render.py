"""Render a compliance report: JSON, self-contained HTML (Jinja2, autoescaped), OSCAL."""

from __future__ import annotations

import enum
import json
from typing import Any

from assay import __version__
from assay.compliance.model import Report
from assay.compliance.oscal import assessment_results, poam
from assay.errors import UsageError
from assay.store import FleetReport

__all__ = ["ReportFormat", "render", "render_fleet", "render_html", "render_json"]

_SEVERITY_ORDER = ("critical", "high", "medium", "low", "negligible", "unknown")
_COLOURS = {"critical": "#7f1d1d", "high": "#c2410c", "medium": "#ca8a04", "low": "#2563eb"}
_CHART_ROWS = 40


class ReportFormat(enum.StrEnum):
    HTML = "html"
    JSON = "json"
    OSCAL = "oscal"
    POAM = "poam"


def _dumps(doc: Any) -> str:
    return json.dumps(doc, indent=2, sort_keys=False, ensure_ascii=False) + "\n"


def render_json(report: Report) -> str:
    return _dumps(report.to_dict())


def _chart(report: Report) -> dict[str, Any] | None:
    """Bars: days open per finding; a line at its remediation deadline (same scale)."""
    rows = [f for f in report.findings if f.first_seen][:_CHART_ROWS]
    if not rows:
        return None
    today = report.today
    spans = []
    for f in rows:
        age = f.age_days(today) or 0
        limit = None
        if f.due_date:
            from datetime import date

            limit = (date.fromisoformat(f.due_date) - date.fromisoformat(f.first_seen)).days
        spans.append((f, max(age, 0), limit))
    longest = max(max(a, lim or 0) for _, a, lim in spans) or 1
    left, span_px = 230, 420
    scale = span_px / longest
    bars = []
    for i, (f, age, limit) in enumerate(spans):
        bars.append(
            {
                "y": 6 + i * 22,
                "label": f"{f.vuln} ({f.package})"[:34],
                "width": max(1, round(age * scale)),
                "deadline": None if limit is None else left + round(max(limit, 0) * scale),
                "colour": _COLOURS.get(f.severity, "#6b7280"),
                "age": age,
                "due": f.due_date,
            }
        )
    return {
        "left": left,
        "width": left + span_px + 150,
        "height": 12 + len(bars) * 22,
        "bars": bars,
    }


def _env() -> Any:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("assay.compliance", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_html(report: Report) -> str:
    env = _env()
    counts = {s: 0 for s in _SEVERITY_ORDER}
    for f in report.findings:
        counts[f.severity if f.severity in counts else "unknown"] += 1
    page: str = env.get_template("report.html.j2").render(
        r=report,
        version=__version__,
        by_severity=[(s, n) for s, n in counts.items() if n],
        kev_count=sum(1 for f in report.findings if f.kev),
        overdue_count=sum(1 for f in report.findings if f.overdue(report.today)),
        chart=_chart(report),
    )
    return page


def render(report: Report, fmt: ReportFormat, *, now: str | None = None) -> str:
    if fmt is ReportFormat.HTML:
        return render_html(report)
    if fmt is ReportFormat.JSON:
        return render_json(report)
    if fmt is ReportFormat.OSCAL:
        return _dumps(assessment_results(report, now=now))
    return _dumps(poam(report, now=now))


def render_fleet(fleet: FleetReport, fmt: ReportFormat) -> str:
    """The store's fleet report as HTML or JSON."""
    if fmt is ReportFormat.JSON:
        return _dumps(fleet.to_dict())
    if fmt is not ReportFormat.HTML:
        raise UsageError(f"-o {fmt.value}: the fleet report is html or json")
    page: str = (
        _env().get_template("fleet.html.j2").render(f=fleet, t=fleet.totals, version=__version__)
    )
    return page
