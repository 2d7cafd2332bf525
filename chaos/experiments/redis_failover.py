"""redis-failover: SIGKILL the Redis primary under load; Sentinel promotes a replica.

Measured:

- ``failover_recovery``: from the kill until jobs that *started after it* complete at >= 50%
  of the pre-fault rate (P5, seed < 60 s);
- ``orphan_lifetime``: each job Redis forgot (acknowledged while the primary was dead, or a
  queue write lost to asynchronous replication), from the last moment it was seen fine until
  the reconciler re-queued it (R1, seed: none after 10 min);
- ``sentinel_promotion``: from the kill until the Sentinels name a new primary.

Rollback: the killed node is started again as a replica of the new primary (its config file
is pointed at it first, as Sentinel would have done had the node been alive).
"""

from __future__ import annotations

import asyncio
import signal
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

from chaos.experiments.base import ChaosExperiment, ExperimentError
from chaos.load import LoadPlan
from chaos.measures import failover_recovery
from chaos.model import Activity, action
from chaos.verdicts import RECOVERY_SHARE, RECOVERY_WINDOW, recovery_summary
from lab.stack.sentinel import sentinel_view


@dataclass(frozen=True)
class FailoverParams:
    rate: float = 1.5  # jobs per second
    max_jobs: int = 600  # upper bound; the load stops once the orphans are healed
    promotion_timeout: float = 60.0
    recovery_timeout: float = 120.0
    orphan_timeout: float = 120.0

    @classmethod
    def quick(cls) -> FailoverParams:
        return cls(rate=1.5, max_jobs=300)


class RedisFailover(ChaosExperiment):
    name: ClassVar[str] = "redis-failover"
    title: ClassVar[str] = "Redis primary killed under load"
    description: ClassVar[str] = (
        "SIGKILL the Redis primary while jobs flow; Sentinel promotes a replica; jobs complete again "
        "through it; the reconciler re-queues what Redis forgot; the killed node rejoins as a replica."
    )
    track_orphans: ClassVar[bool] = True
    params: FailoverParams

    def load_plan(self) -> LoadPlan:
        return LoadPlan(jobs=self.params.max_jobs, rate=self.params.rate, products=10, images_per_product=1)

    def fault_activities(self) -> list[Activity]:
        p = self.params
        return [
            action("SIGKILL the Redis primary", self._kill, timeout=30),
            action("wait for Sentinel to promote a replica", self._promotion, timeout=p.promotion_timeout),
            action(
                f"wait for jobs to complete again at >= {RECOVERY_SHARE:.0%} of the pre-fault rate",
                self._recovery,
                timeout=p.recovery_timeout,
            ),
            action("wait for the reconciler to re-queue every orphaned job", self._orphans, timeout=p.orphan_timeout),
        ]

    def extra_rollbacks(self) -> list[Activity]:
        return [action("restart the killed node as a replica of the new primary", self._rejoin, timeout=120)]

    # --- the fault ------------------------------------------------------------------------

    async def _kill(self) -> dict[str, Any]:
        old = await asyncio.to_thread(self.target.master_node)
        self._fault = self.ctx.fault_started(f"Redis primary {old} SIGKILLed")
        killed_at = datetime.now(UTC)
        await asyncio.to_thread(self.target.kill_redis_node, old, signal.SIGKILL)
        self.evidence["failover"] = {"old_master": old, "killed_at": killed_at.isoformat()}
        return {"killed": old, "at": killed_at.isoformat()}

    async def _promotion(self) -> dict[str, Any]:
        failover = self.evidence["failover"]
        old = failover["old_master"]
        killed_at = datetime.fromisoformat(failover["killed_at"])

        async def promoted() -> str | None:
            name = await asyncio.to_thread(self.target.master_node)
            return name if name != old else None

        new = await self.until(promoted, timeout=self.params.promotion_timeout - 2, what="a new primary")
        now = datetime.now(UTC)
        self.ctx.fault_ended(self._fault)
        failover.update(new_master=new, promoted_at=now.isoformat())
        return {"new_master": new, "after_s": round((now - killed_at).total_seconds(), 2)}

    async def _recovery(self) -> dict[str, Any]:
        watcher = self._watcher()
        killed_at = datetime.fromisoformat(self.evidence["failover"]["killed_at"])
        pre = tuple(datetime.fromisoformat(t) for t in self.evidence["pre_window"])
        self._recovery_wait_started = time.monotonic()

        async def recovered() -> float | None:
            await watcher.refresh()
            result = failover_recovery(
                [r.times() for r in watcher.latest.values()],
                fault_at=killed_at,
                pre_window=(pre[0], pre[1]),
                window=RECOVERY_WINDOW,
                threshold=RECOVERY_SHARE,
            )
            return result.seconds

        seconds = await self.until(recovered, timeout=self.params.recovery_timeout - 2, what="jobs completing again")
        return {"recovery_s": round(seconds, 2)}

    async def _orphans(self) -> dict[str, Any]:
        tracker = self.orphans
        if tracker is None:
            raise ExperimentError("the orphan tracker was never started")
        promoted_at = datetime.fromisoformat(self.evidence["failover"]["promoted_at"])

        async def healed() -> bool:
            good = [t for t in tracker.ticks if t.ok and (t.at - promoted_at).total_seconds() > 1.5]
            return bool(good) and not good[-1].orphaned

        await self.until(healed, timeout=self.params.orphan_timeout - 2, what="no orphaned job left")
        seen = {j for t in tracker.ticks for j in t.orphaned}
        return {"orphans_seen": len(seen)}

    # --- rollback -------------------------------------------------------------------------

    async def _rejoin(self) -> dict[str, Any]:
        failover = self.evidence.get("failover")
        if not failover:
            return {"skipped": "no node was killed"}
        old = failover["old_master"]
        started = time.monotonic()
        master = await asyncio.to_thread(self.target.rejoin_redis_node, old)

        async def replicas_in_sync() -> bool:
            return await asyncio.to_thread(self._least_healthy_replicas) >= 2

        await self.until(replicas_in_sync, timeout=90, interval=0.5, what=f"{old} replicating again")
        rejoined: dict[str, Any] = {"node": old, "replica_of": master, "seconds": round(time.monotonic() - started, 2)}
        failover["rejoined"] = rejoined
        return rejoined

    def _least_healthy_replicas(self) -> int:
        from redis import Redis

        counts = []
        for address in self.target.layout.sentinels:
            host, _, port = address.rpartition(":")
            with Redis(host=host, port=int(port), socket_timeout=2, socket_connect_timeout=2) as client:
                counts.append(sentinel_view(client, self.target.layout.master_name).healthy_replicas)
        return min(counts)

    # --- evidence -----------------------------------------------------------------------

    async def collect(self) -> None:
        watcher = self._watcher()
        await watcher.refresh()
        self.evidence["jobs"] = [
            [j.job_id, j.status, _iso(j.created_at), _iso(j.started_at), _iso(j.finished_at)]
            for j in (r.times() for r in watcher.latest.values())
        ]
        if self.orphans is not None:
            self.evidence["orphan_ticks"] = [[_iso(t.at), t.ok, list(t.orphaned)] for t in self.orphans.ticks]
        self.evidence["recovery"] = recovery_summary(self.evidence)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
