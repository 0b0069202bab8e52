"""The scan pipeline the CLI drives: target -> inventory -> matches -> VEX -> filtered result."""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from assay.debian.codenames import codename_for, version_for
from assay.errors import InputError, UsageError
from assay.sbom.model import Distro, Inventory
from assay.vuln.db import AdvisoryDB, SourceStatus
from assay.vuln.matcher import scan_inventory
from assay.vuln.model import ScanResult, Severity
from assay.vuln.sbom_input import read_sbom
from assay.vuln.vex import VexDocument, apply_vex

__all__ = ["ScanOptions", "load_target", "parse_distro", "run_scan", "stale_sources"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScanOptions:
    show_negligible: bool = False
    only_fixed: bool = False
    vex: Sequence[VexDocument] = ()
    today: dt.date | None = None
    record_first_seen: bool = True
    distro: Distro | None = None  # overrides the detected distro (``--distro debian:12``)


_DISTRO = re.compile(r"^([a-z][a-z0-9._-]{0,31})[:@-]([0-9][0-9.]{0,15}|[a-z][a-z0-9-]{0,31})$")


def parse_distro(text: str) -> Distro:
    """``debian:12``, ``debian:12.8`` or ``debian:bookworm`` (grype's ``--distro`` syntax)."""
    m = _DISTRO.match(text.strip().lower())
    if m is None:
        raise UsageError(
            f"--distro {text!r}: use ID:VERSION or ID:CODENAME, e.g. debian:12 or debian:bookworm"
        )
    ident, ver = m.group(1), m.group(2)
    if ver[0].isdigit():
        codename = codename_for(ver) if ident == "debian" else ""
        version = ver
    else:
        codename, version = ver, version_for(ver) if ident == "debian" else ""
    if ident == "debian" and not codename:
        raise UsageError(f"--distro {text!r}: unknown Debian release; use e.g. debian:12")
    pretty = f"{ident} {version}".strip() + (f" ({codename})" if codename else "")
    return Distro(id=ident, version_id=version, codename=codename, pretty_name=pretty)


def run_scan(db: AdvisoryDB, inventory: Inventory, options: ScanOptions) -> ScanResult:
    if options.distro is not None:
        if inventory.distro is not None and inventory.distro != options.distro:
            log.info("--distro overrides the detected distro %s", inventory.distro)
        inventory = replace(inventory, distro=options.distro)
    result = scan_inventory(
        db, inventory, today=options.today, record_first_seen=options.record_first_seen
    )
    if options.vex:
        result = apply_vex(result, options.vex)
    findings = result.findings
    hidden = 0
    if not options.show_negligible:
        kept = tuple(f for f in findings if f.severity is not Severity.NEGLIGIBLE)
        hidden = len(findings) - len(kept)
        findings = kept
    if options.only_fixed:
        findings = tuple(f for f in findings if f.fixed_in)
    return replace(result, findings=findings, hidden_negligible=hidden)


def stale_sources(
    db: AdvisoryDB, max_age_days: float, now: dt.datetime | None = None
) -> list[tuple[SourceStatus, float]]:
    """Sources older than ``max_age_days`` (with their age in days)."""
    return [(s, s.age_days(now)) for s in db.sources() if s.age_days(now) > max_age_days]


def load_target(target: str, *, architecture: str = "", insecure: bool = False) -> Inventory:
    """An inventory for an SBOM file or an image/dir reference (catalogued by ``assay.sbom``)."""
    prefixes = ("dir:", "oci:", "oci-archive:", "docker-archive:", "docker://")
    if not target.startswith(prefixes) and Path(target).is_file():
        return read_sbom(Path(target))
    if not target.startswith(prefixes) and "/" not in target:
        raise InputError(
            f"{target!r} is neither an SBOM file nor an image reference "
            "(dir:PATH, oci:DIR[:TAG], oci-archive:FILE, HOST/REPO[:TAG][@sha256:…])"
        )
    try:
        from assay.sbom.catalog import catalog_view, wants_any
        from assay.sbom.catalogers import default_catalogers
        from assay.sbom.source import load_image
    except ImportError as exc:  # pragma: no cover - the sbom package is part of assay
        raise UsageError(
            f"cataloguing images needs assay.sbom ({exc}); scan an SBOM file instead"
        ) from None
    catalogers = default_catalogers()
    view, info = load_image(
        target, wants_any(catalogers), architecture=architecture, insecure=insecure
    )
    return catalog_view(
        view,
        subject_name=info.repository or info.name,
        subject_digest=info.digest,
        architecture=info.architecture,
        catalogers=catalogers,
        repository=info.repository,
    )
