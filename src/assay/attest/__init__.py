"""assay.attest: cosign-format keys and signatures, DSSE/in-toto attestations, Sigstore bundles.

Bytes-level formats live in ``keys``, ``simplesigning``, ``dsse``, ``intoto`` and ``bundle``;
``verify`` checks fetched bytes; ``remote`` signs, attests and verifies images in a registry.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from assay._lazy import lazy_exports

if TYPE_CHECKING:
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

# Imported on first use (PEP 562), so importing one submodule does not load every other one.
_EXPORTS = {
    "PublicKey": "assay.attest.keys",
    "SigningKey": "assay.attest.keys",
    "VerifiedAttestation": "assay.attest.verify",
    "VerifiedSignature": "assay.attest.verify",
    "generate_keypair": "assay.attest.keys",
    "load_private_key": "assay.attest.keys",
    "load_public_key": "assay.attest.keys",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
