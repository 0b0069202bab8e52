"""The ``assay`` command. Each command group lives in its own module and registers itself here.

Only this package prints or exits. Library errors arrive as ``AssayError`` and become a one-line
message on stderr with the documented exit code (0 ok, 1 failed check, 2 usage/input error).
"""

from __future__ import annotations

import logging
import os
import sys

import typer

from assay import __version__
from assay.cli import _console
from assay.errors import AssayError

app = typer.Typer(
    name="assay",
    help=(
        "Build minimal, reproducible, signed OCI images from Debian packages, and produce and "
        "check their evidence (SBOM, signatures, provenance, vulnerabilities)."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"assay {__version__}")
        raise typer.Exit(0)


@app.callback()
def _main(
    verbose: int = typer.Option(
        0, "--verbose", "-v", count=True, help="More log output; -vv shows tracebacks."
    ),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    level = logging.WARNING - 10 * verbose
    logging.basicConfig(
        level=max(level, logging.DEBUG), format="%(levelname)s %(name)s: %(message)s"
    )
    _console.state.verbose = verbose


def _register() -> None:
    # Imported for their side effect of adding commands to ``app``.
    import importlib
    import pkgutil

    import assay.cli as pkg

    # The order --help lists them in: the build flow first, then evidence, then scanning.
    order = [
        "lock",
        "build",
        "run",
        "push",
        "keygen",
        "sign",
        "attest",
        "provenance",
        "policy",
        "sbom",
        "scan",
        "db",
        "vex",
        "admission",
    ]
    mods = [m.name for m in pkgutil.iter_modules(pkg.__path__) if m.name.startswith("cmd_")]
    rank = {f"cmd_{name}": i for i, name in enumerate(order)}
    for mod in sorted(mods, key=lambda m: (rank.get(m, len(order)), m)):
        importlib.import_module(f"assay.cli.{mod}").register(app)


_register()


def run() -> None:
    """Console-script entry point."""
    try:
        code = app(standalone_mode=False)
    except AssayError as exc:
        if _console.state.verbose >= 2 or os.environ.get("ASSAY_DEBUG"):
            raise
        _console.error(str(exc))
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        _console.error("aborted")
        sys.exit(130)
    except Exception as exc:  # click usage errors arrive here in non-standalone mode
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(2)
        raise
    sys.exit(code if isinstance(code, int) else 0)
