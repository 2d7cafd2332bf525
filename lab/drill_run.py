"""``drill run <scenario>``: one load drill, from nothing running to a verdict and a report.

The steps, each bounded in time; whatever a step started is stopped however the run ends
(an error, Ctrl-C, SIGTERM from a CI runner cancelling the job):

1. the stack: a fresh local one in ``<run-dir>/stack`` with the scenario's settings, or the
   running one of ``--attach`` (read from its stack.json, used as it is);
2. set-up: companies through the operator API, one fake-provider store per job, the plan;
3. run.json, then the observer (samples.csv) and, when the scenario asks, the autoscaler;
4. Locust, as subprocesses, until every client followed its job to the end (or its bound);
5. the drain: every acknowledged job terminal in Postgres (bounded);
6. observer and autoscaler stopped, the optional sabotage, the checker (checker.json);
7. the stack stopped (its data removed, its logs kept), then the verdict rendered from the
   run directory alone (reports.render), exactly as ``drill report`` would.

Exit codes: 0 every criterion and the checker passed; 1 something failed (a criterion, the
checker, or the load did not run as planned); 2 the run could not be carried out (bad input,
no stack to attach to, the stack or the set-up failed); 130 interrupted.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

import asyncpg

from lab.acks import RecordsError, count_records, merge_into_run_dir, record_files
from lab.autoscaler import Autoscaler, AutoscalerStats, policy_from_scenario
from lab.checker_inputs import write_check_report
from lab.criteria import Gate
from lab.drill_facts import checker_problems, run_notes, run_settings
from lab.drill_target import RunError, Target, attached_info
from lab.gather import GatherError, GatherSettings, S3Target, gather_and_check
from lab.loadgen import EXIT_OK, LoadGeneratorError, LocustRun, LocustSettings, describe_exit
from lab.logcheck import IMPORTER_ROLES, check_logs
from lab.observer import Observer, ObserverConfig
from lab.plans import Company, SetupError, build_plan, create_companies, create_stores, store_requests
from lab.probes import RedisTarget
from lab.progress import Progress, format_progress, last_sample, sample_int
from lab.rundir import (
    RUNS_ROOT,
    SAMPLES_CSV,
    SUMMARY_JSON,
    AcknowledgedJob,
    Measurement,
    RunInfo,
    append_measurement,
    create_run_dir,
    describe_machine,
    git_revision,
    new_run_id,
    read_json,
    write_run_info,
)
from lab.sabotage import Sabotage, SabotageError, apply_sabotage
from lab.scenarios import Scenario
from lab.stack.errors import StackError
from lab.stack.s3 import CREDENTIALS
from lab.stack.stack import ProgressEvent, Stack, StackConfig
from lab.workerpool import AttachedWorkers, StackWorkers, WorkerPool
from loadtests.plan import Plan, read_plan, write_plan
from reports.render import EXIT_UNUSABLE, render_run

EXIT_PASS = 0
EXIT_FAIL = 1
EXIT_CANNOT_RUN = 2
EXIT_INTERRUPTED = 130

LOCUST_MARGIN_S = 120  # Locust's start, workers connecting and its own shutdown, beyond --run-time
DRAIN_POLL_S = 2.0
LOCUST_POLL_S = 0.5
STACK_SUBDIR = "stack"
RECORDS_SUBDIR = "locust-records"
PLAN_FILE = "plan.json"
REPO_ROOT = Path(__file__).resolve().parent.parent

Echo = Callable[[str], None]


@dataclass
class RunOptions:
    out_root: Path = RUNS_ROOT
    attach: bool = False
    stack_dir: Path = Path(".drill")  # with attach: the running stack's directory
    locust_workers: int | None = None  # None: the scenario's
    sabotage: Sabotage | None = None
    gate: Gate = "seed"
    progress_interval: float = 5.0


@dataclass
class RunResult:
    run_dir: Path | None
    exit_code: int
    verdict: str = ""
    reason: str = ""
    problems: list[str] = field(default_factory=list)


class DrillRun:
    def __init__(self, scenario: Scenario, options: RunOptions, echo: Echo, echo_err: Echo | None = None) -> None:
        self.scenario = scenario
        self.options = options
        self.echo = echo
        self.echo_err = echo_err or echo
        self.run_id = new_run_id(scenario.name)
        self.run_dir: Path | None = None
        self.stack: Stack | None = None
        self.pool: WorkerPool | None = None
        self.target: Target | None = None
        self.info: RunInfo | None = None
        self.notes: list[str] = []
        self.problems: list[str] = []
        self.planned = 0
        self.companies: list[str] = []
        self.phase = "start"
        self.started = time.monotonic()
        self.locust_workers = scenario.locust_workers if options.locust_workers is None else options.locust_workers
        self.autoscaler_stats: AutoscalerStats | None = None

    # --- paths ------------------------------------------------------------------------------

    @property
    def dir(self) -> Path:
        if self.run_dir is None:
            raise RunError("no run directory yet")
        return self.run_dir

    @property
    def records_dir(self) -> Path:
        return self.dir / RECORDS_SUBDIR

    @property
    def plan_path(self) -> Path:
        return self.dir / PLAN_FILE

    # --- the whole run ---------------------------------------------------------------------

    def execute(self) -> RunResult:
        interrupted = False
        error: str | None = None
        with _sigterm_as_interrupt():
            try:
                try:
                    self._prepare()
                    asyncio.run(self._drive())
                finally:
                    self._teardown()
            except KeyboardInterrupt:
                interrupted = True
                self.echo_err("interrupted: what the run started has been stopped")
            except (
                RunError,
                SetupError,
                StackError,
                LoadGeneratorError,
                GatherError,
                SabotageError,
                RecordsError,
            ) as exc:
                error = str(exc)
                self.echo_err(f"drill run failed: {exc}")
        return self._finish(interrupted=interrupted, error=error)

    def _prepare(self) -> None:
        info = attached_info(self.options.stack_dir) if self.options.attach else None  # before any file is made
        self.run_dir = create_run_dir(self.run_id, self.options.out_root.absolute())
        self.run_dir.chmod(0o755)  # PostgreSQL (another account) must be able to enter <run-dir>/stack
        self.echo(f"drill run {self.scenario.name}: {self.scenario.summary()}")
        self.echo(f"run directory: {shown(self.run_dir)}")
        if info is not None:
            self.target = Target.of_info(info, f"attached: {self.options.stack_dir.absolute()}")
            self.pool = AttachedWorkers(self.options.stack_dir, prefix=f"{self.scenario.name}-scaled")
            self.echo(f"using the running stack in {self.options.stack_dir.absolute()} (api {self.target.api_url})")
            return
        config = StackConfig(
            run_dir=self.dir / STACK_SUBDIR,
            workers=self.scenario.workers.initial,
            env_overrides=self.scenario.importer_env,
        )
        self.echo(f"starting a fresh stack ({config.workers} workers) in {shown(config.run_dir)}")
        self.stack = Stack(config, progress=self._stack_progress)
        began = time.monotonic()
        self.stack.start()
        self.echo(f"stack up in {time.monotonic() - began:.1f}s")
        self.target = Target.of_stack(self.stack, "fresh local stack (lab.stack), in the run directory")
        self.pool = StackWorkers(self.stack)

    def _stack_progress(self, event: ProgressEvent) -> None:
        if event.status == "failed":
            self.echo_err(f"  {event.component}: FAILED {event.detail}")

    # --- inside the event loop --------------------------------------------------------------

    async def _drive(self) -> None:
        s, target = self.scenario, self._target()
        self.phase = "setup"
        tenants: dict[str, list[Company]] = {}
        for group in s.tenants:  # tenant groups (noisy-neighbour): each its own companies and tier
            tenants[group.name] = await create_companies(
                target.api_url,
                target.operator_token,
                [f"{self.run_id}-{group.name}-{n:03d}" for n in range(1, group.companies + 1)],
                group.tier,
            )
        if tenants:
            companies = [c for group in tenants.values() for c in group]
        else:
            companies = await create_companies(
                target.api_url,
                target.operator_token,
                [f"{self.run_id}-{n:03d}" for n in range(1, s.companies + 1)],
                s.tier,
            )
        self.companies = [c.id for c in companies]
        stores = await create_stores(target.provider_url, store_requests(s))
        plan = build_plan(s, target.api_url, companies, stores, records_dir=str(self.records_dir), tenants=tenants)
        write_plan(self.plan_path, plan)
        self.planned = len(plan.assignments)
        self.echo(f"set up {len(companies)} companies and {len(stores)} stores")

        started_at = datetime.now(UTC)
        self.notes = run_notes(s, target, self.options.attach)
        self.info = RunInfo(
            run_id=self.run_id,
            scenario=s.name,
            kind=s.kind,
            started_at=started_at,
            machine=describe_machine(),
            stack=run_settings(s, target, self.locust_workers, self.options.sabotage),
            git_revision=git_revision(REPO_ROOT),
            notes=" | ".join(self.notes),
        )
        write_run_info(self.dir, self.info)

        bound = s.run_time_s + LOCUST_MARGIN_S + s.drain_timeout_s + 300
        observer = Observer(
            ObserverConfig(
                run_started_at=started_at,
                redis=RedisTarget(url=target.redis_url),
                database_url=target.database_url,
                provider_url=target.provider_url,
                companies=tuple(self.companies),
                interval=s.observer_interval_s,
                max_duration=bound,
            ),
            self.dir / SAMPLES_CSV,
        )
        observer.start()
        autoscaler = self._autoscaler(target, bound)
        locust = LocustRun(
            LocustSettings(
                host=target.api_url,
                users=s.users,
                spawn_rate=s.spawn_rate,
                run_time_s=s.run_time_s,
                plan_path=self.plan_path,
                records_dir=self.records_dir,
                run_dir=self.dir,
                workers=self.locust_workers,
            )
        )
        progress = asyncio.create_task(self._progress_loop(bound), name="progress")
        jobs: list[AcknowledgedJob] = []
        try:
            self.phase = "load"
            await asyncio.to_thread(locust.start)
            await self._wait_for_locust(locust)
            jobs = merge_into_run_dir(self.records_dir, self.dir)
            self._check_load(plan, jobs)
            self.phase = "drain"
            await self._drain(target, jobs)
        finally:
            await asyncio.to_thread(locust.stop)  # every process of it, workers included; quick when gone
            if autoscaler is not None:
                self.autoscaler_stats = await autoscaler.stop(grace=90.0)
            await observer.stop()
            progress.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await progress
            self._print_progress()
            if not jobs and self.records_dir.exists():  # interrupted: keep what was acknowledged so far
                try:
                    merge_into_run_dir(self.records_dir, self.dir)
                except RecordsError as exc:
                    self.problems.append(f"records: {exc}")

        self.phase = "check"
        if self.options.sabotage is not None:
            deleted = await apply_sabotage(self.options.sabotage, target.database_url, self.companies)
            self.echo(f"sabotage {self.options.sabotage}: deleted {deleted} product rows behind the importer's back")
            self.notes.append(f"sabotage {self.options.sabotage}: {deleted} products deleted before the check")
        self.echo(f"checking {len(jobs)} acknowledged jobs against Postgres, S3 and the provider's catalogs")
        with _lab_s3_credentials():
            report = await gather_and_check(
                GatherSettings(
                    database_url=target.database_url,
                    s3=S3Target(bucket=target.s3_bucket, endpoint_url=target.s3_endpoint),
                    provider_url=target.provider_url,
                ),
                jobs,
            )
        write_check_report(self.dir, report)
        found = checker_problems(report)
        t = report.totals
        self.echo(
            f"checker: {t.get('lost', '?')} lost, {t.get('missing', '?')} missing, "
            f"{t.get('duplicated', '?')} duplicated, {t.get('unexpected', '?')} unexpected; "
            f"{t.get('products_expected', '?')} products and {t.get('images_expected', '?')} images expected"
        )
        if found:
            self.problems.append("checker: " + "; ".join(found))
        self._check_logs()

    def _check_logs(self) -> None:
        """O3: the importer processes' own log files, every line (see lab/logcheck.py)."""
        info = self.stack.info if self.stack is not None else attached_info(self.options.stack_dir)
        paths = [Path(p.log_path) for p in info.processes if p.role in IMPORTER_ROLES]
        logs = check_logs(paths)
        append_measurement(self.dir, Measurement(metric="log_lines_checked", value=float(logs.lines)))
        append_measurement(self.dir, Measurement(metric="log_lines_invalid", value=float(logs.invalid)))
        self.echo(f"logs: {logs.lines} lines in {logs.files} importer log files, {logs.invalid} not actionable")
        for example in logs.examples:
            self.echo(f"  {example}")

    def _target(self) -> Target:
        if self.target is None:
            raise RunError("no stack")
        return self.target

    def _autoscaler(self, target: Target, bound: float) -> Autoscaler | None:
        autoscale = self.scenario.workers.autoscale
        if autoscale is None or self.pool is None:
            return None
        autoscaler = Autoscaler(
            policy_from_scenario(autoscale),
            self.pool,
            redis=RedisTarget(url=target.redis_url),
            database_url=target.database_url,
            run_dir=self.dir,
            interval=autoscale.interval_s,
            max_duration=bound,
        )
        autoscaler.start()
        return autoscaler

    async def _wait_for_locust(self, locust: LocustRun) -> None:
        loop = asyncio.get_running_loop()
        bound = self.scenario.run_time_s + LOCUST_MARGIN_S
        deadline = loop.time() + bound
        for _ in range(math.ceil(bound / LOCUST_POLL_S) + 1):
            if not locust.running() or loop.time() >= deadline:
                break
            await asyncio.sleep(LOCUST_POLL_S)
        if locust.running():
            self.problems.append("Locust outlived its run-time bound and was stopped")
            await asyncio.to_thread(locust.stop)
        code = locust.returncode
        self.echo(f"load generator {describe_exit(code)}")
        if code not in EXIT_OK:
            self.problems.append(f"load generator: {describe_exit(code)} (see locust.log)")
            if not record_files(self.records_dir):
                raise LoadGeneratorError(
                    f"Locust {describe_exit(code)} before acknowledging any job:\n{locust.log_tail()}"
                )

    def _check_load(self, plan: Plan, jobs: list[AcknowledgedJob]) -> None:
        if len(jobs) < len(plan.assignments):
            self.problems.append(
                f"load incomplete: {len(jobs)} of {len(plan.assignments)} planned jobs acknowledged "
                "(refused or failed submissions are in locust_failures.csv)"
            )

    async def _drain(self, target: Target, jobs: list[AcknowledgedJob]) -> None:
        """Wait until every acknowledged job is terminal in Postgres, or the drain bound."""
        ids = sorted({j.job_id for j in jobs})
        if not ids:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.scenario.drain_timeout_s
        conn = await asyncpg.connect(target.database_url, timeout=10)
        left = len(ids)
        try:
            for _ in range(math.ceil(self.scenario.drain_timeout_s / DRAIN_POLL_S) + 1):
                terminal = await conn.fetchval(
                    "SELECT count(*) FROM product_import_jobs WHERE id = ANY($1::uuid[]) "
                    "AND status IN ('COMPLETED', 'FAILED', 'CANCELLED')",
                    ids,
                    timeout=30,
                )
                left = len(ids) - int(terminal)
                if left == 0 or loop.time() >= deadline:
                    break
                await asyncio.sleep(DRAIN_POLL_S)
        finally:
            await conn.close(timeout=10)
        if left:
            self.problems.append(
                f"drain: {left} acknowledged jobs not terminal after {self.scenario.drain_timeout_s} s"
            )
            self.echo_err(f"drain timed out: {left} jobs still not terminal")

    async def _progress_loop(self, bound: float) -> None:
        interval = self.options.progress_interval
        for _ in range(math.ceil(bound / interval) + 1):
            await asyncio.sleep(interval)
            self._print_progress()

    def _print_progress(self) -> None:
        if self.run_dir is None:
            return
        counts = count_records(self.records_dir)
        row = last_sample(self.dir / SAMPLES_CSV)
        elapsed = 0.0 if self.info is None else (datetime.now(UTC) - self.info.started_at).total_seconds()
        self.echo(
            format_progress(
                Progress(
                    elapsed_s=elapsed,
                    phase=self.phase,
                    planned=self.planned,
                    acknowledged=counts.acknowledged,
                    completed=sample_int(row, "jobs_completed"),
                    failed=sample_int(row, "jobs_failed"),
                    waiting=sample_int(row, "waiting"),
                    active=sample_int(row, "active"),
                    deferred=sample_int(row, "deferred"),
                    workers=sample_int(row, "workers_alive"),
                )
            )
        )

    # --- the end ----------------------------------------------------------------------------

    def _teardown(self) -> None:
        """Stop what this run started; Ctrl-C and SIGTERM wait meanwhile (a half-stopped stack helps no one)."""
        previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            if self.options.attach and self.pool is not None:
                stopped = self.pool.stop_started()
                if stopped:
                    self.echo(f"stopped the workers this run added: {', '.join(stopped)}")
            if self.stack is not None:
                self.echo("stopping the stack")
                try:
                    self.stack.stop()
                finally:
                    self._remove_stack_data()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _remove_stack_data(self) -> None:
        """Data directories go (Postgres, Redis); logs and stack.json stay as evidence."""
        if self.stack is None:
            return
        for name in self.stack.info.paths:
            path = self.stack.dir.component_dir(name)
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)

    def _finish(self, *, interrupted: bool, error: str | None) -> RunResult:
        if self.run_dir is None or self.info is None:
            return RunResult(self.run_dir, EXIT_INTERRUPTED if interrupted else EXIT_CANNOT_RUN, reason=error or "")
        if self.plan_path.exists():  # the keys go; which store each client imported stays
            write_plan(self.plan_path, read_plan(self.plan_path).redacted())
        if interrupted:
            self.problems.append("interrupted")
        if error:
            self.problems.append(f"error: {error.splitlines()[0]}")
        notes = [*self.notes, *(f"PROBLEM: {p}" for p in self.problems)]
        self.info = self.info.model_copy(update={"ended_at": datetime.now(UTC), "notes": " | ".join(notes)})
        write_run_info(self.dir, self.info)
        code = render_run(self.dir, gate=self.options.gate)
        verdict, reason = "", ""
        if code != EXIT_UNUSABLE:
            summary = read_json(self.dir / SUMMARY_JSON)
            verdict, reason = str(summary["verdict"]), str(summary["reason"])
        if interrupted:
            final = EXIT_INTERRUPTED
        elif error is not None or code == EXIT_UNUSABLE:
            final = EXIT_CANNOT_RUN
        elif code != EXIT_PASS or self.problems:
            final = EXIT_FAIL
        else:
            final = EXIT_PASS
        return RunResult(self.dir, final, verdict, reason, list(self.problems))


def shown(path: Path) -> Path:
    """``path`` relative to the working directory when it is below it (shorter to read and paste)."""
    try:
        return path.relative_to(Path.cwd())
    except ValueError:
        return path


@contextlib.contextmanager
def _lab_s3_credentials() -> Iterator[None]:
    """The lab's fixed S3 credentials for boto3 while the checker lists the bucket.

    The S3 endpoint is the stack's moto server; a developer's own AWS keys must never be sent
    there (nor be needed), so the lab's replace them for the duration and are taken back after.
    """
    saved = {k: os.environ.get(k) for k in CREDENTIALS}
    os.environ.update(CREDENTIALS)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """A CI runner cancels with SIGTERM: clean up exactly as for Ctrl-C."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
