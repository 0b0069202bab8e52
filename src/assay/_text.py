"""Text from outside made safe to show on a terminal.

Registry error messages, package names, file names and the like come from people assay does not
trust. Printed raw, an ``ESC [`` sequence can recolour or rewrite the terminal, retitle the
window, hide lines or fake a success message; a carriage return or a bidi override can make a
line read differently from what it holds. :func:`printable` writes every such character as a
visible escape (``\\x1b``, ``\\u202e``) instead. The CLI's console applies it to every message
and log line, and human-readable formatters to what they render.
"""

from __future__ import annotations

import re

__all__ = ["printable"]

# C0 controls, DEL, C1 controls (0x9b is a one-byte CSI), line/paragraph separators, and the
# bidi embedding/override/isolate characters.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_UNSAFE_KEEP_LINES = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)


def _escape(m: re.Match[str]) -> str:
    code = ord(m.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str, *, keep_newlines: bool = False) -> str:
    """``text`` with every control, terminal-escape and bidi character written as an escape.

    ``keep_newlines`` leaves ``\\n`` and ``\\t`` alone (for multi-line output such as tables).
    """
    return (_UNSAFE_KEEP_LINES if keep_newlines else _UNSAFE).sub(_escape, text)
