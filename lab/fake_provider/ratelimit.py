"""Each store's own request budget: a 60-second moving window, like the real providers enforce.

The window is the ``limits`` library's in-memory moving window, not a hand-written one. Only
catalog API requests spend budget; image CDN requests never do. A refused request spends
nothing, so a client that honours Retry-After gets in exactly when a slot frees.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter

WINDOW_SECONDS = 60


@dataclass(frozen=True)
class Admission:
    allowed: bool
    retry_after: int = 0  # whole seconds until a slot frees (>= 1 when refused)
    remaining: int = 0


class StoreRateLimiter:
    def __init__(self) -> None:
        self._storage = MemoryStorage()
        self._limiter = MovingWindowRateLimiter(self._storage)
        self._items: dict[int, RateLimitItem] = {}

    def _item(self, per_minute: int) -> RateLimitItem:
        item = self._items.get(per_minute)
        if item is None:
            item = self._items[per_minute] = RateLimitItemPerMinute(per_minute, namespace="fake-provider")
        return item

    async def admit(self, store_id: str, per_minute: int) -> Admission:
        """``per_minute`` 0 means unlimited (a store made for raw-throughput drills)."""
        if per_minute <= 0:
            return Admission(allowed=True, remaining=-1)
        item = self._item(per_minute)
        if await self._limiter.hit(item, store_id):
            stats = await self._limiter.get_window_stats(item, store_id)
            return Admission(allowed=True, remaining=max(0, stats.remaining))
        stats = await self._limiter.get_window_stats(item, store_id)
        wait = stats.reset_time - time.time()
        return Admission(allowed=False, retry_after=max(1, math.ceil(wait)), remaining=0)
