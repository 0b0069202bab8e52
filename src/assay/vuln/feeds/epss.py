"""FIRST EPSS scores: CSV ``cve,epss,percentile`` after a ``#model_version:…,score_date:…`` line."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

from assay.errors import InputError
from assay.vuln.db import AdvisoryDB
from assay.vuln.feeds._interface import feed_date, file_date, read_bounded

__all__ = ["EpssFeed"]


class EpssFeed:
    name = "epss"
    env_var = "ASSAY_FEED_EPSS"
    default_url = "https://epss.empiricalsecurity.com/epss_scores-current.csv.gz"

    def import_path(self, db: AdvisoryDB, path: Path, origin: str = "", date_hint: str = "") -> int:
        try:
            text = read_bounded(path, 512 << 20).decode("utf-8")
        except UnicodeDecodeError:
            raise InputError(f"EPSS file {path} is not UTF-8 text") from None
        detail = ""
        lines = text.splitlines()
        body_start = 0
        score_date = ""
        if lines and lines[0].startswith("#"):
            detail = lines[0].lstrip("#").strip()[:200]
            body_start = 1
            # "#model_version:v2025.03.14,score_date:2025-04-08T00:00:00Z"
            for item in detail.split(","):
                key, _, value = item.partition(":")
                if key.strip() == "score_date":
                    score_date = feed_date(value.strip(), f"EPSS file {path}: score_date")
        reader = csv.reader(io.StringIO("\n".join(lines[body_start:])))
        try:
            rows = _rows(reader, path, body_start)
        except csv.Error as exc:  # a field over the csv module's limit, a stray NUL…
            raise InputError(f"EPSS file {path} is not valid CSV: {exc}") from None
        with db.transaction() as conn:
            conn.execute("DELETE FROM epss")
            conn.executemany("INSERT OR REPLACE INTO epss VALUES (?,?,?)", rows)
            db.record_source(
                conn,
                self.name,
                origin or str(path),
                len(rows),
                detail,
                score_date or date_hint or file_date(path),
            )
        return len(rows)


def _rows(
    reader: Iterator[list[str]], path: Path, body_start: int
) -> list[tuple[str, float, float]]:
    header = next(reader, None)
    if header is None or [h.strip().lower() for h in header[:3]] != ["cve", "epss", "percentile"]:
        raise InputError(
            f"EPSS file {path}: expected a 'cve,epss,percentile' header, found {header!r}"[:300]
        )
    rows = []
    for n, rec in enumerate(reader, start=body_start + 2):
        if not rec:
            continue
        if len(rec) < 3:
            raise InputError(f"EPSS file {path} line {n}: expected 3 columns")
        try:
            score, pct = float(rec[1]), float(rec[2])
        except ValueError:
            raise InputError(f"EPSS file {path} line {n}: score is not a number") from None
        if not (0.0 <= score <= 1.0 and 0.0 <= pct <= 1.0):
            raise InputError(f"EPSS file {path} line {n}: values must lie in [0, 1]")
        rows.append((rec[0].strip(), score, pct))
    return rows
