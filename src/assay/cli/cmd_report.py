"""``assay report``: an image's compliance report (HTML, JSON, OSCAL, POA&M) or the fleet's."""

from __future__ import annotations

import datetime as dt
import enum
import os
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from assay.cli import _console, _options
from assay.errors import UsageError

if TYPE_CHECKING:
    from assay.compliance import ImageEvidence
    from assay.store import FleetReport


class ReportOutput(enum.StrEnum):
    html = "html"
    json = "json"
    oscal = "oscal"
    poam = "poam"


def _as_of(now: str | None) -> tuple[dt.date, str | None]:
    """The evaluation date and the OSCAL timestamp: --now, else SOURCE_DATE_EPOCH, else today."""
    if now:
        try:
            when = dt.datetime.fromisoformat(now.replace("Z", "+00:00"))
        except ValueError:
            raise UsageError(
                f"--now {now!r}: use a date (2025-03-01) or an RFC 3339 time (2025-03-01T12:00:00Z)"
            ) from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        when = when.astimezone(dt.UTC)
        return when.date(), when.strftime("%Y-%m-%dT%H:%M:%SZ")
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "")
    if epoch.isdigit():
        when = dt.datetime.fromtimestamp(int(epoch), dt.UTC)
        return when.date(), when.strftime("%Y-%m-%dT%H:%M:%SZ")
    return dt.datetime.now(dt.UTC).date(), None


def gather(
    image: str,
    key: Path,
    policy: list[Path] | None,
    store: str | None,
    db: Path | None,
    insecure_registry: bool,
    today: dt.date,
) -> ImageEvidence:
    """Verify and collect the image's evidence (and decide it with --policy); warn on gaps."""
    from assay.cli.cmd_sign import load_verification_key
    from assay.compliance import collect

    public = load_verification_key(key)
    if insecure_registry:
        _console.warn("--insecure-registry: talking to the registry without TLS verification")
    if policy:
        from assay.attest.remote import parse_image_ref
        from assay.policy import Engine, load_policies

        policy_set = load_policies(list(policy))
        hosts = frozenset({parse_image_ref(image).host}) if insecure_registry else frozenset()
        with Engine(policy_set, insecure_registries=hosts, timeout=60.0) as engine:
            evidence = collect(
                image,
                public,
                insecure=insecure_registry,
                engine=engine,
                policy_digest=policy_set.digest,
                db_path=db,
                store_url=store,
                today=today,
            )
    else:
        evidence = collect(
            image, public, insecure=insecure_registry, db_path=db, store_url=store, today=today
        )
    for problem in evidence.problems:
        _console.warn(problem)
    return evidence


def _threshold(fail_on: str) -> str:
    """The --fail-on severity, checked ("" = none)."""
    if not fail_on:
        return ""
    from assay.vuln.model import Severity

    try:
        return Severity.parse(fail_on).value
    except ValueError as exc:
        raise UsageError(f"--fail-on: {exc}") from None


def _fail_on(result: FleetReport, threshold: str) -> None:
    """Fail (exit 1) when an image has an open finding at or above the threshold."""
    from assay.errors import AssayError

    hits = [(r, n) for r in result.images if (n := r.at_or_above(threshold))]
    if hits:
        worst = ", ".join(f"{r.name}@{r.digest[:19]} ({n})" for r, n in hits[:3])
        more = f" and {len(hits) - 3} more" if len(hits) > 3 else ""
        raise AssayError(
            f"{len(hits)} image(s) have open findings at or above {threshold} (--fail-on): "
            f"{worst}{more}; rebuild them with fixed packages or record VEX statements"
        )


def register(app: typer.Typer) -> None:
    @app.command("report")
    def report(
        image: str | None = typer.Argument(
            None, help="HOST/REPO[:TAG][@sha256:…] (a registry image); omit with --fleet."
        ),
        key: Path | None = typer.Option(
            None,
            "--key",
            envvar="ASSAY_PUBLIC_KEY",
            help="cosign.pub that signatures and attestations must verify with.",
        ),
        policy: list[Path] | None = typer.Option(
            None,
            "--policy",
            envvar="ASSAY_REPORT_POLICY",
            help="Policy files/directories: their checks decide the controls that name them.",
        ),
        store: str | None = _options.store_option(
            "Evidence store URL: first-seen and due dates, and the --fleet report."
        ),
        db: Path | None = _options.vuln_db_option(
            "Scan now against this advisory DB instead of using the scan attestation."
        ),
        fleet: bool = typer.Option(
            False,
            "--fleet",
            envvar="ASSAY_REPORT_FLEET",
            help="Report every image in the store (needs --store).",
        ),
        output: ReportOutput = typer.Option(
            ReportOutput.html,
            "--output",
            "-o",
            envvar="ASSAY_REPORT_OUTPUT",
            help="html, json, oscal (assessment-results) or poam.",
        ),
        file: Path | None = typer.Option(
            None, "--file", envvar="ASSAY_REPORT_FILE", help="Write the report to FILE."
        ),
        now: str | None = typer.Option(
            None,
            "--now",
            envvar="ASSAY_REPORT_NOW",
            help="Evaluate as of this date/time (default SOURCE_DATE_EPOCH, else today).",
        ),
        insecure_registry: bool = _options.INSECURE_REGISTRY_ENV,
        fail_on: str = typer.Option(
            "",
            "--fail-on",
            envvar="ASSAY_REPORT_FAIL_ON",
            help="With --fleet: exit 1 when any image has an open finding at or above "
            "SEVERITY (negligible, unknown, low, medium, high, critical).",
        ),
    ) -> None:
        """Evaluate an image's verified evidence against the control catalog (PCI DSS, FedRAMP,
        NIST SP 800-190, SSDF, SLSA, CIS Docker, NTIA, EU CRA). Exit 0 when the report was
        written (whatever the controls' results), 1 registry/verification errors, 2 bad input.

        The fleet report (--fleet --store URL) exits 0 when written, 1 when --fail-on is reached
        (the report is still written) or the store cannot be reached, 2 bad input."""
        from assay.compliance import ReportFormat, evaluate, load_catalog, render
        from assay.compliance.render import render_fleet

        today, stamp = _as_of(now)
        fmt = ReportFormat(output.value)
        if fleet:
            if image is not None:
                raise UsageError("report: give IMAGE or --fleet, not both")
            if not store:
                raise UsageError("report --fleet needs --store URL (or ASSAY_STORE)")
            from assay.store import fleet_report, open_store

            threshold = _threshold(fail_on)
            with open_store(store) as s:
                result = fleet_report(s, today=today.isoformat())
            _console.emit(render_fleet(result, fmt), file)
            if threshold:
                _fail_on(result, threshold)
            return
        if fail_on:
            raise UsageError("--fail-on applies to the fleet report (--fleet --store URL)")
        if image is None:
            raise UsageError("report needs IMAGE (or --fleet --store URL)")
        if key is None:
            raise UsageError("report needs --key cosign.pub to verify the image's evidence")
        catalog = load_catalog()
        evidence = gather(image, key, policy, store, db, insecure_registry, today)
        result_report = evaluate(catalog, evidence, today)
        _console.emit(render(result_report, fmt, now=stamp), file)
        for fw in result_report.frameworks:
            _console.info(f"{fw.title}: {fw.result}")
