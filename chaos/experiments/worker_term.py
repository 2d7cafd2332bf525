"""worker-term: SIGTERM workers mid-job; each hands its jobs back and exits 0, quickly.

The graceful path of docs/architecture.md §5: stop taking jobs, let running jobs reach a checkpoint
(bounded by the shutdown grace), give unfinished ones back to the queue *without burning a
try*, close the pools, exit 0.

Measured: ``shutdown_duration`` per worker, from SIGTERM to exit (R3, seed < 30 s). Checked:
every exit code is 0, and no job the worker held ends with a higher ``queue_try`` than it had
when the signal was sent (the job row records arq's try of each run).
"""

from __future__ import annotations

import asyncio
import signal
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any, ClassVar

from chaos.experiments.base import ChaosExperiment, ExperimentError
from chaos.experiments.worker_kill import MID_JOB_WAIT, _wait_mid_job
from chaos.load import LoadPlan
from chaos.model import Activity, action
from chaos.profile import IMPORTER_DEFAULTS
from lab.stack.stack import WorkerHandle


@dataclass(frozen=True)
class WorkerTermParams:
    terms: int = 3
    victims: int = 2
    rate: float = 1.0
    page_latency_ms: int = 1500
    max_jobs: int = 600

    @classmethod
    def quick(cls) -> WorkerTermParams:
        return cls(terms=2, victims=2, max_jobs=300)


class WorkerTerm(ChaosExperiment):
    name: ClassVar[str] = "worker-term"
    title: ClassVar[str] = "Workers SIGTERMed mid-job"
    description: ClassVar[str] = (
        "SIGTERM workers while they run jobs; each reaches a checkpoint, hands its jobs back without "
        "burning a try, and exits 0 within the shutdown grace; the jobs complete on other workers."
    )
    params: WorkerTermParams

    def __init__(self, ctx: Any, params: WorkerTermParams) -> None:
        super().__init__(ctx, params)
        self.victims: dict[str, WorkerHandle] = {}

    @property
    def grace(self) -> float:
        return self.target.setting("shutdown_grace_seconds", IMPORTER_DEFAULTS["shutdown_grace_seconds"])

    def load_plan(self) -> LoadPlan:
        p = self.params
        # Three slow pages a job: a job is mid-run for seconds, with a checkpoint after each page.
        return LoadPlan(
            jobs=p.max_jobs, rate=p.rate, products=300, images_per_product=0, page_latency_ms=p.page_latency_ms
        )

    def fault_activities(self) -> list[Activity]:
        steps = [action(f"start {self.params.victims} worker(s) to stop", self._start_victims, timeout=120)]
        for k in range(1, self.params.terms + 1):
            steps += [
                action(
                    f"SIGTERM a worker mid-job and wait for its exit (#{k})",
                    partial(self._term, k),
                    timeout=MID_JOB_WAIT + self.grace + 30,
                ),
                action(f"start a replacement worker (#{k})", partial(self._replace, k), timeout=90),
            ]
        return steps

    async def _start_victims(self) -> list[str]:
        handles = await asyncio.gather(*(self.start_worker(f"v{i}") for i in range(1, self.params.victims + 1)))
        self.victims.update({h.worker_id: h for h in handles})
        self.evidence["terms"] = []
        return sorted(self.victims)

    async def _term(self, k: int) -> dict[str, Any]:
        worker, _ = await _wait_mid_job(self, self.victims)
        watcher = self._watcher()
        held = {j: r.queue_try for j, r in watcher.in_progress_on({worker}).items()}
        handle = self.victims[worker]
        fault = self.ctx.fault_started(f"worker {worker} SIGTERMed (#{k})")
        at = datetime.now(UTC)
        began = time.monotonic()
        handle.kill(signal.SIGTERM)
        code = await asyncio.to_thread(handle.wait, self.grace + 20)
        seconds = time.monotonic() - began
        self.ctx.fault_ended(fault)
        record = {
            "k": k,
            "worker": worker,
            "at": at.isoformat(),
            "seconds": round(seconds, 3),
            "exit_code": code,
            "exited": code is not None,
            "jobs": held,
            "grace": self.grace,
        }
        self.evidence["terms"].append(record)
        if code is None:
            # It did not stop: the check fails. SIGABRT first, so a worker running with
            # PYTHONFAULTHANDLER=1 (ours do) writes every thread's stack into its log; then kill.
            handle.kill(signal.SIGABRT)
            if await asyncio.to_thread(handle.wait, 5.0) is None:
                handle.kill(signal.SIGKILL)
                await asyncio.to_thread(handle.wait, 10.0)
            record["log"] = str(handle.log_path)
        return record

    async def _replace(self, k: int) -> str:
        handle = await self.start_worker(f"r{k}")
        self.victims[handle.worker_id] = handle
        return handle.worker_id

    async def collect(self) -> None:
        terms = self.evidence.get("terms", [])
        if not terms:
            raise ExperimentError("no worker was stopped")
        await self._watcher().refresh()
        latest = self._watcher().latest
        for term in terms:
            at = datetime.fromisoformat(term["at"])
            handed_back = {c.job_id for c in self._watcher().changes if c.at >= at and c.status == "PENDING"}
            term["final"] = {
                j: {
                    "queue_try": latest[j].queue_try,
                    "status": latest[j].status,
                    "handed_back": j in handed_back,
                    "attempts": latest[j].attempts,
                }
                for j in term["jobs"]
                if j in latest
            }
