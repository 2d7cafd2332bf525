"""``drill chaos``: chaos experiments against the HA stack, judged and reported.

::

    drill chaos redis-failover [--runs 3]       one experiment (on a stack it starts)
    drill chaos --suite chaos                   every experiment once (staging-style drill)
    drill chaos --suite dr                      every experiment three times, in rounds (DR exercise)
    drill chaos worker-kill --attach            against the stack `drill up --topology ha` started

Each invocation writes one run directory under ``reports/out/`` (kind ``chaos``, or ``dr`` for
the DR suite), judges the criteria, renders the report and exits non-zero when anything
failed: a criterion, an experiment's own check, or an experiment that could not run.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from chaos.experiments import EXPERIMENTS
from chaos.journal import Journal
from chaos.profile import (
    BASE_WORKERS,
    CHAOS_ENV,
    SENTINEL_DOWN_AFTER_MS,
    SENTINEL_FAILOVER_TIMEOUT_MS,
    mismatches,
    up_command,
)
from chaos.progress import Progress
from chaos.session import ChaosSession, Scheduled, schedule
from chaos.target import AttachedTarget, ChaosTarget, OwnedTarget, TargetError
from lab.choices import Suite
from lab.logcheck import check_logs
from lab.rundir import (
    RUNS_ROOT,
    Measurement,
    RunInfo,
    append_measurement,
    create_run_dir,
    describe_machine,
    git_revision,
    new_run_id,
    write_run_info,
)
from lab.stack.errors import StackError
from lab.stack.ha import HaStack
from lab.stack.stack import ProgressEvent, Stack, StackConfig
from lab.stack.stackdir import StackDir
from reports.render import EXIT_UNUSABLE, render_run

SUITES = {Suite.CHAOS.value: 1, Suite.DR.value: 3}  # runs of each experiment
EXIT_INTERRUPTED = 130
DEFAULT_STACK_DIR = Path(".drill-chaos")
LOG_COPY_LIMIT = 200 * 1024 * 1024
# The importer's own processes (api, worker-N, chaos-worker-*, reconciler); not the servers'.
IMPORTER_LOG_PREFIXES = ("api", "worker", "chaos-worker", "reconciler")


def _parse_list(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def plan_for(
    experiment: str | None, suite: str | None, runs: int, quick: bool, durations: str | None, variants: str | None
) -> tuple[list[Scheduled], str, str]:
    """(schedule, scenario, kind) from the command line; raises BadParameter on nonsense."""
    if (experiment is None) == (suite is None):
        raise typer.BadParameter("name one experiment, or --suite chaos|dr", param_hint="EXPERIMENT")
    if suite is not None:
        if suite not in SUITES:
            raise typer.BadParameter(f"unknown suite {suite!r}; choose chaos or dr", param_hint="--suite")
        names = list(EXPERIMENTS)
        plan = schedule(names, runs=SUITES[suite] if runs == 1 else runs, quick=quick, rounds=True)
        scenario, kind = f"{suite}-suite", ("dr" if suite == "dr" else "chaos")
    else:
        assert experiment is not None
        if experiment not in EXPERIMENTS:
            raise typer.BadParameter(
                f"unknown experiment; choose from {', '.join(EXPERIMENTS)}", param_hint="EXPERIMENT"
            )
        plan = schedule([experiment], runs=runs, quick=quick, rounds=False)
        scenario, kind = experiment, "chaos"
    if durations or variants:
        from dataclasses import replace

        from chaos.experiments.db_partition import PartitionParams

        adjusted = []
        for item in plan:
            if isinstance(item.params, PartitionParams):
                changes: dict[str, Any] = {}
                if durations:
                    changes["durations"] = tuple(float(d) for d in _parse_list(durations))
                if variants:
                    changes["variants"] = tuple(_parse_list(variants))
                try:
                    item = Scheduled(item.experiment, item.run, item.runs, replace(item.params, **changes))
                except ValueError as exc:
                    raise typer.BadParameter(str(exc), param_hint="--durations/--variants") from exc
            adjusted.append(item)
        plan = adjusted
    return plan, scenario, kind


def complete_experiment(incomplete: str) -> list[str]:
    """Shell completion for EXPERIMENT (a completion, not a choice: the check and its message
    stay plan_for's, which also names the experiments)."""
    return [name for name in EXPERIMENTS if name.startswith(incomplete)]


def _stack_progress(progress: Progress) -> Any:
    def report(event: ProgressEvent) -> None:
        if event.status in ("ready", "failed", "info"):
            elapsed = "" if event.elapsed is None else f" ({event.elapsed:.1f}s)"
            progress(f"stack: {event.component} {event.status} {event.detail}{elapsed}")

    return report


def chaos(
    experiment: Annotated[
        str | None,
        typer.Argument(
            help=f"One of: {', '.join(EXPERIMENTS)}. Omit with --suite.", autocompletion=complete_experiment
        ),
    ] = None,
    suite: Annotated[
        Suite | None,
        typer.Option(help="chaos: every experiment once. dr: every experiment three times, in rounds."),
    ] = None,
    runs: Annotated[int, typer.Option(min=1, max=20, help="Repeat the experiment (or the suite) this many times.")] = 1,
    attach: Annotated[
        bool, typer.Option(help="Use the HA stack already running in --run-dir instead of starting one.")
    ] = False,
    run_dir: Annotated[
        Path, typer.Option("--run-dir", help="Stack directory: the one to attach to, or where to start a stack.")
    ] = DEFAULT_STACK_DIR,
    out: Annotated[Path, typer.Option(help="Where run directories are written.")] = RUNS_ROOT,
    quick: Annotated[bool, typer.Option(help="The shortest form of each experiment (what CI runs).")] = False,
    durations: Annotated[
        str | None, typer.Option(help="db-partition: comma-separated seconds (default 5,15,30,60).")
    ] = None,
    variants: Annotated[
        str | None, typer.Option(help="db-partition: comma-separated of down,timeout,latency (default all).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seeds the random choices (victims, stores).")] = 1,
    print_profile: Annotated[
        bool, typer.Option("--print-profile", help="Print the `drill up` line for a stack --attach accepts, and exit.")
    ] = False,
) -> None:
    """Run chaos experiments under load: inject a real fault, wait for recovery, prove nothing was lost.

    Exit code 0 when every criterion and every experiment check passed; 1 when something failed
    (or an experiment could not run, e.g. no Toxiproxy); 2 when the drill could not start; 130
    when interrupted (Ctrl-C or SIGTERM: rollbacks ran, the partial report is written).
    """
    if print_profile:
        typer.echo(up_command(str(run_dir)))
        raise typer.Exit(0)
    suite_name = None if suite is None else suite.value
    plan, scenario, kind = plan_for(experiment, suite_name, runs, quick, durations, variants)
    raise typer.Exit(execute(plan, scenario, kind, attach=attach, run_dir=run_dir, out=out, seed=seed))


def execute(
    plan: list[Scheduled], scenario: str, kind: str, *, attach: bool, run_dir: Path, out: Path, seed: int
) -> int:
    """Run a chaos plan into one new run directory; the exit code (0 pass, 1 fail, 2 could not start).

    Shared by ``drill chaos`` and ``drill run chaos|dr``, which differ only in their faces.
    """
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    progress = Progress()
    started = datetime.now(UTC)
    run_id = new_run_id(scenario, started)
    out_dir = create_run_dir(run_id, out)
    progress(f"drill {scenario}: {len(plan)} experiment run(s) -> {out_dir}")
    stack: Stack | None = None
    try:
        if attach:
            target: ChaosTarget = _attach(run_dir, progress)
        else:
            stack = _start_stack(run_dir, progress)
            assert isinstance(stack, HaStack)
            target = OwnedTarget(stack)
        info = RunInfo(
            run_id=run_id,
            scenario=scenario,
            kind=kind,
            started_at=started,
            machine=describe_machine(),
            stack=_stack_facts(target, attach),
            git_revision=git_revision(),
            notes=f"drill {' '.join(sys.argv[1:])}".strip(),
        )
        write_run_info(out_dir, info)
        session = ChaosSession(target, out_dir, started_at=started, progress=progress, seed=seed)
        journals, interrupted = _run(session, plan)
        write_run_info(out_dir, info.model_copy(update={"ended_at": datetime.now(UTC)}))
    except (StackError, TargetError) as exc:
        typer.echo(f"drill chaos: {exc}", err=True)
        return 2
    finally:
        if stack is not None:
            progress("stopping the stack")
            stack.stop()
            _keep_stack_evidence(stack, out_dir / "stack")
    _check_logs(stack.dir.logs_dir if stack is not None else StackDir(run_dir).logs_dir, out_dir)
    code = render_run(out_dir)
    _print_summary(journals, out_dir, code)
    failed_runs = [j for j in journals if not j.passed]
    if interrupted:
        return EXIT_INTERRUPTED
    if code == EXIT_UNUSABLE:
        return 2
    return 1 if code or failed_runs else 0


def _run(session: ChaosSession, plan: list[Scheduled]) -> tuple[list[Journal], bool]:
    """asyncio.run, with Ctrl-C turned into a cancellation the rollbacks survive."""

    async def main() -> list[Journal]:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        if task is not None:
            loop.add_signal_handler(signal.SIGTERM, task.cancel)
        return await session.run(plan)

    try:
        return asyncio.run(main()), False
    except (KeyboardInterrupt, asyncio.CancelledError):
        typer.echo("drill chaos: interrupted; rollbacks ran, partial results are in the run directory", err=True)
        return session.journals, True


def _start_stack(run_dir: Path, progress: Progress) -> Stack:
    config = StackConfig(
        run_dir=run_dir,
        workers=BASE_WORKERS,
        topology="ha",
        env_overrides=dict(CHAOS_ENV),
        sentinel_down_after_ms=SENTINEL_DOWN_AFTER_MS,
        sentinel_failover_timeout_ms=SENTINEL_FAILOVER_TIMEOUT_MS,
    )
    progress(f"starting an HA stack in {run_dir.absolute()}")
    stack = Stack(config, progress=_stack_progress(progress))
    stack.start()
    return stack


def _attach(run_dir: Path, progress: Progress) -> ChaosTarget:
    target = AttachedTarget(run_dir)
    if target.dead_at_attach:
        progress(f"warning: processes of the attached stack not running: {', '.join(target.dead_at_attach)}")
    differ = mismatches(target.importer_env)
    if differ:
        names = ", ".join(f"{k} (has {have!r}, needs {want!r})" for k, (have, want) in sorted(differ.items()))
        raise TargetError(
            f"the stack in {run_dir} does not run the chaos settings: {names}. "
            f"Start it with:\n  {up_command(str(run_dir))}"
        )
    progress(f"attached to the HA stack in {run_dir.absolute()}")
    return target


def _stack_facts(target: ChaosTarget, attached: bool) -> dict[str, Any]:
    env = target.importer_env
    facts: dict[str, Any] = {
        "topology": "ha (1 primary, 2 replicas, 3 Sentinels, Toxiproxy)"
        if target.layout.toxiproxy_url
        else "ha without Toxiproxy",
        "attached": attached,
        "workers": BASE_WORKERS,
        "worker_concurrency": int(env.get("IMPORTER_WORKER_CONCURRENCY", "5")),
        "sentinel_down_after_ms": target.layout.sentinel_down_after_ms,
        "sentinel_failover_timeout_ms": target.layout.sentinel_failover_timeout_ms,
    }
    for key in sorted(CHAOS_ENV):
        facts[key.removeprefix("IMPORTER_").lower()] = env.get(key)
    return facts


def _check_logs(logs_dir: Path, out_dir: Path) -> None:
    """O3 on every importer process of the drill, the experiments' extra workers included."""
    paths = [p for p in sorted(logs_dir.glob("*.log")) if p.name.startswith(IMPORTER_LOG_PREFIXES)]
    logs = check_logs(paths)
    append_measurement(out_dir, Measurement(metric="log_lines_checked", value=float(logs.lines)))
    append_measurement(out_dir, Measurement(metric="log_lines_invalid", value=float(logs.invalid)))
    typer.echo(f"logs: {logs.lines} lines in {logs.files} importer log files, {logs.invalid} not actionable")
    for example in logs.examples:
        typer.echo(f"  {example}")


def _keep_stack_evidence(stack: Stack, dest: Path) -> None:
    """The stack's stack.json and its processes' logs go with the run: a failed drill is explained
    by them. Data directories (Postgres, Redis) stay behind in the stack directory."""
    source = stack.dir.logs_dir
    dest.mkdir(parents=True, exist_ok=True)
    info = stack.dir.path / "stack.json"
    if info.exists():
        shutil.copy2(info, dest / "stack.json")  # keeps its 0600 mode: it holds the passwords
    if not source.is_dir():
        return
    total = sum(p.stat().st_size for p in source.rglob("*") if p.is_file())
    if total > LOG_COPY_LIMIT:
        (dest / "logs-not-copied.txt").write_text(f"{total} bytes in {source}: too big to copy\n")
        return
    shutil.copytree(source, dest / "logs", dirs_exist_ok=True)


def _print_summary(journals: list[Journal], out_dir: Path, code: int) -> None:
    typer.echo("")
    for journal in journals:
        mark = "ok  " if journal.passed else "FAIL"
        figures = ", ".join(
            f"{m.metric}={m.value:.2f}" for m in journal.measurements if m.metric not in ("experiment_check",)
        )
        typer.echo(f"  {mark} {journal.slug:<20} {journal.status:<11} {figures[:200]}")
        for check in journal.checks:
            if not check.passed:
                typer.echo(f"       check failed: {check.name} {check.detail}".rstrip())
        if journal.reason and not journal.passed:
            typer.echo(f"       {journal.reason}")
    typer.echo(f"\nreport: {out_dir / 'report.html'}  (criteria exit code {code})")


def register(app: typer.Typer) -> None:
    """Add ``chaos`` to the drill CLI."""
    app.command("chaos")(chaos)
