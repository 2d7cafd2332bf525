"""report.md: the run in Markdown, for a pull request comment or a CI job summary.

Charts are linked relative to the run directory (charts/*.png), so the file renders wherever
the directory is published whole; report.html is the one that travels alone.
"""

from __future__ import annotations

from pathlib import Path

from lab.criteria import Verdict
from reports.charts import Chart
from reports.data import RunData
from reports.experiments import ExperimentSection
from reports.facts import (
    DURATION_HEADER,
    checker_rows,
    criteria_rows,
    duration_table,
    failure_reasons,
    finding_tables,
    run_facts,
)

ICON = {Verdict.PASS: "✅", Verdict.FAIL: "❌", Verdict.NOT_MEASURED: "⚪", Verdict.ERROR: "⛔"}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def _experiments(sections: list[ExperimentSection], run_dir: Path) -> list[str]:
    """One subsection per experiment run: timeline, figures vs targets, checks, checker, journal."""
    out = ["## Chaos experiments", ""]
    for s in sections:
        icon = "✅" if s.verdict == "PASS" else "❌"
        out += [f"### {icon} {s.title}", "", f"_{s.journal.description}_", ""]
        if s.chart is not None:
            out += [f"![{s.journal.slug}]({s.chart.relative_to(run_dir).as_posix()})", ""]
        out += [f"_{s.chart_caption}_", ""]
        out += [*_table(["", ""], [[f"**{k}**", v] for k, v in s.details]), ""]
        if s.figures:
            out += ["**Recovery figures**", ""]
            out += _table(
                ["figure", "measured", "seed target", "project target", "verdict", "meaning"],
                [[f.metric, f.measured, f.target, f.project, f.verdict or "—", f.meaning] for f in s.figures],
            )
            out.append("")
        if s.journal.checks:
            out += ["**Checks**", ""]
            out += _table(
                ["", "check", "detail"],
                [["✅" if c.passed else "❌", c.name, c.detail] for c in s.journal.checks],
            )
            out.append("")
        if s.checker:
            out += ["**Data-loss checker (this run's jobs)**", ""]
            out += _table(["", "count"], [[("⚠️ " if bad else "") + label, value] for label, value, bad in s.checker])
            out.append("")
        out += ["**Journal**", ""]
        out += _table(["phase", "type", "activity", "start (s)", "took (s)", "status", "output"], s.activities)
        out.append("")
    return out


def markdown(data: RunData, charts: list[Chart], experiments: list[ExperimentSection] | None = None) -> str:
    ev = data.evaluation
    icon = "✅" if ev.passed else "❌"
    out = [
        f"# {icon} {ev.verdict}: {data.info.scenario}",
        "",
        f"> **{ev.verdict}** — {ev.reason}",
        "",
        f"Judged on the **{ev.gate}** targets. Exit code {ev.exit_code}.",
        "",
        "## Run",
        "",
        *_table(["", ""], [[f"**{k}**", v] for k, v in run_facts(data)]),
        "",
        "## Success criteria",
        "",
        *_table(
            ["", "id", "criterion", "seed target", "project target", "measured", "verdict", "project"],
            [
                [
                    ICON[r.verdict],
                    r.id,
                    r.title,
                    f"{r.seed_target} (`{r.seed_thresholds}`)",
                    f"`{r.project_target}`" if r.project_target != "—" else "—",
                    r.measured,
                    f"**{r.verdict_label}**",
                    r.project_label,
                ]
                for r in criteria_rows(data)
            ],
        ),
        "",
    ]
    reasons = [r for r in criteria_rows(data) if r.verdict is not Verdict.PASS]
    if reasons:
        out += ["Why:", ""] + [f"- **{r.id}** ({r.verdict_label}): {_cell(r.reason)}" for r in reasons] + [""]
    durations = duration_table(data)
    if durations:
        out += ["## Job durations by catalog size", "", "Submit to COMPLETED, as the clients saw it.", ""]
        out += [*_table(DURATION_HEADER, durations), ""]
    if experiments:
        out += _experiments(experiments, data.run_dir)
    out += ["## Charts", ""]
    for chart in charts:
        out.append(f"### {chart.title}")
        out.append("")
        if chart.path is not None:
            out.append(f"![{chart.title}]({chart.path.relative_to(data.run_dir).as_posix()})")
            out.append("")
        out += [f"_{chart.caption}_", ""]
    out += ["## Data-loss checker", ""]
    rows = checker_rows(data)
    if not rows:
        out += ["The checker did not run: this run has no checker.json.", ""]
    else:
        out += _table(
            ["", "count", "meaning"],
            [
                [("⚠️ " if r.problem else "") + r.label, f"**{r.value}**" if r.problem else r.value, r.meaning]
                for r in rows
            ],
        )
        out.append("")
        reasons_seen = failure_reasons(data)
        if reasons_seen:
            out += ["### Failure reasons", "", *_table(["reason", "jobs"], [[r, str(n)] for r, n in reasons_seen]), ""]
        for category, columns, table_rows, more in finding_tables(data):
            out += [f"### {category.replace('_', ' ').capitalize()}", "", *_table(columns, table_rows)]
            if more:
                out.append(f"\n…and {more} more (all counted above; first ones in checker.json).")
            out.append("")
        if data.check and data.check.sources_unchecked:
            out += ["### Sources not checked for missing items", ""]
            out += _table(
                ["company", "source", "why"],
                [[s["company_id"], s["source"], s["reason"]] for s in data.check.sources_unchecked],
            )
            out.append("")
    return "\n".join(out).rstrip() + "\n"


def write_markdown(
    data: RunData, charts: list[Chart], path: Path, experiments: list[ExperimentSection] | None = None
) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(markdown(data, charts, experiments))
    tmp.replace(path)
