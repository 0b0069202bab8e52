"""Content digests (``sha256:<hex>``) and streams that compute or verify them while data flows.

``DigestingWriter`` hashes what is written through it (layer and blob writers);
``VerifyingReader`` hashes what is read through it and raises ``VerificationError`` at end of
stream when the content does not match the expected digest and size (blob readers). Nothing is
ever reported as verified before the last byte has been checked.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import BinaryIO, NewType, Protocol

from assay._closing import Closing
from assay.errors import InputError, VerificationError

__all__ = [
    "Digest",
    "DigestingWriter",
    "Readable",
    "VerifyingReader",
    "digest_algorithm",
    "digest_file",
    "digest_hex",
    "parse_digest",
    "sha256_digest",
]

Digest = NewType("Digest", str)


class Readable(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


_DIGEST_RE = re.compile(r"^(sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})$")
_CHUNK = 1 << 20


def sha256_digest(data: bytes) -> Digest:
    """The OCI digest of ``data``: ``sha256:`` followed by 64 lowercase hex digits."""
    return Digest("sha256:" + hashlib.sha256(data).hexdigest())


def parse_digest(text: str) -> Digest:
    """Validate ``text`` as a sha256 or sha512 digest and return it typed.

    Raises ``InputError`` for anything else (upper-case hex, other algorithms, wrong length),
    because a digest that cannot be checked must never be accepted.
    """
    if not isinstance(text, str) or not _DIGEST_RE.fullmatch(text):
        shown = repr(text)[:100]
        raise InputError(
            f"invalid digest {shown}: expected 'sha256:' and 64 lowercase hex digits "
            "(or 'sha512:' and 128)"
        )
    return Digest(text)


def digest_algorithm(digest: Digest) -> str:
    """``"sha256"`` or ``"sha512"``."""
    return digest.split(":", 1)[0]


def digest_hex(digest: Digest) -> str:
    """The hex part of a digest (the blob's file name in an OCI layout)."""
    return digest.split(":", 1)[1]


def _new_hash(digest: Digest) -> hashlib._Hash:
    return hashlib.new(digest_algorithm(digest))


def digest_file(path: Path, algorithm: str = "sha256") -> tuple[Digest, int]:
    """Digest and size of a file, read in chunks."""
    h = hashlib.new(algorithm)
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
            size += len(chunk)
    return Digest(f"{algorithm}:{h.hexdigest()}"), size


class DigestingWriter:
    """Wrap a binary file: every ``write`` is hashed (sha256) and counted, then passed on."""

    def __init__(self, fh: BinaryIO | None) -> None:
        self._fh = fh
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self._hash.update(data)
        n = len(data)
        self.size += n
        if self._fh is not None:
            self._fh.write(data)
        return n

    def flush(self) -> None:
        if self._fh is not None:
            self._fh.flush()

    @property
    def digest(self) -> Digest:
        return Digest("sha256:" + self._hash.hexdigest())


class VerifyingReader(Closing):
    """Read from ``fh`` while hashing; at end of stream check digest (and size, if given).

    Raises ``VerificationError`` when the content does not match, or when more than ``size``
    bytes arrive (checked as soon as it happens, so a hostile stream cannot run on).
    ``verified`` becomes True only after a successful check at end of stream.
    """

    def __init__(
        self, fh: Readable, digest: Digest | str, size: int | None = None, *, what: str = "blob"
    ) -> None:
        self._fh = fh
        self._expected = parse_digest(digest)
        self._hash = _new_hash(self._expected)
        self._size = size
        self._what = what
        self.read_bytes = 0
        self.verified = False
        self._done = False

    def _check_end(self) -> None:
        if self._done:
            return
        self._done = True
        if self._size is not None and self.read_bytes != self._size:
            raise VerificationError(
                f"{self._what} {self._expected}: size {self.read_bytes} does not match the "
                f"expected {self._size}; the content is truncated or corrupt — fetch it again"
            )
        actual = f"{digest_algorithm(self._expected)}:{self._hash.hexdigest()}"
        if actual != self._expected:
            raise VerificationError(
                f"{self._what} content has digest {actual}, expected {self._expected}; "
                "the content is corrupt or was tampered with — fetch it again"
            )
        self.verified = True

    def read(self, n: int = -1) -> bytes:
        if self._done:
            return b""
        data = self._fh.read(n if n is not None and n >= 0 else _CHUNK * 64)
        if n is None or n < 0:
            parts = [data]
            while data:
                self._account(data)
                data = self._fh.read(_CHUNK)
                parts.append(data)
            self._check_end()
            return b"".join(parts)
        if not data:
            self._check_end()
            return b""
        self._account(data)
        return data

    def _account(self, data: bytes) -> None:
        self._hash.update(data)
        self.read_bytes += len(data)
        if self._size is not None and self.read_bytes > self._size:
            self._done = True
            raise VerificationError(
                f"{self._what} {self._expected} is larger than the expected {self._size} bytes; "
                "refusing to read further"
            )

    def readable(self) -> bool:
        return True

    def drain(self) -> None:
        """Read (and verify) whatever is left."""
        while self.read(_CHUNK):
            pass

    def close(self) -> None:
        close = getattr(self._fh, "close", None)
        if close is not None:
            close()
