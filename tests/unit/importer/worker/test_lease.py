"""The lease keeper: the Redis lease and the database heartbeat renew independently.

Fakes stand in for Redis and Postgres here (the integration tests run the keeper for real):
what is tested is only that a hung database call cannot starve the Redis lease, and that a
heartbeat which finds another run's token stops both renewals.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any
from uuid import uuid4

from importer.settings import Settings
from importer.worker.lease import LeaseKeeper


class FakeRedis:
    def __init__(self, wanted: int) -> None:
        self.renewals = 0
        self.wanted = wanted
        self.reached = asyncio.Event()

    async def pexpire(self, key: str, ms: int) -> bool:
        self.renewals += 1
        if self.renewals >= self.wanted:
            self.reached.set()
        return True


class HungDb:
    """A pool whose connections never come back (a partition that holds every byte)."""

    def __init__(self) -> None:
        self.attempts = 0

    @contextlib.asynccontextmanager
    async def acquire(self) -> AsyncIterator[Any]:
        self.attempts += 1
        await asyncio.Event().wait()
        yield None  # pragma: no cover - never reached


class TakenOverDb:
    """Every heartbeat matches no row: another run holds the job now."""

    def __init__(self) -> None:
        self.heartbeats = 0

    @contextlib.asynccontextmanager
    async def acquire(self) -> AsyncIterator[Any]:
        yield self

    async def execute(self, *args: Any) -> str:
        self.heartbeats += 1
        return "UPDATE 0"


def _runtime(db: Any, redis: Any) -> Any:
    settings = Settings(lease_seconds=0.03, job_heartbeat_timeout=0.05)  # renew every 10 ms
    return SimpleNamespace(settings=settings, db=db, redis=redis)


async def test_a_hung_database_heartbeat_never_holds_up_the_redis_lease() -> None:
    redis, db = FakeRedis(wanted=10), HungDb()
    keeper = LeaseKeeper(_runtime(db, redis), uuid4(), uuid4())
    async with keeper:
        await asyncio.wait_for(redis.reached.wait(), timeout=10)
    assert redis.renewals >= 10 and not keeper.lost
    assert db.attempts >= 1


async def test_a_hung_heartbeat_is_abandoned_and_tried_again() -> None:
    redis, db = FakeRedis(wanted=1_000_000), HungDb()
    keeper = LeaseKeeper(_runtime(db, redis), uuid4(), uuid4())
    async with keeper:
        for _ in range(500):  # bounded: up to 5 s
            if db.attempts >= 2:
                break
            await asyncio.sleep(0.01)
    assert db.attempts >= 2, "each heartbeat is bounded by job_heartbeat_timeout"


async def test_a_heartbeat_that_finds_another_runs_token_stops_both_renewals() -> None:
    redis, db = FakeRedis(wanted=1_000_000), TakenOverDb()
    keeper = LeaseKeeper(_runtime(db, redis), uuid4(), uuid4())
    async with keeper:
        for _ in range(500):  # bounded: up to 5 s
            if keeper.lost:
                break
            await asyncio.sleep(0.01)
        assert keeper.lost
        renewals = redis.renewals
        await asyncio.sleep(0.1)  # ten renewal intervals: none may happen once the job is lost
    assert redis.renewals <= renewals + 1
    assert db.heartbeats == 1
