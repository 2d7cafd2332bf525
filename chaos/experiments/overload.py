"""overload: submit past the overload threshold; backpressure and the emergency brake.

A burst of imports against slow stores fills the queue past ``HEALTH_OVERLOAD_WAITING``
(shrunk by the chaos profile). Then:

- the API answers 503 with ``Retry-After`` and a clear message, writing no job row;
- the reconciler's monitor sees overload and the emergency brake pauses the queue;
- after ``BRAKE_RESUME_AFTER`` the brake resumes by itself (the backlog stopped growing
  because the API sheds load), workers drain the queue, intake reopens;
- every acknowledged job completes.

Measured: ``brake_engage`` (threshold crossed → queue paused), ``brake_resume`` (paused →
resumed by itself), ``overload_rejections`` (503s). If the brake had to be lifted by the
rollback, that is recorded and the "resumed by itself" check fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

import httpx

from chaos.experiments.base import ChaosExperiment, ExperimentError
from chaos.load import LoadPlan, Submitter
from chaos.model import Activity, action
from chaos.profile import IMPORTER_DEFAULTS
from chaos.watch import COUNTERS_KEY, PAUSE_KEY, BrakeWatcher
from lab.rundir import AcknowledgedJob

COOLDOWN_KEY = "importer:brake:cooldown"
_BURST_COMPANIES = 6


@dataclass(frozen=True)
class OverloadParams:
    burst_rate: float = 10.0
    extra_over_threshold: int = 30  # burst size = threshold + worker slots + this
    page_latency_ms: int = 3000  # burst jobs hold their slot, so the queue really fills
    engage_timeout: float = 60.0

    @classmethod
    def quick(cls) -> OverloadParams:
        return cls()


class Overload(ChaosExperiment):
    name: ClassVar[str] = "overload"
    title: ClassVar[str] = "Overload: backpressure and the emergency brake"
    description: ClassVar[str] = (
        "Submit past the overload threshold: the API answers 503 with Retry-After, the emergency brake "
        "pauses the queue and resumes it by itself, intake reopens, and every acknowledged job completes."
    )
    params: OverloadParams
    steady_seconds: ClassVar[float] = 6.0

    def __init__(self, ctx: Any, params: OverloadParams) -> None:
        super().__init__(ctx, params)
        self.brake: BrakeWatcher | None = None
        self._burst_task: asyncio.Task[dict[str, Any]] | None = None

    # --- settings the experiment depends on -------------------------------------------

    @property
    def threshold(self) -> int:
        return int(self.target.setting("health_overload_waiting", IMPORTER_DEFAULTS["health_overload_waiting"]))

    @property
    def resume_after(self) -> float:
        return self.target.setting("brake_resume_after", IMPORTER_DEFAULTS["brake_resume_after"])

    def load_plan(self) -> LoadPlan:
        return LoadPlan(jobs=200, rate=0.5, products=10, images_per_product=1, companies=1)

    def extra_loads(self) -> dict[str, LoadPlan]:
        if self.threshold > 500:
            raise ExperimentError(
                f"the overload threshold is {self.threshold} waiting jobs: too many to reach in a drill; "
                "run the stack with the chaos profile (IMPORTER_HEALTH_OVERLOAD_WAITING=40)"
            )
        burst = self.threshold + 60 + self.params.extra_over_threshold
        return {
            "burst": LoadPlan(
                jobs=burst,
                rate=self.params.burst_rate,
                products=10,
                images_per_product=0,
                page_latency_ms=self.params.page_latency_ms,
                # Spread over several companies, none holding half the waiting jobs: this drill is
                # about overload with no single cause (503 and the queue-wide brake); one company
                # causing it is shed alone instead (docs/protection.md). A store per submission:
                # a company has one active job per store.
                companies=_BURST_COMPANIES,
                stores_per_company=burst // _BURST_COMPANIES + 1,
                max_in_flight=32,
                retry_after_cap=0.5,
            )
        }

    @property
    def drain_timeout(self) -> float:
        return 300.0

    def fault_activities(self) -> list[Activity]:
        return [
            action(
                "wait for any earlier brake cooldown to expire",
                self._no_cooldown,
                timeout=self.target.setting("brake_cooldown", 300.0) + 15,
            ),
            action("flood the API past the overload threshold", self._flood, timeout=self.params.engage_timeout + 10),
            action("wait for the emergency brake to pause the queue", self._engaged, timeout=45),
            action("stop the flood", self._stop_flood, timeout=60),
            action("wait for the brake to resume by itself", self._resumed, timeout=self.resume_after * 3 + 60),
            action("intake reopens: a new import is accepted", self._intake_reopens, timeout=240),
        ]

    def extra_rollbacks(self) -> list[Activity]:
        return [action("lift the pause if the brake still holds it (operator resume)", self._force_resume, timeout=60)]

    # --- helpers ----------------------------------------------------------------------------

    def _burst(self) -> Submitter:
        return self.submitters[1]

    async def _redis_get(self, key: str) -> Any:
        client = self.target.redis.client(5.0)
        try:
            return await client.get(key)
        finally:
            await client.aclose()

    async def _counters(self) -> dict[str, int]:
        client = self.target.redis.client(5.0)
        try:
            raw = await client.hgetall(COUNTERS_KEY)  # type: ignore[misc]
        finally:
            await client.aclose()
        return {str(k): int(v) for k, v in raw.items()}

    # --- actions ----------------------------------------------------------------------------

    async def _no_cooldown(self) -> str:
        async def gone() -> bool:
            return await self._redis_get(COOLDOWN_KEY) is None

        await self.until(gone, timeout=self.target.setting("brake_cooldown", 300.0) + 10, interval=1.0, what="cooldown")
        return "no cooldown"

    async def _flood(self) -> dict[str, Any]:
        self.evidence["overload"] = {"threshold": self.threshold, "counters_before": await self._counters()}
        self.brake = BrakeWatcher(self.target.redis)
        self.brake.start()
        self._fault = self.ctx.fault_started("overload: burst past the threshold")
        burst = self._burst()
        self._burst_task = asyncio.create_task(burst.run(), name=f"burst-{self.ctx.slug}")

        async def rejected() -> bool:
            return any(a.status == 503 for s in self.submitters for a in s.attempts)

        await self.until(rejected, timeout=self.params.engage_timeout, what="a 503 from the API")
        first = min(a.at for s in self.submitters for a in s.attempts if a.status == 503)
        self.evidence["overload"]["first_503_at"] = first.timestamp()
        return {"first_503_after_s": round((first - datetime.fromisoformat(_start(self))).total_seconds(), 2)}

    async def _engaged(self) -> dict[str, Any]:
        brake = self._brake()

        async def paused() -> dict[str, Any] | None:
            return next((t.paused for t in reversed(brake.ticks) if t.paused), None)

        pause = await self.until(paused, timeout=40, what="the queue paused")
        self.evidence["overload"]["pause"] = pause
        return {"pause": pause}

    async def _stop_flood(self) -> dict[str, Any]:
        burst = self._burst()
        burst.stop()
        if self._burst_task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._burst_task
        return {k: v for k, v in burst.summary().items() if k in ("attempts", "acknowledged", "by_status")}

    async def _resumed(self) -> dict[str, Any]:
        brake = self._brake()

        async def resumed() -> float | None:
            seen_pause = False
            for t in brake.ticks:
                if t.paused:
                    seen_pause = True
                elif seen_pause and t.waiting is not None:
                    return t.at
            return None

        at = await self.until(resumed, timeout=self.resume_after * 3 + 55, what="the brake resumed")
        overload = self.evidence["overload"]
        overload["resumed_at"] = at
        overload["counters_after_resume"] = await self._counters()
        self.ctx.fault_ended(self._fault)
        return {"resumed_after_pause_s": round(at - float(overload["pause"]["at"]), 2)}

    async def _intake_reopens(self) -> dict[str, Any]:
        burst = self._burst()
        tenant = burst.tenants[0]
        began = time.monotonic()

        async def accepted() -> str | None:
            async with httpx.AsyncClient(timeout=10.0) as http:
                response = await http.post(
                    f"{self.target.api_url}/v1/imports",
                    json={"provider": burst.plan.dialect, "store_id": tenant.stores[0], "include_images": False},
                    headers={"Authorization": f"Bearer {tenant.api_key}"},
                )
            if response.status_code != 202:
                return None
            job_id = str(response.json()["id"])
            burst.acknowledge(  # once: the store's job may still run, and then this is its id
                AcknowledgedJob(
                    job_id=job_id,
                    company_id=tenant.company_id,
                    provider=burst.plan.dialect,
                    store_id=tenant.stores[0],
                    products=burst.plan.products,
                    submitted_at=datetime.now(UTC),
                )
            )
            return job_id

        job_id = await self.until(accepted, timeout=230, interval=2.0, what="a 202 from the API")
        self.evidence["overload"]["intake_reopened_at"] = time.time()
        return {"job": job_id, "after_s": round(time.monotonic() - began, 2)}

    async def _force_resume(self) -> dict[str, Any]:
        if self._burst_task is not None and not self._burst_task.done():
            self._burst().stop()
        if self.brake is not None:
            await self.brake.stop()
        if await self._redis_get(PAUSE_KEY) is None:
            return {"paused": False}
        done = await asyncio.to_thread(self.target.run_importer, "ops", "resume")
        self.evidence.setdefault("overload", {})["resumed_by_operator"] = True
        return {"paused": True, "ops_resume_exit": done.returncode, "out": done.stdout[-300:]}

    def _brake(self) -> BrakeWatcher:
        if self.brake is None:
            raise ExperimentError("the brake watcher was never started")
        return self.brake

    # --- measurements ---------------------------------------------------------------------

    async def collect(self) -> None:
        overload = self.evidence.get("overload")
        if not overload:
            raise ExperimentError("no flood was sent")
        brake = self._brake()
        overload["ticks"] = [
            [t.at, t.waiting, (t.paused or {}).get("at"), (t.paused or {}).get("mode")] for t in brake.ticks
        ]
        overload["brake_periods"] = len({t.paused.get("at") for t in brake.ticks if t.paused})
        overload["peak_waiting"] = max((t.waiting for t in brake.ticks if t.waiting is not None), default=None)
        attempts = [a for s in self.submitters for a in s.attempts]
        rejected = [a for a in attempts if a.status == 503]
        overload["rejections"] = len(rejected)
        overload["rejections_without_retry_after"] = sum(1 for a in rejected if not a.retry_after)
        overload["rejection_messages"] = sorted({a.error[:160] for a in rejected})[:5]
        overload["retry_after_values"] = sorted({a.retry_after for a in rejected if a.retry_after})


def _start(experiment: Overload) -> str:
    return str(experiment.evidence.get("load_started_at") or datetime.now(UTC).isoformat())
