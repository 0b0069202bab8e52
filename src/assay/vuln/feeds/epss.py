"""FIRST EPSS scores: CSV ``cve,epss,percentile`` after a ``#model_version:…,score_date:…`` line."""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Iterator
from pathlib import Path

from assay.errors import InputError
from assay.vuln.db import AdvisoryDB
from assay.vuln.feeds._interface import feed_date, file_date, open_feed

__all__ = ["EpssFeed"]


class EpssFeed:
    name = "epss"
    env_var = "ASSAY_FEED_EPSS"
    default_url = "https://epss.empiricalsecurity.com/epss_scores-current.csv.gz"

    def import_path(self, db: AdvisoryDB, path: Path, origin: str = "", date_hint: str = "") -> int:
        # Streamed line by line into the database (the file is ~300,000 rows; a decompression
        # bomb must not become a list of millions in memory).
        with (
            open_feed(path, 512 << 20) as raw,
            io.TextIOWrapper(io.BufferedReader(raw), encoding="utf-8", newline="") as text,
            db.transaction() as conn,
        ):
            try:
                first = text.readline(_MAX_LINE)
                detail = ""
                score_date = ""
                body_start = 0
                if first.startswith("#"):
                    detail = first.lstrip("#").strip()[:200]
                    body_start = 1
                    # "#model_version:v2025.03.14,score_date:2025-04-08T00:00:00Z"
                    for item in detail.split(","):
                        key, _, value = item.partition(":")
                        if key.strip() == "score_date":
                            score_date = feed_date(value.strip(), f"EPSS file {path}: score_date")
                    lines: Iterator[str] = _bounded_lines(text, path)
                else:
                    lines = itertools.chain([first], _bounded_lines(text, path))
                conn.execute("DELETE FROM epss")
                n = 0
                for batch in _rows(csv.reader(lines), path, body_start):
                    conn.executemany("INSERT OR REPLACE INTO epss VALUES (?,?,?)", batch)
                    n += len(batch)
            except UnicodeDecodeError:
                raise InputError(f"EPSS file {path} is not UTF-8 text") from None
            except csv.Error as exc:  # a field over the csv module's limit, a stray NUL…
                raise InputError(f"EPSS file {path} is not valid CSV: {exc}") from None
            db.record_source(
                conn,
                self.name,
                origin or str(path),
                n,
                detail,
                score_date or date_hint or file_date(path),
            )
        return n


_MAX_LINE = 1 << 20
_MAX_ROWS = 2_000_000  # EPSS scores every published CVE: ~300,000 today
_BATCH = 20_000


def _bounded_lines(text: io.TextIOWrapper, path: Path) -> Iterator[str]:
    while line := text.readline(_MAX_LINE):
        if len(line) >= _MAX_LINE and not line.endswith("\n"):
            raise InputError(f"EPSS file {path} has a line over {_MAX_LINE} characters")
        yield line


def _rows(
    reader: Iterator[list[str]], path: Path, body_start: int
) -> Iterator[list[tuple[str, float, float]]]:
    header = next(reader, None)
    if header is None or [h.strip().lower() for h in header[:3]] != ["cve", "epss", "percentile"]:
        raise InputError(
            f"EPSS file {path}: expected a 'cve,epss,percentile' header, found {header!r}"[:300]
        )
    rows: list[tuple[str, float, float]] = []
    count = 0
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
        count += 1
        if count > _MAX_ROWS:
            raise InputError(f"EPSS file {path} has more than {_MAX_ROWS} rows; refusing it")
        rows.append((rec[0].strip(), score, pct))
        if len(rows) >= _BATCH:
            yield rows
            rows = []
    yield rows
