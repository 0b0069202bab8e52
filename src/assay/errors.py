"""The exception hierarchy. The CLI catches ``AssayError`` and nothing else.

    AssayError
    ├── UsageError            bad arguments or spec (exit 2)
    ├── InputError            hostile or malformed outside input: tar, ar, deb, JSON (exit 2)
    ├── NetworkError          a mirror or registry could not be reached (exit 1)
    ├── VerificationError     a signature, hash or policy check failed (exit 1)
    └── ResolutionError       packages cannot be resolved (exit 1)

Every message says what went wrong and, where there is one, what to do next.
"""

from __future__ import annotations


class AssayError(Exception):
    """Base of every error assay raises on purpose."""

    exit_code = 1


class UsageError(AssayError):
    """The user asked for something that cannot be done as asked."""

    exit_code = 2


class InputError(AssayError):
    """Outside input (a file, an archive, a document) is malformed or hostile."""

    exit_code = 2


class NetworkError(AssayError):
    """A remote endpoint could not be reached or answered unusably."""


class VerificationError(AssayError):
    """A hash, signature or other check failed. Verification fails closed."""


class ResolutionError(AssayError):
    """The requested packages cannot be resolved."""
