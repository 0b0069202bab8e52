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
        "report",
        "evidence",
    ]
    mods = [m.name for m in pkgutil.iter_modules(pkg.__path__) if m.name.startswith("cmd_")]
    rank = {f"cmd_{name}": i for i, name in enumerate(order)}
    for mod in sorted(mods, key=lambda m: (rank.get(m, len(order)), m)):
        importlib.import_module(f"assay.cli.{mod}").register(app)


_register()


def _click_errors() -> tuple[type[Exception], type[Exception]]:
    """The ``ClickException`` and ``Abort`` classes of the click typer really uses.

    typer up to 0.2x depends on click; later versions bundle their own copy (``typer._click``),
    whose exceptions are not ``click``'s. ``typer.BadParameter`` comes from whichever it uses.
    """
    module = sys.modules[typer.BadParameter.__module__]
    abort: type[Exception] = getattr(module, "Abort", typer.Abort)  # 0.29 has only typer's
    return module.ClickException, abort


def _usage_error(exc: Exception) -> int:
    """Say what was wrong with the command line in one line on stderr; return the exit code."""
    ctx = getattr(exc, "ctx", None)
    if type(exc).__name__ == "NoArgsIsHelpError":  # a bare `assay` or `assay db`: show the help
        text = str(getattr(exc, "message", "") or "")
        if text.strip():  # plain click puts the help in the message; rich printed it already
            typer.echo(text)
        return 2
    format_message = getattr(exc, "format_message", None)
    message = format_message() if callable(format_message) else str(exc)
    message = " ".join(str(message).split())  # one line, whatever click wrapped
    where = getattr(ctx, "command_path", "") or "assay"
    _console.error(f"{message} (see `{where} --help`)")
    return int(getattr(exc, "exit_code", 2) or 2)


def run() -> None:
    """Console-script entry point."""
    click_exception, click_abort = _click_errors()
    try:
        code = app(standalone_mode=False)
    except AssayError as exc:
        if _console.state.verbose >= 2 or os.environ.get("ASSAY_DEBUG"):
            raise
        _console.error(str(exc))
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, click_abort):
        _console.error("aborted")
        sys.exit(130)
    except click_exception as exc:  # usage errors arrive here in non-standalone mode
        sys.exit(_usage_error(exc))
    sys.exit(code if isinstance(code, int) else 0)
