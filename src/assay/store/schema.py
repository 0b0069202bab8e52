"""The evidence store's tables (SQLAlchemy Core), the same on SQLite and PostgreSQL.

Dates are ISO-8601 text (``YYYY-MM-DD`` or RFC 3339 UTC), so ordering and comparison are plain
text comparison on every engine. Debian versions carry a byte key (``assay.vuln.vkey``) whose
byte order is dpkg's order, so the fleet join compares versions with ``<`` in SQL.
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

__all__ = [
    "advisories",
    "advisory_sync",
    "bundles",
    "decisions",
    "findings",
    "fleet_packages",
    "image_versions",
    "images",
    "inventory",
    "kev",
    "metadata",
    "package_matches",
    "remediation",
    "schema_version",
    "views",
]

metadata = MetaData()

schema_version = Table(
    "assay_schema_version",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("applied_at", String(32), nullable=False),
)

images = Table(
    "images",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("digest", String(80), nullable=False, unique=True),
    Column("name", Text, nullable=False),  # repository or spec name, for people
    Column("release", String(40), nullable=False),  # Debian codename the tracker uses ("" = none)
    Column("architecture", String(40), nullable=False),
    Column("first_recorded", String(32), nullable=False),
    Column("last_recorded", String(32), nullable=False),
    Column("packages", Integer, nullable=False, server_default="0"),  # inventory rows
)

inventory = Table(
    "inventory",
    metadata,
    Column("image_id", Integer, ForeignKey("images.id", ondelete="CASCADE"), nullable=False),
    Column("name", Text, nullable=False),
    Column("version", Text, nullable=False),
    Column("ecosystem", String(16), nullable=False),
    Column("purl", Text, nullable=False),
    Column("source_name", Text, nullable=False),
    Column("source_version", Text, nullable=False),
    Column("source_key", LargeBinary),  # deb_sort_key(source_version); NULL when not deb
    Index("inventory_image", "image_id"),
)

advisories = Table(  # a copy of the advisory DB's Debian tracker rows, for the fleet join
    "advisories",
    metadata,
    Column("release", String(40), primary_key=True),
    Column("source", Text, primary_key=True),
    Column("vuln", String(64), primary_key=True),
    Column("status", String(20), nullable=False),
    Column("fixed_version", Text, nullable=False),
    Column("fixed_key", LargeBinary),
    Column("urgency", String(40), nullable=False),
    Column("nodsa", Text, nullable=False),
    Column("nodsa_reason", Text, nullable=False),
    Column("severity", String(16), nullable=False),  # NVD CVSS rating when known, else urgency's
)

kev = Table(
    "kev",
    metadata,
    Column("cve", String(64), primary_key=True),
    Column("date_added", String(32), nullable=False),
    Column("due_date", String(32), nullable=False),
)

fleet_packages = Table(  # the fleet's distinct Debian source versions, kept by record_images
    "fleet_packages",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("release", String(40), nullable=False),
    Column("source", Text, nullable=False),
    Column("source_version", Text, nullable=False),
    Column("source_key", LargeBinary),  # deb_sort_key(source_version)
    Column("uses", Integer, nullable=False),  # inventory rows carrying this source version
    Column("images", Integer, nullable=False),  # images carrying it
    Column("pending", Integer, nullable=False),  # 1: new, or its advisories changed since
    UniqueConstraint("release", "source", "source_version", name="fleet_packages_key"),
    Index("fleet_packages_pending", "pending"),
)

# Which source versions each image carries (n inventory rows each). No foreign key: checking
# one per row would cost more than writing the 5 M rows of a large fleet; record_images keeps
# the rows with their image.
image_versions = Table(
    "image_versions",
    metadata,
    Column("image_id", Integer, nullable=False),  # images.id
    Column("version_id", Integer, nullable=False),  # fleet_packages.id
    Column("n", Integer, nullable=False),
    Index("image_versions_image", "image_id"),
    # the images carrying a version; covering, so the fleet report reads no table rows
    Index("image_versions_version", "version_id", "image_id", "n"),
)

package_matches = Table(  # one row per (source version, vulnerability) the rescan matched
    "package_matches",
    metadata,
    Column("version_id", Integer, primary_key=True, autoincrement=False),  # fleet_packages.id
    Column("vuln", String(64), primary_key=True),
    Column("state", String(20), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("fixed_in", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("kev_due", String(32), nullable=False),
    Column("first_seen", String(32), nullable=False),  # first rescan that matched it
    Column("changed_at", String(32), nullable=False),  # last rescan that changed this row
    Column("resolved_at", String(32)),  # first rescan that no longer matched it
)

advisory_sync = Table(  # the last sync_advisories: a digest of the rows it copied
    "advisory_sync",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("fingerprint", String(64), nullable=False),
    Column("rows", Integer, nullable=False),
    Column("synced_at", String(32), nullable=False),
)

#: Per-image findings: a VIEW (created by migration step 3) joining each image's inventory
#: with ``package_matches``; first seen is the later of the image's first recording and the
#: match's first rescan (an image digest's inventory never changes). Declared on its own
#: MetaData so ``create_all`` never makes it a table; select from it like one.
views = MetaData()
findings = Table(
    "findings",
    views,
    Column("image_id", Integer, nullable=False),
    Column("package", Text, nullable=False),
    Column("vuln", String(64), nullable=False),
    Column("state", String(20), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("fixed_in", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("kev_due", String(32), nullable=False),
    Column("first_seen", String(32), nullable=False),
    Column("changed_at", String(32), nullable=False),
    Column("due_date", String(32), nullable=False),  # FedRAMP deadline ("" = none)
    Column("resolved_at", String(32)),
)

decisions = Table(
    "decisions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("image_digest", String(80), nullable=False),
    Column("reference", Text, nullable=False),
    Column("result", String(16), nullable=False),  # allow | deny
    Column("status", String(16), nullable=False),  # pass | fail | warn | error
    Column("policy_digest", String(80), nullable=False),
    Column("source", String(32), nullable=False),  # cli | admission | audit
    Column("decided_at", String(32), nullable=False),
    Column("document", Text, nullable=False),  # the decision as canonical JSON
    Index("decisions_image", "image_digest"),
)

bundles = Table(
    "bundles",
    metadata,
    Column("image_digest", String(80), nullable=False),
    Column("bundle_digest", String(80), nullable=False),
    Column("created_at", String(32), nullable=False),
    Column("size", Integer, nullable=False),
    Column("location", Text, nullable=False),
    UniqueConstraint("image_digest", "bundle_digest", name="bundles_key"),
)


remediation = Table(  # one row per (image, vulnerability): when seen, fixable, fixed and shipped
    "remediation",
    metadata,
    Column("image", Text, primary_key=True),  # pushed repository (HOST/REPO) or spec path
    Column("vuln", String(64), primary_key=True),
    Column("package", Text, nullable=False),
    Column("severity", String(16), nullable=False),  # "" = unknown (no FedRAMP deadline)
    Column("kev_due", String(32), nullable=False),
    Column("first_seen", String(32), nullable=False),
    Column("fix_available", String(32)),  # first update that saw a candidate fixing it
    Column("fixed_in", Text, nullable=False),  # the candidate version
    Column("sources", String(40), nullable=False),  # "changelog", "db", "changelog+db"
    Column("built_at", String(32)),  # first image carrying the fix was built
    Column("built_digest", String(80), nullable=False),
    Column("shipped_at", String(32)),  # ... and pushed
    Column("shipped_ref", Text, nullable=False),
)
