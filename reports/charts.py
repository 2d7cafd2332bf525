"""The report's charts, drawn from recorded data for a person who was not there.

Every time-series chart shares one x axis (seconds since the run started), shades the fault
windows from faults.json in red with their names, and hatches the ticks where the observer
could not read the source the chart is drawn from: a Redis failover must look like a gap in
the queue chart, never like an empty queue. Agg backend: no display is ever needed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # the backend is chosen before pyplot loads
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from lab.expressions import percentile
from reports.data import RunData

log = logging.getLogger(__name__)
X_LABEL = "time since run start (s)"
FAULT_COLOR = "#d62728"
PALETTE = {
    "waiting": "#ff7f0e",
    "active": "#1f77b4",
    "deferred": "#9467bd",
    "pending": "#7f7f7f",
    "ok": "#2ca02c",
    "bad": "#d62728",
    "workers": "#17becf",
}
plt.rcParams.update(
    {
        "font.size": 11,
        "axes.titlesize": 14,
        "axes.titleweight": "bold",
        "axes.labelsize": 11,
        "legend.fontsize": 10,
        "figure.dpi": 100,
        "savefig.dpi": 100,
        "axes.grid": True,
        "grid.alpha": 0.3,
    }
)


@dataclass(frozen=True)
class Chart:
    name: str  # file stem under charts/
    title: str
    caption: str
    path: Path | None  # None: not drawn (see caption)


def _figure(rows: int = 1, height: float = 4.8) -> tuple[Figure, list[Axes]]:
    fig, axes = plt.subplots(
        rows, 1, figsize=(12.5, height * (1 if rows == 1 else 0.75 * rows)), sharex=True, squeeze=False
    )
    return fig, [a for a in axes[:, 0]]


def _gaps(frame: pd.DataFrame, column: str) -> list[tuple[float, float]]:
    """Spans where ``column`` was not observed, from the last good tick to the next one."""
    spans: list[tuple[float, float]] = []
    elapsed = frame["elapsed_s"].to_list()
    missing = frame[column].isna().to_list()
    start: float | None = None
    for i, gap in enumerate(missing):
        if gap and start is None:
            start = elapsed[i - 1] if i else elapsed[i]
        elif not gap and start is not None:
            spans.append((start, elapsed[i]))
            start = None
    if start is not None:
        spans.append((start, elapsed[-1]))
    return [(a, b) for a, b in spans if b > a]


def _decorate(ax: Axes, data: RunData, frame: pd.DataFrame | None, gap_column: str | None) -> list[Patch]:
    """Shade faults and observer gaps; return legend handles for them."""
    handles: list[Patch] = []
    low, high = ax.get_ylim()
    ax.set_ylim(low, high + (high - low) * 0.12)  # headroom so fault names do not sit on the data
    for name, start, end in data.fault_windows():
        ax.axvspan(start, end, color=FAULT_COLOR, alpha=0.12, lw=0)
        ax.text(
            start,
            1.0,
            f" {name}",
            transform=ax.get_xaxis_transform(),
            va="top",
            ha="left",
            fontsize=9,
            color=FAULT_COLOR,
            clip_on=True,
            bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1},
        )
    if data.faults:
        handles.append(Patch(color=FAULT_COLOR, alpha=0.12, label="fault window"))
    if frame is not None and gap_column is not None:
        spans = _gaps(frame, gap_column)
        for start, end in spans:
            ax.axvspan(start, end, facecolor="none", edgecolor="#555555", hatch="///", lw=0, alpha=0.5)
        if spans:
            handles.append(Patch(facecolor="none", edgecolor="#555555", hatch="///", label="no sample (source down)"))
    ax.set_xlim(0, max(data.duration_s, 1.0))
    return handles


def _legend(ax: Axes, extra: list[Patch]) -> None:
    handles, _ = ax.get_legend_handles_labels()
    ax.legend(handles=[*handles, *extra], loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)


def _save(fig: Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)
    return path


# --- the charts -------------------------------------------------------------------------------


def queue_depth(data: RunData, path: Path) -> str:
    frame = data.samples
    assert frame is not None
    fig, (ax,) = _figure()
    ax.plot(frame["elapsed_s"], frame["waiting"], color=PALETTE["waiting"], lw=2, label="waiting (due, not started)")
    ax.plot(
        frame["elapsed_s"],
        frame["deferred"],
        color=PALETTE["deferred"],
        lw=1.5,
        label="deferred (retries, later starts)",
    )
    ax.plot(
        frame["elapsed_s"],
        frame["jobs_pending"],
        color="black",
        lw=1,
        ls="--",
        label="PENDING rows in Postgres",
        zorder=3,
    )
    ax.set(title="Queue depth", xlabel=X_LABEL, ylabel="jobs")
    ax.set_ylim(bottom=0)
    _legend(ax, _decorate(ax, data, frame, "waiting"))
    _save(fig, path)
    return (
        "Jobs in the Redis queue per tick; the dashed line is Postgres' count of PENDING jobs,"
        " which keeps going when Redis is down."
    )


def active_vs_waiting(data: RunData, path: Path) -> str:
    frame = data.samples
    assert frame is not None
    fig, (ax,) = _figure()
    active = frame["active"]
    waiting = frame["waiting"]
    ax.stackplot(
        frame["elapsed_s"],
        active,
        waiting,
        colors=[PALETTE["active"], PALETTE["waiting"]],
        alpha=0.8,
        labels=["active (running on a worker)", "waiting (due, not started)"],
    )
    slots = data.info.stack.get("worker_concurrency")
    if isinstance(slots, int) and frame["workers_alive"].notna().any():
        ax.step(
            frame["elapsed_s"],
            frame["workers_alive"] * slots,
            where="post",
            color="black",
            lw=1.2,
            ls=":",
            label=f"worker slots (workers x {slots})",
        )
    ax.set(title="Active vs waiting jobs", xlabel=X_LABEL, ylabel="jobs")
    ax.set_ylim(bottom=0)
    _legend(ax, _decorate(ax, data, frame, "active"))
    _save(fig, path)
    return "Stacked: the bottom band is jobs running, the top band jobs ready but not yet picked up."


def success_rate(data: RunData, path: Path) -> str:
    fig, (top, bottom) = _figure(rows=2)
    expected = data.check.expected_failure_job_ids() if data.check else set()
    ended = sorted(
        ((j.ended_at - data.info.started_at).total_seconds(), j.final_status == "COMPLETED")
        for j in data.acknowledged or ()
        if j.ended_at is not None and j.client_saw_terminal and j.job_id not in expected
    )
    if ended:
        series = pd.DataFrame(ended, columns=["t", "ok"])
        series["rate"] = series["ok"].cumsum() / (series.index + 1) * 100
        top.step(
            series["t"],
            series["rate"],
            where="post",
            color=PALETTE["ok"],
            lw=2,
            label="cumulative success (jobs ended so far)",
        )
    top.axhline(99, color="black", ls="--", lw=1, label="P2 target: 99%")
    unseen = sum(1 for j in data.acknowledged or () if not j.client_saw_terminal)
    if unseen:
        top.text(
            0.01,
            0.05,
            f"not shown: {unseen} job(s) the client never saw end (see the checker)",
            transform=top.transAxes,
            ha="left",
            va="bottom",
            color=PALETTE["bad"],
        )
    top.set(title="Success rate over time", ylabel="success (%)")
    top.set_ylim(min(90.0, top.get_ylim()[0]), 100.5)
    frame = data.samples
    if frame is not None:
        bottom.plot(
            frame["elapsed_s"],
            frame["completed_per_s"].rolling(10, min_periods=1).mean(),
            color=PALETTE["ok"],
            lw=1.5,
            label="completed / s (10 s mean)",
        )
        bottom.plot(
            frame["elapsed_s"],
            frame["failed_per_s"].rolling(10, min_periods=1).mean(),
            color=PALETTE["bad"],
            lw=1.5,
            label="failed / s, incl. expected (10 s mean)",
        )
    bottom.set(xlabel=X_LABEL, ylabel="jobs per second")
    bottom.set_ylim(bottom=0)
    _legend(top, _decorate(top, data, None, None))
    _legend(bottom, _decorate(bottom, data, frame, "jobs_completed" if frame is not None else None))
    _save(fig, path)
    return (
        "Top: share of ended jobs that COMPLETED (client view; stores expected to fail left out). "
        "Bottom: throughput from the observer's Postgres counts."
    )


def _size_class(sizes: list[int]) -> Callable[[int], str]:
    """Exact sizes when the run used a few; otherwise <100 / 100-999 / >=1000."""
    if len(set(sizes)) <= 6:
        return lambda n: f"{n} products"
    return lambda n: "<100 products" if n < 100 else ("100-999 products" if n < 1000 else ">=1000 products")


def job_durations(data: RunData, path: Path) -> str:
    jobs = [j for j in data.acknowledged or ()]
    classify = _size_class([j.products for j in jobs])
    groups: dict[str, tuple[int, list[float], int]] = {}
    for job in sorted(jobs, key=lambda j: j.products):
        key = classify(job.products)
        size, done, unfinished = groups.get(key, (job.products, [], 0))
        if job.final_status == "COMPLETED" and job.end_to_end_seconds is not None:
            done.append(job.end_to_end_seconds)
        elif not job.client_saw_terminal:
            unfinished += 1
        groups[key] = (size, done, unfinished)
    names = [k for k, (_, done, _) in groups.items() if done]
    fig, (ax,) = _figure()
    if not names:
        ax.text(0.5, 0.5, "no job completed in this run", transform=ax.transAxes, ha="center", fontsize=14)
    marks = [("p50", 50, "#9ecae1"), ("p90", 90, "#4292c6"), ("p95", 95, "#2171b5"), ("p99", 99, "#08306b")]
    width = 0.8 / len(marks)
    for i, (label, p, color) in enumerate(marks):
        xs = [n + (i - 1.5) * width for n in range(len(names))]
        ys = [percentile(groups[k][1], p) for k in names]
        ax.bar(xs, ys, width=width, color=color, label=label)
    ax.axhline(300, color=FAULT_COLOR, ls="--", lw=1, label="P1 target for <100 products: 5 min")
    ax.set_xticks(range(len(names)), [f"{k}\n{len(groups[k][1])} completed\n{groups[k][2]} unfinished" for k in names])
    ax.set(title="Job duration by catalog size (submit → COMPLETED)", ylabel="seconds", xlabel="catalog size")
    ax.grid(axis="x", visible=False)
    _legend(ax, [])
    _save(fig, path)
    return (
        "Percentiles of end-to-end duration of completed jobs, per catalog size;"
        " jobs the client never saw finish are counted under each group."
    )


def workers(data: RunData, path: Path) -> str:
    frame = data.samples
    assert frame is not None
    fig, (ax,) = _figure()
    ax.step(
        frame["elapsed_s"],
        frame["workers_alive"],
        where="post",
        color=PALETTE["workers"],
        lw=2.5,
        label="workers alive (registered in Redis)",
    )
    ax.set(title="Workers alive", xlabel=X_LABEL, ylabel="workers")
    ax.set_ylim(0, max(1.0, float(frame["workers_alive"].max(skipna=True) or 0)) * 1.25 + 0.5)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    twin = ax.twinx()
    twin.plot(
        frame["elapsed_s"],
        frame["waiting"],
        color=PALETTE["waiting"],
        lw=1,
        alpha=0.6,
        label="jobs waiting (right axis)",
    )
    twin.set_ylabel("jobs waiting")
    twin.set_ylim(bottom=0)
    twin.grid(False)
    extra = _decorate(ax, data, frame, "workers_alive")
    handles = [*ax.get_legend_handles_labels()[0], *twin.get_legend_handles_labels()[0], *extra]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.08, 1.0), frameon=False)
    _save(fig, path)
    return "Worker count as the autoscaler moved it, against the backlog it reacts to."


def provider(data: RunData, path: Path) -> str:
    frame = data.samples
    assert frame is not None
    fig, (top, bottom) = _figure(rows=2)
    dt = frame["elapsed_s"].diff()
    for column, label, color in [
        ("provider_api_requests", "catalog API requests / s", PALETTE["active"]),
        ("provider_image_requests", "image requests / s", PALETTE["deferred"]),
    ]:
        top.plot(
            frame["elapsed_s"],
            (frame[column].diff() / dt).rolling(5, min_periods=1).mean(),
            color=color,
            lw=1.5,
            label=label + " (5 s mean)",
        )
    top.set(title="Fake provider: requests and rate-limit refusals", ylabel="requests per second")
    top.set_ylim(bottom=0)
    refused = frame["provider_rate_limited"].diff() / dt
    bottom.bar(frame["elapsed_s"], refused.fillna(0), width=1.0, color=PALETTE["bad"], label="429 responses / s")
    total = frame["provider_rate_limited"].dropna()
    grew = float(total.iloc[-1] - total.iloc[0]) if len(total) >= 2 else 0.0
    if grew:
        bottom.text(
            0.01,
            0.8,
            f"429 responses during the run: {grew:.0f}",
            transform=bottom.transAxes,
            ha="left",
            va="top",
            color=PALETTE["bad"],
            fontsize=12,
        )
    else:
        bottom.text(
            0.5,
            0.5,
            "no 429 response during the run",
            transform=bottom.transAxes,
            ha="center",
            va="center",
            color="#555555",
            fontsize=13,
        )
    bottom.set(xlabel=X_LABEL, ylabel="429 per second")
    bottom.set_ylim(bottom=0, top=max(1.0, float(refused.max(skipna=True) or 0) * 1.2))
    _legend(top, _decorate(top, data, frame, "provider_api_requests"))
    _legend(bottom, _decorate(bottom, data, frame, "provider_rate_limited"))
    _save(fig, path)
    return "Request rates from the provider's own counters; any 429 means our rate limiter let too much through."


_SPECS: list[tuple[str, str, Callable[[RunData, Path], str], str]] = [
    ("queue_depth", "Queue depth", queue_depth, "samples"),
    ("active_vs_waiting", "Active vs waiting", active_vs_waiting, "samples"),
    ("success_rate", "Success rate over time", success_rate, "acknowledged"),
    ("job_durations", "Job duration by size", job_durations, "acknowledged"),
    ("workers", "Workers alive", workers, "samples"),
    ("provider", "Provider requests and 429s", provider, "samples"),
]


def render_charts(data: RunData, charts_dir: Path) -> list[Chart]:
    charts_dir.mkdir(parents=True, exist_ok=True)
    out = []
    for name, title, draw, needs in _SPECS:
        has = data.samples is not None and len(data.samples) > 0 if needs == "samples" else bool(data.acknowledged)
        if not has:
            out.append(Chart(name, title, f"not drawn: this run has no {needs} data", None))
            continue
        path = charts_dir / f"{name}.png"
        try:
            out.append(Chart(name, title, draw(data, path), path))
        except (ValueError, KeyError, TypeError, IndexError) as exc:  # one bad chart must not hide the verdict
            log.exception("chart %s not drawn", name)
            plt.close("all")
            out.append(Chart(name, title, f"not drawn: {type(exc).__name__}: {exc}", None))
    return out
