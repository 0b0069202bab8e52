"""Catalogue an image named by reference: the one call ``assay sbom`` makes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from assay.sbom.catalog import catalog_view, reduce_any, wants_any
from assay.sbom.catalogers import Cataloger, default_catalogers
from assay.sbom.fs import Selection
from assay.sbom.model import Inventory
from assay.sbom.source import load_image

__all__ = ["catalog_image"]


def catalog_image(
    reference: str,
    *,
    architecture: str = "",
    insecure: bool = False,
    source_date_epoch: int | None = None,
    catalogers: Sequence[Cataloger] | None = None,
) -> Inventory:
    """Read the image (layers as streams, whiteouts applied) and catalogue its packages.

    The inventory's timestamp is ``source_date_epoch`` when given, else the image config's
    ``created``, else the Unix epoch — never the wall clock, so the same image gives the same
    SBOM bytes.
    """
    cats = list(catalogers) if catalogers is not None else default_catalogers()
    select = Selection(wants_any(cats), reduce_any(cats))
    view, info = load_image(reference, select, architecture=architecture, insecure=insecure)
    if source_date_epoch is not None:
        created = datetime.fromtimestamp(source_date_epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    else:
        created = info.created
    name = info.repository or info.name
    inv = catalog_view(
        view,
        subject_name=name,
        subject_digest=info.digest,
        architecture=info.architecture,
        catalogers=cats,
        created=created,
        repository=info.repository,
    )
    from dataclasses import replace

    return replace(inv, supplier=info.supplier or inv.supplier, tag=info.tag)
