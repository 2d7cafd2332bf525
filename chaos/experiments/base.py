"""The skeleton every experiment shares: load, watchers, steady window, fault, drain, measure.

An experiment subclass says which load it wants, which fault activities to run and how to
turn what the watchers saw into measurements; this class builds the Chaos-Toolkit-shaped
:class:`~chaos.model.Experiment` around that::

    hypothesis  API healthy · queue not overloaded nor paused · workers registered ·
                Redis primary with a replica in sync · proxies clean  (+ the experiment's own)
    method      set up companies and stores → start load and watchers → steady window →
                <the fault activities> → stop the load → drain → measure
    rollbacks   <the experiment's own> → stop the load and watchers → stop its workers

After the runner, :meth:`ChaosExperiment.conclude` runs the data-loss checker on this run's
jobs and judges the experiment's own checks; everything lands in the journal.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import httpx

from chaos.checks import generic_checks, specific_checks
from chaos.journal import Journal
from chaos.load import LoadPlan, Submitter, write_attempts
from chaos.measures import completion_rate
from chaos.model import Activity, Experiment, Tolerance, action, at_least, equals, probe
from chaos.progress import Progress
from chaos.target import ChaosTarget
from chaos.verdicts import measurements_from_evidence
from chaos.watch import JobWatcher, OrphanTracker, wait_for
from lab.gather import GatherSettings, S3Target, gather_and_check
from lab.probes import count_keys
from lab.rundir import AcknowledgedJob, Fault, Measurement, write_json
from lab.stack.sentinel import sentinel_view
from lab.stack.stack import WorkerHandle

log = logging.getLogger(__name__)

HTTP_TIMEOUT = 5.0
WARMUP_SECONDS = 4.0  # the first jobs need a moment before anything completes


class ExperimentError(Exception):
    """A method step found the system unable to carry on (e.g. no job completes at all)."""


@dataclass
class RunContext:
    target: ChaosTarget
    run_dir: Path
    journal: Journal
    progress: Progress
    seed: int = 0

    @property
    def slug(self) -> str:
        return self.journal.slug

    def measure(self, metric: str, value: float, **labels: object) -> Measurement:
        m = Measurement(
            metric=metric,
            value=float(value),
            labels={"experiment": self.journal.experiment, "run": str(self.journal.run)}
            | {k: str(v) for k, v in labels.items()},
            at=datetime.now(UTC),
        )
        self.journal.measurements.append(m)
        return m

    def fault_started(self, name: str) -> int:
        self.journal.faults.append(Fault(name=name, start=datetime.now(UTC)))
        self.progress(f"fault: {name}")
        return len(self.journal.faults) - 1

    def fault_ended(self, index: int) -> None:
        fault = self.journal.faults[index]
        if fault.end is None:
            self.journal.faults[index] = fault.model_copy(update={"end": datetime.now(UTC)})


class ChaosExperiment(ABC):
    name: ClassVar[str]
    title: ClassVar[str]
    description: ClassVar[str]
    needs_toxiproxy: ClassVar[bool] = False
    track_orphans: ClassVar[bool] = False
    steady_seconds: ClassVar[float] = 8.0

    def __init__(self, ctx: RunContext, params: Any) -> None:
        self.ctx = ctx
        self.params = params
        self.target = ctx.target
        self.rng = random.Random(ctx.seed)
        self.submitter: Submitter | None = None
        self.submitters: list[Submitter] = []  # the main load first, then any extra ones
        self.watcher: JobWatcher | None = None
        self.orphans: OrphanTracker | None = None
        self.workers: list[WorkerHandle] = []
        self._load_task: asyncio.Task[dict[str, Any]] | None = None
        self.evidence = ctx.journal.evidence

    # --- what a subclass says -----------------------------------------------------------

    @abstractmethod
    def load_plan(self) -> LoadPlan: ...

    @abstractmethod
    def fault_activities(self) -> list[Activity]: ...

    @abstractmethod
    async def collect(self) -> None:
        """Put what the watchers saw into ``self.evidence`` as plain JSON (chaos.verdicts reads it)."""

    def extra_hypothesis(self) -> list[Activity]:
        return []

    def extra_loads(self) -> dict[str, LoadPlan]:
        """Further loads set up with the main one (their companies are watched and checked too)."""
        return {}

    def after_drain(self) -> list[Activity]:
        """Activities between the drain and the measurements (an operator's retry, say)."""
        return []

    def extra_rollbacks(self) -> list[Activity]:
        return []

    @property
    def drain_timeout(self) -> float:
        return 180.0

    @property
    def min_workers(self) -> int:
        return 1

    # --- building ---------------------------------------------------------------------------

    def build(self) -> Experiment:
        plan = self.load_plan()
        return Experiment(
            name=self.name,
            title=self.title,
            description=self.description,
            hypothesis=[*self.common_hypothesis(), *self.extra_hypothesis()],
            method=[
                action("set up the load: companies and fake-provider stores", self._setup, timeout=60),
                action("start the load and the watchers", self._start, timeout=30),
                action(
                    f"steady state under load ({self.steady_seconds:g} s)",
                    self._steady,
                    timeout=WARMUP_SECONDS + self.steady_seconds + 30,
                ),
                *self.fault_activities(),
                action("stop the load", self._finish_load, timeout=plan.request_timeout + 30),
                action(
                    "drain: every job of this run reaches a terminal state", self._drain, timeout=self.drain_timeout
                ),
                *self.after_drain(),
                action("measure", self._measure, timeout=60),
            ],
            rollbacks=[
                *self.extra_rollbacks(),
                action("stop the load and the watchers", self._stop_load_and_watchers, timeout=30),
                action("stop the workers this experiment started", self._stop_workers, timeout=120),
            ],
        )

    def common_hypothesis(self) -> list[Activity]:
        probes = [
            probe("the API answers /healthz", self._healthz, equals(200)),
            probe(
                "the queue is neither overloaded nor paused",
                self._queue_state,
                Tolerance("level healthy or degraded, not paused", _queue_ok),
            ),
            probe("workers registered in Redis", self._workers_registered, at_least(self.min_workers, "worker(s)")),
            probe(
                "Redis: Sentinel names a primary with a replica in sync",
                self._replicas_in_sync,
                at_least(1, "replica(s) in sync"),
            ),
        ]
        if self.target.layout.toxiproxy_url:
            probes.append(probe("Toxiproxy: every proxy enabled, no toxic", self._proxies_clean, equals(True)))
        return probes

    # --- probes -----------------------------------------------------------------------------

    async def _healthz(self) -> int:
        async with httpx.AsyncClient(timeout=HTTP_TIMEOUT) as http:
            return (await http.get(f"{self.target.api_url}/healthz")).status_code

    async def _queue_state(self) -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=HTTP_TIMEOUT) as http:
            body = (await http.get(f"{self.target.api_url}/health/queue")).json()
        return {"level": body.get("level"), "paused": bool(body.get("paused")), "waiting": body.get("waiting")}

    async def _workers_registered(self) -> int:
        client = self.target.redis.client(HTTP_TIMEOUT)
        try:
            count, _ = await count_keys(client, "importer:workers:*", batch=1000, max_iterations=100)
        finally:
            await client.aclose()
        return count

    async def _replicas_in_sync(self) -> int:
        def least() -> int:
            from redis import Redis

            seen = []
            for address in self.target.layout.sentinels:
                host, _, port = address.rpartition(":")
                with Redis(host=host, port=int(port), socket_timeout=2, socket_connect_timeout=2) as client:
                    seen.append(sentinel_view(client, self.target.layout.master_name).healthy_replicas)
            return min(seen)

        return await asyncio.to_thread(least)

    async def _proxies_clean(self) -> bool:
        proxies = await asyncio.to_thread(lambda: self.target.toxiproxy().proxies())
        return all(p.enabled and not p.toxics for p in proxies.values())

    # --- the method's common steps ----------------------------------------------------------

    def new_submitter(self, plan: LoadPlan, label: str) -> Submitter:
        target = self.target
        return Submitter(
            api_url=target.api_url,
            operator_token=target.operator_token,
            provider_url=target.provider_url,
            plan=plan,
            label=f"{self.ctx.slug}-{label}" if label else self.ctx.slug,
            seed=self.rng.randrange(2**31),
        )

    async def _setup(self) -> dict[str, Any]:
        self.submitter = self.new_submitter(self.load_plan(), "")
        self.submitters = [self.submitter]
        for label, plan in self.extra_loads().items():
            self.submitters.append(self.new_submitter(plan, label))
        for submitter in self.submitters:
            await submitter.setup()
        companies = [c for s in self.submitters for c in s.companies]
        self.watcher = JobWatcher(self.target.database_url, companies)
        self.evidence["companies"] = companies
        self.evidence["stores"] = [st for s in self.submitters for st in s.store_ids]
        return {"companies": len(companies), "stores": len(self.evidence["stores"])}

    @property
    def acknowledged(self) -> list[AcknowledgedJob]:
        return [a for s in self.submitters for a in s.acknowledged]

    async def _start(self) -> dict[str, Any]:
        assert self.submitter is not None and self.watcher is not None
        self.watcher.start()
        if self.track_orphans:
            min_age = 1.0
            self.orphans = OrphanTracker(self.target.redis, self.watcher, min_age=min_age)
            self.orphans.start()
        self._load_task = asyncio.create_task(self.submitter.run(), name=f"load-{self.ctx.slug}")
        self.evidence["load_started_at"] = _iso_now()
        plan = self.submitter.plan
        return {"jobs": plan.jobs, "rate": plan.rate, "products": plan.products}

    async def _steady(self) -> dict[str, Any]:
        await asyncio.sleep(WARMUP_SECONDS + self.steady_seconds)
        watcher = self._watcher()
        await watcher.refresh()
        end = datetime.now(UTC)
        start = datetime.fromtimestamp(end.timestamp() - self.steady_seconds, UTC)
        rate = completion_rate([r.times() for r in watcher.latest.values()], start, end)
        self.evidence["pre_window"] = [start.isoformat(), end.isoformat()]
        if rate <= 0:
            raise ExperimentError(
                f"no job completed in the {self.steady_seconds:g} s steady window: the load is not flowing, "
                "so a fault would prove nothing"
            )
        return {"completed_per_s": round(rate, 3)}

    async def _finish_load(self) -> dict[str, Any]:
        submitter = self._submitter()
        submitter.stop()
        if self._load_task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._load_task
        summary = submitter.summary()
        self.ctx.journal.load = summary
        return {k: summary[k] for k in ("attempts", "acknowledged", "by_status", "ambiguous")}

    async def _drain(self) -> dict[str, Any]:
        watcher = self._watcher()
        acknowledged = {a.job_id for a in self.acknowledged}

        async def drained() -> bool:
            await watcher.refresh()
            return acknowledged <= set(watcher.latest) and watcher.terminal()

        await wait_for(drained, timeout=self.drain_timeout - 5, interval=0.5, what="every job terminal")
        return _status_counts(watcher)

    async def _measure(self) -> list[dict[str, Any]]:
        await self.collect()
        self.evidence["observed_until"] = _iso_now()
        for metric, value, labels in measurements_from_evidence(self.name, self.evidence):
            self.ctx.measure(metric, value, **labels)
        return [{"metric": m.metric, "value": m.value, **m.labels} for m in self.ctx.journal.measurements]

    # --- rollbacks ----------------------------------------------------------------------------

    async def _stop_load_and_watchers(self) -> str:
        for submitter in self.submitters:
            submitter.stop()
        if self._load_task is not None and not self._load_task.done():
            self._load_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._load_task
        for loop in (self.orphans, self.watcher):
            if loop is not None:
                await loop.stop()
        return "stopped"

    async def _stop_workers(self) -> dict[str, list[str]]:
        stopped = []
        for handle in self.workers:
            if handle.is_alive():
                await asyncio.to_thread(self.target.stop_worker, handle)
                stopped.append(handle.worker_id)
        forgotten = await asyncio.to_thread(self.target.forget_workers, self.workers)
        return {"stopped": stopped, "records_dropped": forgotten}

    # --- helpers for subclasses ---------------------------------------------------------------

    def _submitter(self) -> Submitter:
        if self.submitter is None:
            raise ExperimentError("the load was never set up")
        return self.submitter

    def _watcher(self) -> JobWatcher:
        if self.watcher is None:
            raise ExperimentError("the job watcher was never started")
        return self.watcher

    async def start_worker(self, label: str, env: dict[str, str] | None = None) -> WorkerHandle:
        worker_id = f"chaos-{self.ctx.slug}-{label}"
        # A worker that hangs instead of stopping is then killed with SIGABRT: with the fault
        # handler on, Python writes every thread's stack into its log first (the evidence).
        env = {"PYTHONFAULTHANDLER": "1", **(env or {})}
        handle = await asyncio.to_thread(self.target.start_worker, worker_id, env)
        self.workers.append(handle)
        return handle

    async def until(
        self, condition: Callable[[], Awaitable[Any]], *, timeout: float, what: str, interval: float = 0.25
    ) -> Any:
        return await wait_for(condition, timeout=timeout, interval=interval, what=what)

    # --- after the runner -------------------------------------------------------------------

    async def conclude(self) -> None:
        """Final job states, the checker on this run's jobs, the checks; all into the journal."""
        journal = self.ctx.journal
        if self.submitter is None:
            journal.checks = generic_checks(journal)
            return
        watcher = self.watcher
        if watcher is not None:
            with contextlib.suppress(Exception):
                await watcher.refresh()
                await watcher.close()
            final = {j: (r.status, r.finished_at) for j, r in watcher.latest.items()}
            for submitter in self.submitters:
                submitter.settle(final)
        if not journal.load:
            journal.load = self.submitter.summary()
        if len(self.submitters) > 1:
            journal.load["extra"] = {s.label: s.summary() for s in self.submitters[1:]}
        write_attempts(self.ctx.run_dir / f"load-{self.ctx.slug}.csv", [a for s in self.submitters for a in s.attempts])
        if self.acknowledged:
            settings = GatherSettings(
                database_url=self.target.database_url,
                s3=S3Target(bucket=self.target.s3_bucket, endpoint_url=self.target.s3_endpoint),
                provider_url=self.target.provider_url,
            )
            try:
                report = await gather_and_check(settings, self.acknowledged)
            except Exception as exc:  # no verdict on partial data; the check below says why
                journal.checker = {"error": f"{type(exc).__name__}: {exc}"}
            else:
                write_json(self.ctx.run_dir / f"checker-{self.ctx.slug}.json", report.to_json())
                journal.checker = dict(report.totals)
        journal.checks = [*generic_checks(journal), *specific_checks(journal)]
        for check in journal.checks:
            self.ctx.measure("experiment_check", 1.0 if check.passed else 0.0, check=check.name)


def _queue_ok(value: Any) -> bool:
    return isinstance(value, dict) and value.get("level") in ("healthy", "degraded") and not value.get("paused")


def _status_counts(watcher: JobWatcher) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in watcher.latest.values():
        counts[row.status] = counts.get(row.status, 0) + 1
    return counts


def _iso_now() -> str:
    return datetime.now(UTC).isoformat()
