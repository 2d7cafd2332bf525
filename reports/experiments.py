"""One section per chaos experiment run: its timeline, its figures beside the targets, its checks,
its checker table and its journal.

Built from the run directory alone (the journals, measurements.jsonl, samples.csv, the per-run
checker reports and load logs), like everything in reports/. The figures are judged against the
same criteria table as the whole run, but on this run's measurements only, so a report of a
three-run DR exercise shows which run was slow, not just that one was.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # the backend is chosen before pyplot loads
import pandas as pd

from chaos.journal import ActivityRecord, Journal, read_journals
from lab.checker_inputs import CheckReport
from lab.criteria import Criterion, load_criteria
from lab.expressions import ExpressionError, evaluate_threshold, format_duration
from lab.metrics import Metrics
from lab.rundir import RunDirError, read_json
from reports.charts import FAULT_COLOR, PALETTE, X_LABEL, _figure, _gaps
from reports.data import RunData
from reports.facts import CHECKER_ROWS

log = logging.getLogger(__name__)

# Informative figures (no criterion's target): shown beside the judged ones.
INFORMATIVE: dict[str, str] = {
    "sentinel_promotion": "kill → Sentinel names a new primary",
    "orphans_observed": "jobs Redis forgot (re-queued by the reconciler)",
    "breaker_probes": "half-open probes that reached the provider",
    "breaker_opens": "times the breaker opened",
    "db_partition_failed_jobs": "jobs failed during / after the partition",
    "db_partition_recovery": "partition healed → jobs complete again",
    "db_downtime_tolerated": "longest partition survived with zero failed jobs",
    "brake_engage": "overload threshold crossed → queue paused",
    "brake_resume": "paused → resumed by itself",
    "overload_rejections": "503 answers (with Retry-After) during the flood",
}
MARGIN_S = 3.0


@dataclass(frozen=True)
class Figure:
    metric: str
    measured: str
    target: str
    project: str
    verdict: str  # "pass", "fail", "" (informative)
    meaning: str


@dataclass
class ExperimentSection:
    journal: Journal
    chart: Path | None
    chart_caption: str
    figures: list[Figure] = field(default_factory=list)
    checker: list[tuple[str, str, bool]] = field(default_factory=list)  # label, value, problem
    activities: list[list[str]] = field(default_factory=list)
    details: list[tuple[str, str]] = field(default_factory=list)

    @property
    def title(self) -> str:
        j = self.journal
        return f"{j.title} — {j.experiment} run {j.run}/{j.runs}"

    @property
    def verdict(self) -> str:
        return "PASS" if self.journal.passed else "FAIL"


def experiment_sections(data: RunData, charts_dir: Path) -> list[ExperimentSection]:
    """Sections of every journal in the run directory (none for a load run)."""
    try:
        journals = read_journals(data.run_dir)
    except RunDirError:
        log.exception("journals unreadable")
        return []
    if not journals:
        return []
    criteria = load_criteria()
    sections = []
    for journal in journals:
        chart, caption = _chart(data, journal, charts_dir)
        sections.append(
            ExperimentSection(
                journal=journal,
                chart=chart,
                chart_caption=caption,
                figures=_figures(journal, criteria),
                checker=_checker(data.run_dir, journal),
                activities=_activities(journal),
                details=_details(journal),
            )
        )
    return sections


# --- figures ------------------------------------------------------------------------------------


def _figures(journal: Journal, criteria: list[Criterion]) -> list[Figure]:
    """Each criterion's threshold whose series this run recorded, judged on this run's values only."""
    metrics = Metrics()
    for m in journal.measurements:
        metrics.add(m.metric, m.value, dict(m.labels))
    recorded = {m.metric for m in journal.measurements}
    figures: list[Figure] = []
    for criterion in criteria:
        if criterion.id == "E1":
            continue  # the checks table below is that criterion, check by check
        for threshold in criterion.seed:
            if threshold.metric not in recorded:
                continue
            try:
                outcome = evaluate_threshold(threshold, metrics)
            except ExpressionError as exc:
                figures.append(Figure(criterion.id, "—", threshold.text, "—", "ERROR", str(exc)))
                continue
            project = [t for t in criterion.project if t.metric == threshold.metric]
            project_text = "; ".join(t.text for t in project) or "—"
            if project:
                met = all(evaluate_threshold(t, metrics).passed for t in project)
                project_text += " (met)" if met else " (missed)"
            verdict = "—" if outcome.passed is None else ("pass" if outcome.passed else "FAIL")
            figures.append(
                Figure(
                    metric=f"{criterion.id} {criterion.title}",
                    measured=outcome.measured_text,
                    target=f"{criterion.seed_target} ({threshold.text})",
                    project=project_text,
                    verdict=verdict,
                    meaning=criterion.description.split(".")[0],
                )
            )
    for metric, meaning in INFORMATIVE.items():
        points = [m for m in journal.measurements if m.metric == metric]
        if not points:
            continue
        shown = "; ".join(
            _value(metric, p.value) + (f" ({_labels(p.labels)})" if _labels(p.labels) else "") for p in points[:12]
        )
        if len(points) > 12:
            shown += f"; … {len(points) - 12} more"
        figures.append(Figure(metric, shown, "—", "—", "", meaning))
    return figures


def _value(metric: str, value: float) -> str:
    if metric in (
        "orphans_observed",
        "breaker_probes",
        "breaker_opens",
        "db_partition_failed_jobs",
        "overload_rejections",
        "long_outage_stalled_jobs",
        "long_outage_failed_jobs",
        "long_outage_in_flight",
    ):
        return f"{value:g}"
    return format_duration(value)


def _labels(labels: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in labels.items() if k not in ("experiment", "run"))


# --- checker ------------------------------------------------------------------------------------


def _checker(run_dir: Path, journal: Journal) -> list[tuple[str, str, bool]]:
    path = run_dir / f"checker-{journal.slug}.json"
    if not path.exists():
        return []
    try:
        report = CheckReport.from_json(read_json(path))
    except RunDirError:
        return [("checker report", "unreadable", True)]
    rows = []
    for key, label, _meaning, problem in CHECKER_ROWS:
        if key not in report.totals:
            continue
        value = report.totals[key]
        if key == "success_rate":
            rows.append((label, "—" if value is None else f"{value * 100:.2f}%", False))
        elif value is None:
            rows.append((label, "—", False))
        else:
            rows.append((label, str(value), problem and bool(value)))
    return rows


# --- journal ------------------------------------------------------------------------------------


def _activities(journal: Journal) -> list[list[str]]:
    rows = []
    phases: list[tuple[str, list[ActivityRecord]]] = [
        ("before", journal.steady_state_before.probes if journal.steady_state_before else []),
        ("method", journal.method),
        ("after", journal.steady_state_after.probes if journal.steady_state_after else []),
        ("rollback", journal.rollbacks),
    ]
    for phase, records in phases:
        for r in records:
            offset = (r.start - journal.start).total_seconds()
            output = r.error or json.dumps(r.output, default=str)
            rows.append([phase, r.kind, r.name, f"{offset:.1f}", f"{r.duration:.2f}", r.status, _truncate(output, 160)])
    return rows


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _details(journal: Journal) -> list[tuple[str, str]]:
    """What this kind of experiment wants a reader to know beyond the figures."""
    e = journal.evidence
    out: list[tuple[str, str]] = [("status", f"{journal.status}{' — ' + journal.reason if journal.reason else ''}")]
    load = journal.load or {}
    if load:
        out.append(
            (
                "load",
                f"{load.get('acknowledged')} acknowledged of {load.get('attempts')} submissions "
                f"({', '.join(f'{k}: {v}' for k, v in (load.get('by_status') or {}).items())})",
            )
        )
    if "failover" in e:
        f = e["failover"]
        out.append(("failover", f"{f.get('old_master')} killed → {f.get('new_master')} promoted"))
        if e.get("recovery"):
            r = e["recovery"]
            out.append(
                (
                    "recovery rule",
                    f"first {r['window']:g} s window with ≥ {r['needed']:.1f} completions of jobs started after the "
                    f"kill (pre-fault rate {r['pre_rate']:.2f}/s)",
                )
            )
    if "terms" in e:
        for t in e["terms"]:
            finals = t.get("final") or {}
            handed = sum(1 for v in finals.values() if v.get("handed_back"))
            out.append(
                (
                    f"SIGTERM #{t['k']}",
                    f"{t['worker']}: exit {t['exit_code']} after {t['seconds']:.2f} s, {len(t['jobs'])} job(s) held, "
                    f"{handed} handed back, tries {', '.join(str(v.get('queue_try')) for v in finals.values())}",
                )
            )
    if "kills" in e:
        for k in e["kills"]:
            out.append((f"SIGKILL #{k['k']}", f"{k['worker']}: {len(k['jobs'])} job(s) abandoned"))
    if "partitions" in e:
        budget = e.get("retry_budget") or {}
        if budget:
            out.append(
                (
                    "retry budget",
                    f"{budget.get('job_max_tries'):g} tries, backoff base {budget.get('retry_backoff_base'):g} s, "
                    f"cap {budget.get('retry_backoff_max'):g} s: a job waits {budget.get('min_s'):.0f} to "
                    f"{budget.get('max_s'):.0f} s in total before its last try",
                )
            )
        for p in e["partitions"]:
            back = "not reconnected"
            if p.get("recovered_at"):
                gap = (
                    datetime.fromisoformat(p["recovered_at"]) - datetime.fromisoformat(p["healed_at"])
                ).total_seconds()
                back = f"reconnected {gap:.1f} s after healing"
            answers = ", ".join(f"{k}: {v}" for k, v in (p.get("api_answers_during") or {}).items()) or "none"
            settle = p.get("settled") or {}
            if settle:
                state = "settled" if settle.get("settled") else "NOT settled"
                back += f"; {settle.get('jobs', 0)} job(s) it hit {state} in {float(settle.get('seconds', 0)):.0f} s"
            out.append(
                (
                    f"{p['variant']} {p['duration']:g} s",
                    f"{len(p.get('failed_jobs') or [])} failed job(s); {back}; API answers during: {answers}",
                )
            )
        if e.get("failed_before_retry"):
            reasons = sorted({str(v)[:120] for v in e["failed_before_retry"].values()})
            out.append(("failure reasons", "; ".join(reasons[:3])))
    if "long_outage" in e:
        lo = e["long_outage"]
        settings = ", ".join(f"{k}={v}" for k, v in (lo.get("settings") or {}).items())
        out.append(("stall sweep", f"its own reconciler ({(lo.get('reconciler') or {}).get('name', '—')}): {settings}"))
        for f in lo.get("faults") or []:
            finals = f.get("final") or {}
            statuses: dict[str, int] = {}
            for status, _ in finals.values():
                statuses[status] = statuses.get(status, 0) + 1
            shown = ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items())) or "none seen ending"
            out.append(
                (
                    f"{f['kind']} {float(f['seconds']):g} s",
                    f"{len(f.get('in_flight') or [])} job(s) in flight when it began; afterwards {shown}",
                )
            )
        stalled = sorted({job for _, job, *_ in e.get("stall_events") or []})
        out.append(("failed as stalled", ", ".join(stalled[:5]) + (" …" if len(stalled) > 5 else "") or "none"))
    if "breaker" in e:
        b = e["breaker"]
        out.append(
            (
                "breaker",
                f"{b.get('probes')} probe(s), {b.get('violations')} violation(s), {b.get('in_flight_at_opening')} "
                f"request(s) in flight when it opened (arrived within {b.get('grace_s')} s)",
            )
        )
    if "overload" in e:
        o = e["overload"]
        out.append(
            (
                "overload",
                f"threshold {o.get('threshold')} waiting, peak {o.get('peak_waiting')}; {o.get('rejections')} 503s, "
                f"Retry-After {', '.join(o.get('retry_after_values') or []) or '—'}; "
                f"pause {((o.get('pause') or {}).get('mode'))}",
            )
        )
        for message in o.get("rejection_messages") or []:
            out.append(("503 message", message))
    return out


# --- the timeline -------------------------------------------------------------------------------


def _window(data: RunData, journal: Journal) -> tuple[float, float]:
    start = (journal.start - data.info.started_at).total_seconds() - MARGIN_S
    end_at = journal.end or journal.start
    end = (end_at - data.info.started_at).total_seconds() + MARGIN_S
    return max(0.0, start), max(end, start + 1.0)


def _load_errors(run_dir: Path, journal: Journal, started_at: datetime) -> pd.DataFrame | None:
    path = run_dir / f"load-{journal.slug}.csv"
    if not path.exists():
        return None
    frame = pd.read_csv(path, dtype={"status": "string", "error": "string", "retry_after": "string"})
    if frame.empty:
        return None
    frame["t"] = (pd.to_datetime(frame["at"], utc=True, format="ISO8601") - started_at).dt.total_seconds()
    frame["bad"] = frame["status"].fillna("none") != "202"
    return frame


def _chart(data: RunData, journal: Journal, charts_dir: Path) -> tuple[Path | None, str]:
    frame = data.samples
    if frame is None or frame.empty:
        return None, "not drawn: this run has no samples"
    lo, hi = _window(data, journal)
    part = frame[(frame["elapsed_s"] >= lo) & (frame["elapsed_s"] <= hi)]
    if part.empty:
        return None, "not drawn: no sample falls in this experiment's time window"
    path = charts_dir / f"experiment-{journal.slug}.png"
    try:
        _draw(data, journal, part, (lo, hi), path)
    except (ValueError, KeyError, TypeError, IndexError) as exc:  # one bad chart must not hide the verdict
        log.exception("experiment chart %s not drawn", journal.slug)
        plt.close("all")
        return None, f"not drawn: {type(exc).__name__}: {exc}"
    return path, (
        "This run's stretch of the drill: queue depth, completion rate, workers alive and errors (failed jobs, "
        "API answers other than 202); red bands are this run's faults, hatching marks ticks a source was down."
    )


def _draw(data: RunData, journal: Journal, frame: pd.DataFrame, window: tuple[float, float], path: Path) -> None:
    fig, axes = _figure(rows=4, height=4.0)
    queue, rate, workers, errors = axes
    t = frame["elapsed_s"]
    queue.plot(t, frame["waiting"], color=PALETTE["waiting"], lw=2, label="waiting")
    queue.plot(t, frame["deferred"], color=PALETTE["deferred"], lw=1.5, label="deferred")
    queue.plot(t, frame["jobs_pending"], color="black", lw=1, ls="--", label="PENDING rows")
    queue.set(title=f"{journal.title} (run {journal.run})", ylabel="jobs")
    rate.plot(
        t, frame["completed_per_s"].rolling(3, min_periods=1).mean(), color=PALETTE["ok"], lw=2, label="completed/s"
    )
    rate.set(ylabel="jobs / s")
    workers.step(t, frame["workers_alive"], where="post", color=PALETTE["workers"], lw=2, label="workers alive")
    workers.set(ylabel="workers")
    errors.plot(
        t, frame["failed_per_s"].rolling(3, min_periods=1).mean(), color=PALETTE["bad"], lw=1.5, label="failed/s"
    )
    attempts = _load_errors(data.run_dir, journal, data.info.started_at)
    if attempts is not None and attempts["bad"].any():
        bad = attempts[attempts["bad"]]
        errors.hist(
            bad["t"],
            bins=max(1, int(window[1] - window[0])),
            range=window,
            color="#8c564b",
            alpha=0.7,
            label="API answers ≠ 202 (per s)",
        )
    errors.set(ylabel="errors", xlabel=X_LABEL)
    for ax, column in ((queue, "waiting"), (rate, "completed_per_s"), (workers, "workers_alive"), (errors, None)):
        ax.set_ylim(bottom=0)
        low, high = ax.get_ylim()
        ax.set_ylim(low, high + (high - low) * 0.15 + 0.5)
        for fault in journal.faults:
            start, end = fault.window(data.info.started_at, window[1])
            ax.axvspan(start, end, color=FAULT_COLOR, alpha=0.15, lw=0)
            ax.text(
                start,
                1.0,
                f" {fault.name}",
                transform=ax.get_xaxis_transform(),
                va="top",
                ha="left",
                fontsize=8,
                color=FAULT_COLOR,
                clip_on=True,
            )
        if column is not None:
            for a, b in _gaps(frame, column):
                ax.axvspan(a, b, facecolor="none", edgecolor="#555555", hatch="///", lw=0, alpha=0.5)
        ax.set_xlim(*window)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)


def section_summary(sections: list[ExperimentSection]) -> list[dict[str, Any]]:
    """What summary.json says of each experiment run."""
    return [
        {
            "experiment": s.journal.experiment,
            "run": s.journal.run,
            "status": s.journal.status,
            "verdict": s.verdict,
            "failed_checks": [c.name for c in s.journal.checks if not c.passed],
            "figures": {f.metric: f.measured for f in s.figures},
            "chart": str(s.chart.name) if s.chart else None,
        }
        for s in sections
    ]
