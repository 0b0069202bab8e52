"""The evidence store: images and their inventories, findings with first-seen dates, policy
decisions and evidence bundles, in SQLite (default) or PostgreSQL (fleets).

One ``Store`` wraps one SQLAlchemy engine. Writes are single transactions; the fleet rescan and
the fleet report are SQL statements run by the database (see ``assay.store.fleet``).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, delete, event, select, text
from sqlalchemy.exc import SQLAlchemyError

from assay._closing import Closing
from assay.errors import NetworkError, UsageError
from assay.sbom.model import Inventory, Package
from assay.store import migrations, schema

__all__ = ["Store", "StoredDecision", "StoredImage", "default_store_url", "open_store"]

_BINNMU = re.compile(r"\+b\d+$")
_BATCH = 5000
_BLOB = {"postgresql": "BYTEA", "sqlite": "BLOB"}


def _now() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def default_store_url() -> str:
    """``$ASSAY_STORE``, else an SQLite file ``store.db`` in assay's cache directory."""
    env = os.environ.get("ASSAY_STORE")
    if env:
        return env
    from assay.cachedir import cache_dir

    return f"sqlite:///{cache_dir() / 'store.db'}"


def _engine_url(url: str) -> tuple[str, str]:
    """(SQLAlchemy URL, text safe to show) for a store URL or a bare SQLite path."""
    text = url.strip()
    if not text:
        raise UsageError("empty store URL; use sqlite:///PATH or postgresql://USER@HOST/DB")
    if text.startswith(("postgresql://", "postgres://")):
        rest = text.split("://", 1)[1]
        shown = "postgresql://" + (rest.split("@", 1)[1] if "@" in rest else rest)
        return "postgresql+psycopg://" + rest, shown
    if text.startswith("postgresql+psycopg://"):
        rest = text.split("://", 1)[1]
        return text, "postgresql://" + (rest.split("@", 1)[1] if "@" in rest else rest)
    if text.startswith("sqlite:///"):
        path = text[len("sqlite:///") :]
    elif "://" in text:
        raise UsageError(
            f"unsupported store URL {text.split('://', 1)[0]}://…; use sqlite:///PATH or "
            "postgresql://USER[:PASSWORD]@HOST[:PORT]/DB"
        )
    else:
        path = text
    p = Path(path).expanduser()
    if p.exists() and not p.is_file():
        raise UsageError(f"store {p} exists and is not a regular file")
    p.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{p}", str(p)


@dataclass(frozen=True)
class StoredImage:
    digest: str
    name: str
    release: str
    architecture: str
    first_recorded: str
    last_recorded: str
    packages: int


@dataclass(frozen=True)
class StoredDecision:
    image_digest: str
    reference: str
    result: str
    status: str
    policy_digest: str
    source: str
    decided_at: str
    document: dict[str, Any]


_INVENTORY_COLUMNS = (
    "image_id",
    "name",
    "version",
    "ecosystem",
    "purl",
    "source_name",
    "source_version",
    "source_key",
)


@functools.lru_cache(maxsize=1 << 16)
def _sort_key(version: str) -> bytes | None:
    """``deb_sort_key``, remembered: a fleet repeats the same versions many times over."""
    from assay.vuln.vkey import deb_sort_key

    return deb_sort_key(version)


def _inventory_rows(image_id: int, packages: Iterable[Package]) -> Iterator[tuple[Any, ...]]:
    """Rows in ``_INVENTORY_COLUMNS`` order."""
    for p in packages:
        if p.ecosystem == "deb":
            src_version = _BINNMU.sub("", p.source_version or p.version)
            source, key = p.source_name or p.name, _sort_key(src_version)
        else:
            src_version, source, key = "", "", None
        yield (image_id, p.name, p.version, p.ecosystem, p.purl, source, src_version, key)


class Store(Closing):
    """An open evidence store. Use as a context manager or call ``close()``."""

    def __init__(self, url: str | None = None) -> None:
        engine_url, self.where = _engine_url(url or default_store_url())
        self.dialect = "postgresql" if engine_url.startswith("postgresql") else "sqlite"
        try:
            self.engine: Engine = create_engine(engine_url, future=True)
            if self.dialect == "sqlite":
                event.listen(self.engine, "connect", _sqlite_pragmas)
            migrations.migrate(self.engine, self.where)
        except SQLAlchemyError as exc:
            raise NetworkError(
                f"cannot open the store at {self.where}: {_first_line(exc)}; check the URL, "
                "that the server runs and that the user may connect"
            ) from None

    def close(self) -> None:
        self.engine.dispose()

    # -- images ------------------------------------------------------------------------------
    def record_image(self, inventory: Inventory, *, release: str = "", now: str = "") -> None:
        """Keep an image's inventory (replacing an earlier one for the same digest)."""
        self.record_images([inventory], release=release, now=now)

    def record_images(
        self, inventories: Iterable[Inventory], *, release: str = "", now: str = ""
    ) -> int:
        """Keep many inventories in one transaction (PostgreSQL: rows sent with COPY).

        The fleet's distinct Debian source versions (``fleet_packages``) and which of them
        each image carries (``image_versions``) are kept here; a source version new to the
        fleet is matched by the next ``rescan``."""
        from assay.vuln.db import release_of

        when = now or _now()
        t = schema.images
        n = 0
        with self.engine.begin() as conn:
            batch = _Batch(conn, self.dialect)
            for item in inventories:
                rel = release or release_of(item)
                row = conn.execute(select(t.c.id).where(t.c.digest == item.subject_digest)).first()
                if row is None:
                    inserted = conn.execute(
                        t.insert().values(
                            digest=item.subject_digest,
                            name=item.subject_name,
                            release=rel,
                            architecture=item.architecture,
                            first_recorded=when,
                            last_recorded=when,
                            packages=len(item.packages),
                        )
                    ).inserted_primary_key
                    if inserted is None:
                        raise UsageError("the store did not return the new image's id")
                    image_id = int(inserted[0])
                else:
                    image_id = int(row[0])
                    batch.forget(image_id)
                    conn.execute(
                        t.update()
                        .where(t.c.id == image_id)
                        .values(
                            name=item.subject_name,
                            release=rel,
                            last_recorded=when,
                            packages=len(item.packages),
                        )
                    )
                batch.add(image_id, rel, item.packages)
                n += 1
            batch.finish()
        return n

    def images(self) -> list[StoredImage]:
        t = schema.images
        q = select(
            t.c.digest,
            t.c.name,
            t.c.release,
            t.c.architecture,
            t.c.first_recorded,
            t.c.last_recorded,
            t.c.packages,
        ).order_by(t.c.name, t.c.digest)
        with self.engine.connect() as conn:
            return [StoredImage(*r) for r in conn.execute(q)]

    # -- decisions and bundles ---------------------------------------------------------------
    def record_decision(
        self, decision: Mapping[str, Any], *, policy_digest: str, source: str, now: str = ""
    ) -> None:
        """Keep each image of a policy decision (``Decision.to_dict()`` shape)."""
        images = decision.get("images")
        if not isinstance(images, list):
            raise UsageError("a decision to record needs an 'images' list")
        when = now or _now()
        rows = []
        for img in images:
            if not isinstance(img, Mapping):
                raise UsageError("a decision's images must be objects")
            rows.append(
                {
                    "image_digest": str(img.get("digest") or ""),
                    "reference": str(img.get("reference") or ""),
                    "result": str(img.get("result") or ""),
                    "status": str(img.get("status") or ""),
                    "policy_digest": policy_digest,
                    "source": source,
                    "decided_at": when,
                    "document": json.dumps(img, sort_keys=True, separators=(",", ":")),
                }
            )
        if rows:
            with self.engine.begin() as conn:
                conn.execute(schema.decisions.insert(), rows)

    def decisions(self, image_digest: str | None = None) -> list[StoredDecision]:
        t = schema.decisions
        q = select(
            t.c.image_digest,
            t.c.reference,
            t.c.result,
            t.c.status,
            t.c.policy_digest,
            t.c.source,
            t.c.decided_at,
            t.c.document,
        ).order_by(t.c.decided_at, t.c.id)
        if image_digest:
            q = q.where(t.c.image_digest == image_digest)
        with self.engine.connect() as conn:
            return [StoredDecision(*r[:7], json.loads(r[7])) for r in conn.execute(q)]

    def record_bundle(
        self, image_digest: str, bundle_digest: str, size: int, location: str, now: str = ""
    ) -> None:
        t = schema.bundles
        with self.engine.begin() as conn:
            conn.execute(
                delete(t).where(
                    (t.c.image_digest == image_digest) & (t.c.bundle_digest == bundle_digest)
                )
            )
            conn.execute(
                t.insert().values(
                    image_digest=image_digest,
                    bundle_digest=bundle_digest,
                    created_at=now or _now(),
                    size=size,
                    location=location,
                )
            )


_VersionKey = tuple[str, str, str]  # (release, source, source version)


class _Batch:
    """Inventory rows on their way into the store, sent in batches; each image's source
    versions resolved to ``fleet_packages`` ids (new ones added, pending), and the versions'
    use counts adjusted once at the end."""

    def __init__(self, conn: Connection, dialect: str) -> None:
        self.conn, self.dialect = conn, dialect
        self.rows: list[tuple[Any, ...]] = []
        self.links: list[tuple[int, _VersionKey, int]] = []  # (image id, version, rows)
        self.keys: dict[_VersionKey, bytes | None] = {}
        self.ids: dict[_VersionKey, int] = {}
        self.uses: Counter[int] = Counter()
        self.images: Counter[int] = Counter()
        self.temp = False

    def add(self, image_id: int, release: str, packages: Iterable[Package]) -> None:
        counts: Counter[_VersionKey] = Counter()
        for r in _inventory_rows(image_id, packages):
            self.rows.append(r)
            if release and r[3] == "deb":
                k = (release, r[5], r[6])
                counts[k] += 1
                self.keys[k] = r[7]
        self.links.extend((image_id, k, c) for k, c in counts.items())
        if len(self.rows) >= _BATCH:
            self.flush()

    def forget(self, image_id: int) -> None:
        """Drop an image's earlier inventory (a re-recorded digest) and its version counts."""
        self.flush()
        iv, inv = schema.image_versions, schema.inventory
        for version_id, c in self.conn.execute(
            select(iv.c.version_id, iv.c.n).where(iv.c.image_id == image_id)
        ):
            self.uses[int(version_id)] -= int(c)
            self.images[int(version_id)] -= 1
        self.conn.execute(delete(iv).where(iv.c.image_id == image_id))
        self.conn.execute(delete(inv).where(inv.c.image_id == image_id))

    def flush(self) -> None:
        if self.rows:
            bulk_insert(self.conn, self.dialect, "inventory", _INVENTORY_COLUMNS, self.rows)
            self.rows = []
        if not self.links:
            return
        self._resolve({k for _, k, _ in self.links if k not in self.ids})
        links = [(image_id, self.ids[k], c) for image_id, k, c in self.links]
        bulk_insert(
            self.conn, self.dialect, "image_versions", ("image_id", "version_id", "n"), links
        )
        for _, version_id, c in links:
            self.uses[version_id] += c
            self.images[version_id] += 1
        self.links = []

    def _resolve(self, unknown: set[_VersionKey]) -> None:
        """Learn the ids of these source versions, adding the ones new to the fleet."""
        if not unknown:
            return
        if not self.temp:
            self.conn.execute(text("DROP TABLE IF EXISTS assay_versions"))
            self.conn.execute(
                text(
                    "CREATE TEMPORARY TABLE assay_versions (release VARCHAR(40), source TEXT, "
                    f"source_version TEXT, source_key {_BLOB[self.dialect]})"
                )
            )
            self.temp = True
        cols = ("release", "source", "source_version", "source_key")
        rows = [(*k, self.keys.get(k)) for k in sorted(unknown)]
        bulk_insert(self.conn, self.dialect, "assay_versions", cols, rows)
        self.conn.execute(
            text(
                "INSERT INTO fleet_packages (release, source, source_version, source_key, uses, "
                "images, pending) SELECT release, source, source_version, source_key, 0, 0, 1 "
                "FROM assay_versions WHERE true "  # SQLite needs a WHERE before ON CONFLICT
                "ON CONFLICT (release, source, source_version) DO NOTHING"
            )
        )
        for version_id, rel, source, version in self.conn.execute(
            text(
                "SELECT p.id, p.release, p.source, p.source_version FROM fleet_packages AS p "
                "JOIN assay_versions AS v ON v.release = p.release AND v.source = p.source "
                "AND v.source_version = p.source_version"
            )
        ):
            self.ids[(str(rel), str(source), str(version))] = int(version_id)
        self.conn.execute(text("DELETE FROM assay_versions"))

    def finish(self) -> None:
        self.flush()
        deltas = [
            (version_id, self.uses[version_id], self.images[version_id])
            for version_id in sorted(set(self.uses) | set(self.images))
            if self.uses[version_id] or self.images[version_id]
        ]
        if deltas:
            self.conn.execute(text("DROP TABLE IF EXISTS assay_uses"))
            self.conn.execute(
                text("CREATE TEMPORARY TABLE assay_uses (id INTEGER, uses INTEGER, images INTEGER)")
            )
            bulk_insert(self.conn, self.dialect, "assay_uses", ("id", "uses", "images"), deltas)
            self.conn.execute(
                text(
                    "UPDATE fleet_packages SET uses = fleet_packages.uses + d.uses, "
                    "images = fleet_packages.images + d.images FROM assay_uses AS d "
                    "WHERE d.id = fleet_packages.id"
                )
            )
            self.conn.execute(text("DROP TABLE assay_uses"))
        if self.temp:
            self.conn.execute(text("DROP TABLE assay_versions"))


def bulk_insert(
    conn: Connection,
    dialect: str,
    table: str,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
) -> None:
    """Insert many rows straight through the driver (PostgreSQL: COPY; SQLite: executemany):
    SQLAlchemy's per-row parameter handling costs more than the database's own work here."""
    raw: Any = conn.connection.driver_connection
    cols = ", ".join(columns)
    if dialect == "postgresql":
        with raw.cursor() as cur, cur.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
            for r in rows:
                copy.write_row(r)
        return
    marks = ", ".join("?" for _ in columns)
    raw.executemany(f"INSERT INTO {table} ({cols}) VALUES ({marks})", rows)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def open_store(url: str | None = None) -> Store:
    """Open (creating or migrating) the store at ``url`` (default: ``default_store_url()``)."""
    return Store(url)
