"""How long a job waits before its next try.

Exponential with "equal jitter" (half fixed, half random) so a burst of jobs failing together
against one provider does not come back together; a provider's own Retry-After wins when it
asks for longer. Hand-written because the wait strategies of retry libraries are bound to their
own retry loops, while here the wait is handed to arq as ``Retry(defer=…)``.
"""

from __future__ import annotations

import random


def retry_delay(
    attempt: int,
    *,
    base: float,
    cap: float,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> float:
    rng = rng or random.Random()
    ceiling = min(cap, base * (2 ** max(0, attempt - 1)))
    delay = ceiling / 2 + rng.uniform(0, ceiling / 2)
    if retry_after is not None and retry_after > 0:
        delay = max(delay, retry_after + rng.uniform(0, min(5.0, retry_after * 0.2 + 0.5)))
    return float(delay)
