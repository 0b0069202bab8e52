"""Start-up of the ``assay`` console script: module loading with the garbage collector paused.

Starting a command creates a few hundred thousand objects that live as long as the process: the
modules of typer and its click, then the command's own libraries. The cyclic garbage collector
walks them over and over while they load, and once more as the interpreter exits, and frees
nothing: about 0.04 s of a 0.1 s start (``bench/startup.py``). So while modules load the
collector is paused, and what they made is then frozen (:func:`gc.freeze`: left out of every
later collection); everything a command creates afterwards is collected as usual. It is used
where the console script loads typer and the command's module; the libraries a command imports
later, inside its work, load after the first freeze and measured no faster paused
(``bench/startup.py``'s verify rows, ``bench/push.py``'s warm push).

Only the console script turns this on (:func:`assay.cli.script.run`). Importing
:mod:`assay.cli.main` from tests or other programs, and :func:`loading` there, leave the
collector alone.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["enable", "loading"]

_enabled = False


def enable() -> None:
    """Pause the collector in :func:`loading` from now on (the console script only)."""
    global _enabled
    _enabled = True


@contextmanager
def loading() -> Iterator[None]:
    """Load modules inside: the collector is paused, then what was made is frozen."""
    if not _enabled:
        yield
        return
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if collecting:
            gc.enable()
