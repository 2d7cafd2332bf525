"""Render every derived file of a run directory from its recorded files: ``drill report``.

Rendering is repeatable and offline: it reads only the run directory (and the criteria
table), so a run can be re-judged after the criteria change, or re-drawn after a chart is
improved, without the stack that produced it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from lab.criteria import DEFAULT_CRITERIA, CriteriaError, Evaluation, Gate
from lab.rundir import (
    CHARTS_DIR,
    CRITERIA_JSON,
    JUNIT_XML,
    REPORT_HTML,
    REPORT_MD,
    SUMMARY_JSON,
    RunDirError,
    write_json,
)
from reports.charts import Chart, render_charts
from reports.data import load_run
from reports.experiments import experiment_sections
from reports.html import write_html
from reports.machine_readable import write_junit, write_summary
from reports.markdown import write_markdown

log = logging.getLogger(__name__)

EXIT_UNUSABLE = 2
"""The run directory or the criteria could not be read: no verdict at all (distinct from FAIL)."""


@dataclass(frozen=True)
class Rendered:
    run_dir: Path
    evaluation: Evaluation
    charts: list[Chart]
    files: list[str]

    @property
    def exit_code(self) -> int:
        return self.evaluation.exit_code


def render(run_dir: Path, *, criteria_path: Path = DEFAULT_CRITERIA, gate: Gate = "seed") -> Rendered:
    """Write criteria.json, charts/, junit.xml, report.md, report.html and summary.json.

    Raises RunDirError or CriteriaError when the inputs cannot be read.
    """
    if not run_dir.is_dir():
        raise RunDirError(f"{run_dir}: not a directory")
    data = load_run(run_dir, criteria_path=criteria_path, gate=gate)
    write_json(run_dir / CRITERIA_JSON, data.evaluation.to_json())
    charts = render_charts(data, run_dir / CHARTS_DIR)
    for chart in charts:  # a chart not drawn this time must not survive from an older render
        stale = run_dir / CHARTS_DIR / f"{chart.name}.png"
        if chart.path is None and stale.exists():
            stale.unlink()
    experiments = experiment_sections(data, run_dir / CHARTS_DIR)  # chaos runs: one section per experiment run
    write_junit(data, run_dir / JUNIT_XML)
    write_markdown(data, charts, run_dir / REPORT_MD, experiments)
    write_html(data, charts, run_dir / REPORT_HTML, experiments)
    files = sorted({*(p.relative_to(run_dir).as_posix() for p in run_dir.rglob("*") if p.is_file()), SUMMARY_JSON})
    write_summary(data, charts, files, run_dir / SUMMARY_JSON, experiments)
    ev = data.evaluation
    log.info("report: %s %s (%s) -> %s", data.info.run_id, ev.verdict, ev.reason, run_dir / REPORT_HTML)
    return Rendered(run_dir, ev, charts, files)


def render_run(run_dir: Path, *, criteria_path: Path = DEFAULT_CRITERIA, gate: Gate = "seed") -> int:
    """Render and return the run's exit code: 0 pass, 1 a criterion failed, 2 unreadable inputs."""
    try:
        return render(Path(run_dir), criteria_path=criteria_path, gate=gate).exit_code
    except (RunDirError, CriteriaError) as exc:
        log.error("report: cannot judge %s: %s", run_dir, exc)
        return EXIT_UNUSABLE
