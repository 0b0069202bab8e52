"""Deterministic gzip on several cores (the technique pigz uses).

The input is cut into fixed 1 MiB blocks. Each block is deflated independently (zlib releases
the GIL, so threads run in parallel), primed with the previous block's last 32 KiB as a preset
dictionary and ended with a sync flush, so the concatenated pieces form one valid deflate
stream; an empty final block, the CRC-32 and the length close the single gzip member. The
bytes depend only on the input, the level and the block size — never on the number of threads
or on how the caller split its writes — so layer digests stay reproducible.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor

BLOCK = 1 << 20
_WINDOW = 32 << 10
# gzip header: magic, deflate, no flags, mtime 0, XFL 0, OS 255 (unknown) — fixed bytes.
_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
_FINAL_EMPTY_BLOCK = b"\x03\x00"


def _deflate_block(data: bytes, dictionary: bytes, level: int) -> bytes:
    if dictionary:
        c = zlib.compressobj(level, zlib.DEFLATED, -15, 9, zlib.Z_DEFAULT_STRATEGY, dictionary)
    else:
        c = zlib.compressobj(level, zlib.DEFLATED, -15, 9)
    return c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)


def default_workers() -> int:
    return max(1, min(8, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1))


class ParallelGzip:
    """``compress(data)`` returns whatever output is ready (in order); ``flush()`` the rest."""

    def __init__(self, level: int, workers: int | None = None) -> None:
        self._level = level
        self._workers = default_workers() if workers is None else max(1, workers)
        self._pool = ThreadPoolExecutor(self._workers) if self._workers > 1 else None
        self._pending = bytearray()
        self._prev_tail = b""
        self._crc = 0
        self._size = 0
        self._queue: deque[Future[bytes] | bytes] = deque()
        self._started = False

    def _submit(self, block: bytes) -> None:
        self._crc = zlib.crc32(block, self._crc)
        self._size += len(block)
        tail, self._prev_tail = self._prev_tail, block[-_WINDOW:]
        if self._pool is None:
            self._queue.append(_deflate_block(block, tail, self._level))
        else:
            self._queue.append(self._pool.submit(_deflate_block, block, tail, self._level))

    def _drain(self, keep: int) -> bytes:
        out = []
        if not self._started:
            out.append(_HEADER)
            self._started = True
        while len(self._queue) > keep:
            item = self._queue.popleft()
            out.append(item if isinstance(item, bytes) else item.result())
        return b"".join(out)

    def compress(self, data: bytes) -> bytes:
        self._pending += data
        while len(self._pending) >= BLOCK:
            self._submit(bytes(self._pending[:BLOCK]))
            del self._pending[:BLOCK]
        return self._drain(keep=2 * self._workers)

    def flush(self) -> bytes:
        try:
            if self._pending:
                self._submit(bytes(self._pending))
                self._pending.clear()
            body = self._drain(keep=0)
            trailer = struct.pack("<II", self._crc & 0xFFFFFFFF, self._size & 0xFFFFFFFF)
            return body + _FINAL_EMPTY_BLOCK + trailer
        finally:
            self.close()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
