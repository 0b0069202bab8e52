"""``assay db update`` against feeds served on 127.0.0.1 (configurable URLs), and hostile feeds."""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import sys
import zipfile
from pathlib import Path

import pytest

from assay.errors import InputError
from assay.vuln.db import AdvisoryDB
from assay.vuln.feeds import FEEDS
from assay.vuln.feeds import osv as osv_mod
from assay.vuln.feeds._interface import read_bounded
from fixtures.vulnfeeds import FEED_SITE_PATHS, feeds_dir, serve_feeds, update_args

__all__ = ["feeds_dir"]  # a pytest fixture, imported for use here

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "vuln"


def run_cli(*args: str, env: dict[str, str]) -> tuple[int, str]:
    from assay.cli.main import run

    saved, argv = dict(os.environ), sys.argv
    err = io.StringIO()
    os.environ.clear()
    os.environ.update(env)
    sys.argv = ["assay", *args]
    code: int | str | None = 0
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            try:
                run()
            except SystemExit as exc:
                code = exc.code
    finally:
        os.environ.clear()
        os.environ.update(saved)
        sys.argv = argv
    return int(code or 0), err.getvalue()


def test_db_update_from_configured_urls(tmp_path: Path, feeds_dir: Path) -> None:
    log: list[str] = []
    env = dict(os.environ, ASSAY_VULN_DB=str(tmp_path / "v.db"))
    with serve_feeds(feeds_dir, log) as url:
        code, err = run_cli(
            *update_args(url),
            env=dict(env, ASSAY_FEED_EPSS=f"{url}/epss.csv.gz"),  # env var form of --epss-url
        )
    assert code == 0, err
    assert sorted(p.split("?")[0] for p in log) == sorted(FEED_SITE_PATHS)
    with AdvisoryDB(tmp_path / "v.db") as db:
        c = db.counts()
        assert (c["debian"], c["osv"], c["kev"], c["epss"]) == (16, 7, 2, 4)
        assert c["nvd"] == 8  # metric rows of the 6 CVEs that are not Rejected
        origins = {s.name: s.origin for s in db.sources()}
        assert origins["kev"] == f"{url}/kev.json"


def test_db_update_failure_keeps_previous_data(tmp_path: Path, feeds_dir: Path) -> None:
    env = dict(os.environ, ASSAY_VULN_DB=str(tmp_path / "v.db"))
    with AdvisoryDB(tmp_path / "v.db") as db:
        FEEDS["kev"].import_path(db, ASSETS / "kev.json")
    with serve_feeds(feeds_dir, []) as url:
        code, err = run_cli(
            "db", "update", "--only", "kev", "--kev-url", f"{url}/missing.json", env=env
        )
        assert code == 1 and "HTTP 404" in err
        (feeds_dir / "bad.json").write_text('{"vulnerabilities": [{"no": "id"}]}')
        code, err = run_cli(
            "db", "update", "--only", "kev", "--kev-url", f"{url}/bad.json", env=env
        )
        assert code == 2 and "cveID" in err
    with AdvisoryDB(tmp_path / "v.db") as db:
        assert db.counts()["kev"] == 2


def test_gzip_bomb_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "epss.csv.gz"
    p.write_bytes(gzip.compress(b"0" * 200_000))
    with pytest.raises(InputError, match="expands past"):
        read_bounded(p, limit=100_000)
    assert len(read_bounded(p, limit=300_000)) == 200_000


def test_osv_archive_limits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    z = tmp_path / "all.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for f in sorted((ASSETS / "osv").glob("*.json")):
            zf.write(f, f.name)
    monkeypatch.setattr(osv_mod, "MAX_RECORDS", 3)
    with AdvisoryDB(tmp_path / "v.db") as db:
        with pytest.raises(InputError, match="more than 3"):
            FEEDS["osv"].import_path(db, z)
        assert db.counts()["osv"] == 0  # nothing half-imported
    monkeypatch.setattr(osv_mod, "MAX_RECORDS", 100)
    monkeypatch.setattr(osv_mod, "MAX_RECORD_BYTES", 500)
    with AdvisoryDB(tmp_path / "v.db") as db, pytest.raises(InputError, match="larger than"):
        FEEDS["osv"].import_path(db, z)


def test_malformed_tracker_names_the_entry(tmp_path: Path) -> None:
    p = tmp_path / "t.json"
    p.write_text('{"openssl": {"CVE-2024-1": {"releases": {"bookworm": ["resolved"]}}}}')
    with (
        AdvisoryDB(tmp_path / "v.db") as db,
        pytest.raises(InputError, match="openssl/CVE-2024-1/bookworm"),
    ):
        FEEDS["debian-tracker"].import_path(db, p)
    p.write_text('{"openssl": {"CVE-2024-1": {"releases": {"bookworm": {"status": ["x"]}}}}}')
    with AdvisoryDB(tmp_path / "v.db") as db, pytest.raises(InputError, match="status"):
        FEEDS["debian-tracker"].import_path(db, p)
    p.write_text('{"openssl": {"CVE-2024-1": {"releases": {}}}, "x": {"CVE-1": {"rel')
    with AdvisoryDB(tmp_path / "v.db") as db, pytest.raises(InputError, match="not valid JSON"):
        FEEDS["debian-tracker"].import_path(db, p)
    # the tracker is streamed: the wrong shape is named at its first piece
    p.write_text("[1, 2")
    with AdvisoryDB(tmp_path / "v.db") as db, pytest.raises(InputError, match="top level"):
        FEEDS["debian-tracker"].import_path(db, p)


def test_not_a_database(tmp_path: Path) -> None:
    p = tmp_path / "v.db"
    p.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(InputError, match="not a usable"):
        AdvisoryDB(p)
