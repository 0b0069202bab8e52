"""``assay sign`` and ``assay verify``: cosign-compatible image signatures."""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from assay.cli import _console
from assay.cli.cmd_policy import NoMatch, OnError
from assay.errors import InputError, UsageError, VerificationError

# The registry client (httpx) and the crypto are imported where a command uses them, so that
# `assay verify --help` and the other commands importing this module's helpers start fast.
if TYPE_CHECKING:
    from assay.attest import remote
    from assay.attest.keys import PublicKey, SigningKey
    from assay.oci.registry import RegistryClient

MAX_BLOB_FILE = 1 << 30


class OutputFormat(enum.StrEnum):
    text = "text"
    json = "json"


class VerifyOutput(enum.StrEnum):
    """``verify -o``: with --policy, text is the decision table and sarif is for CI."""

    text = "text"
    json = "json"
    sarif = "sarif"


def read_file(path: Path, what: str, limit: int = 16 << 20) -> bytes:
    """A regular file of at most ``limit`` bytes (a FIFO or device is refused, never read)."""
    from assay._safefs import read_regular

    try:
        return read_regular(path, limit, f"{what} {path}")
    except OSError as exc:
        raise InputError(f"cannot read {what} {path}: {exc.strerror}") from None


def client_for(ref: remote.ImageRef, insecure: bool) -> RegistryClient:
    from assay.oci.registry import RegistryClient

    if insecure:
        _console.warn(f"--insecure-registry: talking to {ref.host} without TLS verification")
    return RegistryClient(ref.host, insecure=insecure)


def load_signing_key(path: Path) -> SigningKey:
    from assay.attest.keys import load_private_key
    from assay.cli.cmd_keygen import read_password

    pem = read_file(path, "private key", 64 << 10)
    password = read_password(confirm=False)
    try:
        return load_private_key(pem, password)
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None


def load_verification_key(path: Path) -> PublicKey:
    """The public key in the file at ``path``: read first, and only then the crypto imported
    (a missing file is reported without loading it); a bad key's error names the file."""
    pem = read_file(path, "public key", 64 << 10)
    from assay.attest.keys import load_public_key

    try:
        return load_public_key(pem)
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None


def check_keyless_args(identity: str | None, issuer: str | None) -> None:
    if bool(identity) != bool(issuer):
        raise UsageError(
            "keyless verification needs both --certificate-identity and --certificate-oidc-issuer"
        )


def register(app: typer.Typer) -> None:
    @app.command("sign")
    def sign(
        image: str = typer.Argument(..., help="HOST/REPO[:TAG][@sha256:…] in a registry."),
        key: Path = typer.Option(..., "--key", envvar="ASSAY_KEY", help="cosign.key to sign with."),
        recursive: bool = typer.Option(
            False,
            "--recursive",
            "-r",
            envvar="ASSAY_RECURSIVE",
            help="For an index, also sign every platform manifest (as cosign --recursive); "
            "skopeo and podman check the platform manifest they pull.",
        ),
        insecure_registry: bool = typer.Option(
            False, "--insecure-registry", help="Allow plain HTTP / unverified TLS (unsafe)."
        ),
    ) -> None:
        """Sign an image in a registry (cosign's layout: tag sha256-<hex>.sig)."""
        from assay.attest import remote
        from assay.oci.mediatypes import INDEX_TYPES

        ref = remote.parse_image_ref(image)
        signing = load_signing_key(key)
        with client_for(ref, insecure_registry) as client:
            if recursive:
                results = remote.sign_image_recursive(client, ref, signing)
            else:
                results = [remote.sign_image(client, ref, signing)]
        for result in results:
            if result.added:
                _console.info(f"Signed {result.image.pinned} (tag {result.tag})")
            else:
                _console.info(
                    f"{result.image.pinned} is already signed with this key; nothing added"
                )
        if not recursive and results[0].image.media_type in INDEX_TYPES:
            _console.warn(
                "signed the index only: skopeo and podman verify the platform manifest they "
                "pull — sign with --recursive to sign every platform too"
            )
        typer.echo(results[0].image.pinned)

    @app.command("verify")
    def verify(
        image: str = typer.Argument(
            ..., help="HOST/REPO[:TAG][@sha256:…], or a file when verifying with --bundle."
        ),
        more_images: list[str] | None = typer.Argument(
            None, metavar="[IMAGE]...", help="With --policy: more images to decide."
        ),
        policy: list[Path] | None = typer.Option(
            None, "--policy", help="Decide with these policy files/directories (repeatable)."
        ),
        no_match: NoMatch = typer.Option(
            NoMatch.deny, "--no-match", envvar="ASSAY_NO_MATCH", help="--policy: deny|warn|allow."
        ),
        on_error: OnError = typer.Option(
            OnError.deny,
            "--on-error",
            envvar="ASSAY_ON_ERROR",
            help="--policy: deny|allow (unsafe).",
        ),
        key: Path | None = typer.Option(
            None, "--key", envvar="ASSAY_PUBLIC_KEY", help="cosign.pub"
        ),
        certificate_identity: str | None = typer.Option(
            None,
            "--certificate-identity",
            envvar="ASSAY_CERTIFICATE_IDENTITY",
            help="Keyless: the exact identity (SAN) the signing certificate must name.",
        ),
        certificate_oidc_issuer: str | None = typer.Option(
            None,
            "--certificate-oidc-issuer",
            envvar="ASSAY_CERTIFICATE_OIDC_ISSUER",
            help="Keyless: the exact OIDC issuer the signing certificate must name.",
        ),
        bundle: Path | None = typer.Option(
            None, "--bundle", help="Keyless: a Sigstore bundle file for IMAGE (a file or image)."
        ),
        staging: bool = typer.Option(
            False, "--staging", help="Keyless: use the Sigstore staging trust root (testing only)."
        ),
        offline: bool = typer.Option(
            True, "--offline/--online", help="Keyless: use the embedded trust root (default)."
        ),
        output: VerifyOutput = typer.Option(
            VerifyOutput.text,
            "--output",
            "-o",
            envvar="ASSAY_VERIFY_IMAGE_OUTPUT",
            help="text or json; with --policy also sarif (text is then the decision table)",
        ),
        platform: str | None = typer.Option(
            None,
            "--platform",
            envvar="ASSAY_PLATFORM",
            help="For an index: check only this platform's manifest (os/arch or os/arch/variant).",
        ),
        insecure_registry: bool = typer.Option(
            False, "--insecure-registry", help="Allow plain HTTP / unverified TLS (unsafe)."
        ),
    ) -> None:
        """Verify an image's signatures with a key, or keyless with an identity and issuer.

        For an index, the index and every platform manifest are checked (or only --platform's).
        Exit 0 when at least one signature verifies for each image checked, 1 otherwise.
        With --policy, the policy engine decides every IMAGE: exit 0 admit, 1 deny, 2 bad policy.
        """
        if policy:
            if key is not None or certificate_identity or bundle is not None:
                raise UsageError("--policy decides with the policy's authorities; drop --key")
            from assay.cli.cmd_policy import verify_with_policy

            verify_with_policy(
                [image, *(more_images or [])],
                policy,
                output="table" if output is VerifyOutput.text else output.value,
                no_match=no_match.value,
                on_error=on_error.value,
                insecure_registry=insecure_registry,
            )
            return
        if more_images:
            raise UsageError("verify takes one IMAGE unless --policy is given")
        if output is VerifyOutput.sarif:
            raise UsageError("-o sarif is for --policy; use text or json")
        check_platform(platform)
        check_keyless_args(certificate_identity, certificate_oidc_issuer)
        if (key is None) == (certificate_identity is None):
            raise UsageError(
                "give either --key, or --certificate-identity with --certificate-oidc-issuer"
            )
        if staging:
            _console.warn("--staging: verifying against the Sigstore *staging* trust root")
        if key is not None:
            if bundle is not None:
                raise UsageError("--bundle is for keyless verification")
            public = load_verification_key(key)
            # The registry client is imported only now: a usage error or an unreadable key is
            # reported before paying for it (bench/startup.py times this start).
            from assay.attest import remote

            ref = remote.parse_image_ref(image)
            with client_for(ref, insecure_registry) as client:
                resolved, checked = remote.verify_recursive(
                    client,
                    ref,
                    lambda c, r: remote.verify_image(c, r, public),
                    platform=platform,
                )
            report_checked(resolved.pinned, checked, output, "signature")
            return
        assert certificate_identity is not None and certificate_oidc_issuer is not None
        from assay.attest import remote
        from assay.attest.bundle import verify_keyless
        from assay.attest.intoto import SIGN_PREDICATE_TYPE, parse_statement
        from assay.attest.verify import check_statement_subject

        if bundle is not None and Path(image).is_file():
            raw = read_file(bundle, "bundle")
            artifact = read_file(Path(image), "file", MAX_BLOB_FILE)
            result = verify_keyless(
                raw,
                identity=certificate_identity,
                issuer=certificate_oidc_issuer,
                artifact=artifact,
                staging=staging,
                offline=offline,
            )
            _report(
                image,
                [{"identity": result.identity, "issuer": result.issuer, "file": image}],
                output,
                "signature",
            )
            return
        ref = remote.parse_image_ref(image)
        with client_for(ref, insecure_registry) as client:
            if bundle is not None:
                resolved = remote.resolve(client, ref)
                result = verify_keyless(
                    read_file(bundle, "bundle"),
                    identity=certificate_identity,
                    issuer=certificate_oidc_issuer,
                    staging=staging,
                    offline=offline,
                )
                if result.payload is None:
                    raise VerificationError("bundle holds no DSSE statement about an image")
                statement = parse_statement(result.payload)
                check_statement_subject(statement, resolved.digest)
                _report(resolved.pinned, [statement.to_json()], output, "signature")
                return
            identity, issuer = certificate_identity, certificate_oidc_issuer
            resolved, checked_keyless = remote.verify_recursive(
                client,
                ref,
                lambda c, r: remote.verify_image_keyless(
                    c,
                    r,
                    identity=identity,
                    issuer=issuer,
                    staging=staging,
                    offline=offline,
                    predicate_type=SIGN_PREDICATE_TYPE,
                ),
                platform=platform,
            )
        report_checked(resolved.pinned, checked_keyless, output, "signature")


def check_platform(platform: str | None) -> None:
    if platform is not None and not re.fullmatch(
        r"[a-z0-9_.-]+/[a-z0-9_.-]+(/[a-z0-9_.-]+)?", platform
    ):
        raise UsageError(f"--platform {platform!r}: give os/arch[/variant], e.g. linux/arm64")


def report_checked(
    subject: str,
    checked: Sequence[remote.Checked[Any]],
    output: str,
    what: str,
) -> None:
    """Print what was verified for each image checked; only called after verification passed.

    ``-o json`` prints the verified payloads (each names its image digest), counted once each.
    """
    payloads = [r.to_json() for c in checked for r in c.results]
    for c in checked:
        if c.covered_by_index:
            _console.info(
                f"{c.subject.label} {c.subject.image.digest}: covered by the index's {what}(s)"
            )
        else:
            _console.info(
                f"{c.subject.label} {c.subject.image.digest}: {len(c.results)} valid {what}(s)"
            )
    if output == OutputFormat.json:
        _console.emit(json.dumps(payloads, indent=2) + "\n")
        return
    labels = ", ".join(c.subject.label for c in checked)
    _console.info(
        f"Verification OK for {subject} (checked {labels}): {len(payloads)} valid {what}(s)"
    )
    typer.echo(subject)


def _report(subject: str, payloads: list[dict[str, object]], output: str, what: str) -> None:
    """Print verified payloads; only called after verification succeeded."""
    if output == OutputFormat.json:
        _console.emit(json.dumps(payloads, indent=2) + "\n")
        return
    _console.info(f"Verification OK for {subject}: {len(payloads)} valid {what}(s)")
    typer.echo(subject)
