"""``assay attest`` and ``assay verify-attestation``: signed in-toto statements on images."""

from __future__ import annotations

from pathlib import Path

import typer

from assay.attest import remote
from assay.attest.intoto import resolve_predicate_type
from assay.attest.keys import load_public_key
from assay.cli import _console
from assay.cli.cmd_sign import (
    OutputFormat,
    _report,
    check_keyless_args,
    client_for,
    load_signing_key,
    read_file,
)
from assay.errors import UsageError


def register(app: typer.Typer) -> None:
    @app.command("attest")
    def attest(
        image: str = typer.Argument(..., help="HOST/REPO[:TAG][@sha256:…] in a registry."),
        key: Path = typer.Option(..., "--key", envvar="ASSAY_KEY", help="cosign.key to sign with."),
        predicate_type: str = typer.Option(
            "custom",
            "--type",
            envvar="ASSAY_PREDICATE_TYPE",
            help="slsaprovenance1|spdxjson|cyclonedx|openvex|vuln|custom|… or a URI.",
        ),
        predicate: Path = typer.Option(..., "--predicate", help="The predicate file."),
        referrer: bool = typer.Option(
            True,
            "--referrer/--no-referrer",
            help="Also attach a Sigstore bundle as an OCI 1.1 referrer (cosign v3's format).",
        ),
        insecure_registry: bool = typer.Option(
            False, "--insecure-registry", help="Allow plain HTTP / unverified TLS (unsafe)."
        ),
    ) -> None:
        """Attach a signed in-toto attestation (DSSE) to an image."""
        resolve_predicate_type(predicate_type)  # usage error before asking for a password
        ref = remote.parse_image_ref(image)
        body = read_file(predicate, "predicate")
        signing = load_signing_key(key)
        with client_for(ref, insecure_registry) as client:
            resolved, uri = remote.attest_image(
                client, ref, signing, predicate_type, body, referrer=referrer
            )
        _console.info(f"Attached {uri} attestation to {resolved.pinned}")
        typer.echo(resolved.pinned)

    @app.command("verify-attestation")
    def verify_attestation(
        image: str = typer.Argument(..., help="HOST/REPO[:TAG][@sha256:…] in a registry."),
        key: Path | None = typer.Option(
            None, "--key", envvar="ASSAY_PUBLIC_KEY", help="cosign.pub"
        ),
        predicate_type: str | None = typer.Option(
            None, "--type", envvar="ASSAY_PREDICATE_TYPE", help="Only this predicate type."
        ),
        certificate_identity: str | None = typer.Option(
            None, "--certificate-identity", envvar="ASSAY_CERTIFICATE_IDENTITY"
        ),
        certificate_oidc_issuer: str | None = typer.Option(
            None, "--certificate-oidc-issuer", envvar="ASSAY_CERTIFICATE_OIDC_ISSUER"
        ),
        staging: bool = typer.Option(False, "--staging", help="Keyless: staging trust root."),
        offline: bool = typer.Option(True, "--offline/--online"),
        output: OutputFormat = typer.Option(
            OutputFormat.text, "--output", "-o", envvar="ASSAY_VERIFY_OUTPUT", help="text or json"
        ),
        insecure_registry: bool = typer.Option(
            False, "--insecure-registry", help="Allow plain HTTP / unverified TLS (unsafe)."
        ),
    ) -> None:
        """Verify an image's attestations; -o json prints the verified in-toto statements."""
        check_keyless_args(certificate_identity, certificate_oidc_issuer)
        if (key is None) == (certificate_identity is None):
            raise UsageError(
                "give either --key, or --certificate-identity with --certificate-oidc-issuer"
            )
        want = resolve_predicate_type(predicate_type) if predicate_type else None
        ref = remote.parse_image_ref(image)
        with client_for(ref, insecure_registry) as client:
            if key is not None:
                public = load_public_key(read_file(key, "public key", 64 << 10))
                resolved, atts = remote.verify_image_attestations(client, ref, public, want)
            else:
                assert certificate_identity and certificate_oidc_issuer
                resolved, atts = remote.verify_image_keyless(
                    client,
                    ref,
                    identity=certificate_identity,
                    issuer=certificate_oidc_issuer,
                    staging=staging,
                    offline=offline,
                    predicate_type=want,
                )
        _report(resolved.pinned, [a.to_json() for a in atts], output, "attestation")
