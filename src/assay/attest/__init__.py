"""assay.attest: cosign-format keys and signatures, DSSE/in-toto attestations, Sigstore bundles.

Bytes-level formats live in ``keys``, ``simplesigning``, ``dsse``, ``intoto`` and ``bundle``;
``verify`` checks fetched bytes; ``remote`` signs, attests and verifies images in a registry.
"""

from __future__ import annotations

from assay.attest.keys import (
    PublicKey,
    SigningKey,
    generate_keypair,
    load_private_key,
    load_public_key,
)
from assay.attest.verify import VerifiedAttestation, VerifiedSignature

__all__ = [
    "PublicKey",
    "SigningKey",
    "VerifiedAttestation",
    "VerifiedSignature",
    "generate_keypair",
    "load_private_key",
    "load_public_key",
]
