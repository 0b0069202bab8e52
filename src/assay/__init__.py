"""assay: minimal, reproducible, signed OCI images from Debian packages, and their evidence."""

__version__ = "0.1.0"

__all__ = ["__version__"]
