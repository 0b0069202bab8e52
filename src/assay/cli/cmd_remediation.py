"""``assay remediation status``: per (image, CVE) first seen, fix available, shipped, deadline."""

from __future__ import annotations

import json
from enum import StrEnum

import typer

from assay.cli import _console, _options

__all__ = ["register"]

app = typer.Typer(
    name="remediation",
    help="The remediation record kept by `assay update` in the evidence store.",
    no_args_is_help=True,
)


class StatusOutput(StrEnum):
    table = "table"
    json = "json"


@app.command("status")
def status_command(
    store: str | None = _options.store_option(
        "Evidence store (sqlite:///PATH, PATH, postgresql://...; default: the cache's)."
    ),
    image: str | None = typer.Option(
        None, "--image", help="Only this image (HOST/REPO as pushed, or the spec path)."
    ),
    output: StatusOutput = typer.Option(
        StatusOutput.table,
        "--output",
        "-o",
        envvar="ASSAY_REMEDIATION_OUTPUT",
        help="table or json.",
    ),
) -> None:
    """Per image and CVE: first seen, when a fix became available, when an image with the fix
    was built and pushed, the FedRAMP due date (High 30 / Moderate 90 / Low 180 days from first
    seen; KEV by its due date) and whether it was met.

    Exit codes: 0 ok; 1 the store cannot be reached; 2 bad arguments.
    """
    from assay.remediation.record import remediation_status
    from assay.store import open_store

    with open_store(store) as st:
        rows = remediation_status(st, image=image)
    if output is StatusOutput.json:
        data = {"remediation": [r.to_dict() for r in rows]}
        _console.emit(json.dumps(data, indent=2, sort_keys=True) + "\n")
        return
    if not rows:
        _console.info("no remediation records (run `assay update` first)")
        return
    lines = []
    head = ("image", "vuln", "package", "severity", "first seen", "fix available", "shipped")
    lines.append("\t".join((*head, "due", "met")))
    for r in rows:
        met = "-" if r.met is None else ("yes" if r.met else "NO")
        lines.append(
            "\t".join(
                (
                    r.image,
                    r.vuln,
                    r.package,
                    r.severity or "-",
                    r.first_seen[:10],
                    (r.fix_available or "-")[:10],
                    (r.shipped_at or "-")[:10],
                    r.due_date or "-",
                    met,
                )
            )
        )
    _console.emit("\n".join(lines) + "\n")


def register(root: typer.Typer) -> None:
    root.add_typer(app)
