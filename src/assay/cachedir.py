"""Where assay keeps its caches (index files, .deb files, keyrings taken from sources)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_dir"]


def cache_dir() -> Path:
    """The cache root.

    ``$ASSAY_CACHE_DIR``, else ``$XDG_CACHE_HOME/assay``, else ``~/.cache/assay``.

    Relative values of ``XDG_CACHE_HOME`` are ignored, as the XDG base directory spec asks.
    The directory is not created here; writers create what they need.
    """
    explicit = os.environ.get("ASSAY_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / "assay"
    return Path.home() / ".cache" / "assay"
