"""Keys in cosign's format: interop with skopeo's key, round trip, refusals."""

from __future__ import annotations

import base64
import json

import pytest

from assay.attest import keys
from assay.errors import InputError, VerificationError
from fixtures.assets import INTEROP


def _interop(name: str) -> bytes:
    path = INTEROP / name
    if not path.exists():
        pytest.fail(f"interop vector {path} is missing")
    return path.read_bytes()


def _pem_body(pem: bytes) -> bytes:
    lines = pem.decode().strip().splitlines()
    return base64.b64decode("".join(lines[1:-1]))


def test_skopeo_key_decrypts_and_matches_its_public_key() -> None:
    signing = keys.load_private_key(
        _interop("skopeo-1.13.3-cosign.key"), _interop("skopeo-1.13.3-cosign.password")
    )
    public = keys.load_public_key(_interop("skopeo-1.13.3-cosign.pub"))
    assert signing.public.der() == public.der()
    # our public-key PEM is byte-identical to the Go-written one
    assert signing.public.pem() == _interop("skopeo-1.13.3-cosign.pub")
    sig = signing.sign(b"message")
    public.verify(sig, b"message")
    with pytest.raises(VerificationError, match="does not verify"):
        public.verify(sig, b"messagE")


def test_skopeo_key_wrong_passphrase() -> None:
    with pytest.raises(VerificationError, match="wrong passphrase for KEY"):
        keys.load_private_key(_interop("skopeo-1.13.3-cosign.key"), b"not the passphrase")


def test_generated_key_format_is_cosigns() -> None:
    priv, pub = keys.generate_keypair(b"pw")
    assert priv.startswith(b"-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n")
    assert priv.endswith(b"\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n")
    assert all(len(line) <= 64 for line in priv.splitlines())
    assert pub.startswith(b"-----BEGIN PUBLIC KEY-----\n")
    body = _pem_body(priv)
    doc = json.loads(body)
    # field names and order fixed by go-securesystemslib's structs
    assert list(doc) == ["kdf", "cipher", "ciphertext"]
    assert list(doc["kdf"]) == ["name", "params", "salt"]
    assert doc["kdf"]["name"] == "scrypt"
    assert body.startswith(b'{"kdf":{"name":"scrypt","params":{"N":32768,"r":8,"p":1},"salt":"')
    assert list(doc["cipher"]) == ["name", "nonce"]
    assert doc["cipher"]["name"] == "nacl/secretbox"
    assert len(base64.b64decode(doc["kdf"]["salt"])) == 32
    assert len(base64.b64decode(doc["cipher"]["nonce"])) == 24
    # the skopeo-written key has the same JSON layout
    skopeo_doc = json.loads(_pem_body(_interop("skopeo-1.13.3-cosign.key")))
    assert list(skopeo_doc) == list(doc)
    signing = keys.load_private_key(priv, b"pw")
    assert signing.public.pem() == pub


def test_empty_passphrase_allowed() -> None:
    priv, _ = keys.generate_keypair(b"")
    keys.load_private_key(priv, b"")
    with pytest.raises(VerificationError, match="wrong passphrase"):
        keys.load_private_key(priv, b"x")


def test_legacy_pem_type_read() -> None:
    priv, pub = keys.generate_keypair(b"pw")
    legacy = priv.replace(b"ENCRYPTED SIGSTORE PRIVATE KEY", b"ENCRYPTED COSIGN PRIVATE KEY")
    assert keys.load_private_key(legacy, b"pw").public.pem() == pub


def _rewrite_body(pem: bytes, mutate: object) -> bytes:
    doc = json.loads(_pem_body(pem))
    mutate(doc)  # type: ignore[operator]
    body = base64.b64encode(json.dumps(doc).encode()).decode()
    return (
        "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n"
        + body
        + "\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n"
    ).encode()


@pytest.mark.parametrize("n", [16384, 1 << 20, 1 << 30])
def test_scrypt_cost_outside_the_accepted_set_refused(n: int) -> None:
    priv, _ = keys.generate_keypair(b"pw")
    bad = _rewrite_body(priv, lambda d: d["kdf"]["params"].__setitem__("N", n))
    with pytest.raises(InputError, match="scrypt parameters"):
        keys.load_private_key(bad, b"pw")


def test_other_pem_types_refused() -> None:
    _, pub = keys.generate_keypair(b"")
    with pytest.raises(InputError, match="PEM type"):
        keys.load_private_key(pub, b"")
    priv, _ = keys.generate_keypair(b"")
    with pytest.raises(InputError, match="PEM type"):
        keys.load_public_key(priv)
    with pytest.raises(InputError, match="not a PEM block"):
        keys.load_public_key(b"garbage")


def test_password_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ASSAY_PASSWORD", raising=False)
    monkeypatch.delenv("COSIGN_PASSWORD", raising=False)
    assert keys.password_from_env() is None
    monkeypatch.setenv("COSIGN_PASSWORD", "c")
    assert keys.password_from_env() == b"c"
    monkeypatch.setenv("ASSAY_PASSWORD", "")
    assert keys.password_from_env() == b""


def test_truncated_and_oversized_signatures_named() -> None:
    signing = keys.load_private_key(*keys.generate_keypair(b"")[:1], b"")
    sig = signing.sign(b"m")
    with pytest.raises(VerificationError, match=r"not a valid ASN\.1 DER"):
        signing.public.verify(sig[:-5], b"m")
    with pytest.raises(VerificationError, match="longer than any"):
        signing.public.verify(sig * 2, b"m")
    with pytest.raises(VerificationError, match="empty"):
        signing.public.verify(b"", b"m")
