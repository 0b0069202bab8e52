"""Paging through the NVD CVE API: bounds on what a hostile or broken API can make assay do."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from assay.errors import InputError, NetworkError, UsageError
from assay.vuln.feeds import nvd
from assay.vuln.scanner import parse_distro

NOW = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)


def _pager(total: int, per_page: int, seen: list[dict[str, str]]):  # type: ignore[no-untyped-def]
    def get(params: dict[str, str], page: Path) -> None:
        seen.append(params)
        start = int(params["startIndex"])
        count = max(0, min(per_page, total - start))
        vulns = [{"cve": {"id": f"CVE-2024-{start + i:05d}"}} for i in range(count)]
        page.write_text(json.dumps({"totalResults": total, "vulnerabilities": vulns}))

    return get


def test_pages_until_total(tmp_path: Path) -> None:
    seen: list[dict[str, str]] = []
    pages = nvd.fetch_pages(_pager(5, 2, seen), tmp_path, now=NOW)
    assert [p["startIndex"] for p in seen] == ["0", "2", "4"] and len(pages) == 3
    assert all("lastModStartDate" not in p for p in seen)


def test_increment_only_inside_the_api_window(tmp_path: Path) -> None:
    seen: list[dict[str, str]] = []
    nvd.fetch_pages(_pager(1, 2, seen), tmp_path, since="2025-05-01T00:00:00Z", now=NOW)
    assert seen[0]["lastModStartDate"] == "2025-04-30T23:00:00.000+00:00"  # an hour of overlap
    assert seen[0]["lastModEndDate"] == "2025-06-01T00:00:00.000+00:00"
    seen.clear()
    old = tmp_path / "old"
    old.mkdir()
    nvd.fetch_pages(_pager(1, 2, seen), old, since="2025-01-01T00:00:00Z", now=NOW)
    assert "lastModStartDate" not in seen[0]  # 151 days: beyond the 120-day window, full list


def test_empty_page_before_total_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(NetworkError, match="empty page"):
        nvd.fetch_pages(_pager(10, 0, []), tmp_path, now=NOW)


def test_page_count_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nvd, "MAX_PAGES", 3)
    with pytest.raises(NetworkError, match="more than 3 pages"):
        nvd.fetch_pages(_pager(10**9, 1, []), tmp_path, now=NOW)


def test_answer_without_total_is_refused(tmp_path: Path) -> None:
    def get(params: dict[str, str], page: Path) -> None:
        page.write_text('{"vulnerabilities": []}')

    with pytest.raises(InputError, match="totalResults"):
        nvd.fetch_pages(get, tmp_path, now=NOW)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("debian:12", ("debian", "12", "bookworm")),
        ("debian:bookworm", ("debian", "12", "bookworm")),
        ("Debian:11.9", ("debian", "11.9", "bullseye")),
        ("debian:sid", ("debian", "", "sid")),
        ("ubuntu:22.04", ("ubuntu", "22.04", "")),
    ],
)
def test_parse_distro(text: str, expected: tuple[str, str, str]) -> None:
    d = parse_distro(text)
    assert (d.id, d.version_id, d.codename) == expected


@pytest.mark.parametrize("text", ["debian", "12", "debian:99", "debian:12/../x", "a:b:c"])
def test_parse_distro_refuses(text: str) -> None:
    with pytest.raises(UsageError, match="--distro"):
        parse_distro(text)
