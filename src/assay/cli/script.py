"""The ``assay`` console script (``pyproject.toml``), and ``python -m assay``."""

from __future__ import annotations

from assay.cli import _startup


def run() -> None:
    """Load the command line with the collector paused (see :mod:`assay.cli._startup`), run it."""
    _startup.enable()
    with _startup.loading():
        from assay.cli.main import run as run_command_line
    run_command_line()
