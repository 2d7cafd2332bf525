"""summary.json and junit.xml: the verdict for machines (CI dashboards, test reporters).

JUnit carries one testcase per criterion so a CI system shows "P4 failed" the way it shows a
failing unit test: a failure holds measured vs target, a criterion not measured is skipped
(a skip is visible, unlike a pass that proves nothing), an unevaluable one is an error.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from lab.criteria import Verdict
from lab.rundir import write_json
from reports.charts import Chart
from reports.data import RunData
from reports.experiments import ExperimentSection, section_summary
from reports.facts import checker_rows, criteria_rows, run_facts


def summary(
    data: RunData, charts: list[Chart], files: list[str], experiments: list[ExperimentSection] | None = None
) -> dict[str, Any]:
    ev = data.evaluation
    return {
        "run_id": data.info.run_id,
        "scenario": data.info.scenario,
        "kind": data.info.kind,
        "verdict": ev.verdict,
        "reason": ev.reason,
        "exit_code": ev.exit_code,
        "gate": ev.gate,
        "started_at": data.info.started_at.isoformat(),
        "ended_at": data.info.ended_at.isoformat() if data.info.ended_at else None,
        "duration_s": data.duration_s,
        "machine": data.info.machine.model_dump(mode="json"),
        "git_revision": data.info.git_revision,
        "facts": dict(run_facts(data)),
        "counts": {v.value: ev.count(v) for v in Verdict},
        "criteria": [
            {
                "id": row.id,
                "title": row.title,
                "verdict": row.verdict.value,
                "measured": row.measured,
                "seed_target": row.seed_target,
                "seed_thresholds": row.seed_thresholds,
                "project_target": row.project_target,
                "project": row.project_label,
                "reason": row.reason,
            }
            for row in criteria_rows(data)
        ],
        "checker": data.check.totals if data.check else None,
        "checker_problems": [r.label for r in checker_rows(data) if r.problem],
        "charts": {c.name: (str(c.path.relative_to(data.run_dir)) if c.path else c.caption) for c in charts},
        "missing_inputs": data.missing,
        "experiments": section_summary(experiments or []),
        "files": files,
    }


def write_summary(
    data: RunData,
    charts: list[Chart],
    files: list[str],
    path: Path,
    experiments: list[ExperimentSection] | None = None,
) -> None:
    write_json(path, summary(data, charts, files, experiments))


def junit(data: RunData) -> ET.ElementTree[ET.Element]:
    ev = data.evaluation
    rows = criteria_rows(data)
    name = f"drill.{data.info.scenario}"
    counts = {
        "tests": str(len(rows)),
        "failures": str(ev.count(Verdict.FAIL)),
        "errors": str(ev.count(Verdict.ERROR)),
        "skipped": str(ev.count(Verdict.NOT_MEASURED)),
        "time": f"{data.duration_s:.3f}",
    }
    suites = ET.Element("testsuites", {"name": "drill", **counts})
    suite = ET.SubElement(
        suites,
        "testsuite",
        {"name": name, "timestamp": data.info.started_at.isoformat(), "hostname": data.info.machine.hostname, **counts},
    )
    properties = ET.SubElement(suite, "properties")
    for key, value in [
        ("run_id", data.info.run_id),
        ("kind", data.info.kind),
        ("verdict", ev.verdict),
        ("reason", ev.reason),
        ("git_revision", data.info.git_revision or ""),
    ]:
        ET.SubElement(properties, "property", {"name": key, "value": value})
    for row in rows:
        case = ET.SubElement(
            suite, "testcase", {"classname": f"{name}.criteria", "name": f"{row.id} {row.title}", "time": "0"}
        )
        detail = (
            f"{row.id} {row.title}\n{row.description}\nseed target: {row.seed_target} ({row.seed_thresholds})\n"
            f"project target: {row.project_target}\nmeasured: {row.measured}\n{row.reason}"
        )
        if row.verdict is Verdict.FAIL:
            failure = ET.SubElement(case, "failure", {"message": row.reason, "type": "criterion-failed"})
            failure.text = detail
        elif row.verdict is Verdict.ERROR:
            error = ET.SubElement(case, "error", {"message": row.reason, "type": "criterion-unevaluable"})
            error.text = detail
        elif row.verdict is Verdict.NOT_MEASURED:
            ET.SubElement(case, "skipped", {"message": f"not measured: {row.reason}"})
        else:
            out = ET.SubElement(case, "system-out")
            out.text = detail
    ET.indent(suites)
    return ET.ElementTree(suites)


def write_junit(data: RunData, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    junit(data).write(tmp, encoding="utf-8", xml_declaration=True)
    tmp.replace(path)
