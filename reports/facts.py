"""The report's words and tables, once, for every format (HTML, Markdown, JSON, JUnit).

Formats differ in markup only; what a row says and which numbers count as a problem is
decided here, so the HTML and the Markdown never disagree about a run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from lab.criteria import CriterionResult, Verdict
from lab.expressions import format_duration, percentile
from lab.rundir import Machine
from reports.data import RunData

VERDICT_LABEL = {
    Verdict.PASS: "pass",
    Verdict.FAIL: "FAIL",
    Verdict.NOT_MEASURED: "not measured",
    Verdict.ERROR: "ERROR",
}
PROJECT_LABEL = {
    Verdict.PASS: "met",
    Verdict.FAIL: "missed",
    Verdict.NOT_MEASURED: "not measured",
    Verdict.ERROR: "error",
}


def when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S %Z").strip() if value else "—"


def machine_text(machine: Machine) -> str:
    parts = []
    if machine.cores:
        parts.append(f"{machine.cores} cores")
    if machine.memory_bytes:
        parts.append(f"{machine.memory_bytes / 1024**3:.1f} GiB RAM")
    if machine.hostname:
        parts.append(machine.hostname)
    if machine.platform:
        parts.append(machine.platform)
    if machine.python:
        parts.append(f"Python {machine.python}")
    return ", ".join(parts) or "not recorded"


def run_facts(data: RunData) -> list[tuple[str, str]]:
    info = data.info
    facts = [
        ("Run", info.run_id),
        ("Scenario", f"{info.scenario} ({info.kind} run)"),
        ("Started", when(info.started_at)),
        ("Ended", when(info.ended_at)),
        ("Duration", format_duration(data.duration_s)),
        ("Machine", machine_text(info.machine)),
        ("Git revision", info.git_revision or "not recorded"),
    ]
    # One row per setting, in the order the run recorded them: a run-on line hides the one that matters.
    facts.extend((f"Setting: {k}", str(v)) for k, v in info.stack.items())
    if data.acknowledged is not None:
        facts.append(("Jobs acknowledged", str(len(data.acknowledged))))
    if data.samples is not None:
        gaps = int((data.samples["ok"] == 0).sum())
        facts.append(("Observer samples", f"{len(data.samples)} ({gaps} with a source down)"))
        facts.extend(load_facts(data))
    if data.faults:
        facts.append(("Faults injected", ", ".join(f.name for f in data.faults)))
    if data.missing:
        facts.append(("Not recorded", ", ".join(data.missing)))
    notes = [n.strip() for n in info.notes.split(" | ") if n.strip()]
    for number, note in enumerate(notes, start=1):
        facts.append((f"Note {number}" if len(notes) > 1 else "Notes", note))
    return facts


def load_facts(data: RunData) -> list[tuple[str, str]]:
    """Peak queue and the worker range, from the observer's samples (absent columns are skipped)."""
    frame = data.samples
    if frame is None or not len(frame):
        return []
    facts = []
    for column, label in (("waiting", "Peak waiting jobs"), ("queue_due", "Peak queue depth (waiting + active)")):
        series = frame[column]
        if series.notna().any():
            row = int(series.fillna(-1).to_numpy().argmax())  # positional: the frame is sorted by time
            at = float(frame["elapsed_s"].to_numpy()[row])
            facts.append((label, f"{int(series.to_numpy()[row]):,} (at {format_duration(at)})"))
    workers = frame["workers_alive"].dropna()
    if len(workers):
        facts.append(("Workers alive", f"{int(workers.min())} to {int(workers.max())}"))
    return facts


@dataclass(frozen=True)
class DurationRow:
    size: str
    jobs: int
    completed: int
    not_completed: int  # failed, cancelled, or never seen ending by the client
    p50: str
    p95: str
    p99: str
    longest: str


def duration_rows(data: RunData) -> list[DurationRow]:
    """End-to-end duration (submit → COMPLETED, client view) per catalog size, smallest first."""
    groups: dict[int, list[float]] = {}
    counts: dict[int, list[int]] = {}
    for job in data.acknowledged or ():
        done = groups.setdefault(job.products, [])
        tally = counts.setdefault(job.products, [0, 0])
        tally[0] += 1
        if job.final_status == "COMPLETED" and job.end_to_end_seconds is not None:
            done.append(job.end_to_end_seconds)
        else:
            tally[1] += 1

    def fmt(values: list[float], p: float | None) -> str:
        if not values:
            return "—"
        return format_duration(max(values) if p is None else percentile(values, p))

    return [
        DurationRow(
            size=f"{size:,} products",
            jobs=counts[size][0],
            completed=len(done),
            not_completed=counts[size][1],
            p50=fmt(done, 50),
            p95=fmt(done, 95),
            p99=fmt(done, 99),
            longest=fmt(done, None),
        )
        for size, done in sorted(groups.items())
    ]


DURATION_HEADER = ["catalog size", "jobs", "completed", "not completed", "p50", "p95", "p99", "longest"]


def duration_table(data: RunData) -> list[list[str]]:
    return [
        [r.size, str(r.jobs), str(r.completed), str(r.not_completed), r.p50, r.p95, r.p99, r.longest]
        for r in duration_rows(data)
    ]


@dataclass(frozen=True)
class CriterionRow:
    id: str
    title: str
    description: str
    seed_target: str
    seed_thresholds: str
    project_target: str
    measured: str
    verdict: Verdict
    verdict_label: str
    project_label: str
    reason: str


def criterion_row(result: CriterionResult) -> CriterionRow:
    c = result.criterion
    project = "; ".join(t.text for t in c.project) or "—"
    return CriterionRow(
        id=c.id,
        title=c.title,
        description=c.description,
        seed_target=c.seed_target,
        seed_thresholds="; ".join(t.text for t in c.seed),
        project_target=project,
        measured=result.measured_text,
        verdict=result.verdict,
        verdict_label=VERDICT_LABEL[result.verdict],
        project_label=PROJECT_LABEL[result.project_verdict] if result.project_verdict else "—",
        reason=result.reason,
    )


def criteria_rows(data: RunData) -> list[CriterionRow]:
    return [criterion_row(r) for r in data.evaluation.results]


# (total key, label, what it means, whether a non-zero count is a problem)
CHECKER_ROWS: list[tuple[str, str, str, bool]] = [
    ("acknowledged", "Jobs acknowledged", "the API answered 202 for these", False),
    ("completed", "Jobs completed", "ended COMPLETED", False),
    ("lost", "Jobs lost", "acknowledged, but not terminal after the drain (or no row at all)", True),
    ("failed", "Jobs failed", "FAILED though expected to succeed (or FAILED without a reason)", True),
    ("cancelled", "Jobs cancelled", "CANCELLED though expected to succeed", True),
    (
        "expected_failures",
        "Expected failures",
        "stores whose catalog says the job must fail, FAILED with a reason",
        False,
    ),
    (
        "expected_failure_missed",
        "Expected failures missed",
        "stores whose catalog says the job must fail, not FAILED",
        True,
    ),
    ("records_bad_expected", "Bad records expected", "products and images the catalogs mark bad (rejected)", False),
    (
        "records_failed_jobs",
        "Jobs failed for a bad record",
        "FAILED though their bad records should only be rejected",
        True,
    ),
    (
        "rejections_missing",
        "Rejections missing",
        "bad records the job's rejection counts do not show under their code",
        True,
    ),
    (
        "rejections_unexpected",
        "Rejections unexpected",
        "rejections beyond the catalog's bad records, or under another code",
        True,
    ),
    ("outcome_mismatch", "Outcome mismatches", "COMPLETED jobs whose outcome is not what the catalog implies", True),
    (
        "unexpected_jobs",
        "Unexpected job rows",
        "rows for the run's companies that no client was acknowledged for",
        True,
    ),
    ("success_rate", "Success rate", "completed / expected to succeed", False),
    ("products_expected", "Products expected", "catalog products of completed sources", False),
    ("products_missing", "Products missing", "in the catalog of a completed job, not in the database", True),
    ("products_duplicated", "Products duplicated", "more than one row for (company, external id, source)", True),
    ("products_unexpected", "Products unexpected", "not in any catalog, or malformed in it", True),
    ("images_expected", "Images expected", "good images of completed sources", False),
    ("images_missing", "Images missing", "no STORED row or no original object", True),
    ("images_duplicated", "Images duplicated", "more than one row or original object per (product, url)", True),
    ("images_unexpected", "Images unexpected", "not in a requested catalog, or stored though marked bad", True),
    ("images_rejected_as_expected", "Images rejected as expected", "bad images the importer refused", False),
    ("thumbnails_missing", "Thumbnails missing", "stored image without its thumbnail object", True),
    ("thumbnails_duplicated", "Thumbnails duplicated", "more than one thumbnail object per (product, url)", True),
    (
        "objects_unexpected",
        "Unexpected S3 objects",
        "objects under the run's companies no row or catalog explains",
        True,
    ),
    ("acknowledged_twice", "Job ids acknowledged twice", "the API answered 202 twice with the same id", True),
    ("catalogs_missing", "Catalogs missing", "acknowledged stores whose expected catalog the checker lacked", True),
]


@dataclass(frozen=True)
class CheckerRow:
    label: str
    value: str
    meaning: str
    problem: bool


def checker_rows(data: RunData) -> list[CheckerRow]:
    if data.check is None:
        return []
    totals = data.check.totals
    rows = []
    for key, label, meaning, counts_as_problem in CHECKER_ROWS:
        if key not in totals:
            continue
        value: Any = totals[key]
        if key == "success_rate":
            text = "—" if value is None else f"{value * 100:.2f}%"
            problem = False
        elif value is None:  # a total this run's catalogs give nothing to count
            text, problem = "—", False
        else:
            text = str(value)
            problem = counts_as_problem and bool(value)
        rows.append(CheckerRow(label, text, meaning, problem))
    return rows


FINDING_ORDER = (
    "jobs_lost",
    "jobs_failed",
    "expected_failure_missed",
    "records_failed_jobs",
    "rejections_mismatch",
    "outcome_mismatch",
    "products_missing",
    "products_duplicated",
    "images_missing",
    "images_duplicated",
    "thumbnails_missing",
    "thumbnails_duplicated",
    "products_unexpected",
    "images_unexpected",
    "objects_unexpected",
    "jobs_unexpected",
    "acknowledged_twice",
    "catalogs_missing",
    "expected_failures",
)
"""Problems first, in the order a person fixing the importer wants them; unknown ones last."""
FINDING_COLUMNS = ("kind", "job_id", "company_id", "source", "external_id", "url", "status", "detail")
FINDINGS_SHOWN = 20


def finding_tables(data: RunData) -> list[tuple[str, list[str], list[list[str]], int]]:
    """(category, columns, first rows, how many more exist) for each non-empty category."""
    if data.check is None:
        return []
    tables = []
    rank = {name: i for i, name in enumerate(FINDING_ORDER)}
    for category, findings in sorted(data.check.findings.items(), key=lambda kv: (rank.get(kv[0], 99), kv[0])):
        if not findings:
            continue
        columns = [c for c in FINDING_COLUMNS if any(getattr(f, c) for f in findings)]
        rows = [[str(getattr(f, c)) for c in columns] for f in findings[:FINDINGS_SHOWN]]
        more = len(findings) - len(rows) + data.check.truncated.get(category, 0)
        tables.append((category, columns, rows, more))
    return tables


def failure_reasons(data: RunData) -> list[tuple[str, int]]:
    return list(data.check.failure_reasons.most_common(20)) if data.check else []
