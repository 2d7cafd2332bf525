"""A chaos drill from start to end: experiments in order, one run directory, one observer.

The session owns what spans experiments: the observer recording samples.csv for the whole
drill (so the report's charts show every fault in one timeline), faults.json, the growing
acknowledged.csv and measurements.jsonl, and the final data-loss check over every job of the
drill. Each experiment run gets its journal, its own checker report and its load log.

Files are written as the drill goes, so an interrupted drill still leaves a directory that
``drill report`` can judge.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, is_dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from chaos.checks import generic_checks
from chaos.experiments import EXPERIMENTS
from chaos.experiments.base import RunContext
from chaos.journal import Check, Journal
from chaos.progress import Progress
from chaos.runner import run_experiment
from chaos.target import ChaosTarget, ToxiproxyUnavailable
from lab.checker_inputs import write_check_report
from lab.gather import GatherSettings, S3Target, gather_and_check
from lab.observer import ObserverConfig, observing
from lab.rundir import SAMPLES_CSV, AcknowledgedJob, Fault, append_measurement, write_acknowledged, write_faults
from lab.stack.toxiproxy import ToxiproxyError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Scheduled:
    experiment: str
    run: int
    runs: int
    params: Any


def schedule(names: list[str], *, runs: int, quick: bool, rounds: bool) -> list[Scheduled]:
    """Each experiment ``runs`` times: back to back, or in rounds (all once, then all again)."""
    entries = [(name, EXPERIMENTS[name]) for name in names]
    items = [
        Scheduled(name, k, runs, entry.quick() if quick else entry.standard())
        for name, entry in entries
        for k in range(1, runs + 1)
    ]
    if rounds:
        items.sort(key=lambda s: (s.run, names.index(s.experiment)))
    return items


def _params(params: Any) -> dict[str, Any]:
    return asdict(params) if is_dataclass(params) and not isinstance(params, type) else {}


class ChaosSession:
    def __init__(
        self,
        target: ChaosTarget,
        run_dir: Path,
        *,
        started_at: datetime,
        progress: Progress,
        seed: int = 0,
    ) -> None:
        self.target = target
        self.run_dir = run_dir
        self.started_at = started_at
        self.progress = progress
        self.seed = seed
        self.journals: list[Journal] = []
        self.faults: list[Fault] = []
        self.acknowledged: list[AcknowledgedJob] = []

    async def run(self, plan: list[Scheduled]) -> list[Journal]:
        config = ObserverConfig(
            run_started_at=self.started_at,
            redis=self.target.redis,
            database_url=self.target.database_url,
            provider_url=self.target.provider_url,
        )
        async with observing(config, self.run_dir / SAMPLES_CSV):
            for index, item in enumerate(plan):
                self.progress.context = f"{item.experiment} #{item.run}/{item.runs}"
                self.progress(f"starting ({index + 1} of {len(plan)} in this drill)")
                journal = await self.run_one(item, seed=self.seed + index)
                verdict = "passed" if journal.passed else f"did not pass ({journal.status})"
                self.progress(f"{verdict} in {journal.duration or 0:.0f} s")
                self.progress.context = ""
        await self.final_check()
        return self.journals

    async def run_one(self, item: Scheduled, *, seed: int) -> Journal:
        entry = EXPERIMENTS[item.experiment]
        journal = Journal(
            experiment=item.experiment,
            title=entry.cls.title,
            description=entry.cls.description,
            run=item.run,
            runs=item.runs,
            settings={"params": _params(item.params), "seed": seed},
        )
        ctx = RunContext(self.target, self.run_dir, journal, self.progress, seed=seed)
        experiment = entry.cls(ctx, item.params)
        try:
            if entry.cls.needs_toxiproxy:
                self.target.toxiproxy().version()
            built = experiment.build()
        except (ToxiproxyUnavailable, ToxiproxyError, ValueError) as exc:
            journal.status = "aborted"
            journal.reason = f"cannot run: {exc}"
            journal.end = datetime.now(UTC)
            journal.checks = [Check(name="the experiment could run", passed=False, detail=str(exc))]
            self.progress(f"NOT RUN: {exc}")
            ctx.measure("experiment_check", 0.0, check="the experiment could run")
            self._record(journal, [])
            return journal
        try:
            await run_experiment(built, journal, run_dir=self.run_dir, progress=self.progress)
        finally:
            try:
                await experiment.conclude()
            except Exception as exc:  # the verdict must still be written, saying why it is short
                log.exception("concluding %s failed", journal.slug)
                journal.checks = [*generic_checks(journal), Check(name="concluded", passed=False, detail=repr(exc))]
            self._record(journal, experiment.acknowledged)
        return journal

    def _record(self, journal: Journal, acknowledged: list[AcknowledgedJob]) -> None:
        journal.write(self.run_dir)
        for measurement in journal.measurements:
            append_measurement(self.run_dir, measurement)
        self.faults.extend(journal.faults)
        write_faults(self.run_dir, self.faults)
        self.acknowledged.extend(acknowledged)
        write_acknowledged(self.run_dir, self.acknowledged)
        self.journals.append(journal)

    async def final_check(self) -> None:
        """The checker over every job of the drill: P4 and P2 are judged from this one."""
        if not self.acknowledged:
            return
        self.progress("checking every acknowledged job of the drill (data-loss checker)")
        settings = GatherSettings(
            database_url=self.target.database_url,
            s3=S3Target(bucket=self.target.s3_bucket, endpoint_url=self.target.s3_endpoint),
            provider_url=self.target.provider_url,
        )
        report = await gather_and_check(settings, self.acknowledged)
        write_check_report(self.run_dir, report)
        t = report.totals
        self.progress(
            f"checker: {t.get('acknowledged')} acknowledged, {t.get('completed')} completed, {t.get('lost')} lost, "
            f"{t.get('missing')} missing, {t.get('duplicated')} duplicated"
        )
