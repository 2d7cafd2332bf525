"""The stack's wait loop ends by itself: ready, timed out with the last reason, or given up."""

from __future__ import annotations

import time

import pytest

from lab.stack.waiting import GaveUpError, WaitTimeoutError, wait_until


def test_returns_once_the_probe_is_ready() -> None:
    answers = iter(["starting", "loading", None])
    elapsed = wait_until(lambda: next(answers), what="thing", timeout=5, interval=0.01)
    assert elapsed < 5


def test_times_out_with_the_last_reason() -> None:
    started = time.monotonic()
    with pytest.raises(WaitTimeoutError, match=r"thing not ready after 0.3s \(last check: still booting\)"):
        wait_until(lambda: "still booting", what="thing", timeout=0.3, interval=0.05)
    assert time.monotonic() - started < 2


def test_a_probe_that_raises_is_not_ready_yet() -> None:
    def probe() -> str | None:
        raise ConnectionRefusedError("refused")

    with pytest.raises(WaitTimeoutError, match="ConnectionRefusedError: refused"):
        wait_until(probe, what="thing", timeout=0.2, interval=0.05)


def test_gives_up_at_once_when_the_process_died() -> None:
    started = time.monotonic()
    with pytest.raises(GaveUpError, match="exited with code 1"):
        wait_until(lambda: "no", what="thing", timeout=30, still_running=lambda: "exited with code 1")
    assert time.monotonic() - started < 1
