"""The protection parts a worker process needs, built together so they share one counter store."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from limits.aio.storage import RedisStorage

from importer.protection.breaker import CircuitBreakers
from importer.protection.counters import Counters
from importer.protection.guard import ProviderGuard
from importer.protection.ratelimit import RateLimiter, close_limits_storage, open_limits_storage
from importer.settings import Settings


@dataclass
class Protection:
    counters: Counters
    limiter: RateLimiter
    breakers: CircuitBreakers
    guard: ProviderGuard
    storage: RedisStorage

    @classmethod
    def open(cls, settings: Settings, redis: Any) -> Protection:
        """No I/O here: connections are made on first use, so a Redis outage at startup is survivable."""
        counters = Counters(redis)
        storage = open_limits_storage(settings)
        limiter = RateLimiter(settings, storage, counters)
        breakers = CircuitBreakers(redis, settings, counters)
        return cls(counters, limiter, breakers, ProviderGuard(limiter, breakers), storage)

    async def close(self) -> None:
        await close_limits_storage(self.storage)
