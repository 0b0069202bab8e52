"""gpgv-based verification of clearsigned files, with real keys made by gpg."""

from __future__ import annotations

import base64
import dataclasses
import subprocess
from pathlib import Path

import pytest

from assay.debian.openpgp import dearmor, verify_clearsigned
from assay.errors import InputError, UsageError, VerificationError
from fixtures.debrepo import TestKey, other_key, test_key

__all__ = ["other_key", "test_key"]  # pytest fixtures imported for use here

TEXT = b"Origin: Assay Test\nSuite: stable\n"


def gpg(home: Path) -> list[str]:
    return [
        "gpg",
        "--homedir",
        str(home),
        "--batch",
        "--pinentry-mode",
        "loopback",
        "--passphrase",
        "",
    ]


def clearsign(tmp: Path, keys: list[TestKey], digest: str = "SHA256", text: bytes = TEXT) -> bytes:
    src = tmp / "msg"
    src.write_bytes(text)
    out = tmp / "msg.asc"
    out.unlink(missing_ok=True)
    users = [arg for k in keys for arg in ("--local-user", k.fingerprint)]
    args = ["--yes", *users, "--digest-algo", digest, "--clearsign", "-o", str(out), str(src)]
    subprocess.run(
        [*gpg(keys[0].home), *args],
        check=True,
        capture_output=True,
    )
    return out.read_bytes()


@pytest.fixture
def two_key_home(tmp_path: Path, test_key: TestKey, other_key: TestKey) -> Path:
    """A GNUPGHOME holding both secret keys, to make a doubly-signed file."""
    home = tmp_path / "g"
    home.mkdir(mode=0o700)
    for key in (test_key, other_key):
        secret = subprocess.run(
            [*gpg(key.home), "--export-secret-keys", key.fingerprint],
            check=True,
            capture_output=True,
        ).stdout
        subprocess.run(
            ["gpg", "--homedir", str(home), "--batch", "--import"],
            input=secret,
            check=True,
            capture_output=True,
        )
    return home


def test_good_signature_returns_signed_text_only(tmp_path: Path, test_key: TestKey) -> None:
    signed = clearsign(tmp_path, [test_key])
    assert verify_clearsigned(signed, [test_key.keyring], "x") == TEXT
    assert verify_clearsigned(signed, [test_key.armored], "x") == TEXT  # .asc keyring


def test_one_trusted_signature_among_several_is_enough(
    tmp_path: Path, two_key_home: Path, test_key: TestKey, other_key: TestKey
) -> None:
    both = [dataclasses.replace(k, home=two_key_home) for k in (test_key, other_key)]
    signed = clearsign(tmp_path, both)
    assert signed.count(b"-----BEGIN PGP SIGNATURE-----") == 1
    assert verify_clearsigned(signed, [test_key.keyring], "x") == TEXT
    assert verify_clearsigned(signed, [other_key.keyring], "x") == TEXT


def test_sha1_signature_is_refused(tmp_path: Path, test_key: TestKey) -> None:
    signed = clearsign(tmp_path, [test_key], digest="SHA1")
    with pytest.raises(VerificationError, match="weak hash algorithm id 2"):
        verify_clearsigned(signed, [test_key.keyring], "rel")


def test_wrong_key_and_tampering(tmp_path: Path, test_key: TestKey, other_key: TestKey) -> None:
    signed = clearsign(tmp_path, [test_key])
    with pytest.raises(VerificationError, match="key not in keyring"):
        verify_clearsigned(signed, [other_key.keyring], "rel")
    tampered = signed.replace(b"Suite: stable", b"Suite: stablE")
    with pytest.raises(VerificationError, match="BAD signature"):
        verify_clearsigned(tampered, [test_key.keyring], "rel")


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda s: b"junk\n" + s, "starting with"),
        (lambda s: s + b"extra\n", "nothing after the signature"),
        (lambda s: s + s, "exactly one signed message"),
        (lambda s: b"", "empty file"),
    ],
)
def test_structure_checks(tmp_path: Path, test_key: TestKey, mangle, message: str) -> None:  # type: ignore[no-untyped-def]
    signed = clearsign(tmp_path, [test_key])
    with pytest.raises(VerificationError, match=message):
        verify_clearsigned(mangle(signed), [test_key.keyring], "rel")


def test_keyring_problems(tmp_path: Path, test_key: TestKey) -> None:
    signed = clearsign(tmp_path, [test_key])
    with pytest.raises(UsageError, match="does not exist"):
        verify_clearsigned(signed, [tmp_path / "missing.gpg"], "rel")
    with pytest.raises(UsageError, match="no keyring"):
        verify_clearsigned(signed, [], "rel")
    bad = tmp_path / "bad.asc"
    bad.write_text(
        "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n!!!notbase64\n-----END PGP PUBLIC KEY BLOCK-----\n"
    )
    with pytest.raises(InputError, match="not valid base64"):
        verify_clearsigned(signed, [bad], "rel")


def test_dearmor_matches_gpg_and_checks_crc(test_key: TestKey) -> None:
    armored = test_key.armored.read_bytes()
    assert dearmor(armored) == test_key.keyring.read_bytes()
    lines = armored.decode().splitlines()
    crc_line = next(i for i, ln in enumerate(lines) if ln.startswith("=") and len(ln) == 5)
    lines[crc_line] = "=" + base64.b64encode(b"\0\0\0").decode()
    with pytest.raises(InputError, match="CRC24"):
        dearmor("\n".join(lines).encode())
    with pytest.raises(InputError, match="no ASCII-armoured"):
        dearmor(b"plain text")
    with pytest.raises(InputError, match="not terminated"):
        dearmor(b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nQUJD\n")


def _status(*sigs: list[str]) -> str:
    lines = []
    for sig in sigs:
        lines.append("[GNUPG:] NEWSIG")
        lines += [f"[GNUPG:] {s}" for s in sig]
    return "\n".join(lines) + "\n"


FPR = "4CB50190207B4758A3F73A796ED0E7B82643E131"


def valid(hash_algo: str) -> str:
    return f"VALIDSIG {FPR} 2026-07-11 1783765031 0 4 0 1 {hash_algo} 01 {FPR}"


@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        (_status(["GOODSIG 6ED0 x", valid("8")]), (True, False)),
        (_status(["GOODSIG 6ED0 x", valid("2")]), (False, False)),
        (_status(["ERRSIG 6ED0 1 8 01 1 9 -"], ["GOODSIG 78DB y", valid("10")]), (True, False)),
        (_status(["GOODSIG 6ED0 x", valid("8")], ["BADSIG 78DB y"]), (True, True)),
        # An expired key's signature does not count, even beside a weak good one.
        (_status(["EXPKEYSIG 6ED0 x", valid("8")], ["GOODSIG 78DB y", valid("2")]), (False, False)),
        (_status(["REVKEYSIG 6ED0 x", valid("8")]), (False, False)),
        ("", (False, False)),
    ],
)
def test_status_judgement_is_per_signature(status: str, verdict: tuple[bool, bool]) -> None:
    from assay.debian.openpgp import _judge

    assert _judge(status) == verdict
