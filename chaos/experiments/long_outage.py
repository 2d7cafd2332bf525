"""long-outage: a provider outage, then a Postgres partition, each longer than the stall limit.

The stall sweep is the last line of defence against a job that is stuck: alive in Postgres as
IN_PROGRESS, making no progress. A job that waits out an outage is not stuck: it is deferred
(the provider's breaker is open) or retrying (Postgres is unreachable), and it must resume and
complete once the fault is over. A sweep that judges by the job's first start (or by anything
but the run's own sign of life) fails exactly those jobs, and the running attempt then stops
with ``lease_lost``, leaving a partial import.

Time is compressed through settings, never faked: this experiment starts its own reconciler
(``importer reconciler``, through the same Postgres proxy as every importer process) with
``IMPORTER_STALL_LIMIT`` and ``IMPORTER_STALL_SWEEP_INTERVAL`` shrunk (20 s and 2 s by
default), then holds each fault for longer than that limit (40 s). The stack's own
reconciler keeps the suite's settings (docs/chaos.md), so no other experiment is judged with a
stall limit it was not built for. Both settings are recorded in the journal and shown in the
report.

Method: wait until jobs are in flight (IN_PROGRESS) → the fake provider answers 503 to every
catalog request for ``provider_seconds`` → the breaker closes again and every job that was in
flight ends → Postgres cut off from every importer process (Toxiproxy proxy down) for
``partition_seconds`` → the importer reconnects and every job that was in flight ends.

Measured: ``long_outage_stalled_jobs`` (jobs the stall sweep failed: the reconcilers'
``job_stalled`` log events and FAILED rows with the stall reason; R6 wants 0),
``long_outage_failed_jobs`` (every FAILED job of the run), and per fault
``long_outage_in_flight`` and ``long_outage_resumed`` (fault end → the last job it caught
completed).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

import httpx

from chaos.experiments.base import ChaosExperiment, ExperimentError
from chaos.load import LoadPlan
from chaos.model import Activity, action
from lab.stack.component import base_environment
from lab.stack.importer import ImporterReconciler

FAULT_KINDS = ("provider", "postgres")
STALL_EVENT = "job_stalled"
STALL_MARK = "stall"  # the stall sweep's reason names it ("job stalled in IN_PROGRESS ...")
IN_FLIGHT_TIMEOUT = 30.0
MAX_LOG_BYTES = 64 * 1024 * 1024  # reconciler logs read for job_stalled events, per file


@dataclass(frozen=True)
class LongOutageParams:
    stall_limit: float = 20.0
    stall_sweep_interval: float = 2.0
    provider_seconds: float = 40.0
    partition_seconds: float = 40.0
    rate: float = 0.5
    stores_per_company: int = 8  # x 2 companies: at most 16 jobs active at once, below the overload threshold
    products: int = 500
    page_latency_ms: int = 1000
    settle_timeout: float = 120.0

    def __post_init__(self) -> None:
        if min(self.provider_seconds, self.partition_seconds) <= self.stall_limit:
            raise ValueError(f"each fault must outlast the stall limit ({self.stall_limit:g} s): {self}")
        if self.stall_sweep_interval <= 0 or self.stall_sweep_interval >= self.stall_limit:
            raise ValueError(f"the stall sweep must run several times within the stall limit: {self}")

    @classmethod
    def quick(cls) -> LongOutageParams:
        return cls(stall_limit=8.0, stall_sweep_interval=1.0, provider_seconds=12.0, partition_seconds=12.0)

    def reconciler_env(self) -> dict[str, str]:
        return {
            "IMPORTER_STALL_LIMIT": f"{self.stall_limit:g}",
            "IMPORTER_STALL_SWEEP_INTERVAL": f"{self.stall_sweep_interval:g}",
        }


class LongOutage(ChaosExperiment):
    name: ClassVar[str] = "long-outage"
    title: ClassVar[str] = "Outages longer than the stall limit"
    description: ClassVar[str] = (
        "A provider outage and a Postgres partition, each longer than the stall limit (compressed through "
        "settings): the jobs they catch in flight wait, resume and complete; the stall sweep fails none of them."
    )
    needs_toxiproxy: ClassVar[bool] = True
    params: LongOutageParams

    def __init__(self, ctx: Any, params: LongOutageParams) -> None:
        super().__init__(ctx, params)
        self.reconciler: ImporterReconciler | None = None

    def planned_seconds(self) -> float:
        p = self.params
        return self.steady_seconds + 10 + p.provider_seconds + p.partition_seconds + 2 * 40

    def load_plan(self) -> LoadPlan:
        # Several pages a second apart: some jobs are always mid-run when a fault begins. The API
        # keeps one active job per store (a resubmit answers the running job), so enough stores
        # that submissions during a fault become jobs of their own, waiting it out beside the
        # ones it caught.
        jobs = math.ceil(self.params.rate * self.planned_seconds() * 1.5) + 10
        return LoadPlan(
            jobs=jobs,
            rate=self.params.rate,
            stores_per_company=self.params.stores_per_company,
            products=self.params.products,
            images_per_product=0,
            page_latency_ms=self.params.page_latency_ms,
            request_timeout=10.0,
        )

    @property
    def drain_timeout(self) -> float:
        return 240.0

    def fault_activities(self) -> list[Activity]:
        p = self.params
        settle = p.settle_timeout + 15
        return [
            action("check that Toxiproxy fronts Postgres", self._check_proxy, timeout=15),
            action(
                f"start a reconciler with stall limit {p.stall_limit:g} s, sweep every {p.stall_sweep_interval:g} s",
                self._start_reconciler,
                timeout=60,
            ),
            action(
                f"provider outage: every catalog request fails for {p.provider_seconds:g} s",
                partial(self._fault, "provider", p.provider_seconds),
                timeout=IN_FLIGHT_TIMEOUT + p.provider_seconds + 30,
            ),
            action("wait for every job the outage caught to end", partial(self._settled, 0), timeout=settle),
            action(
                f"partition Postgres (proxy down) for {p.partition_seconds:g} s",
                partial(self._fault, "postgres", p.partition_seconds),
                timeout=IN_FLIGHT_TIMEOUT + p.partition_seconds + 30,
            ),
            action("wait for every job the partition caught to end", partial(self._settled, 1), timeout=settle),
        ]

    def extra_rollbacks(self) -> list[Activity]:
        return [
            action("clear the provider's faults", self._clear_provider, timeout=15),
            action("heal the Postgres proxy (enable it, remove every toxic)", self._heal, timeout=30),
            action("stop this experiment's reconciler", self._stop_reconciler, timeout=60),
        ]

    # --- actions --------------------------------------------------------------------------

    async def _check_proxy(self) -> dict[str, Any]:
        spec = await asyncio.to_thread(self.target.toxiproxy().proxy, self.target.postgres_proxy)
        self.evidence["long_outage"] = {
            "stall_limit": self.params.stall_limit,
            "stall_sweep_interval": self.params.stall_sweep_interval,
            "settings": self.params.reconciler_env(),
            "faults": [],
        }
        return {"proxy": spec.listen, "upstream": spec.upstream}

    async def _start_reconciler(self) -> dict[str, Any]:
        name = f"reconciler-{self.ctx.slug}"
        env = {**base_environment(), **self.target.importer_env, **self.params.reconciler_env()}
        self.reconciler = ImporterReconciler(env=env, log_dir=self.target.log_dir, name=name)
        await asyncio.to_thread(self.reconciler.start)
        self.evidence["long_outage"]["reconciler"] = {"name": name, "log": str(self.reconciler.log_path)}
        return {"reconciler": name, "settings": self.params.reconciler_env()}

    async def _in_flight(self) -> list[str]:
        watcher = self._watcher()

        async def running() -> list[str]:
            await watcher.refresh()
            return sorted(j for j, r in watcher.latest.items() if r.status == "IN_PROGRESS")

        async def some() -> bool:
            return bool(await running())

        await self.until(some, timeout=IN_FLIGHT_TIMEOUT, interval=0.25, what="a job in flight")
        return await running()

    async def _fault(self, kind: str, seconds: float) -> dict[str, Any]:
        in_flight = await self._in_flight()
        record: dict[str, Any] = {"kind": kind, "seconds": seconds, "in_flight": in_flight}
        label = "provider outage" if kind == "provider" else "Postgres partition (down)"
        fault = self.ctx.fault_started(f"{label} {seconds:g} s")
        record["start"] = datetime.now(UTC).isoformat()
        try:
            if kind == "provider":
                async with httpx.AsyncClient(timeout=10.0) as http:
                    response = await http.post(f"{self.target.provider_url}/admin/faults", json={"outage": True})
                    response.raise_for_status()
                    await asyncio.sleep(seconds)
            else:
                client = self.target.toxiproxy()
                await asyncio.to_thread(client.set_enabled, self.target.postgres_proxy, False)
                await asyncio.sleep(seconds)
        finally:
            if kind == "provider":
                await self._clear_provider()
            else:
                await self._heal()
            record["end"] = datetime.now(UTC).isoformat()
            self.ctx.fault_ended(fault)
            self.evidence["long_outage"]["faults"].append(record)
        return {"kind": kind, "seconds": seconds, "in_flight": len(in_flight)}

    async def _settled(self, index: int) -> dict[str, Any]:
        """Every job the fault caught in flight reaches a terminal state (bounded)."""
        record = self.evidence["long_outage"]["faults"][index]
        watcher = self._watcher()
        caught = set(record["in_flight"])
        terminal = ("COMPLETED", "FAILED", "CANCELLED")

        async def done() -> bool:
            await watcher.refresh()
            return all(watcher.latest[j].status in terminal for j in caught if j in watcher.latest)

        # A job still waiting at the bound is recorded below as a failed check, not a hung drill.
        with contextlib.suppress(TimeoutError):
            await self.until(done, timeout=self.params.settle_timeout, interval=0.5, what="the caught jobs to end")
        record["final"] = {
            j: [r.status, r.finished_at.isoformat() if r.finished_at else None]
            for j, r in watcher.latest.items()
            if j in caught
        }
        statuses: dict[str, int] = {}
        for status, _ in record["final"].values():
            statuses[status] = statuses.get(status, 0) + 1
        return {"caught": len(caught), "statuses": statuses}

    async def _clear_provider(self) -> int:
        async with httpx.AsyncClient(timeout=10.0) as http:
            return (await http.delete(f"{self.target.provider_url}/admin/faults")).status_code

    async def _heal(self) -> list[str]:
        try:
            client = self.target.toxiproxy()
        except Exception as exc:
            return [f"no Toxiproxy: {exc}"]
        return await asyncio.to_thread(client.heal, self.target.postgres_proxy)

    async def _stop_reconciler(self) -> str:
        if self.reconciler is None:
            return "none started"
        outcome = await asyncio.to_thread(self.reconciler.stop)
        return str(outcome)

    # --- evidence -------------------------------------------------------------------------

    async def collect(self) -> None:
        info = self.evidence.get("long_outage")
        if not info or not info.get("faults"):
            raise ExperimentError("no fault was injected")
        watcher = self._watcher()
        await watcher.refresh()
        ours = set(watcher.latest)
        self.evidence["failed"] = {j: r.error or "" for j, r in watcher.latest.items() if r.status == "FAILED"}
        since = datetime.fromisoformat(self.evidence["load_started_at"])
        events = await asyncio.to_thread(stall_events, self.target.log_dir, ours, since)
        self.evidence["stall_events"] = events


def stall_events(log_dir: Path, jobs: set[str], since: datetime) -> list[list[str]]:
    """``[at, job_id, file]`` of every ``job_stalled`` event about these jobs in any reconciler log."""
    found: list[list[str]] = []
    for path in sorted(log_dir.glob("reconciler*.log")):
        try:
            with path.open("rb") as fh:
                data = fh.read(MAX_LOG_BYTES)
        except OSError:
            continue
        for raw in data.splitlines():
            if STALL_EVENT.encode() not in raw:
                continue
            try:
                line = json.loads(raw)
            except ValueError:
                continue
            if not isinstance(line, dict) or line.get("event") != STALL_EVENT or line.get("job_id") not in jobs:
                continue
            at = str(line.get("timestamp", ""))
            try:
                when = datetime.fromisoformat(at.replace("Z", "+00:00")) if at else None
            except ValueError:
                when = None  # an unreadable time: kept, a stall is never left out for its clock
            if when is not None and (when if when.tzinfo else when.replace(tzinfo=UTC)) < since:
                continue
            found.append([at, str(line["job_id"]), path.name])
    return found
