"""OpenPGP verification of clearsigned files (InRelease) with the ``gpgv`` binary.

Only the text ``gpgv`` writes with ``--output`` (the signed part) is returned; callers never parse
the raw clearsigned file, so text outside the signature cannot sneak in. A file is accepted when
at least one signature is good (``GOODSIG`` + ``VALIDSIG``) by a key in the given keyrings, made
with SHA-256 or stronger, and no signature is bad (``BADSIG``). Signatures by keys the keyrings
do not hold are ignored, as apt does (Debian signs with several keys).

Keyrings may be binary (``.gpg``, keybox) or ASCII-armoured (``.asc``); armoured ones are
decoded to a temporary binary keyring first.
"""

from __future__ import annotations

import base64
import binascii
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from assay.errors import InputError, UsageError, VerificationError

__all__ = ["dearmor", "split_check_clearsigned", "verify_clearsigned"]

_MAX_KEYRING = 64 << 20
_GPGV_TIMEOUT = 120
# OpenPGP hash algorithm ids (RFC 4880 9.4) accepted: SHA256, SHA384, SHA512, SHA224.
_STRONG_HASHES = {"8", "9", "10", "11"}

_BEGIN_SIGNED = b"-----BEGIN PGP SIGNED MESSAGE-----"
_BEGIN_SIG = b"-----BEGIN PGP SIGNATURE-----"
_END_SIG = b"-----END PGP SIGNATURE-----"


def _crc24(data: bytes) -> int:
    crc = 0xB704CE
    for byte in data:
        crc ^= byte << 16
        for _ in range(8):
            crc <<= 1
            if crc & 0x1000000:
                crc ^= 0x1864CFB
    return crc & 0xFFFFFF


def dearmor(data: bytes, name: str = "<keyring>") -> bytes:
    """Decode every ASCII-armoured block in ``data`` and concatenate the binary packets."""
    out = bytearray()
    lines = data.replace(b"\r\n", b"\n").split(b"\n")
    i = 0
    blocks = 0
    while i < len(lines):
        line = lines[i].strip()
        if not (line.startswith(b"-----BEGIN PGP ") and line.endswith(b"-----")):
            i += 1
            continue
        i += 1
        # Armour headers end at the first empty line.
        while i < len(lines) and lines[i].strip() and b":" in lines[i]:
            i += 1
        body: list[bytes] = []
        checksum: bytes | None = None
        while i < len(lines) and not lines[i].strip().startswith(b"-----END PGP "):
            text = lines[i].strip()
            if text.startswith(b"=") and len(text) == 5:
                checksum = text[1:]
            elif text:
                body.append(text)
            i += 1
        if i >= len(lines):
            raise InputError(f"{name}: ASCII armour block is not terminated by -----END PGP")
        try:
            packets = base64.b64decode(b"".join(body), validate=True)
        except binascii.Error as exc:
            raise InputError(f"{name}: ASCII armour is not valid base64 ({exc})") from None
        if checksum is not None:
            try:
                want = int.from_bytes(base64.b64decode(checksum, validate=True), "big")
            except binascii.Error:
                raise InputError(f"{name}: ASCII armour checksum is not base64") from None
            if _crc24(packets) != want:
                raise InputError(f"{name}: ASCII armour CRC24 checksum does not match")
        out += packets
        blocks += 1
        i += 1
    if not blocks:
        raise InputError(f"{name}: no ASCII-armoured OpenPGP block found")
    return bytes(out)


def split_check_clearsigned(data: bytes, name: str) -> None:
    """Refuse anything but exactly one clearsigned message with nothing around it.

    gpgv would verify the signed part and ignore the rest; apt refuses such files and so do we.
    """
    lines = data.split(b"\n")
    stripped = [ln.rstrip(b"\r \t") for ln in lines]
    first = next((i for i, ln in enumerate(stripped) if ln), None)
    if first is None or stripped[first] != _BEGIN_SIGNED:
        raise VerificationError(
            f"{name}: expected an OpenPGP clearsigned file starting with "
            f"'{_BEGIN_SIGNED.decode()}', found {stripped[first][:60]!r}"
            if first is not None
            else f"{name}: expected an OpenPGP clearsigned file, found an empty file"
        )
    counts = {m: stripped.count(m) for m in (_BEGIN_SIGNED, _BEGIN_SIG, _END_SIG)}
    if any(c != 1 for c in counts.values()):
        raise VerificationError(
            f"{name}: expected exactly one signed message and one signature block, found "
            f"{counts[_BEGIN_SIGNED]} message header(s) and {counts[_BEGIN_SIG]} signature "
            "block(s)"
        )
    end = stripped.index(_END_SIG)
    if stripped.index(_BEGIN_SIG) < first or any(ln for ln in stripped[end + 1 :]):
        raise VerificationError(
            f"{name}: expected nothing after the signature block, found extra text"
        )


def _prepare_keyrings(keyrings: Sequence[Path], tmp: Path) -> list[Path]:
    out: list[Path] = []
    for n, keyring in enumerate(keyrings):
        path = Path(keyring)
        if not path.is_file():
            raise UsageError(
                f"keyring {path} does not exist; install it (for Debian: the "
                "debian-archive-keyring package) or point signed-by at the right file"
            )
        if path.stat().st_size > _MAX_KEYRING:
            raise InputError(f"keyring {path} is larger than 64 MiB; refusing to read it")
        head = path.read_bytes()[:64].lstrip()
        if head.startswith(b"-----BEGIN PGP"):
            binary = dearmor(path.read_bytes(), str(path))
            dst = tmp / f"keyring{n}.gpg"
            dst.write_bytes(binary)
            out.append(dst)
        else:
            out.append(path.resolve())
    return out


def _summarise(status: str) -> str:
    found: list[str] = []
    for line in status.splitlines():
        if not line.startswith("[GNUPG:] "):
            continue
        words = line[9:].split()
        if not words:
            continue
        kw = words[0]
        if kw == "BADSIG":
            found.append(f"BAD signature by key {words[1] if len(words) > 1 else '?'}")
        elif kw == "ERRSIG":
            key = words[1] if len(words) > 1 else "?"
            rc = words[6] if len(words) > 6 else "?"
            why = "key not in keyring" if rc == "9" else f"error code {rc}"
            found.append(f"signature by key {key} that cannot be checked ({why})")
        elif kw in ("EXPKEYSIG", "REVKEYSIG", "EXPSIG"):
            found.append(f"{kw} for key {words[1] if len(words) > 1 else '?'}")
        elif kw == "VALIDSIG" and len(words) > 8 and words[8] not in _STRONG_HASHES:
            found.append(f"signature by {words[1]} with weak hash algorithm id {words[8]}")
        elif kw == "NODATA":
            found.append("no OpenPGP data")
    return "; ".join(found) or "no valid signature"


def _judge(status: str) -> tuple[bool, bool]:
    """(some signature is acceptable, some signature is bad) from gpgv's status lines.

    Status lines are grouped per signature (``NEWSIG`` starts one). A signature is acceptable
    when its group has ``GOODSIG`` (not EXPKEYSIG/REVKEYSIG/EXPSIG) and ``VALIDSIG`` with a
    SHA-2 hash algorithm.
    """
    groups: list[list[list[str]]] = [[]]
    for line in status.splitlines():
        words = line.split()
        if len(words) < 2 or words[0] != "[GNUPG:]":
            continue
        if words[1] == "NEWSIG":
            groups.append([])
        groups[-1].append(words[1:])
    accepted = bad = False
    for group in groups:
        kinds = {w[0] for w in group}
        bad = bad or "BADSIG" in kinds
        strong = any(w[0] == "VALIDSIG" and len(w) > 8 and w[8] in _STRONG_HASHES for w in group)
        if "GOODSIG" in kinds and strong and not kinds & {"EXPKEYSIG", "REVKEYSIG", "EXPSIG"}:
            accepted = True
    return accepted, bad


def verify_clearsigned(data: bytes, keyrings: Sequence[Path], name: str) -> bytes:
    """Verify a clearsigned document and return the signed text only.

    ``name`` (a URL or path) is used in error messages. Raises ``VerificationError`` when no
    acceptable signature is found, ``UsageError`` when gpgv or a keyring is missing.
    """
    if not keyrings:
        raise UsageError(f"{name}: no keyring given to verify the signature against")
    split_check_clearsigned(data, name)
    gpgv = shutil.which("gpgv")
    if gpgv is None:
        raise UsageError("gpgv not found on PATH; install the gpgv package to verify InRelease")
    with tempfile.TemporaryDirectory(prefix="assay-gpgv-") as tmpdir:
        tmp = Path(tmpdir)
        rings = _prepare_keyrings(keyrings, tmp)
        home = tmp / "home"
        home.mkdir(mode=0o700)
        src = tmp / "signed"
        src.write_bytes(data)
        out = tmp / "out"
        cmd = [gpgv, "--homedir", str(home), "--status-fd", "1"]
        for ring in rings:
            cmd += ["--keyring", str(ring)]
        cmd += ["--output", str(out), "--", str(src)]
        try:
            proc = subprocess.run(
                cmd, capture_output=True, timeout=_GPGV_TIMEOUT, stdin=subprocess.DEVNULL
            )
        except subprocess.TimeoutExpired:
            raise VerificationError(f"{name}: gpgv did not finish within 120 s") from None
        status = proc.stdout.decode("utf-8", "replace")
        accepted, bad = _judge(status)
        keys = ", ".join(str(k) for k in keyrings)
        if bad or not accepted or not out.is_file():
            raise VerificationError(
                f"{name}: OpenPGP signature check failed: expected a good signature by a key "
                f"in {keys}, found: {_summarise(status)}"
            )
        return out.read_bytes()
