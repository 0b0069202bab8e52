"""The per-process decision cache: entries keyed by the engine's cache key, each with a TTL.

Decisions for a digest under one policy set do not change until the policies or the evidence do,
so an allow or deny is kept for ``ttl`` seconds; a registry error only for ``error_ttl`` seconds (a
short pause so an outage does not turn every admission into a full timeout, never long enough to
hide the registry coming back). Thread-safe; bounded by ``max_entries`` (oldest evicted first).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["DecisionCache"]

T = TypeVar("T")


class DecisionCache(Generic[T]):
    def __init__(
        self,
        ttl: float,
        *,
        error_ttl: float = 5.0,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self.error_ttl = min(error_ttl, ttl)
        self._max = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, tuple[float, T]] = OrderedDict()

    def get(self, key: str) -> T | None:
        now = self._clock()
        with self._lock:
            hit = self._entries.get(key)
            if hit is None:
                return None
            expires, value = hit
            if expires <= now:
                del self._entries[key]
                return None
            return value

    def put(self, key: str, value: T, *, error: bool = False) -> None:
        ttl = self.error_ttl if error else self.ttl
        if ttl <= 0:
            return
        with self._lock:
            self._entries[key] = (self._clock() + ttl, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)
