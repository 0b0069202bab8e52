"""``assay attest`` and ``assay verify-attestation``: signed in-toto statements on images."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from assay.cli import _console, _options
from assay.cli.cmd_sign import (
    OutputFormat,
    check_keyless_args,
    check_platform,
    client_for,
    load_signing_key,
    load_verification_key,
    read_file,
    report_checked,
)
from assay.errors import UsageError

# The registry client and the crypto are imported where a command uses them (fast `--help`).
if TYPE_CHECKING:
    from assay.attest import remote
    from assay.attest.verify import VerifiedAttestation
    from assay.oci.registry import RegistryClient


def register(app: typer.Typer) -> None:
    @app.command("attest")
    def attest(
        image: str = _options.REGISTRY_IMAGE,
        key: Path = typer.Option(..., "--key", envvar="ASSAY_KEY", help="cosign.key to sign with."),
        predicate_type: str | None = typer.Option(
            None,
            "--type",
            envvar="ASSAY_PREDICATE_TYPE",
            help="slsaprovenance1|spdxjson|cyclonedx|openvex|vuln|custom|… or a URI "
            "(default: custom, or the predicateType of a Statement file).",
        ),
        predicate: Path = typer.Option(
            ...,
            "--predicate",
            help="The predicate file; a whole in-toto Statement (e.g. the provenance `build` "
            "writes) is unwrapped to its predicate.",
        ),
        referrer: bool = typer.Option(
            True,
            "--referrer/--no-referrer",
            help="Also attach a Sigstore bundle as an OCI 1.1 referrer (cosign v3's format).",
        ),
        insecure_registry: bool = _options.INSECURE_REGISTRY,
    ) -> None:
        """Attach a signed in-toto attestation (DSSE) to an image."""
        from assay.attest import remote
        from assay.attest.intoto import predicate_from_file, resolve_predicate_type

        if predicate_type is not None:
            resolve_predicate_type(predicate_type)  # usage error before asking for a password
        ref = remote.parse_image_ref(image)
        body = predicate_from_file(
            read_file(predicate, "predicate"), predicate_type, f"predicate file {predicate}"
        )
        if body.from_statement:
            _console.info(
                f"{predicate} is an in-toto Statement: attesting its {body.from_statement} "
                "predicate for this image"
            )
        signing = load_signing_key(key)
        with client_for(ref, insecure_registry) as client:
            resolved, uri = remote.attest_image(
                client, ref, signing, body.predicate_type, body.data, referrer=referrer
            )
        _console.info(f"Attached {uri} attestation to {resolved.pinned}")
        typer.echo(resolved.pinned)

    @app.command("verify-attestation")
    def verify_attestation(
        image: str = _options.REGISTRY_IMAGE,
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
        platform: str | None = _options.PLATFORM,
        insecure_registry: bool = _options.INSECURE_REGISTRY,
    ) -> None:
        """Verify an image's attestations; -o json prints the verified in-toto statements.

        For an index every platform manifest is checked (or only --platform's): each must carry
        a valid attestation, or be covered by one on the index. Each attestation is counted once
        (the .att tag and the bundle referrer hold the same statement).
        """
        check_keyless_args(certificate_identity, certificate_oidc_issuer)
        check_platform(platform)
        if (key is None) == (certificate_identity is None):
            raise UsageError(
                "give either --key, or --certificate-identity with --certificate-oidc-issuer"
            )
        public = load_verification_key(key) if key else None
        # the registry client only after the arguments and the key file are checked
        from assay.attest import remote
        from assay.attest.intoto import resolve_predicate_type

        want = resolve_predicate_type(predicate_type) if predicate_type else None
        ref = remote.parse_image_ref(image)
        identity, issuer = certificate_identity, certificate_oidc_issuer

        def verify_one(
            c: RegistryClient, r: remote.ImageRef
        ) -> tuple[remote.ResolvedImage, list[VerifiedAttestation]]:
            if public is not None:
                return remote.verify_image_attestations(c, r, public, want)
            assert identity and issuer
            return remote.verify_image_keyless(
                c,
                r,
                identity=identity,
                issuer=issuer,
                staging=staging,
                offline=offline,
                predicate_type=want,
            )

        with client_for(ref, insecure_registry) as client:
            resolved, checked = remote.verify_recursive(
                client, ref, verify_one, platform=platform, index_covers=True
            )
        report_checked(resolved.pinned, checked, output, "attestation")
