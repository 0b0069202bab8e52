"""Signing keys in cosign's format.

Private key: PEM ``ENCRYPTED SIGSTORE PRIVATE KEY`` (cosign ≥ 2.x; the legacy type
``ENCRYPTED COSIGN PRIVATE KEY`` is read too) whose body is the JSON that go-securesystemslib's
``encrypted`` package writes::

    {"kdf":{"name":"scrypt","params":{"N":32768,"r":8,"p":1},"salt":B64},
     "cipher":{"name":"nacl/secretbox","nonce":B64},"ciphertext":B64}

The key for secretbox is ``scrypt(passphrase, salt, N, r, p, 32)``; the plaintext is the PKCS#8
DER of an ECDSA P-256 key. The public key is PEM ``PUBLIC KEY`` (SubjectPublicKeyInfo).
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from assay._json import load_json
from assay.attest._gojson import go_json
from assay.errors import InputError, VerificationError

__all__ = [
    "LEGACY_PRIVATE_KEY_PEM_TYPE",
    "PRIVATE_KEY_PEM_TYPE",
    "PUBLIC_KEY_PEM_TYPE",
    "PublicKey",
    "SigningKey",
    "encrypt_private_key",
    "generate_keypair",
    "key_hint",
    "load_private_key",
    "load_public_key",
    "password_from_env",
]

PRIVATE_KEY_PEM_TYPE = "ENCRYPTED SIGSTORE PRIVATE KEY"
LEGACY_PRIVATE_KEY_PEM_TYPE = "ENCRYPTED COSIGN PRIVATE KEY"
PUBLIC_KEY_PEM_TYPE = "PUBLIC KEY"

_SCRYPT_N_WRITE = 32768
_SCRYPT_N_ACCEPTED = frozenset({32768, 65536, 131072})
_SCRYPT_R = 8
_SCRYPT_P = 1
_SALT_LEN = 32
_NONCE_LEN = 24
_MAX_KEY_FILE = 64 * 1024
_MAX_SIGNATURE_DER = 80  # P-256 DER signatures are at most 72 bytes


@dataclass(frozen=True)
class PublicKey:
    """An ECDSA P-256 verification key."""

    key: ec.EllipticCurvePublicKey

    def der(self) -> bytes:
        return self.key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def pem(self) -> bytes:
        return _pem_encode(PUBLIC_KEY_PEM_TYPE, self.der())

    def verify(self, signature: bytes, message: bytes) -> None:
        """Check an ASN.1 DER ECDSA-SHA256 ``signature`` over ``message``.

        Raises VerificationError saying whether the signature is malformed or just wrong.
        """
        if not signature:
            raise VerificationError("signature is empty")
        if len(signature) > _MAX_SIGNATURE_DER:
            raise VerificationError(
                f"signature is {len(signature)} bytes, longer than any ECDSA P-256 signature"
            )
        try:
            decode_dss_signature(signature)
        except ValueError as exc:
            raise VerificationError(
                "signature is not a valid ASN.1 DER ECDSA signature (truncated or corrupted)"
            ) from exc
        try:
            self.key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature as exc:
            raise VerificationError(
                "signature does not verify with the given public key "
                "(wrong key, or the signed payload or signature was altered)"
            ) from exc


@dataclass(frozen=True)
class SigningKey:
    """An ECDSA P-256 signing key."""

    key: ec.EllipticCurvePrivateKey

    @property
    def public(self) -> PublicKey:
        return PublicKey(self.key.public_key())

    def sign(self, message: bytes, *, deterministic: bool = False) -> bytes:
        """ASN.1 DER ECDSA-SHA256 signature of ``message`` (RFC 6979 nonces when
        ``deterministic``: the same key and message give the same bytes)."""
        return self.key.sign(
            message, ec.ECDSA(hashes.SHA256(), deterministic_signing=deterministic)
        )


def password_from_env() -> bytes | None:
    """The key passphrase from ``ASSAY_PASSWORD``, else ``COSIGN_PASSWORD``; None if neither is set.

    An empty value is a valid (empty) passphrase, as in cosign.
    """
    for name in ("ASSAY_PASSWORD", "COSIGN_PASSWORD"):
        value = os.environ.get(name)
        if value is not None:
            return value.encode("utf-8")
    return None


def key_hint(public: PublicKey) -> str:
    """The key hint sigstore tools put in a bundle: base64 of SHA-256 of the SPKI DER."""
    digest = hashes.Hash(hashes.SHA256())
    digest.update(public.der())
    return base64.b64encode(digest.finalize()).decode("ascii")


def generate_keypair(password: bytes) -> tuple[bytes, bytes]:
    """A new ECDSA P-256 key pair as (encrypted private key PEM, public key PEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    signing = SigningKey(key)
    return encrypt_private_key(signing, password), signing.public.pem()


def encrypt_private_key(signing: SigningKey, password: bytes) -> bytes:
    """Encrypt ``signing`` under ``password`` in cosign's encrypted-key PEM format."""
    import nacl.secret

    der = signing.key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    salt = os.urandom(_SALT_LEN)
    nonce = os.urandom(_NONCE_LEN)
    box_key = _scrypt(password, salt, _SCRYPT_N_WRITE, _SCRYPT_R, _SCRYPT_P)
    sealed = nacl.secret.SecretBox(box_key).encrypt(der, nonce).ciphertext
    body = {
        "kdf": {
            "name": "scrypt",
            "params": {"N": _SCRYPT_N_WRITE, "r": _SCRYPT_R, "p": _SCRYPT_P},
            "salt": _b64(salt),
        },
        "cipher": {"name": "nacl/secretbox", "nonce": _b64(nonce)},
        "ciphertext": _b64(sealed),
    }
    return _pem_encode(PRIVATE_KEY_PEM_TYPE, go_json(body))


def load_private_key(pem: bytes, password: bytes) -> SigningKey:
    """Decrypt a cosign private key (``ENCRYPTED SIGSTORE``/``COSIGN PRIVATE KEY``)."""
    import nacl.exceptions
    import nacl.secret

    pem_type, body = _pem_decode(pem, "private key")
    if pem_type not in (PRIVATE_KEY_PEM_TYPE, LEGACY_PRIVATE_KEY_PEM_TYPE):
        raise InputError(
            f"private key has PEM type {pem_type!r}; expected {PRIVATE_KEY_PEM_TYPE!r} "
            f"(or legacy {LEGACY_PRIVATE_KEY_PEM_TYPE!r}) as written by `assay keygen` or cosign"
        )
    try:
        doc = load_json(body, what="private key", max_size=1 << 20)
        kdf = doc["kdf"]
        cipher = doc["cipher"]
        if kdf["name"] != "scrypt":
            raise InputError(f"private key uses KDF {kdf['name']!r}; only scrypt is supported")
        if cipher["name"] != "nacl/secretbox":
            raise InputError(
                f"private key uses cipher {cipher['name']!r}; only nacl/secretbox is supported"
            )
        params = kdf["params"]
        n, r, p = params["N"], params["r"], params["p"]
        salt = _unb64(kdf["salt"], "salt")
        nonce = _unb64(cipher["nonce"], "nonce")
        sealed = _unb64(doc["ciphertext"], "ciphertext")
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"private key body is not cosign's encrypted-key JSON: {exc}") from exc
    if not all(type(v) is int for v in (n, r, p)):
        raise InputError("private key scrypt parameters are not integers")
    if n not in _SCRYPT_N_ACCEPTED or r != _SCRYPT_R or p != _SCRYPT_P:
        raise InputError(
            f"private key scrypt parameters N={n}, r={r}, p={p} are not accepted "
            f"(N must be one of {sorted(_SCRYPT_N_ACCEPTED)}, r=8, p=1); re-encrypt the key"
        )
    if len(nonce) != _NONCE_LEN:
        raise InputError(f"private key nonce is {len(nonce)} bytes, expected {_NONCE_LEN}")
    box_key = _scrypt(password, salt, n, r, p)
    try:
        der = nacl.secret.SecretBox(box_key).decrypt(sealed, nonce)
    except nacl.exceptions.CryptoError as exc:
        raise VerificationError(
            "wrong passphrase for KEY (set ASSAY_PASSWORD or COSIGN_PASSWORD to the right one)"
        ) from exc
    try:
        key = serialization.load_der_private_key(der, password=None)
    except ValueError as exc:
        raise InputError("private key decrypts but is not a PKCS#8 key") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise InputError("private key is not an ECDSA P-256 key; assay signs with P-256 only")
    return SigningKey(key)


def load_public_key(pem: bytes) -> PublicKey:
    """Read a PEM ``PUBLIC KEY`` holding an ECDSA P-256 key."""
    pem_type, _ = _pem_decode(pem, "public key")
    if pem_type != PUBLIC_KEY_PEM_TYPE:
        raise InputError(f"public key has PEM type {pem_type!r}; expected {PUBLIC_KEY_PEM_TYPE!r}")
    try:
        key = serialization.load_pem_public_key(pem)
    except ValueError as exc:
        raise InputError(f"public key PEM is not a SubjectPublicKeyInfo: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise InputError("public key is not an ECDSA P-256 key; assay verifies P-256 keys only")
    return PublicKey(key)


def _scrypt(password: bytes, salt: bytes, n: int, r: int, p: int) -> bytes:
    # private keys only (as nacl above): verifying with a public key never needs the KDF
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(password)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(value: object, what: str) -> bytes:
    if not isinstance(value, str):
        raise ValueError(f"{what} is not a string")
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error as exc:
        raise ValueError(f"{what} is not valid base64") from exc


def _pem_encode(pem_type: str, der: bytes) -> bytes:
    body = base64.b64encode(der).decode("ascii")
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return (
        f"-----BEGIN {pem_type}-----\n" + "\n".join(lines) + f"\n-----END {pem_type}-----\n"
    ).encode("ascii")


def _pem_decode(pem: bytes, what: str) -> tuple[str, bytes]:
    """The type and body of the single PEM block in ``pem``."""
    if len(pem) > _MAX_KEY_FILE:
        raise InputError(f"{what} file is {len(pem)} bytes; a key file is at most {_MAX_KEY_FILE}")
    try:
        text = pem.decode("ascii")
    except UnicodeDecodeError as exc:
        raise InputError(f"{what} file is not ASCII PEM") from exc
    lines = [line.strip() for line in text.strip().splitlines()]
    if (
        len(lines) < 2
        or not lines[0].startswith("-----BEGIN ")
        or not lines[0].endswith("-----")
        or not lines[-1].startswith("-----END ")
    ):
        raise InputError(f"{what} file is not a PEM block (no BEGIN/END lines)")
    pem_type = lines[0][len("-----BEGIN ") : -len("-----")]
    if lines[-1] != f"-----END {pem_type}-----":
        raise InputError(f"{what} PEM END line does not match BEGIN {pem_type!r}")
    body_lines = [ln for ln in lines[1:-1] if ln and ":" not in ln]
    try:
        body = base64.b64decode("".join(body_lines), validate=True)
    except binascii.Error as exc:
        raise InputError(f"{what} PEM body is not valid base64") from exc
    return pem_type, body
