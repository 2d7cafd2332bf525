"""The short, renewed lease that lets a dead worker's job run again within seconds.

arq marks a running job with ``arq:in-progress:<id>`` for the longest job timeout + 10 s and
never renews it, so a SIGKILLed worker's job would wait up to hours. Our worker writes that
same key with a TTL of one lease (``lease_seconds``) and this keeper renews it while the job
runs; when the process dies the key expires and any worker's next poll picks the job up.

The lease is also renewed in Postgres (``heartbeat_at``, fenced by the run token), on the same
interval: that is how the run learns it has been replaced, what the orphan sweep reads to tell a
quiet job from an abandoned one, and what the stall sweep judges a run by (a run is stalled when
its heartbeat is older than ``stall_limit``, however long ago the job first started). The two
renewals run in separate tasks and each database heartbeat is bounded by
``job_heartbeat_timeout``: a slow or partitioned Postgres delays the heartbeat only, never the
Redis lease (which would hand a live job to another worker).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from types import TracebackType
from uuid import UUID

from redis.exceptions import RedisError

from importer.db import jobs
from importer.db.pool import is_transient_db_error
from importer.logs import get_logger
from importer.runtime import Runtime
from importer.worker.keys import in_progress_key

log = get_logger(__name__)


class LeaseKeeper:
    def __init__(self, rt: Runtime, job_id: UUID, run_token: UUID) -> None:
        self._rt = rt
        self._job_id = job_id
        self._token = run_token
        self._tasks: list[asyncio.Task[None]] = []
        self.lost = False

    async def __aenter__(self) -> LeaseKeeper:
        self._tasks = [
            asyncio.create_task(self._every_interval(self.renew_redis), name=f"lease-{self._job_id}"),
            asyncio.create_task(self._every_interval(self.heartbeat_db), name=f"heartbeat-{self._job_id}"),
        ]
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _every_interval(self, renew: Callable[[], Awaitable[None]]) -> None:
        # Ends when the job ends (cancelled by __aexit__) or when the lease is lost.
        while not self.lost:
            await asyncio.sleep(self._rt.settings.lease_renew_interval)
            await renew()

    async def renew_once(self) -> None:
        """Both renewals once, one after the other (the keeper runs them in separate tasks)."""
        await self.renew_redis()
        await self.heartbeat_db()

    async def renew_redis(self) -> None:
        lease_ms = int(self._rt.settings.lease_seconds * 1000)
        key = in_progress_key(str(self._job_id))
        try:
            if not await self._rt.redis.pexpire(key, lease_ms):
                # The key vanished (Redis restarted without it, or a failover lost it): take it
                # back unless another worker holds it now, in which case Postgres fences us out.
                await self._rt.redis.set(key, b"1", px=lease_ms, nx=True)
        except (TimeoutError, RedisError, OSError) as exc:
            log.warning("lease_renew_redis_failed", error=str(exc))

    async def heartbeat_db(self) -> None:
        """Renew ``heartbeat_at``; a renewal that finds another run's token marks the lease lost."""
        try:
            async with asyncio.timeout(self._rt.settings.job_heartbeat_timeout):
                async with self._rt.db.acquire() as conn:
                    still_ours = await jobs.heartbeat(conn, self._job_id, self._token)
        except TimeoutError:
            log.warning("lease_renew_db_failed", error="timed out", timeout=self._rt.settings.job_heartbeat_timeout)
            return
        except Exception as exc:
            if not is_transient_db_error(exc):
                raise
            log.warning("lease_renew_db_failed", error=str(exc))
            return
        if not still_ours:
            self.lost = True
            log.warning("lease_lost", detail="another run claimed the job; this run stops at its next write")
