"""``drill up``, ``drill down``, ``drill status``: the local stack from the command line.

``up`` starts every process in its own session and returns once all are healthy: the
processes outlive it, and ``<run-dir>/stack.json`` is how ``down``, ``status`` and every other
tool find them again (by pid *and* create time, so a recycled pid is never touched).
"""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path
from typing import Annotated

import typer

from lab.choices import TopologyChoice
from lab.stack.errors import StackAlreadyRunningError, StackError
from lab.stack.info import StackInfo, load_info, save_info, stack_json_path
from lab.stack.process import Identity, StopOutcome
from lab.stack.recorded import process_statuses, stop_recorded
from lab.stack.stack import ProgressEvent, Stack, StackConfig
from lab.stack.stackdir import StackDir

DEFAULT_RUN_DIR = Path(".drill")

RunDirOption = Annotated[
    Path, typer.Option("--run-dir", help="Directory holding the stack's data, logs and stack.json.")
]


def parse_env(pairs: list[str]) -> dict[str, str]:
    """``KEY=VALUE`` items into a dict; the value may itself contain '='."""
    env: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key or not key.replace("_", "").isalnum():
            raise typer.BadParameter(f"expected KEY=VALUE, got {pair!r}", param_hint="--env")
        env[key] = value
    return env


class ProgressPrinter:
    """One line per component as it becomes ready (or fails); safe from the start threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def __call__(self, event: ProgressEvent) -> None:
        if event.status == "starting":
            return
        elapsed = "" if event.elapsed is None else f" ({event.elapsed:.1f}s)"
        mark = {"ready": "ok", "failed": "FAILED", "stopped": "stopped", "info": ".."}[event.status]
        with self._lock:
            typer.echo(f"  {event.component:<12} {mark:<8} {event.detail}{elapsed}", err=event.status == "failed")


def print_summary(info: StackInfo, run_dir: Path) -> None:
    typer.echo("")
    for label, url in info.urls().items():
        if url:
            typer.echo(f"  {label + ':':<10} {url}")
    typer.echo(f"  {'s3 bucket:':<10} {info.s3_bucket}")
    if info.ha is not None:
        ha = info.ha
        typer.echo(f"  {'sentinels:':<10} {', '.join(ha.sentinels)} (master name {ha.master_name})")
        for node in ha.nodes:
            via = f" via proxy 127.0.0.1:{node.proxy_port}" if node.proxy_port else ""
            typer.echo(f"  {node.name + ':':<10} 127.0.0.1:{node.port}{via}")
        if ha.toxiproxy_url:
            typer.echo(f"  {'toxiproxy:':<10} {ha.toxiproxy_url} (postgres proxy 127.0.0.1:{ha.postgres_proxy_port})")
        else:
            typer.echo("  toxiproxy: not installed; partition experiments cannot run (see scripts/setup.sh)")
    typer.echo(f"  operator token: {info.operator_token}")
    typer.echo(f"  stack file:     {stack_json_path(run_dir.absolute())}")
    typer.echo(f"  logs:           {run_dir.absolute() / 'logs'}")


def up(
    workers: Annotated[int, typer.Option(min=0, help="Number of importer worker processes.")] = 2,
    run_dir: RunDirOption = DEFAULT_RUN_DIR,
    env: Annotated[
        list[str] | None,
        typer.Option(
            "--env",
            help="KEY=VALUE for every importer process, repeatable (e.g. --env IMPORTER_LEASE_SECONDS=5).",
        ),
    ] = None,
    infra_only: Annotated[
        bool, typer.Option(help="Start Postgres, Redis, S3 and the provider only, not the importer.")
    ] = False,
    provider_arg: Annotated[
        list[str] | None, typer.Option(help="Extra argument for the fake provider, repeatable.")
    ] = None,
    start_timeout: Annotated[
        float | None, typer.Option(min=1.0, help="Seconds each component may take to become healthy.")
    ] = None,
    topology: Annotated[
        TopologyChoice,
        typer.Option(
            help="single: one Redis (quick runs). ha: Redis primary + 2 replicas + 3 Sentinels, "
            "Toxiproxy in front of Postgres and each Redis node (chaos drills)."
        ),
    ] = TopologyChoice.SINGLE,
    sentinel_down_after_ms: Annotated[
        int, typer.Option(min=100, help="ha: Sentinel down-after-milliseconds (drills shorten it).")
    ] = 5000,
    sentinel_failover_timeout_ms: Annotated[
        int, typer.Option(min=1000, help="ha: Sentinel failover-timeout in milliseconds.")
    ] = 30000,
) -> None:
    """Start the local stack in the background and wait until every part is healthy.

    Processes keep running after this command returns; stop them with `drill down`.
    Exits non-zero when a stack is already running in RUN_DIR or a component fails to
    start (its log's last lines are printed, and whatever had started is stopped).
    """
    config = StackConfig(
        run_dir=run_dir,
        workers=workers,
        topology=topology.value,
        sentinel_down_after_ms=sentinel_down_after_ms,
        sentinel_failover_timeout_ms=sentinel_failover_timeout_ms,
        env_overrides=parse_env(env or []),
        with_importer=not infra_only,
        provider_args=list(provider_arg or []),
        start_timeout=start_timeout,
    )
    typer.echo(f"starting the stack in {run_dir.absolute()}")
    stack = Stack(config, progress=ProgressPrinter())
    try:
        info = stack.start()
    except StackAlreadyRunningError as exc:
        typer.echo(f"drill up: {exc}", err=True)
        raise typer.Exit(1) from exc
    except StackError as exc:
        typer.echo(f"drill up failed: {exc}", err=True)
        raise typer.Exit(1) from exc
    except KeyboardInterrupt:
        typer.echo("drill up interrupted; what had started was stopped", err=True)
        raise typer.Exit(130) from None
    print_summary(info, run_dir)
    typer.echo(f"\nthe stack is up; stop it with: drill down --run-dir {run_dir}")


def down(run_dir: RunDirOption = DEFAULT_RUN_DIR) -> None:
    """Stop every process recorded in RUN_DIR/stack.json, and nothing else.

    A process is stopped only if its pid still belongs to the process that was started
    (same create time): a recycled pid is never touched. Importer processes stop first,
    then the services, then the data stores; SIGKILL follows when one does not stop in
    time. Safe to run twice: a stopped stack is reported and left alone.
    """
    try:
        info = load_info(run_dir)
    except StackError as exc:
        typer.echo(f"drill down: {exc}", err=True)
        raise typer.Exit(1) from exc
    if info is None:
        typer.echo(f"no stack recorded in {run_dir.absolute()}; nothing to stop")
        return
    try:
        with StackDir(run_dir).locked():
            statuses = process_statuses(info)
            for s in statuses:
                if s.identity is Identity.RECYCLED:
                    typer.echo(f"  {s.record.name:<12} left alone: pid {s.record.pid} now belongs to another process")
            live = [s.record for s in statuses if s.alive]
            if not live:
                typer.echo(f"no process of the stack in {run_dir.absolute()} is running; nothing to stop")
                save_info(run_dir, info.model_copy(update={"state": "stopped"}))
                return
            save_info(run_dir, info.model_copy(update={"state": "stopping"}))
            typer.echo(f"stopping {len(live)} process(es) of the stack in {run_dir.absolute()}")
            outcomes = stop_recorded(live, report=lambda name, outcome: typer.echo(f"  {name:<12} {outcome.value}"))
            save_info(run_dir, info.model_copy(update={"state": "stopped"}))
    except StackError as exc:
        typer.echo(f"drill down: {exc}", err=True)
        raise typer.Exit(1) from exc
    stuck = [name for name, outcome in outcomes.items() if outcome is StopOutcome.STUCK]
    if stuck:
        typer.echo(f"drill down: still running after SIGKILL: {', '.join(stuck)}", err=True)
        raise typer.Exit(1)


def status(
    run_dir: RunDirOption = DEFAULT_RUN_DIR,
    as_json: Annotated[bool, typer.Option("--json", help="Print stack.json plus each process's liveness.")] = False,
) -> None:
    """Show each process of the stack (alive or dead) and the URLs.

    Exit code 0 when every recorded process is alive, 1 otherwise (or when there is no stack).
    """
    try:
        info = load_info(run_dir)
    except StackError as exc:
        typer.echo(f"drill status: {exc}", err=True)
        raise typer.Exit(1) from exc
    if info is None:
        typer.echo(f"no stack recorded in {run_dir.absolute()}", err=not as_json)
        raise typer.Exit(1)
    statuses = process_statuses(info)
    if as_json:
        data = info.model_dump(mode="json")
        identity = {s.record.name: s.identity for s in statuses}
        for process in data["processes"]:
            process["alive"] = identity[process["name"]] is Identity.ALIVE
            process["identity"] = identity[process["name"]].value
        json.dump(data, sys.stdout, indent=2)
        typer.echo("")
    else:
        typer.echo(f"stack in {run_dir.absolute()}: {info.state} (since {info.updated_at:%Y-%m-%d %H:%M:%S} UTC)")
        for s in statuses:
            state = {Identity.ALIVE: "alive", Identity.GONE: "dead", Identity.RECYCLED: "dead*"}[s.identity]
            typer.echo(f"  {s.record.name:<12} {state:<6} pid {s.record.pid:<8} {s.record.log_path}")
        if any(s.identity is Identity.RECYCLED for s in statuses):
            typer.echo("  (* its pid now belongs to another process, which drill leaves alone)")
        print_summary(info, run_dir)
    if not statuses or not all(s.alive for s in statuses):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add ``up``, ``down`` and ``status`` to the drill CLI."""
    app.command("up")(up)
    app.command("down")(down)
    app.command("status")(status)
