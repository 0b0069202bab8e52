"""Console helpers: messages and progress on stderr, data on stdout or ``--file``.

Messages are plain lines (coloured on a terminal unless ``NO_COLOR`` is set), so a command that
only prints an error or its data never imports rich; ``err``, the rich console for tables and
progress, is created on first use.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assay._atomic import atomic_write_bytes
from assay._text import printable

if TYPE_CHECKING:
    from rich.console import Console

    err: Console

__all__ = ["emit", "err", "error", "info", "state", "warn"]


@dataclass
class _State:
    verbose: int = 0
    quiet: bool = False  # -q: info() says nothing; warnings, errors and data still appear


state = _State()


def __getattr__(name: str) -> Any:
    if name != "err":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from rich.console import Console

    console = Console(stderr=True, highlight=False)
    globals()["err"] = console
    return console


def _say(label: str, colour: str, message: str) -> None:
    # Outside text (registry errors, package names) must not drive the terminal: escape
    # control characters and bidi overrides (assay._text).
    line = (
        printable(" ".join(message.splitlines()))
        if label
        else printable(message, keep_newlines=True)
    )
    rich_console = globals().get("err")
    if rich_console is not None:  # a progress display may be live: let rich place the line
        from rich.markup import escape

        head = f"[{colour}]assay: {label}:[/] " if label else ""
        rich_console.print(f"{head}{escape(line)}", markup=True, soft_wrap=True)
        return
    head = f"assay: {label}: " if label else ""
    if head and colour and sys.stderr.isatty() and "NO_COLOR" not in os.environ:
        code = "1;31" if colour == "bold red" else "33"
        head = f"\033[{code}m{head}\033[0m"
    sys.stderr.write(f"{head}{line}\n")
    sys.stderr.flush()


def error(message: str) -> None:
    _say("error", "bold red", message)


def warn(message: str) -> None:
    _say("warning", "yellow", message)


def info(message: str) -> None:
    if state.quiet:
        return
    _say("", "", message)


def emit(data: str | bytes, output: Path | None = None) -> None:
    """Write a finished result to ``output`` (atomically) or to stdout."""
    raw = data.encode() if isinstance(data, str) else data
    if output is None or str(output) == "-":
        sys.stdout.buffer.write(raw)
        sys.stdout.buffer.flush()
    else:
        atomic_write_bytes(output, raw)
