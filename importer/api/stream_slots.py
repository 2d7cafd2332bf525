"""A cap on open event streams per company, shared by every API process through Redis.

Each open stream holds a member of the company's sorted set, scored by the time it last said
it was alive; a stream refreshes its score while it runs and removes it when it ends. A stream
whose API process died stops counting once its score is older than three refresh intervals,
so a crash never locks a tenant out for longer than that. Adding first and counting after (in
one MULTI) makes two concurrent opens at the boundary both see each other: at worst both are
refused, never both admitted over the cap.

When Redis does not answer, streams are admitted uncounted (logged): following a job must keep
working through a Redis failover, and the per-process hub already bounds what a stream costs.
"""

from __future__ import annotations

import time
import uuid
from typing import Any
from uuid import UUID

from redis.exceptions import RedisError

from importer.logs import get_logger

log = get_logger(__name__)

_PREFIX = "importer:sse:streams:"


class StreamSlots:
    def __init__(self, redis: Any, *, limit: int, refresh_seconds: float) -> None:
        self._redis = redis
        self._limit = limit
        self.refresh_seconds = refresh_seconds
        self._stale_after = 3 * refresh_seconds

    @property
    def limit(self) -> int:
        return self._limit

    async def acquire(self, company_id: UUID) -> str | None:
        """A slot id, or None when the company already holds ``limit`` open streams."""
        slot = uuid.uuid4().hex
        key = _PREFIX + str(company_id)
        now = time.time()
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.zremrangebyscore(key, "-inf", now - self._stale_after)
                pipe.zadd(key, {slot: now})
                pipe.zcard(key)
                pipe.expire(key, int(self._stale_after) + 1)
                _, _, count, _ = await pipe.execute()
            if int(count) > self._limit:
                await self._redis.zrem(key, slot)
                return None
        except (TimeoutError, RedisError, OSError) as exc:
            log.warning("sse_slot_uncounted", company_id=str(company_id), error=repr(exc))
        return slot

    async def refresh(self, company_id: UUID, slot: str) -> None:
        key = _PREFIX + str(company_id)
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.zadd(key, {slot: time.time()})
                pipe.expire(key, int(self._stale_after) + 1)
                await pipe.execute()
        except (TimeoutError, RedisError, OSError) as exc:
            log.warning("sse_slot_refresh_failed", company_id=str(company_id), error=repr(exc))

    async def release(self, company_id: UUID, slot: str) -> None:
        try:
            await self._redis.zrem(_PREFIX + str(company_id), slot)
        except (TimeoutError, RedisError, OSError) as exc:  # it expires by itself
            log.warning("sse_slot_release_failed", company_id=str(company_id), error=repr(exc))
