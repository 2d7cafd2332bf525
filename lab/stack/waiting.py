"""The one wait loop of the stack: bounded by time *and* by count, and it stops by itself.

A probe returns ``None`` when the thing is ready, or a short reason why not yet ("connection
refused", "status 503"). When the time is up the last reason is what the error shows, which
is usually all one needs to know why a component did not come up.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from lab.stack.errors import StackError

Probe = Callable[[], str | None]


class WaitTimeoutError(StackError):
    def __init__(self, what: str, timeout: float, last_reason: str) -> None:
        self.what = what
        self.timeout = timeout
        self.last_reason = last_reason
        super().__init__(f"{what} not ready after {timeout:.1f}s (last check: {last_reason})")


class GaveUpError(StackError):
    """``still_running`` said the process died: waiting longer cannot help."""


def wait_until(
    probe: Probe,
    *,
    what: str,
    timeout: float,
    interval: float = 0.1,
    max_interval: float = 1.0,
    still_running: Callable[[], str | None] | None = None,
) -> float:
    """Call ``probe`` until it returns None; returns the seconds it took.

    ``still_running`` returns a reason when waiting became pointless (the process exited),
    which raises :class:`GaveUpError` at once instead of waiting the full timeout. The
    interval grows by half each round up to ``max_interval``; the number of rounds is capped
    as well, so a clock that misbehaves cannot make the loop endless.
    """
    started = time.monotonic()
    deadline = started + timeout
    max_rounds = int(timeout / max(interval, 0.001)) + 10
    last_reason = "not checked yet"
    delay = interval
    for _ in range(max_rounds):
        if still_running is not None:
            dead = still_running()
            if dead is not None:
                raise GaveUpError(f"{what}: {dead}")
        try:
            reason = probe()
        except Exception as exc:  # a probe that raises is a probe that says "not yet"
            reason = f"{type(exc).__name__}: {exc}"
        if reason is None:
            return time.monotonic() - started
        last_reason = reason
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        time.sleep(min(delay, remaining))
        delay = min(delay * 1.5, max_interval)
    raise WaitTimeoutError(what, timeout, last_reason)
