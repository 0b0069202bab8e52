"""The scan table shows the EPSS score (a probability), with its percentile labelled as such."""

from __future__ import annotations

from assay.vuln.formats.table import TableFormatter
from assay.vuln.model import Finding, ScanResult, Severity, State


def _finding(epss: float | None, pct: float | None) -> Finding:
    return Finding(
        id="CVE-2024-0001",  # type: ignore[arg-type]
        aliases=(),
        package="openssl",
        version="3.0.11-1",
        purl="pkg:deb/debian/openssl@3.0.11-1",
        ecosystem="debian",
        state=next(iter(State)),
        severity=Severity.HIGH,
        source="debian-tracker",
        epss=epss,
        epss_percentile=pct,
        due_date="2024-02-01",
    )


def _cells(f: Finding) -> list[str]:
    out = TableFormatter().render(ScanResult("img", "", "", "", (f,)))
    header, row = [line for line in out.splitlines() if "openssl" in line or "PACKAGE" in line]
    start = header.index("EPSS (PCTL)")
    return [header[start : start + 11], row[start:].split("  ")[0].strip()]


def test_epss_column_is_the_score_with_a_labelled_percentile() -> None:
    # score 0.0421 sits at the 92nd percentile: the old column printed "92%"
    assert _cells(_finding(0.0421, 0.92)) == ["EPSS (PCTL)", "0.042 (p92)"]


def test_no_epss_is_blank() -> None:
    assert _cells(_finding(None, None))[1] == ""
