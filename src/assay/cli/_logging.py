"""The ``assay`` command's log output: one stderr handler, outside text made printable.

Apart from :mod:`assay.cli._console` so that ``assay --help`` does not import :mod:`logging`.
"""

from __future__ import annotations

import logging

from assay._text import printable

__all__ = ["LogFormatter", "configure"]


class LogFormatter(logging.Formatter):
    """Log lines on stderr with outside text made printable (see :mod:`assay._text`)."""

    def format(self, record: logging.LogRecord) -> str:
        return printable(super().format(record), keep_newlines=True)


def configure(verbose: int) -> None:
    """Warnings and errors by default; ``-v`` adds info, ``-vv`` debug."""
    handler = logging.StreamHandler()
    handler.setFormatter(LogFormatter("%(levelname)s %(name)s: %(message)s"))
    level = max(logging.WARNING - 10 * verbose, logging.DEBUG)
    logging.basicConfig(level=level, handlers=[handler])
