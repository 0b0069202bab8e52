"""Walk the frame structure of a zstd stream as it passes, to tell a complete stream from a
truncated one (``zstandard``'s stream reader ends quietly at the end of its input).

Frame layout (RFC 8878): magic, frame header (descriptor, window, dictionary id, content size),
blocks (3-byte headers: last flag, type, size), optional 4-byte checksum; skippable frames are
magic + 4-byte length + data. Only sizes are read here; decoding stays with zstandard.
"""

from __future__ import annotations

from assay.errors import InputError

_MAGIC = b"\x28\xb5\x2f\xfd"


class ZstdFrames:
    """A pass-through reader: ``read`` returns the inner stream's bytes, tracking frames."""

    def __init__(self, raw: object, what: str) -> None:
        self._raw = raw
        self._what = what
        self._need = 4  # bytes wanted by the current step
        self._step = "magic"
        self._buf = b""
        self._skip = 0  # data bytes to pass over (block content, skippable frame)
        self._checksum = False
        self.frames = 0

    def read(self, n: int = -1) -> bytes:
        data: bytes = self._raw.read(n)  # type: ignore[attr-defined]
        if data:
            self._feed(data)
        return data

    def _feed(self, data: bytes) -> None:
        view = memoryview(data)
        i = 0
        while i < len(view):
            if self._skip:
                take = min(self._skip, len(view) - i)
                self._skip -= take
                i += take
                continue
            take = min(self._need - len(self._buf), len(view) - i)
            self._buf += bytes(view[i : i + take])
            i += take
            if len(self._buf) == self._need:
                field, self._buf = self._buf, b""
                self._advance(field)

    def _advance(self, field: bytes) -> None:
        step = self._step
        if step == "magic":
            if field == _MAGIC:
                self._step, self._need = "fhd", 1
            elif field[1:] == b"\x2a\x4d\x18" and field[0] & 0xF0 == 0x50:
                self._step, self._need = "skiplen", 4
            else:
                raise InputError(f"{self._what}: corrupt zstd data (bad frame magic)")
        elif step == "skiplen":
            self._skip = int.from_bytes(field, "little")
            self._step, self._need = "magic", 4
        elif step == "fhd":
            fhd = field[0]
            fcs_flag, single, dict_flag = fhd >> 6, fhd & 0x20, fhd & 3
            self._checksum = bool(fhd & 4)
            if fhd & 0x08:
                raise InputError(f"{self._what}: corrupt zstd data (reserved bit set)")
            rest = (0 if single else 1) + (0, 1, 2, 4)[dict_flag]
            rest += (1 if single else 0, 2, 4, 8)[fcs_flag]
            if rest:
                self._skip = rest
            self._step, self._need = "block", 3
        elif step == "block":
            header = int.from_bytes(field, "little")
            last, kind, size = header & 1, (header >> 1) & 3, header >> 3
            if kind == 3:
                raise InputError(f"{self._what}: corrupt zstd data (reserved block type)")
            self._skip = 1 if kind == 1 else size
            if last:
                if self._checksum:
                    self._skip += 4
                self.frames += 1
                self._step, self._need = "magic", 4
            else:
                self._need = 3

    def check_complete(self) -> None:
        """At the end of the input: refuse a stream that stopped inside a frame."""
        if self._step != "magic" or self._buf or self._skip or not self.frames:
            raise InputError(
                f"{self._what}: truncated zstd stream (the blob ends inside a frame); "
                "re-fetch or rebuild the layer"
            )
