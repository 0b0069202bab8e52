"""``assay keygen``: an ECDSA P-256 key pair in cosign's format."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from assay._atomic import atomic_write_bytes
from assay.cli import _console
from assay.errors import UsageError


def read_password(*, confirm: bool) -> bytes:
    """The key passphrase: ``ASSAY_PASSWORD``, ``COSIGN_PASSWORD``, else a prompt (may be empty)."""
    from assay.attest.keys import password_from_env  # cryptography: only once it is needed

    env = password_from_env()
    if env is not None:
        return env
    if not sys.stdin.isatty():
        raise UsageError(
            "no key passphrase: stdin is not a terminal, so set ASSAY_PASSWORD "
            "(or COSIGN_PASSWORD; empty for no passphrase)"
        )
    value: str = typer.prompt(
        "Enter password for private key",
        default="",
        show_default=False,
        hide_input=True,
        confirmation_prompt="Enter password for private key again" if confirm else False,
        err=True,
    )
    return value.encode("utf-8")


def register(app: typer.Typer) -> None:
    @app.command("keygen")
    def keygen(
        output_key_prefix: str = typer.Option(
            "cosign",
            "--output-key-prefix",
            envvar="ASSAY_OUTPUT_KEY_PREFIX",
            help="Write PREFIX.key (encrypted private key) and PREFIX.pub.",
        ),
        force: bool = typer.Option(False, "--force", help="Overwrite existing key files."),
    ) -> None:
        """Generate an ECDSA P-256 key pair in cosign's format (cosign.key + cosign.pub).

        The passphrase comes from ASSAY_PASSWORD (or COSIGN_PASSWORD) or a prompt; empty is allowed.
        """
        key_path = Path(output_key_prefix + ".key")
        pub_path = Path(output_key_prefix + ".pub")
        for path in (key_path, pub_path):
            if path.exists() and not force:
                raise UsageError(f"{path} already exists; pass --force to overwrite it")
        password = read_password(confirm=True)
        from assay.attest.keys import generate_keypair

        private_pem, public_pem = generate_keypair(password)
        atomic_write_bytes(key_path, private_pem, mode=0o600)
        atomic_write_bytes(pub_path, public_pem, mode=0o644)
        _console.info(f"Private key written to {key_path}")
        _console.info(f"Public key written to {pub_path}")
