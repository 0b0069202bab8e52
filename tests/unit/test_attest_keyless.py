"""Keyless Sigstore bundles from the public-good instance, verified offline."""

from __future__ import annotations

import pytest

from assay.attest.bundle import verify_keyless
from assay.errors import VerificationError
from fixtures.assets import INTEROP

BUNDLES = INTEROP / "sigstore-python-bundles"
GH_IDENTITY = (
    "https://github.com/trailofbits/rfc8785.py/.github/workflows/release.yml@refs/tags/v0.1.2"
)
GH_ISSUER = "https://token.actions.githubusercontent.com"


def _read(name: str) -> bytes:
    path = BUNDLES / name
    if not path.exists():
        pytest.fail(f"interop vector {path} is missing")
    return path.read_bytes()


def test_production_bundle_verifies_offline() -> None:
    result = verify_keyless(
        _read("bundle_v3_github.whl.sigstore"),
        identity=GH_IDENTITY,
        issuer=GH_ISSUER,
        artifact=_read("bundle_v3_github.whl"),
    )
    assert result.identity == GH_IDENTITY


def test_production_bundle_other_identity_fails() -> None:
    with pytest.raises(VerificationError, match="SANs do not match"):
        verify_keyless(
            _read("bundle_v3_github.whl.sigstore"),
            identity="https://github.com/someone/else/.github/workflows/x.yml@refs/heads/main",
            issuer=GH_ISSUER,
            artifact=_read("bundle_v3_github.whl"),
        )


def test_production_bundle_other_issuer_fails() -> None:
    with pytest.raises(VerificationError):
        verify_keyless(
            _read("bundle_v3_github.whl.sigstore"),
            identity=GH_IDENTITY,
            issuer="https://accounts.google.com",
            artifact=_read("bundle_v3_github.whl"),
        )


def test_production_bundle_other_artifact_fails() -> None:
    with pytest.raises(VerificationError):
        verify_keyless(
            _read("bundle_v3_github.whl.sigstore"),
            identity=GH_IDENTITY,
            issuer=GH_ISSUER,
            artifact=_read("bundle_v3_github.whl") + b"\0",
        )


@pytest.mark.parametrize("staging", [False, True])
def test_cve_2022_36056_bundle_rejected(staging: bool) -> None:
    with pytest.raises(VerificationError):
        verify_keyless(
            _read("bundle_cve_2022_36056.txt.sigstore"),
            identity="william@yossarian.net",
            issuer="https://github.com/login/oauth",
            artifact=_read("bundle_cve_2022_36056.txt"),
            staging=staging,
        )


def test_staging_message_bundle_verifies_with_staging_root_only() -> None:
    args = dict(identity="william@yossarian.net", issuer="https://github.com/login/oauth")
    verify_keyless(
        _read("bundle_v3.txt.sigstore"), artifact=_read("bundle_v3.txt"), staging=True, **args
    )
    with pytest.raises(VerificationError):
        verify_keyless(_read("bundle_v3.txt.sigstore"), artifact=_read("bundle_v3.txt"), **args)
