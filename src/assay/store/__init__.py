"""The evidence store: images, inventories, findings (with first-seen and due dates), policy
decisions and evidence bundles, in SQLite by default or PostgreSQL for fleets.

``open_store(url)`` opens or creates a store (``sqlite:///PATH``, a bare path, or
``postgresql://USER[:PASSWORD]@HOST[:PORT]/DB``; default ``$ASSAY_STORE`` or ``store.db`` in the
cache directory) and applies its schema migrations. Fleet rescans and reports run as SQL in the
database (``rescan``, ``fleet_report``). It is the one place inventories are kept (``assay scan
--store``); the fleet is matched per distinct Debian source version, incrementally, and
per-image findings are the ``findings`` view over those matches.
"""

from __future__ import annotations

from assay.store._store import (
    Store,
    StoredDecision,
    StoredImage,
    default_store_url,
    open_store,
)
from assay.store.fleet import (
    FleetImageRow,
    FleetReport,
    RescanSummary,
    fleet_report,
    rescan,
    sync_advisories,
)

__all__ = [
    "FleetImageRow",
    "FleetReport",
    "RescanSummary",
    "Store",
    "StoredDecision",
    "StoredImage",
    "default_store_url",
    "fleet_report",
    "open_store",
    "rescan",
    "sync_advisories",
]
