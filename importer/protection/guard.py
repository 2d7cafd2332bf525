"""What stands between a provider call and the network: the breaker, then the rate limits.

``ProviderTransport`` asks the guard before *every* HTTP attempt (its quick retries included)
and tells it the outcome after, so the breaker counts each failure and no attempt goes out
without a token. The breaker is asked first: while it is open nothing is spent from the rate
windows, and a granted probe that then finds no token is released at once for another worker.
"""

from __future__ import annotations

import asyncio

from importer.logs import get_logger
from importer.protection.breaker import CircuitBreakers, Outcome, Permit
from importer.protection.ratelimit import CallContext, RateLimiter

log = get_logger(__name__)


class ProviderGuard:
    def __init__(self, limiter: RateLimiter, breakers: CircuitBreakers) -> None:
        self.limiter = limiter
        self.breakers = breakers

    async def admit(self, call: CallContext) -> Permit:
        """Raises ``JobDeferred`` (breaker open, no token in time) or ``DependencyUnavailable``."""
        permit = await self.breakers.admit(call.provider)
        try:
            await self.limiter.acquire(call)
        except BaseException:
            if permit.probe:
                await asyncio.shield(self.breakers.settle(permit, Outcome.ABANDONED))
            raise
        return permit

    async def settle(self, permit: Permit, outcome: Outcome, detail: str = "") -> None:
        await asyncio.shield(self.breakers.settle(permit, outcome, detail))
