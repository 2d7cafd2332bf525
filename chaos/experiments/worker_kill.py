"""worker-kill: SIGKILL workers mid-job, several times; their jobs must run again elsewhere.

The victims are workers this experiment starts (the stack's own keep the baseline going);
each kill picks, at random, one victim that is running a job at that moment, so the job is
really abandoned mid-run. A replacement is started after each kill, as an orchestrator would.

Measured: ``stall_detection`` per abandoned job, from the SIGKILL until another worker
claimed it (a newer attempt in the job row). With our lease this should be about one lease
(R2's seed allows 30 minutes).
"""

from __future__ import annotations

import asyncio
import signal
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any, ClassVar

from chaos.experiments.base import ChaosExperiment, ExperimentError
from chaos.load import LoadPlan
from chaos.measures import Kill, stall_detections
from chaos.model import Activity, action
from chaos.profile import IMPORTER_DEFAULTS
from lab.stack.stack import WorkerHandle

MID_JOB_WAIT = 45.0


@dataclass(frozen=True)
class WorkerKillParams:
    kills: int = 3
    victims: int = 2
    rate: float = 1.0
    page_latency_ms: int = 1500  # jobs last a few seconds, so "mid-job" is a real moment
    max_jobs: int = 600

    @classmethod
    def quick(cls) -> WorkerKillParams:
        return cls(kills=2, victims=2, max_jobs=300)


async def _wait_mid_job(experiment: ChaosExperiment, victims: dict[str, WorkerHandle]) -> tuple[str, dict[str, int]]:
    """A victim running at least one job of this run right now, chosen at random, with its jobs."""
    watcher = experiment._watcher()

    async def busy() -> tuple[str, dict[str, int]] | None:
        await watcher.refresh()
        alive = {w for w, h in victims.items() if h.is_alive()}
        running = watcher.in_progress_on(alive)
        if not running:
            return None
        worker = experiment.rng.choice(sorted({r.worker_id for r in running.values() if r.worker_id}))
        return worker, {j: r.attempts for j, r in running.items() if r.worker_id == worker}

    found: tuple[str, dict[str, int]] = await experiment.until(
        busy, timeout=MID_JOB_WAIT, interval=0.2, what="a victim worker running a job"
    )
    return found


class WorkerKill(ChaosExperiment):
    name: ClassVar[str] = "worker-kill"
    title: ClassVar[str] = "Workers SIGKILLed mid-job"
    description: ClassVar[str] = (
        "SIGKILL workers while they run jobs, several times; every abandoned job is taken over by another "
        "worker once its lease expires and completes from its checkpoint; nothing is lost or duplicated."
    )
    params: WorkerKillParams

    def __init__(self, ctx: Any, params: WorkerKillParams) -> None:
        super().__init__(ctx, params)
        self.victims: dict[str, WorkerHandle] = {}

    @property
    def lease(self) -> float:
        return self.target.setting("lease_seconds", IMPORTER_DEFAULTS["lease_seconds"])

    def load_plan(self) -> LoadPlan:
        p = self.params
        # Three slow pages a job: a job is mid-run for seconds, with a checkpoint after each page.
        return LoadPlan(
            jobs=p.max_jobs, rate=p.rate, products=300, images_per_product=0, page_latency_ms=p.page_latency_ms
        )

    def fault_activities(self) -> list[Activity]:
        steps = [action(f"start {self.params.victims} worker(s) to kill", self._start_victims, timeout=120)]
        for k in range(1, self.params.kills + 1):
            steps += [
                action(f"SIGKILL a worker mid-job (#{k})", partial(self._kill, k), timeout=MID_JOB_WAIT + 15),
                action(
                    f"wait for another worker to take over its jobs (#{k})",
                    partial(self._takeover, k),
                    timeout=self.lease * 4 + 30,
                ),
                action(f"start a replacement worker (#{k})", partial(self._replace, k), timeout=90),
            ]
        return steps

    async def _start_victims(self) -> list[str]:
        handles = await asyncio.gather(*(self.start_worker(f"v{i}") for i in range(1, self.params.victims + 1)))
        self.victims.update({h.worker_id: h for h in handles})
        self.evidence["kills"] = []
        return sorted(self.victims)

    async def _kill(self, k: int) -> dict[str, Any]:
        worker, jobs = await _wait_mid_job(self, self.victims)
        handle = self.victims[worker]
        fault = self.ctx.fault_started(f"worker {worker} SIGKILLed (#{k})")
        at = datetime.now(UTC)
        handle.kill(signal.SIGKILL)
        exited = await asyncio.to_thread(handle.wait, 10.0)
        self.evidence["kills"].append(
            {"k": k, "worker": worker, "at": at.isoformat(), "jobs": jobs, "fault": fault, "exit": exited}
        )
        return {"worker": worker, "abandoned_jobs": sorted(jobs), "exit_code": exited}

    async def _takeover(self, k: int) -> dict[str, Any]:
        kill = self.evidence["kills"][k - 1]
        watcher = self._watcher()
        at = datetime.fromisoformat(kill["at"])

        async def taken() -> dict[str, float] | None:
            await watcher.refresh()
            takeovers = stall_detections([Kill(at, kill["worker"], kill["jobs"])], watcher.changes)
            if any(t.seconds is None for t in takeovers):
                return None
            return {t.job_id: round(t.seconds or 0.0, 2) for t in takeovers}

        seconds = await self.until(taken, timeout=self.lease * 4 + 25, interval=0.1, what="the jobs taken over")
        self.ctx.fault_ended(kill["fault"])
        return {"taken_over_after_s": seconds}

    async def _replace(self, k: int) -> str:
        handle = await self.start_worker(f"r{k}")
        self.victims[handle.worker_id] = handle
        return handle.worker_id

    async def collect(self) -> None:
        watcher = self._watcher()
        await watcher.refresh()
        kills = self.evidence.get("kills", [])
        if not kills:
            raise ExperimentError("no worker was killed")
        abandoned = {job for k in kills for job in k["jobs"]}
        self.evidence["lease_seconds"] = self.lease
        self.evidence["changes"] = [
            [c.at.isoformat(), c.job_id, c.status, c.worker_id, c.attempts, c.queue_try]
            for c in watcher.changes
            if c.job_id in abandoned
        ]
