"""How long a deferred job waits before it is picked up again.

A rate-limit window or an open breaker frees at one moment for every job waiting on it; if all
of them came back at that moment they would stampede the one free slot and be deferred again.
So the delay is the protection's ``retry_after`` plus a random spread. No retry library fits:
the wait is handed to arq as ``Retry(defer=…)``, not slept in a retry loop.
"""

from __future__ import annotations

import random

MIN_DEFER = 0.05
"""Never hand arq a zero delay: the job would be re-picked in the same poll that deferred it."""


def deferral_delay(retry_after: float, *, jitter: float, rng: random.Random | None = None) -> float:
    """``retry_after`` (at least ``MIN_DEFER``) plus a uniform spread in ``[0, jitter]``."""
    rng = rng or random.Random()
    base = max(MIN_DEFER, retry_after)
    return float(base + (rng.uniform(0.0, jitter) if jitter > 0 else 0.0))
