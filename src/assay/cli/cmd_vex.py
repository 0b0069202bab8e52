"""``assay vex create|merge|apply``: OpenVEX 0.2.0 documents."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from assay._json import load_json
from assay.cli import _console
from assay.cli._choices import ScanFormat
from assay.errors import AssayError, InputError

__all__ = ["register"]

vex_app = typer.Typer(
    name="vex", help="Create, merge and apply OpenVEX 0.2.0 documents.", no_args_is_help=True
)


_AUTHOR = typer.Option("", "--author", envvar="ASSAY_VEX_AUTHOR")
_FILE = typer.Option(
    None, "--file", envvar="ASSAY_VEX_FILE", help="Write to FILE (default stdout)."
)


def _author(author: str) -> str:
    return author or os.environ.get("ASSAY_VEX_AUTHOR") or "assay"


@vex_app.command("create")
def create_command(
    product: list[str] = typer.Option(
        ..., "--product", help="Image purl (pkg:oci/NAME@sha256:…), digest, or package purl."
    ),
    vuln: list[str] = typer.Option(..., "--vuln", help="Vulnerability id (repeatable)."),
    status: str = typer.Option(
        ..., "--status", help="not_affected, affected, fixed or under_investigation."
    ),
    justification: str = typer.Option("", "--justification", help="For not_affected."),
    impact_statement: str = typer.Option("", "--impact-statement", help="For not_affected."),
    action_statement: str = typer.Option("", "--action-statement", help="Required for affected."),
    status_notes: str = typer.Option("", "--status-notes"),
    subcomponent: list[str] = typer.Option(
        [], "--subcomponent", help="Package purl inside the product the statement is about."
    ),
    author: str = _AUTHOR,
    file: Path | None = _FILE,
) -> None:
    """Write an OpenVEX document with one statement per --vuln.

    Exit codes: 0 ok; 2 the statement breaks the spec's rules (e.g. not_affected without a
    justification or impact statement, affected without an action statement).
    """
    from assay.vuln.vex import create_document

    doc = create_document(
        products=product,
        vulns=vuln,
        status=status,
        author=_author(author),
        justification=justification,
        impact_statement=impact_statement,
        action_statement=action_statement,
        status_notes=status_notes,
        subcomponents=subcomponent,
    )
    _console.emit(doc.dumps(), file)


@vex_app.command("merge")
def merge_command(
    files: list[Path] = typer.Argument(..., help="OpenVEX documents to merge."),
    author: str = _AUTHOR,
    file: Path | None = _FILE,
) -> None:
    """Merge documents, keeping the latest statement per (product, vulnerability)."""
    from assay.vuln.vex import load_vex, merge_documents

    doc = merge_documents([load_vex(f) for f in files], author=_author(author))
    _console.emit(doc.dumps(), file)


@vex_app.command("apply")
def apply_command(
    result: Path = typer.Argument(..., help="A scan result from `assay scan -o json`."),
    vex: list[Path] = typer.Option(..., "--vex", help="OpenVEX document (repeatable)."),
    output: ScanFormat = typer.Option(
        ScanFormat.json,
        "--output",
        "-o",
        envvar="ASSAY_VEX_APPLY_OUTPUT",
        help="table, json, sarif or cyclonedx-vex.",
    ),
    fail_on: str = typer.Option("", "--fail-on", envvar="ASSAY_FAIL_ON"),
    file: Path | None = _FILE,
    old_format: ScanFormat | None = typer.Option(
        None, "--format", hidden=True, help="Deprecated: use -o/--output."
    ),
) -> None:
    """Apply VEX to a saved JSON scan result and print it again (suppressed findings stay
    visible with their statement). Exit 1 when --fail-on finds unsuppressed findings."""
    from assay.vuln.formats import FORMATTERS, OutputFormat
    from assay.vuln.formats.json_format import result_from_json
    from assay.vuln.model import Severity
    from assay.vuln.vex import apply_vex, load_vex

    if old_format is not None:
        _console.warn("vex apply --format is deprecated; use -o/--output")
        output = old_format
    from assay._safefs import open_regular

    try:
        with open_regular(result, f"scan result {result}") as fh:
            raw = fh.read((256 << 20) + 1)
    except OSError as exc:
        raise InputError(f"cannot read scan result {result}: {exc.strerror or exc}") from None
    data = load_json(raw, what=f"scan result {result}", max_size=256 << 20)
    res = apply_vex(result_from_json(data, str(result)), [load_vex(v) for v in vex])
    formatter = FORMATTERS[OutputFormat(output.value)]
    _console.emit(formatter.render(res), file)
    if fail_on:
        try:
            threshold = Severity.parse(fail_on)
        except ValueError as exc:
            raise InputError(str(exc)) from None
        hits = res.unsuppressed_at_or_above(threshold)
        if hits:
            raise AssayError(
                f"{len(hits)} unsuppressed finding(s) at or above {threshold.value} (--fail-on)"
            )


def register(app: typer.Typer) -> None:
    app.add_typer(vex_app, name="vex")
