"""The breaker's state machine, run for real: the Lua script on a real Redis (no mocks)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from importer.errors import JobDeferred
from importer.protection.breaker import BreakerState, CircuitBreakers, Outcome
from importer.protection.counters import Counters
from importer.settings import Settings
from lab.stack import Stack
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration
PROVIDER = "roastify"


@pytest.fixture
async def redis(session_stack: Stack) -> AsyncIterator[Redis]:
    client = Redis.from_url(session_stack.redis_url)
    await client.flushdb()
    try:
        yield client
    finally:
        await client.aclose()


def breakers(redis: Redis, **overrides: float) -> CircuitBreakers:
    settings = Settings(
        breaker_failure_threshold=5, breaker_open_seconds=0.5, breaker_probe_timeout=1.0, breaker_half_open_recheck=5
    ).model_copy(update=overrides)
    return CircuitBreakers(redis, settings, Counters(redis))


async def fail(b: CircuitBreakers, n: int) -> None:
    for _ in range(n):
        permit = await b.admit(PROVIDER)
        await b.settle(permit, Outcome.FAILURE, "500 from provider")


async def state(b: CircuitBreakers) -> str:
    return str((await b.snapshot(PROVIDER))["state"])


async def test_opens_after_five_consecutive_failures_and_a_success_resets_the_count(redis: Redis) -> None:
    b = breakers(redis)
    await fail(b, 4)
    await b.settle(await b.admit(PROVIDER), Outcome.SUCCESS)  # a 2xx/4xx/429: the streak is broken
    await fail(b, 4)
    assert await state(b) == "closed"
    await fail(b, 1)
    assert await state(b) == "open"
    with pytest.raises(JobDeferred) as deferred:
        await b.admit(PROVIDER)
    assert 0 < deferred.value.retry_after <= 0.5
    counters = await Counters(redis).read()
    assert counters["breaker_opens"] == 1 and counters["breaker_rejections"] == 1


async def test_half_open_lets_exactly_one_probe_through_across_many_callers(redis: Redis) -> None:
    b = breakers(redis)
    await fail(b, 5)
    await asyncio.sleep(0.6)

    async def try_admit() -> bool:
        try:
            await breakers(redis).admit(PROVIDER)  # separate instances, as separate workers would be
        except JobDeferred:
            return False
        return True

    granted = await asyncio.gather(*(try_admit() for _ in range(50)))
    assert sum(granted) == 1
    assert await state(b) == "half_open"


async def test_a_successful_probe_closes_a_failed_one_reopens(redis: Redis) -> None:
    b = breakers(redis)
    await fail(b, 5)
    await asyncio.sleep(0.6)
    probe = await b.admit(PROVIDER)
    assert probe.probe
    await b.settle(probe, Outcome.FAILURE, "still 500")
    assert await state(b) == "open"
    await asyncio.sleep(0.6)
    probe = await b.admit(PROVIDER)
    await b.settle(probe, Outcome.SUCCESS)
    assert await state(b) == "closed"
    assert (await b.admit(PROVIDER)).probe is False
    history = [h["state"] for h in reversed(await b.history(PROVIDER))]
    assert history == ["open", "half_open", "open", "half_open", "closed"]
    stamps = [h["at"] for h in reversed(await b.history(PROVIDER))]
    assert stamps == sorted(stamps) and abs(stamps[-1] - time.time()) < 5


async def test_a_dead_prober_does_not_wedge_the_breaker(redis: Redis) -> None:
    b = breakers(redis, breaker_probe_timeout=0.4)
    await fail(b, 5)
    await asyncio.sleep(0.6)
    await b.admit(PROVIDER)  # the prober "dies": it never settles
    with pytest.raises(JobDeferred):
        await b.admit(PROVIDER)

    async def next_probe() -> bool:
        try:
            return (await b.admit(PROVIDER)).probe
        except JobDeferred:
            return False

    assert await wait_for(next_probe, timeout=5, interval=0.1, what="a new probe after the lease expired")


async def test_an_abandoned_probe_frees_the_slot_at_once(redis: Redis) -> None:
    b = breakers(redis)
    await fail(b, 5)
    await asyncio.sleep(0.6)
    probe = await b.admit(PROVIDER)
    await b.settle(probe, Outcome.ABANDONED)  # e.g. no rate-limit token: the probe never went out
    assert (await b.admit(PROVIDER)).probe


async def test_stale_verdicts_do_not_move_the_breaker(redis: Redis) -> None:
    b = breakers(redis)
    early = await b.admit(PROVIDER)  # admitted while closed, answers after the breaker opened
    await fail(b, 5)
    await b.settle(early, Outcome.SUCCESS)
    assert await state(b) == "open"


async def test_reset_closes_and_is_recorded(redis: Redis) -> None:
    b = breakers(redis)
    await fail(b, 5)
    assert await b.reset(PROVIDER, reason="operator") is BreakerState.OPEN
    assert await state(b) == "closed"
    assert (await b.history(PROVIDER, limit=1))[0] == {
        "state": "closed",
        "from": "open",
        "at": pytest.approx(time.time(), abs=5),
        "reason": "operator",
    }
