"""What the observer reads each tick, one probe per system, each failing on its own.

Probes are separate so that a Redis failover blanks only the queue columns of a tick while the
job counts from Postgres keep coming: the gap then shows exactly which system was down.
Every read is bounded (SCAN iterations, timeouts); a probe raises ProbeError or lets the
client's own error through, and the observer records it as that source's gap.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
import httpx
from redis.asyncio import Redis
from redis.asyncio.sentinel import Sentinel

ARQ_QUEUE = "arq:queue"
ARQ_IN_PROGRESS = "arq:in-progress:"
WORKER_PREFIX = "importer:workers:"
JOB_STATUSES = ("PENDING", "IN_PROGRESS", "COMPLETED", "FAILED", "CANCELLED")


class ProbeError(Exception):
    """A probe got an answer it cannot turn into numbers (bad shape, SCAN bound reached)."""


@dataclass(frozen=True)
class RedisTarget:
    """A plain Redis URL, or Sentinel addresses and a master name (failover drills)."""

    url: str | None = None
    sentinels: tuple[tuple[str, int], ...] = ()
    master: str = "mymaster"

    def __post_init__(self) -> None:
        if bool(self.url) == bool(self.sentinels):
            raise ValueError("give a Redis URL or Sentinel addresses, not both and not neither")

    @classmethod
    def parse_sentinels(cls, addresses: str, master: str) -> RedisTarget:
        """``"127.0.0.1:26379,127.0.0.1:26380"`` → a Sentinel target."""
        pairs = []
        for item in addresses.split(","):
            host, _, port = item.strip().rpartition(":")
            pairs.append((host or "127.0.0.1", int(port)))
        return cls(sentinels=tuple(pairs), master=master)

    def client(self, timeout: float) -> Redis:
        """A client that fails within ``timeout`` instead of hanging on a dead primary.

        Through Sentinel the master is looked up again on every new connection, so the
        observer follows a promotion without being restarted.
        """
        options: dict[str, Any] = {
            "socket_timeout": timeout,
            "socket_connect_timeout": timeout,
            "decode_responses": True,
        }
        if self.url:
            plain: Redis = Redis.from_url(self.url, **options)
            return plain
        sentinel = Sentinel(  # type: ignore[no-untyped-call]
            list(self.sentinels),
            sentinel_kwargs={"socket_timeout": timeout, "socket_connect_timeout": timeout},
            **options,
        )
        client: Redis = sentinel.master_for(self.master, **options)
        return client


@dataclass
class QueueCounts:
    due: int
    deferred: int
    active: int
    workers_alive: int
    partial: list[str] = field(default_factory=list)  # why a count may be short


async def count_keys(redis: Redis, pattern: str, *, batch: int, max_iterations: int) -> tuple[int, bool]:
    """Count keys matching ``pattern`` with SCAN (never KEYS); True when the bound was hit."""
    cursor: int = 0
    seen: set[str] = set()  # SCAN may return a key twice; count each once
    for _ in range(max_iterations):
        cursor, keys = await redis.scan(cursor=cursor, match=pattern, count=batch)
        seen.update(keys)
        if cursor == 0:
            return len(seen), False
    return len(seen), True


async def probe_queue(redis: Redis, *, queue: str, scan_batch: int, scan_max_iterations: int) -> QueueCounts:
    now_ms = int(time.time() * 1000)
    async with redis.pipeline(transaction=False) as pipe:
        pipe.zcount(queue, "-inf", now_ms)
        pipe.zcount(queue, f"({now_ms}", "+inf")
        due, deferred = await pipe.execute()
    active, active_cut = await count_keys(
        redis, ARQ_IN_PROGRESS + "*", batch=scan_batch, max_iterations=scan_max_iterations
    )
    workers, workers_cut = await count_keys(
        redis, WORKER_PREFIX + "*", batch=scan_batch, max_iterations=scan_max_iterations
    )
    partial = [
        f"{name} SCAN stopped after {scan_max_iterations} iterations"
        for name, cut in (("active", active_cut), ("workers", workers_cut))
        if cut
    ]
    return QueueCounts(due=int(due), deferred=int(deferred), active=active, workers_alive=workers, partial=partial)


@dataclass(frozen=True)
class JobScope:
    """Which jobs are the run's: those of the listed companies, else those created since."""

    since: datetime
    companies: tuple[str, ...] = ()


async def probe_jobs(conn: asyncpg.Connection, scope: JobScope, *, query_timeout: float) -> dict[str, int]:
    """Job counts by status for the run's jobs; absent statuses are 0."""
    if scope.companies:
        rows = await conn.fetch(
            "SELECT status, count(*) AS n FROM product_import_jobs WHERE company_id = ANY($1::uuid[]) GROUP BY status",
            [UUID(c) for c in scope.companies],
            timeout=query_timeout,
        )
    else:
        rows = await conn.fetch(
            "SELECT status, count(*) AS n FROM product_import_jobs WHERE created_at >= $1 GROUP BY status",
            scope.since,
            timeout=query_timeout,
        )
    counts = dict.fromkeys(JOB_STATUSES, 0)
    for row in rows:
        counts[row["status"]] = int(row["n"])
    return counts


@dataclass
class ProviderCounts:
    api_requests: int | None
    image_requests: int | None
    rate_limited: int | None
    responses: dict[str, int]


def parse_provider_stats(data: Any) -> ProviderCounts:
    """Read the fake provider's ``/admin/stats`` totals.

    Accepts the counters at the top level or under ``totals``, and the per-status counts as
    ``responses`` or ``responses_by_status``. An answer without any known counter raises, so a
    changed contract shows up as an observer error instead of as a run with zero requests.
    """
    if not isinstance(data, dict):
        raise ProbeError(f"/admin/stats answered {type(data).__name__}, not an object")
    totals = data.get("totals", data)
    if not isinstance(totals, dict):
        raise ProbeError("/admin/stats: 'totals' is not an object")

    def _int(key: str) -> int | None:
        value = totals.get(key)
        return int(value) if isinstance(value, int | float) else None

    raw = totals.get("responses", totals.get("responses_by_status", {}))
    responses = {str(k): int(v) for k, v in raw.items()} if isinstance(raw, dict) else {}
    counts = ProviderCounts(
        api_requests=_int("api_requests"),
        image_requests=_int("image_requests"),
        rate_limited=_int("rate_limited"),
        responses=responses,
    )
    if counts.api_requests is None and counts.image_requests is None and counts.rate_limited is None:
        raise ProbeError(f"/admin/stats: no known counter in {sorted(totals)[:10]}")
    return counts


async def probe_provider(client: httpx.AsyncClient, provider_url: str) -> ProviderCounts:
    response = await client.get(provider_url.rstrip("/") + "/admin/stats")
    response.raise_for_status()
    return parse_provider_stats(response.json())
