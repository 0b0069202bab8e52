"""Options that several commands share, defined once: the same flag, environment variable and
help wherever they appear. Where only the help differs (what the command does with the value),
a function takes the help."""

from __future__ import annotations

from typing import Any

import typer

__all__ = [
    "INSECURE_PLAIN_HTTP",
    "INSECURE_REGISTRY",
    "INSECURE_REGISTRY_ENV",
    "PLATFORM",
    "PUSH_SIGN_KEY",
    "REGISTRY_IMAGE",
    "store_option",
    "vuln_db_option",
]

REGISTRY_IMAGE: Any = typer.Argument(..., help="HOST/REPO[:TAG][@sha256:…] in a registry.")

PLATFORM: Any = typer.Option(
    None,
    "--platform",
    envvar="ASSAY_PLATFORM",
    help="For an index: check only this platform's manifest (os/arch or os/arch/variant).",
)

_TLS_HELP = "Allow plain HTTP / unverified TLS (unsafe)."
INSECURE_REGISTRY: Any = typer.Option(False, "--insecure-registry", help=_TLS_HELP)
INSECURE_REGISTRY_ENV: Any = typer.Option(
    False, "--insecure-registry", envvar="ASSAY_INSECURE_REGISTRY", help=_TLS_HELP
)
INSECURE_PLAIN_HTTP: Any = typer.Option(
    False, "--insecure-registry", help="Allow plain HTTP to a non-loopback registry (unsafe)."
)

PUSH_SIGN_KEY: Any = typer.Option(
    None,
    "--sign-key",
    envvar="ASSAY_SIGN_KEY",
    help="With --push: sign the image and attest SBOMs and provenance with this cosign key.",
)


def store_option(help: str) -> Any:
    """``--store URL`` (``ASSAY_STORE``), the evidence store."""
    return typer.Option(None, "--store", envvar="ASSAY_STORE", help=help)


def vuln_db_option(help: str) -> Any:
    """``--db FILE`` (``ASSAY_VULN_DB``), the advisory database."""
    return typer.Option(None, "--db", envvar="ASSAY_VULN_DB", help=help)
