"""Named metric series built from a run directory: what the criteria expressions read.

One place decides where each number comes from, so the report, the criteria and anyone
reading criteria.toml agree on what ``job_duration`` or ``lost`` means:

- ``acknowledged.csv`` → ``job_duration`` (seconds, client view: submit to terminal status;
  a job the client never saw finish counts as +inf, so unfinished jobs cannot flatter a p95;
  FAILED/CANCELLED jobs are left to ``success_rate``) and ``job_success`` (1/0 per job that
  was expected to succeed). Labels: products, size, provider, store_id, company_id, final_status,
  and, when the run has a ``plan.json`` (every ``drill run``), ``size_class``: the scenario's
  catalog class of the job's store (how a fairness criterion tells a small tenant's job run
  alone from one run beside a flood).
- ``checker.json`` totals → one-value series: ``lost``, ``missing``, ``duplicated``,
  ``unexpected``, ``success_rate``, ``products_missing``, ... (every numeric total).
- ``samples.csv`` → a series per numeric column (``waiting``, ``active``, ``workers_alive``,
  ...), and ``rate_limit_violations``: how much the provider's 429 counter grew during the run.
- ``measurements.jsonl`` → whatever experiments recorded (``failover_recovery``,
  ``shutdown_duration``, ``orphan_lifetime``, ``stall_detection``, ``autoscale_response``...).
  A recorded series replaces a derived one of the same name rather than mixing with it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lab.checker_inputs import CheckReport, read_check_report
from lab.expressions import ExpressionError, LabelFilter
from lab.rundir import ACKNOWLEDGED_CSV, AcknowledgedJob, read_acknowledged, read_measurements
from lab.samples import NUMERIC_COLUMNS, read_samples
from loadtests.plan import PlanError, read_plan

PLAN_JSON = "plan.json"  # written by ``drill run`` (lab.drill_run.PLAN_FILE)

Labels = dict[str, str]


@dataclass(frozen=True)
class Point:
    value: float
    labels: Labels = field(default_factory=dict)


@dataclass
class Metrics:
    series: dict[str, list[Point]] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)  # metric -> file it came from

    def add(self, metric: str, value: float, labels: Labels | None = None, *, source: str = "") -> None:
        if math.isnan(value):
            raise ValueError(f"{metric}: NaN is not a measurement; leave the series empty instead")
        self.series.setdefault(metric, []).append(Point(float(value), dict(labels or {})))
        if source:
            self.sources.setdefault(metric, source)

    def values(self, metric: str, filters: Sequence[LabelFilter]) -> list[float] | None:
        points = self.series.get(metric)
        if points is None:
            return None
        known = {label for p in points for label in p.labels}
        for f in filters:
            if points and f.label not in known:
                raise ExpressionError(
                    f"{metric} has no label {f.label!r} (its labels: {', '.join(sorted(known)) or 'none'})"
                )
        return [p.value for p in points if all(f.matches(p.labels) for f in filters)]

    # --- building from a run directory -------------------------------------------------

    @classmethod
    def from_run_dir(cls, run_dir: Path) -> Metrics:
        metrics = cls()
        report = read_check_report(run_dir)
        if (run_dir / ACKNOWLEDGED_CSV).exists():
            metrics.add_jobs(read_acknowledged(run_dir), report, size_classes=size_classes_of(run_dir))
        if report is not None:
            metrics.add_checker(report)
        metrics.add_samples(run_dir)
        recorded: dict[str, list[Point]] = {}
        for m in read_measurements(run_dir):
            recorded.setdefault(m.metric, []).append(Point(m.value, dict(m.labels)))
        for name, points in recorded.items():
            metrics.series[name] = points
            metrics.sources[name] = "measurements.jsonl"
        return metrics

    def add_jobs(
        self,
        jobs: Sequence[AcknowledgedJob],
        report: CheckReport | None,
        *,
        size_classes: dict[str, str] | None = None,
    ) -> None:
        """``size_classes`` (store id → catalog class) adds the ``size_class`` label when given."""
        expected_failures = report.expected_failure_job_ids() if report else set()
        self.series.setdefault("job_duration", [])
        self.series.setdefault("job_success", [])
        for job in jobs:
            labels = {
                "products": str(job.products),
                "size": str(job.products),
                "provider": job.provider,
                "store_id": job.store_id,
                "company_id": job.company_id,
                "final_status": job.final_status or "",
            }
            if size_classes is not None:
                labels["size_class"] = size_classes.get(job.store_id, "")
            if job.job_id in expected_failures:
                continue
            if job.final_status == "COMPLETED" and job.end_to_end_seconds is not None:
                self.add("job_duration", job.end_to_end_seconds, labels, source=ACKNOWLEDGED_CSV)
            elif not job.client_saw_terminal:
                self.add("job_duration", math.inf, labels, source=ACKNOWLEDGED_CSV)
            self.add("job_success", 1.0 if job.final_status == "COMPLETED" else 0.0, labels, source=ACKNOWLEDGED_CSV)

    def add_checker(self, report: CheckReport) -> None:
        for name, value in report.totals.items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                self.add(name, float(value), source="checker.json")

    def add_samples(self, run_dir: Path) -> None:
        frame = read_samples(run_dir)
        if frame is None:
            return
        for column in NUMERIC_COLUMNS:
            if column in ("elapsed_s", "sample_ms"):
                continue
            for value in frame[column].dropna():
                self.add(column, float(value), source="samples.csv")
        self.add("sample_gaps", float((frame["ok"] == 0).sum()), source="samples.csv")
        limited = frame["provider_rate_limited"].dropna()
        if len(limited) >= 2:
            self.add("rate_limit_violations", float(limited.iloc[-1] - limited.iloc[0]), source="samples.csv")


def size_classes_of(run_dir: Path) -> dict[str, str] | None:
    """Store id → the scenario's catalog class, from the run's plan.json (None without one)."""
    path = run_dir / PLAN_JSON
    if not path.exists():
        return None
    try:
        plan = read_plan(path)
    except PlanError:
        return None  # a run judged without the label; a criterion filtering on it then says so
    return {a.store_id: a.size_class for a in plan.assignments}
