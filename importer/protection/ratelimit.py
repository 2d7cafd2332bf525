"""Rate limits shared by every worker through Redis: per provider account, per company, and
job starts per minute for the whole queue.

The windows are the ``limits`` library's moving windows in Redis (one Lua call per hit), not
hand-written ones. A provider counts its 60 s window from when a request *arrives*; we count
from just before we send it, so a request can reach the provider a little after our hit. Our
window is therefore ``rate_limit_window_seconds + rate_limit_window_skew`` long (100 per 61 s
by default): the N+1th request of ours is sent at least 61 s after the first, so as long as a
request travels in under a second the provider never sees N+1 requests in 60 s.

Order of the two hits: the account first, then the company. A refused account hit costs
nothing, which matters because many jobs hammering one store are refused over and over; if the
company window then refuses, the account token just taken is wasted (the limits library has no
refund). That only slows the store down a little and can never cause a 429.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from limits import RateLimitItem, RateLimitItemPerSecond
from limits.aio.storage import RedisSentinelStorage, RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from redis.exceptions import RedisError

from importer.errors import DependencyUnavailable, JobDeferred
from importer.logs import get_logger
from importer.protection import counters as names
from importer.protection.counters import Counters
from importer.protection.keys import LIMITS_PREFIX
from importer.settings import Settings

log = get_logger(__name__)

_MAX_ROUNDS = 50  # waits are bounded by time already; this bounds a lost-race spin as well
_RACE_PAUSE = 0.05
_REDIS_ERRORS = (TimeoutError, RedisError, OSError)


@dataclass(frozen=True)
class CallContext:
    """Who a provider request is made for: the account (store) and company whose budgets it spends."""

    provider: str
    account: str
    company_id: str | None = None


def open_limits_storage(settings: Settings) -> RedisStorage:
    """The limits library's Redis storage on the redis-py client, plain or through Sentinel."""
    timeout = settings.redis_socket_timeout
    if settings.redis_sentinels:
        return RedisSentinelStorage(
            f"async+redis+sentinel://{','.join(settings.redis_sentinels)}/{settings.redis_sentinel_master}",
            implementation="redispy",
            key_prefix=LIMITS_PREFIX,
            # Replicas lag the primary: a window read from one could admit too many requests.
            use_replicas=False,
            sentinel_kwargs={"socket_timeout": timeout, "socket_connect_timeout": timeout},
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            socket_keepalive=True,
            health_check_interval=15,
        )
    return RedisStorage(
        f"async+{settings.redis_url}",
        implementation="redispy",
        key_prefix=LIMITS_PREFIX,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        socket_keepalive=True,
        health_check_interval=15,
    )


async def close_limits_storage(storage: RedisStorage) -> None:
    """The storage has no close of its own; close the redis-py clients its bridge opened."""
    for attr in ("storage", "storage_replica"):
        client = getattr(storage.bridge, attr, None)
        if client is not None:
            try:
                await client.aclose()
            except _REDIS_ERRORS as exc:
                log.debug("limits_storage_close_failed", error=repr(exc))


class RateLimiter:
    def __init__(self, settings: Settings, storage: RedisStorage, counters: Counters) -> None:
        self._settings = settings
        self._limiter = MovingWindowRateLimiter(storage)
        self._counters = counters
        window = settings.rate_limit_window_seconds + settings.rate_limit_window_skew
        self._provider_items: dict[str, RateLimitItem] = {
            "roastify": RateLimitItemPerSecond(settings.roastify_rate_limit_per_min, window, namespace="account"),
            "shopify": RateLimitItemPerSecond(settings.shopify_rate_limit_per_min, window, namespace="account"),
        }
        self._company_item = RateLimitItemPerSecond(settings.company_rate_limit_per_min, window, namespace="company")
        # Job starts are our own limit, not a provider's: no arrival skew to cover.
        self._start_item = RateLimitItemPerSecond(
            settings.queue_start_limit_per_min, settings.rate_limit_window_seconds, namespace="job-start"
        )

    def provider_item(self, provider: str) -> RateLimitItem:
        try:
            return self._provider_items[provider]
        except KeyError:
            raise ValueError(f"no rate limit configured for provider {provider!r}") from None

    async def acquire(self, call: CallContext) -> float:
        """Take one request token for ``call``; returns the seconds spent waiting for it.

        Waits while a token frees within ``rate_limit_max_wait``; otherwise raises
        ``JobDeferred`` with the time until one frees. Redis trouble is a ``DependencyUnavailable``:
        without the shared window we cannot know the provider's budget, so we do not call it.
        """
        try:
            return await self._acquire(call)
        except _REDIS_ERRORS as exc:
            raise DependencyUnavailable(f"rate-limit store unavailable: {exc!r}") from exc

    async def _acquire(self, call: CallContext) -> float:
        account_item = self.provider_item(call.provider)
        account_key = (call.provider, call.account)
        started = time.monotonic()
        deadline = started + self._settings.rate_limit_max_wait
        for _ in range(_MAX_ROUNDS):
            wait, limit_name = await self._try_take(account_item, account_key, call.company_id)
            if wait is None:
                return time.monotonic() - started
            remaining = deadline - time.monotonic()
            if wait > remaining:
                await self._counters.bump(names.RATELIMIT_DEFERRALS, detail=call.provider)
                log.info(
                    "rate_limit_deferred",
                    provider=call.provider,
                    account=call.account,
                    limit=limit_name,
                    retry_after=round(wait, 2),
                )
                raise JobDeferred(wait, f"{limit_name} rate limit reached for {call.provider} store {call.account}")
            await self._counters.bump(names.RATELIMIT_WAITS, detail=call.provider)
            log.info(
                "rate_limit_wait", provider=call.provider, account=call.account, limit=limit_name, wait=round(wait, 2)
            )
            await asyncio.sleep(wait)
        raise JobDeferred(_RACE_PAUSE, f"rate limit for {call.provider} store {call.account} kept racing")

    async def _try_take(
        self, account_item: RateLimitItem, account_key: tuple[str, str], company_id: str | None
    ) -> tuple[float | None, str]:
        """(None, _) when a token was taken; else (seconds until one frees, which limit refused)."""
        if not await self._limiter.hit(account_item, *account_key):
            return await self._wait_for(account_item, *account_key), "account"
        if company_id is not None and not await self._limiter.hit(self._company_item, company_id):
            return await self._wait_for(self._company_item, company_id), "company"
        return None, ""

    async def _wait_for(self, item: RateLimitItem, *identifiers: str) -> float:
        stats = await self._limiter.get_window_stats(item, *identifiers)
        if stats.remaining > 0:
            return _RACE_PAUSE  # a slot freed between our hit and this read: look again soon
        return max(_RACE_PAUSE, stats.reset_time - time.time())

    async def take_job_start(self) -> float | None:
        """One of the queue's job-start tokens: None when taken, else seconds until one frees."""
        if await self._limiter.hit(self._start_item, "queue"):
            return None
        return await self._wait_for(self._start_item, "queue")
