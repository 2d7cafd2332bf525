"""``drill report <run-dir>``: re-judge and re-render a recorded run, offline.

The CLI runs typer's markdown mode, where a bare ``<run-id>`` is an HTML tag and vanishes from
``--help``: placeholders are written as code (backticks) there.

Exit codes are the run's: 0 every measured criterion passed, 1 one failed, 2 the run
directory or the criteria could not be read (no verdict at all).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from lab.choices import GateChoice
from lab.criteria import DEFAULT_CRITERIA
from lab.rundir import REPORT_HTML, SUMMARY_JSON, read_json
from reports.render import EXIT_UNUSABLE, render_run

app = typer.Typer(
    add_completion=False, rich_markup_mode="markdown", help="Render a run directory's reports from its recorded data."
)


@app.command("report")
def report(
    run_dir: Annotated[
        Path,
        typer.Argument(
            help="A run directory, e.g. `reports/out/<run-id>`.",
            file_okay=False,
            dir_okay=True,
        ),
    ],
    criteria: Annotated[
        Path,
        typer.Option(
            help="The criteria table to judge against.",
            # The default is the file shipped in the package: shown by name, not by this
            # machine's install path.
            show_default="lab/criteria.toml",
            exists=True,
            dir_okay=False,
        ),
    ] = DEFAULT_CRITERIA,
    gate: Annotated[
        GateChoice,
        typer.Option(
            help="Which targets of the criteria table decide pass/fail: the seed's, or the project's (stricter)."
        ),
    ] = GateChoice.SEED,
) -> None:
    """Re-judge a recorded run: `drill report reports/out/<run-id>`.

    Re-evaluates the criteria from the run directory's recorded data and re-renders
    report.html, report.md, summary.json, junit.xml and the charts. Exit code 0 when every
    measured criterion passed, 1 when one failed, 2 when the run directory or the criteria
    could not be read.
    """
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    code = render_run(run_dir, criteria_path=criteria, gate=gate.value)
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
