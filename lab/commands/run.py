"""``drill run <scenario>``: the project's main job — a load drill ending in a verdict and a report.

The scenarios are data (lab/scenarios.toml); ``--help`` lists them as that file defines them.
The run itself lives in lab/drill_run.py; this module is its command-line face.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from lab.choices import GateChoice, Suite
from lab.drill_run import EXIT_CANNOT_RUN, EXIT_FAIL, EXIT_PASS, DrillRun, RunOptions, shown
from lab.progress import ProgressLog
from lab.rundir import REPORT_HTML, RUNS_ROOT
from lab.sabotage import SabotageError, parse_sabotage
from lab.scenarios import ScenarioError, get_scenario, load_scenarios

HELP_HEAD = """Run a load scenario against the local stack and judge it.

Starts a fresh stack in the run directory (or uses the one `drill up` started, with
`--attach`), creates the companies and fake-provider stores, drives the API with Locust
(one client per job: submit, follow over SSE, fall back to polling), autoscales the workers
when the scenario asks, waits until every acknowledged job is terminal, checks that nothing
was lost or duplicated, judges the success criteria, renders report.html / report.md /
summary.json / junit.xml into `reports/out/<run-id>/`, stops everything it started and prints
the report's path. Progress lines go to stderr; the verdict and the report's path to stdout.

Exit code 0 only when every criterion and the checker passed; 1 when something failed; 2
when the run could not be carried out (unknown scenario, no stack to attach to, a stack or
set-up failure); 130 when interrupted (Ctrl-C or SIGTERM: everything started is stopped).

Chaos suites (against an HA stack: Redis primary + 2 replicas + 3 Sentinels, Toxiproxy;
the same as `drill chaos --suite NAME`, see docs/chaos.md):

- **chaos**: every chaos experiment once, time compressed (staging-style drill, ~14 min).
- **dr**: every chaos experiment three times, in rounds, then the job-sizes load scenario on a
  fresh stack (the quarterly disaster-recovery exercise, ~45 min). Two reports.

Scenarios (lab/scenarios.toml):
"""

CHAOS_SUITES = tuple(suite.value for suite in Suite)
DR_LOAD_SCENARIO = "job-sizes"


def complete_scenario(incomplete: str) -> list[str]:
    """Shell completion for SCENARIO: the scenarios of lab/scenarios.toml and the chaos suites.

    A completion, not a choice: an unknown name still gets drill's own message listing the
    known ones (exit 2), and a broken scenarios file still lets the suites run.
    """
    try:
        names = list(load_scenarios())
    except ScenarioError:
        names = []
    return [name for name in [*names, *CHAOS_SUITES] if name.startswith(incomplete)]


def scenarios_help() -> str:
    try:
        scenarios = load_scenarios()
    except ScenarioError as exc:
        return HELP_HEAD + f"\n\n(the scenarios file cannot be read: {exc})"
    items = "\n".join(f"- **{s.name}** ({s.kind}): {s.description} [{s.summary()}]" for s in scenarios.values())
    return HELP_HEAD + "\n" + items


def run(
    scenario: Annotated[
        str,
        typer.Argument(
            help="A scenario of lab/scenarios.toml (listed above), or the suite chaos or dr.",
            autocompletion=complete_scenario,
        ),
    ],
    attach: Annotated[
        bool,
        typer.Option(help="Use the stack `drill up` started (its stack.json in --run-dir) instead of a fresh one."),
    ] = False,
    run_dir: Annotated[Path, typer.Option("--run-dir", help="With --attach: the running stack's directory.")] = Path(
        ".drill"
    ),
    out: Annotated[Path, typer.Option(help="Where run directories are created.")] = RUNS_ROOT,
    locust_workers: Annotated[
        int | None,
        typer.Option(
            min=0, max=16, help="Locust's distributed mode: a master and N worker processes (default: the scenario's)."
        ),
    ] = None,
    sabotage: Annotated[
        str | None,
        typer.Option(
            help=(
                "Checker self-test: `delete-products=N` deletes N imported products from Postgres behind the "
                "importer's back before the check, so the checker must report them and the run must fail."
            )
        ),
    ] = None,
    gate: Annotated[
        GateChoice,
        typer.Option(
            help="Which targets of lab/criteria.toml decide pass/fail: the seed's, or the project's (stricter)."
        ),
    ] = GateChoice.SEED,
    progress_interval: Annotated[float, typer.Option(min=1.0, max=600.0, help="Seconds between progress lines.")] = 5.0,
) -> None:
    if scenario in CHAOS_SUITES:
        raise typer.Exit(_run_suite(scenario, attach=attach, run_dir=run_dir, out=out))
    code = _run_load(
        scenario,
        RunOptions(
            out_root=out,
            attach=attach,
            stack_dir=run_dir,
            locust_workers=locust_workers,
            sabotage=None,
            gate=gate.value,
            progress_interval=progress_interval,
        ),
        sabotage,
    )
    raise typer.Exit(code)


def _run_suite(suite: str, *, attach: bool, run_dir: Path, out: Path) -> int:
    """A chaos suite; for ``dr`` the job-sizes load follows on its own fresh stack."""
    from lab.commands.chaos import DEFAULT_STACK_DIR, execute, plan_for

    plan, name, kind = plan_for(None, suite, 1, False, None, None)
    code = execute(plan, name, kind, attach=attach, run_dir=run_dir if attach else DEFAULT_STACK_DIR, out=out, seed=1)
    if suite != "dr" or code not in (EXIT_PASS, EXIT_FAIL):  # could not start, or interrupted
        return code
    typer.echo(
        f"drill run dr: chaos rounds done (exit {code}); now the {DR_LOAD_SCENARIO} load on a fresh stack", err=True
    )
    load_code = _run_load(
        DR_LOAD_SCENARIO,
        RunOptions(out_root=out, attach=False, stack_dir=Path(".drill"), locust_workers=None, sabotage=None),
        None,
    )
    return max(code, load_code)


def _run_load(scenario: str, options: RunOptions, sabotage: str | None) -> int:
    try:
        chosen = get_scenario(scenario)
        damage = parse_sabotage(sabotage) if sabotage is not None else None
    except (ScenarioError, SabotageError) as exc:
        typer.echo(f"drill run: {exc}", err=True)
        return EXIT_CANNOT_RUN
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    options = replace(options, sabotage=damage)
    # Every line of the run is a progress line, stamped and on stderr as in `drill chaos`;
    # stdout gets the verdict and the report's path only (below).
    progress = ProgressLog()
    result = DrillRun(chosen, options, echo=progress, echo_err=progress).execute()
    if result.verdict and result.exit_code in (EXIT_PASS, EXIT_FAIL):  # an aborted run has no verdict
        typer.echo(f"{result.verdict}: {result.reason}")
    for problem in result.problems:
        typer.echo(f"problem: {problem}", err=True)
    if result.run_dir is not None and (result.run_dir / REPORT_HTML).exists():
        typer.echo(f"report: {shown(result.run_dir / REPORT_HTML)}")
    elif result.run_dir is not None:
        typer.echo(f"run directory (no report): {shown(result.run_dir)}", err=True)
    return result.exit_code


def register(app: typer.Typer) -> None:
    """Add ``run`` to the drill CLI, its help listing the scenarios of lab/scenarios.toml."""
    app.command("run", help=scenarios_help())(run)
