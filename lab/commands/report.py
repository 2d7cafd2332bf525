"""``drill report <run-dir>``: re-judge and re-render a recorded run, offline.

Exit codes are the run's: 0 every measured criterion passed, 1 one failed, 2 the run
directory or the criteria could not be read (no verdict at all).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from lab.criteria import DEFAULT_CRITERIA
from lab.rundir import REPORT_HTML, SUMMARY_JSON, read_json
from reports.render import EXIT_UNUSABLE, render_run

app = typer.Typer(add_completion=False, help="Render a run directory's reports from its recorded data.")


@app.command("report")
def report(
    run_dir: Annotated[
        Path, typer.Argument(help="a run directory, e.g. reports/out/<run-id>", file_okay=False, dir_okay=True)
    ],
    criteria: Annotated[
        Path, typer.Option(help="criteria table to judge against", exists=True, dir_okay=False)
    ] = DEFAULT_CRITERIA,
    gate: Annotated[
        str, typer.Option(help="which targets decide pass/fail: seed (DESIGN.md §5) or project (stricter)")
    ] = "seed",
) -> None:
    """Re-evaluate the criteria and re-render report.html, report.md, summary.json, junit.xml, charts."""
    if gate not in ("seed", "project"):
        raise typer.BadParameter("gate must be 'seed' or 'project'", param_hint="--gate")
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    code = render_run(run_dir, criteria_path=criteria, gate=gate)  # type: ignore[arg-type]
    if code != EXIT_UNUSABLE:
        summary = read_json(run_dir / SUMMARY_JSON)
        typer.echo(f"{summary['verdict']}: {summary['reason']}")
        typer.echo(f"report: {run_dir / REPORT_HTML}")
    else:
        typer.echo(f"cannot judge {run_dir}: see the error above", err=True)
    raise typer.Exit(code)


def register(cli: typer.Typer) -> None:
    """Add ``report`` to the drill CLI: ``register(app)`` in lab/cli.py."""
    cli.command("report")(report)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
