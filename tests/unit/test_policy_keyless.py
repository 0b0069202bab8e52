"""Keyless identities (exact and RegExp) against a real public-good Sigstore bundle, offline."""

from __future__ import annotations

import pytest

from assay.attest.bundle import verify_keyless_policy
from assay.errors import VerificationError
from assay.policy.identity import IDENTITY_MISMATCH, IdentityPolicy
from assay.policy.model import Identity
from fixtures.assets import INTEROP

BUNDLES = INTEROP / "sigstore-python-bundles"
ISSUER = "https://token.actions.githubusercontent.com"
SUBJECT = "https://github.com/trailofbits/rfc8785.py/.github/workflows/release.yml@refs/tags/v0.1.2"


def _verify(*identities: Identity) -> None:
    artifact = (BUNDLES / "bundle_v3_github.whl").read_bytes()
    bundle = (BUNDLES / "bundle_v3_github.whl.sigstore").read_bytes()
    verify_keyless_policy(bundle, IdentityPolicy(identities), artifact=artifact)


@pytest.mark.parametrize(
    "identity",
    [
        Identity(issuer=ISSUER, subject=SUBJECT),
        Identity(issuer_regexp=r"githubusercontent\.com$", subject_regexp=r"trailofbits/rfc8785"),
        Identity(issuer=ISSUER, subject_regexp=r"^https://github\.com/trailofbits/"),
    ],
)
def test_matching_identity_verifies(identity: Identity) -> None:
    _verify(identity)


@pytest.mark.parametrize(
    "identity",
    [
        Identity(issuer=ISSUER, subject=SUBJECT + "x"),
        Identity(issuer="https://accounts.google.com", subject=SUBJECT),
        Identity(
            issuer_regexp=".*kubernetes.default.*", subject_regexp=".*serviceaccounts/default"
        ),
    ],
)
def test_mismatch_message_is_policy_controllers(identity: Identity) -> None:
    with pytest.raises(VerificationError, match=IDENTITY_MISMATCH):
        _verify(identity)


def test_any_identity_suffices() -> None:
    _verify(Identity(issuer="x", subject="y"), Identity(issuer=ISSUER, subject=SUBJECT))


def test_tampered_artifact_fails_before_identity() -> None:
    bundle = (BUNDLES / "bundle_v3_github.whl.sigstore").read_bytes()
    with pytest.raises(VerificationError):
        verify_keyless_policy(
            bundle, IdentityPolicy([Identity(issuer=ISSUER, subject=SUBJECT)]), artifact=b"other"
        )
