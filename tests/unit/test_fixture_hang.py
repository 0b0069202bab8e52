"""The hang guard the FIFO tests rely on really interrupts a blocked call, and leaves no alarm."""

from __future__ import annotations

import signal
import time

import pytest

from fixtures.hang import fail_after


def test_fail_after_interrupts_a_blocking_call() -> None:
    before = signal.getsignal(signal.SIGALRM)
    start = time.monotonic()
    with pytest.raises(TimeoutError, match=r"^blocked$"), fail_after(1, "blocked"):
        time.sleep(30)
    assert time.monotonic() - start < 10
    assert signal.alarm(0) == 0  # no alarm left pending
    assert signal.getsignal(signal.SIGALRM) == before


def test_fail_after_lets_a_quick_block_finish() -> None:
    with fail_after(5, "never"):
        pass
    assert signal.alarm(0) == 0
