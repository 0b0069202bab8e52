"""``assay diff OLD NEW``: packages, files, config and the vulnerability delta of two images."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import typer

from assay.cli import _console, _options

__all__ = ["register"]


class DiffOutput(StrEnum):
    table = "table"
    json = "json"
    markdown = "markdown"


def diff_command(
    old: str = typer.Argument(
        ..., help="The old image (oci:DIR[:TAG], oci-archive:FILE, HOST/REPO…)."
    ),
    new: str = typer.Argument(..., help="The new image."),
    arch: str = typer.Option(
        "", "--arch", envvar="ASSAY_ARCH", help="Platform to compare in an index (default: host's)."
    ),
    db: Path | None = _options.vuln_db_option(
        "Advisory DB for the vulnerability delta (default: the cache's, when present)."
    ),
    insecure_registry: bool = _options.INSECURE_PLAIN_HTTP,
    output: DiffOutput = typer.Option(
        DiffOutput.table,
        "--output",
        "-o",
        envvar="ASSAY_DIFF_OUTPUT",
        help="table, json or markdown.",
    ),
) -> None:
    """Compare two images: packages, files, config and the CVEs fixed/added.

    Any two images, assay's or not: packages (from the SBOM catalogers), files (type, mode,
    owner, size, mtime, link, SHA256 over the merged filesystems), config keys, and the CVEs
    fixed/introduced (both inventories matched against the local advisory DB).

    Example: `assay diff REG/acme/app@sha256:OLD REG/acme/app@sha256:NEW -o markdown`.

    Exit codes: 0 compared (whether or not they differ); 1 registry or network failure; 2 bad
    reference or input.
    """
    from assay.remediation.diff import compare_images, render
    from assay.vuln.db import AdvisoryDB, default_db_path

    if insecure_registry:
        _console.warn("--insecure-registry: plain HTTP / unverified TLS to the registry")
    path = db or default_db_path()
    if db is not None and not path.exists():
        from assay.errors import UsageError

        raise UsageError(f"no advisory DB at {path}; run `assay db update`")
    if path.exists():
        with AdvisoryDB(path, create=False) as adb:
            result = compare_images(old, new, architecture=arch, insecure=insecure_registry, db=adb)
    else:
        _console.warn(f"no advisory DB at {path}: the vulnerability delta is left out")
        result = compare_images(old, new, architecture=arch, insecure=insecure_registry)
    _console.emit(render(result, output.value))


def register(app: typer.Typer) -> None:
    app.command(name="diff")(diff_command)
