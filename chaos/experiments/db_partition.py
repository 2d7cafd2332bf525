"""db-partition: cut Postgres off from the API and the workers, for growing durations.

Through the Toxiproxy proxy every importer process reaches Postgres by (the harness reaches it
directly, so the observer and the checker keep seeing). Three ways to cut, each for every
duration in turn (default 5, 15, 30, 60 s):

- ``down``: the proxy disabled: connections refused, open ones dropped;
- ``timeout``: a ``timeout`` toxic with ``timeout: 0`` on both directions: connections open,
  every byte held until the toxic goes (the nasty one: nothing fails fast);
- ``latency``: a ``latency`` toxic on both directions (``latency_ms``, jitter a quarter of it).

After each partition: reconnection (``/healthz`` answers 200 and a job completes again, or
nothing is left to do). Failed jobs are attributed to the partition during or after which
they failed. The **maximum downtime tolerated** per variant is the longest duration that it,
and every shorter one, survived with zero failed jobs. Jobs that did fail are a finding, not
hidden: they are counted per partition, then retried as an operator would (``importer ops
retry-failed``) to judge R5 (every failure retryable); the report prints the retry budget
(``JOB_MAX_TRIES`` x ``RETRY_BACKOFF_*``) beside the result, since it bounds what a job survives.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any, ClassVar

import httpx

from chaos.experiments.base import ChaosExperiment
from chaos.load import LoadPlan
from chaos.measures import retry_budget
from chaos.model import Activity, action
from chaos.profile import IMPORTER_DEFAULTS
from chaos.verdicts import partition_failures
from lab.stack.toxiproxy import ToxiproxyClient

VARIANTS = ("down", "timeout", "latency")
RECOVERY_TIMEOUT = 150.0
TOXIC_PREFIX = "chaos-partition"


@dataclass(frozen=True)
class PartitionParams:
    variants: tuple[str, ...] = VARIANTS
    durations: tuple[float, ...] = (5.0, 15.0, 30.0, 60.0)
    latency_ms: int = 1000
    rate: float = 1.0

    def __post_init__(self) -> None:
        unknown = set(self.variants) - set(VARIANTS)
        if unknown or not self.variants or not self.durations or min(self.durations) <= 0:
            raise ValueError(f"variants must be among {VARIANTS} and durations positive: {self}")

    @classmethod
    def quick(cls) -> PartitionParams:
        return cls(durations=(5.0,))


@dataclass
class _Partition:
    variant: str
    duration: float
    start: str = ""
    healed_at: str = ""
    recovered_at: str | None = None
    api_errors: dict[str, int] = field(default_factory=dict)


def cut(client: ToxiproxyClient, proxy: str, variant: str, latency_ms: int) -> None:
    if variant == "down":
        client.set_enabled(proxy, False)
        return
    for stream in ("upstream", "downstream"):
        name = f"{TOXIC_PREFIX}-{variant}-{stream}"
        if variant == "timeout":
            client.add_toxic(proxy, name, "timeout", {"timeout": 0}, stream=stream)
        else:
            client.add_toxic(proxy, name, "latency", {"latency": latency_ms, "jitter": latency_ms // 4}, stream=stream)


class DbPartition(ChaosExperiment):
    name: ClassVar[str] = "db-partition"
    title: ClassVar[str] = "Postgres partitioned from the API and workers"
    description: ClassVar[str] = (
        "Cut Postgres off from every importer process through Toxiproxy (proxy down, a timeout toxic, "
        "latency) for growing durations; the importer reconnects, job states stay consistent, nothing is "
        "lost or duplicated; the longest outage survived with zero failed jobs is reported."
    )
    needs_toxiproxy: ClassVar[bool] = True
    params: PartitionParams

    def __init__(self, ctx: Any, params: PartitionParams) -> None:
        super().__init__(ctx, params)
        self.partitions: list[_Partition] = []

    def planned_seconds(self) -> float:
        p = self.params
        per_variant = sum(d + 40 for d in p.durations)  # cut, reconnection, settling
        return self.steady_seconds + 10 + per_variant * len(p.variants)

    def load_plan(self) -> LoadPlan:
        # Three pages a second apart: a few jobs are always mid-run when the cut comes.
        jobs = math.ceil(self.params.rate * self.planned_seconds() * 1.5) + 20
        return LoadPlan(
            jobs=jobs,
            rate=self.params.rate,
            products=300,
            images_per_product=0,
            page_latency_ms=1000,
            request_timeout=10.0,
        )

    @property
    def drain_timeout(self) -> float:
        return 240.0

    def fault_activities(self) -> list[Activity]:
        steps: list[Activity] = [action("check that Toxiproxy fronts Postgres", self._check_proxy, timeout=15)]
        plan = [(v, d) for v in self.params.variants for d in self.params.durations]
        for index, (variant, duration) in enumerate(plan):
            steps += [
                action(
                    f"partition Postgres: {variant} for {duration:g} s",
                    partial(self._partition, variant, duration),
                    timeout=duration + 40,
                ),
                action(
                    f"wait for reconnection after {variant} {duration:g} s",
                    partial(self._reconnected, index),
                    timeout=RECOVERY_TIMEOUT,
                ),
                action(
                    f"wait for the jobs {variant} {duration:g} s hit to settle",
                    partial(self._settled, index),
                    timeout=self.settle_timeout() + 15,
                ),
            ]
        return steps

    def settle_timeout(self) -> float:
        """Long enough for a job waiting out its longest backoff to run again and finish."""
        return 2 * self.retry_settings()["retry_backoff_max"] + 30

    def after_drain(self) -> list[Activity]:
        return [action("retry the failed jobs as an operator would", self._retry_failed, timeout=300)]

    def extra_rollbacks(self) -> list[Activity]:
        return [action("heal the Postgres proxy (enable it, remove every toxic)", self._heal, timeout=30)]

    # --- actions --------------------------------------------------------------------------

    async def _check_proxy(self) -> dict[str, Any]:
        client = self.target.toxiproxy()
        spec = await asyncio.to_thread(client.proxy, self.target.postgres_proxy)
        budget = self.budget()
        self.evidence["retry_budget"] = {"min_s": budget[0], "max_s": budget[1], **self.retry_settings()}
        self.evidence["partitions"] = []
        return {"proxy": spec.listen, "upstream": spec.upstream, "retry_budget_s": budget}

    def retry_settings(self) -> dict[str, float]:
        s = self.target.setting
        return {
            "job_max_tries": s("job_max_tries", IMPORTER_DEFAULTS["job_max_tries"]),
            "retry_backoff_base": s("retry_backoff_base", IMPORTER_DEFAULTS["retry_backoff_base"]),
            "retry_backoff_max": s("retry_backoff_max", IMPORTER_DEFAULTS["retry_backoff_max"]),
            "db_command_timeout": s("db_command_timeout", IMPORTER_DEFAULTS["db_command_timeout"]),
        }

    def budget(self) -> tuple[float, float]:
        r = self.retry_settings()
        return retry_budget(base=r["retry_backoff_base"], cap=r["retry_backoff_max"], tries=int(r["job_max_tries"]))

    async def _partition(self, variant: str, duration: float) -> dict[str, Any]:
        client = self.target.toxiproxy()
        proxy = self.target.postgres_proxy
        record = _Partition(variant, duration)
        self.partitions.append(record)
        fault = self.ctx.fault_started(f"Postgres {variant} {duration:g} s")
        record.start = datetime.now(UTC).isoformat()
        try:
            await asyncio.to_thread(cut, client, proxy, variant, self.params.latency_ms)
            await asyncio.sleep(duration)
        finally:
            undone = await asyncio.to_thread(client.heal, proxy)
            record.healed_at = datetime.now(UTC).isoformat()
            self.ctx.fault_ended(fault)
            self.evidence["partitions"].append(record.__dict__)
        return {"variant": variant, "duration": duration, "healed": undone}

    async def _reconnected(self, index: int) -> dict[str, Any]:
        record = self.partitions[index]
        healed = datetime.fromisoformat(record.healed_at)
        watcher = self._watcher()

        async def back() -> bool:
            async with httpx.AsyncClient(timeout=5.0) as http:
                if (await http.get(f"{self.target.api_url}/healthz")).status_code != 200:
                    return False
            await watcher.refresh()
            # A job finishing after the heal wrote through the proxy again: that is reconnection.
            return any(
                r.status == "COMPLETED" and r.finished_at and r.finished_at > healed for r in watcher.latest.values()
            )

        await self.until(back, timeout=RECOVERY_TIMEOUT - 5, interval=0.5, what="the importer reconnected")
        now = datetime.now(UTC)
        record.recovered_at = now.isoformat()
        self.evidence["partitions"][index]["recovered_at"] = record.recovered_at
        return {"reconnected_after_s": round((now - healed).total_seconds(), 2)}

    async def _settled(self, index: int) -> dict[str, Any]:
        """Every job that was unfinished when the partition healed ends before the next cut.

        Without this, partitions run back to back add up: a job caught by the 30 s cut and then
        the 60 s one spends its retry budget on both, fails during a later, shorter cut, and is
        blamed on it. Settling first gives each partition only the jobs it hit itself, so
        "maximum downtime tolerated" means one outage of that length.
        """
        healed = datetime.fromisoformat(self.partitions[index].healed_at)
        watcher = self._watcher()
        await watcher.refresh()
        terminal = ("COMPLETED", "FAILED", "CANCELLED")
        hit = {j for j, r in watcher.latest.items() if r.status not in terminal and r.created_at <= healed}
        started = datetime.now(UTC)

        async def done() -> bool:
            await watcher.refresh()
            return all(watcher.latest[j].status in terminal for j in hit if j in watcher.latest)

        settled = True
        try:
            await self.until(done, timeout=self.settle_timeout(), interval=0.5, what="the hit jobs to settle")
        except TimeoutError:
            settled = False  # recorded; the next partition's failures may then include these
        waited = round((datetime.now(UTC) - started).total_seconds(), 2)
        self.evidence["partitions"][index]["settled"] = {"jobs": len(hit), "seconds": waited, "settled": settled}
        return {"jobs_hit": len(hit), "settled": settled, "seconds": waited}

    async def _retry_failed(self) -> dict[str, Any]:
        watcher = self._watcher()
        await watcher.refresh()
        failed = {j: r for j, r in watcher.latest.items() if r.status == "FAILED"}
        self.evidence["failed_before_retry"] = {j: r.error for j, r in failed.items()}
        if not failed:
            return {"failed": 0}
        outputs = []
        for company in sorted({r.company_id for r in failed.values()}):
            done = await asyncio.to_thread(self.target.run_importer, "ops", "retry-failed", "--company", company)
            outputs.append(f"exit {done.returncode}: {done.stdout.strip()[-300:]}{done.stderr.strip()[-300:]}")

        async def settled() -> bool:
            await watcher.refresh()
            rows = watcher.latest
            return all(
                rows[j].status in ("COMPLETED", "FAILED", "CANCELLED")
                and rows[j].finished_at is not None
                and rows[j].finished_at != failed[j].finished_at
                for j in failed
            )

        await self.until(settled, timeout=280, interval=0.5, what="the retried jobs to finish")
        self.evidence["retried"] = {j: watcher.latest[j].status for j in failed}
        return {"failed": len(failed), "retried": self.evidence["retried"], "ops": outputs}

    async def _heal(self) -> list[str]:
        try:
            client = self.target.toxiproxy()
        except Exception as exc:
            return [f"no Toxiproxy: {exc}"]
        return await asyncio.to_thread(client.heal, self.target.postgres_proxy)

    # --- evidence -----------------------------------------------------------------------

    async def collect(self) -> None:
        watcher = self._watcher()
        await watcher.refresh()
        self.evidence["failures"] = [[c.at.isoformat(), c.job_id] for c in watcher.changes if c.status == "FAILED"]
        self.evidence["observed_until"] = datetime.now(UTC).isoformat()
        attempts = self._submitter().attempts
        partitions = self.evidence.get("partitions", [])
        for part, failed in zip(partitions, partition_failures(self.evidence), strict=True):
            part["failed_jobs"] = failed
            start, healed = datetime.fromisoformat(part["start"]), datetime.fromisoformat(part["healed_at"])
            statuses: dict[str, int] = {}
            for a in attempts:
                if start <= a.at <= healed:
                    key = "no answer" if a.status is None else str(a.status)
                    statuses[key] = statuses.get(key, 0) + 1
            part["api_answers_during"] = statuses
