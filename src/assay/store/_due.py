"""FedRAMP due dates as SQL, on SQLite and PostgreSQL: first seen + 30 days (critical, high),
90 (medium) or 180 (low); the KEV due date instead when that is earlier; '' when neither."""

from __future__ import annotations

__all__ = ["add_days", "due_sql", "fedramp_days"]


def fedramp_days() -> tuple[tuple[str, int], ...]:
    """(severity value, days) pairs, from ``assay.vuln.severity.FEDRAMP_DAYS``."""
    from assay.vuln.severity import FEDRAMP_DAYS

    return tuple(sorted((sev.value, days) for sev, days in FEDRAMP_DAYS.items()))


def add_days(dialect: str, date_sql: str, days: int) -> str:
    """SQL for the YYYY-MM-DD text ``days`` after the date (or RFC 3339 time) ``date_sql``."""
    if dialect == "postgresql":
        return f"to_char(CAST(substr({date_sql}, 1, 10) AS date) + {int(days)}, 'YYYY-MM-DD')"
    return f"date(substr({date_sql}, 1, 10), '+{int(days)} days')"


def due_sql(dialect: str, first_seen: str, severity: str, kev_due: str) -> str:
    """SQL for a finding's FedRAMP due date from SQL expressions for its parts."""
    whens = " ".join(
        f"WHEN '{sev}' THEN {add_days(dialect, first_seen, days)}" for sev, days in fedramp_days()
    )
    base = f"(CASE {severity} {whens} ELSE NULL END)"
    return (
        f"(CASE WHEN {kev_due} <> '' AND ({base} IS NULL OR {kev_due} < {base}) THEN {kev_due} "
        f"ELSE COALESCE({base}, '') END)"
    )
