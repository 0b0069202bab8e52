"""``assay scan IMAGE|SBOM``: vulnerabilities from the local database, with VEX applied."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from assay.cli import _console, _options
from assay.cli._choices import ScanFormat
from assay.errors import AssayError, UsageError

if TYPE_CHECKING:
    from assay.sbom.model import Distro, Inventory
    from assay.vuln.model import ScanResult
    from assay.vuln.vex import VexDocument

__all__ = ["attested_vex", "register"]


def scan_command(
    target: str = typer.Argument(
        ...,
        help="oci:DIR[:TAG], oci-archive:FILE, dir:PATH, HOST/REPO[:TAG][@sha256:…], "
        "or an SPDX/CycloneDX JSON SBOM file.",
    ),
    output: ScanFormat = typer.Option(
        ScanFormat.table,
        "--output",
        "-o",
        envvar="ASSAY_SCAN_OUTPUT",
        help="table, json, sarif, cyclonedx-vex, or cosign-vuln (the predicate for "
        "`assay attest --type vuln`).",
    ),
    file: Path | None = typer.Option(
        None, "--file", envvar="ASSAY_SCAN_FILE", help="Write the result to FILE, not stdout."
    ),
    db: Path | None = _options.vuln_db_option("Database file."),
    vex: list[Path] = typer.Option(
        [], "--vex", envvar="ASSAY_VEX", help="OpenVEX document to apply (repeatable)."
    ),
    fail_on: str = typer.Option(
        "",
        "--fail-on",
        envvar="ASSAY_FAIL_ON",
        help="Exit 1 when an unsuppressed finding is at or above SEVERITY "
        "(negligible, unknown, low, medium, high, critical).",
    ),
    only_fixed: bool = typer.Option(
        False, "--only-fixed", envvar="ASSAY_ONLY_FIXED", help="Only findings with a fix."
    ),
    show_negligible: bool = typer.Option(
        False,
        "--show-negligible",
        envvar="ASSAY_SHOW_NEGLIGIBLE",
        help="Show findings Debian rates unimportant (hidden by default).",
    ),
    warn_db_age: float = typer.Option(
        7.0, "--warn-db-age", envvar="ASSAY_WARN_DB_AGE", help="Warn when a feed is older (days)."
    ),
    max_db_age: float | None = typer.Option(
        None,
        "--max-db-age",
        envvar="ASSAY_MAX_DB_AGE",
        help="Fail (exit 1) when any imported feed's data is older than DAYS (by the "
        "feed's own date; see `assay db status`).",
    ),
    updates: bool = typer.Option(
        False,
        "--updates",
        envvar="ASSAY_UPDATES",
        help="Also list newer versions in the configured suites and the CVEs their "
        "changelogs name.",
    ),
    updates_source: str = typer.Option(
        "",
        "--updates-source",
        envvar="ASSAY_UPDATES_SOURCE",
        help="Suites for --updates, as 'URI SUITE[,SUITE] [COMPONENT…]' entries separated by ';' "
        "(default: ASSAY_DEBIAN_MIRROR, else the host's apt sources).",
    ),
    arch: str = typer.Option("", "--arch", envvar="ASSAY_ARCH", help="Platform of an index."),
    distro: str = typer.Option(
        "",
        "--distro",
        envvar="ASSAY_DISTRO",
        help="Match packages as this distro release, overriding detection: debian:12 or "
        "debian:bookworm (for images without /etc/os-release).",
    ),
    store: bool = typer.Option(
        False,
        "--store",
        envvar="ASSAY_SCAN_STORE",
        help="Record the image's inventory in the evidence store (--store-url) for fleet "
        "rescans (`assay db rescan`) and reports (`assay report --fleet`).",
    ),
    store_url: str | None = typer.Option(
        None,
        "--store-url",
        envvar="ASSAY_SCAN_STORE_URL",
        help="Evidence store for --store: sqlite:///PATH or postgresql://USER@HOST/DB "
        "(default: ASSAY_STORE, else CACHE_DIR/store.db).",
    ),
    insecure_registry: bool = typer.Option(
        False, "--insecure-registry", help="Allow plain HTTP to a non-loopback registry."
    ),
    key: Path | None = typer.Option(
        None,
        "--key",
        envvar="ASSAY_VEX_KEY",
        help="Public key: verify the registry image's 'openvex' attestations with it and "
        "apply them (unverifiable attestations fail the scan).",
    ),
) -> None:
    """Scan an image, directory or SBOM against the local vulnerability database.

    Debian packages match the Debian security tracker by source package and release (the
    distro comes from /etc/os-release or the SBOM, or --distro); other packages match OSV.
    Packages that cannot be matched (unknown distro, no data for the release) are a warning,
    and with --fail-on a failure: a gate that cannot see does not pass.
    Exit codes: 0 ok; 1 --fail-on threshold reached, --fail-on with unmatched packages, or a
    feed's data older than --max-db-age; 2 bad input or no database.

    Table columns: EPSS (PCTL) is the EPSS score, the probability of exploitation in the next
    30 days (0-1), with its percentile among all scored CVEs as pNN. DUE is the FedRAMP
    remediation deadline: the day the finding was first seen for this image (recorded in the
    database) plus 30 days for critical and high, 90 for medium, 180 for low; the CISA KEV due
    date instead when that is earlier; none for negligible or unknown severity.
    """
    import dataclasses

    from assay._time import utc_now
    from assay.vuln.db import AdvisoryDB, default_db_path
    from assay.vuln.formats import FORMATTERS, OutputFormat
    from assay.vuln.model import Severity
    from assay.vuln.scanner import (
        ScanOptions,
        load_target,
        parse_distro,
        run_scan,
        stale_sources,
    )
    from assay.vuln.vex import load_vex

    try:
        fmt = OutputFormat(output)
    except ValueError:
        raise UsageError(
            f"unknown output {output!r}; use one of: {', '.join(f.value for f in OutputFormat)}"
        ) from None
    threshold = None
    if fail_on:
        try:
            threshold = Severity.parse(fail_on)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    distro_override = parse_distro(distro) if distro else None
    vex_docs = [load_vex(v) for v in vex]
    if key is not None:
        attested = attested_vex(target, key, insecure_registry)
        _console.info(f"applying {len(attested)} verified OpenVEX attestation(s) from {target}")
        vex_docs.extend(attested)
    if insecure_registry:
        _console.warn("--insecure-registry: registry traffic may be unencrypted")
    started = utc_now()
    inventory = load_target(target, architecture=arch, insecure=insecure_registry)
    with AdvisoryDB(db or default_db_path(), create=False) as adb:
        if not adb.sources():
            raise UsageError(
                f"the vulnerability database {adb.path} is empty; run `assay db update` "
                "(or `assay db import …`)"
            )
        if max_db_age is not None:
            too_old = stale_sources(adb, max_db_age)
            if too_old:
                names = ", ".join(
                    f"{s.name} (data from {s.dated[:10]}, {age:.1f} d)" for s, age in too_old
                )
                raise AssayError(
                    f"vulnerability data older than --max-db-age {max_db_age:g} days: "
                    f"{names}; run `assay db update` (or import newer feed files)"
                )
        for s, age in stale_sources(adb, warn_db_age):
            _console.warn(
                f"feed {s.name}: its data is {age:.1f} days old (from {s.dated[:10]}); "
                "run `assay db update`"
            )
        result = run_scan(
            adb,
            inventory,
            ScanOptions(
                show_negligible=show_negligible,
                only_fixed=only_fixed,
                vex=vex_docs,
                distro=distro_override,
            ),
        )
    result = dataclasses.replace(result, started=started, finished=utc_now())
    if store:
        _record(inventory, distro_override, store_url)
    if updates:
        result = _with_updates(result, inventory, updates_source)
    _console.emit(FORMATTERS[fmt].render(result), file)
    for spot in result.blind_spots:
        _console.warn(f"NOT SCANNED: {spot}")
    if threshold is not None:
        hits = result.unsuppressed_at_or_above(threshold)
        if result.blind_spots and not hits:
            raise AssayError(f"--fail-on {threshold.value} cannot pass: {result.blind_spots[0]}")
        if hits:
            raise AssayError(
                f"{len(hits)} unsuppressed finding(s) at or above {threshold.value} (--fail-on); "
                "fix them or record a VEX statement"
            )


def _record(inventory: Inventory, distro: Distro | None, url: str | None) -> None:
    """Keep the scanned inventory in the evidence store (with the distro it was matched as)."""
    from dataclasses import replace

    from assay.store import open_store

    if distro is not None:
        inventory = replace(inventory, distro=distro)
    if not inventory.subject_digest:
        raise UsageError(
            "--store needs an image digest to record the inventory under; scan the image "
            "(or an SBOM that names its digest)"
        )
    with open_store(url) as store:
        store.record_image(inventory)
        where = store.where
    _console.info(
        f"recorded {inventory.subject_digest} in the evidence store {where}; "
        "`assay db rescan` matches the fleet"
    )


def attested_vex(target: str, key: Path, insecure: bool) -> list[VexDocument]:
    """Verified OpenVEX attestations of a registry image ([] when none is attached)."""
    from assay.attest import remote
    from assay.cli.cmd_sign import client_for, load_verification_key
    from assay.errors import VerificationError
    from assay.vuln.vex import vex_from_statements

    if (
        target.startswith(("dir:", "oci:", "oci-archive:", "docker-archive:"))
        or Path(target).is_file()
    ):
        raise UsageError("--key applies VEX attestations of a registry image: HOST/REPO[:TAG]")
    ref = remote.parse_image_ref(target.removeprefix("docker://"))
    public = load_verification_key(key)
    with client_for(ref, insecure) as client:
        try:
            _, atts = remote.verify_image_attestations(client, ref, public, "openvex")
        except VerificationError as exc:
            if "(none attached)" in str(exc):
                return []
            raise
    return vex_from_statements(a.statement for a in atts)


def _with_updates(result: ScanResult, inventory: Inventory, updates_source: str) -> ScanResult:
    from dataclasses import asdict, replace

    from assay.debian.sources import sources_from_env_or_host
    from assay.vuln.updates import check_updates

    env = {"ASSAY_DEBIAN_MIRROR": updates_source} if updates_source else None
    sources = sources_from_env_or_host(env)
    infos = check_updates(inventory, sources, progress=_console.info)
    return replace(result, updates=tuple(asdict(i) for i in infos))


def register(app: typer.Typer) -> None:
    app.command("scan")(scan_command)
