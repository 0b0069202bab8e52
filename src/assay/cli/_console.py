"""Console helpers: messages and progress on stderr, data on stdout or ``-o FILE``."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from assay._atomic import atomic_write_bytes

__all__ = ["emit", "err", "error", "info", "state", "warn"]

err = Console(stderr=True, highlight=False)


@dataclass
class _State:
    verbose: int = 0
    quiet: bool = False  # -q: info() says nothing; warnings, errors and data still appear


state = _State()


def error(message: str) -> None:
    err.print(f"[bold red]assay: error:[/] {escape(message)}", markup=True, soft_wrap=True)


def warn(message: str) -> None:
    err.print(f"[yellow]assay: warning:[/] {escape(message)}", markup=True, soft_wrap=True)


def info(message: str) -> None:
    if state.quiet:
        return
    err.print(message, markup=False, soft_wrap=True)


def emit(data: str | bytes, output: Path | None = None) -> None:
    """Write a finished result to ``output`` (atomically) or to stdout."""
    raw = data.encode() if isinstance(data, str) else data
    if output is None or str(output) == "-":
        sys.stdout.buffer.write(raw)
        sys.stdout.buffer.flush()
    else:
        atomic_write_bytes(output, raw)
