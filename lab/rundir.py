"""The run directory: everything one drill run recorded, so it can be judged again later.

A run's verdict must be reproducible from files alone (``drill report <run-dir>``), long after
the stack that produced it is gone. So every part of the proving ground writes what it saw
into one directory, and the judging half reads only that directory::

    reports/out/<run-id>/
        run.json            RunInfo: scenario, kind, started/ended, machine, stack settings, git rev
        acknowledged.csv    AcknowledgedJob rows: every job id the API acknowledged (202)
        samples.csv         the observer's time series, one row per tick (lab.samples)
        measurements.jsonl  Measurement lines appended by experiments (failover_recovery, ...)
        faults.json         list of Fault {name, start, end}: windows shaded on the charts
        checker.json        lab.checker.CheckReport: what went in vs what came out
        criteria.json       criteria verdicts (derived; rewritten by every render)
        summary.json        verdict, reason, counts (derived)
        junit.xml           one testcase per criterion (derived)
        report.md           Markdown report (derived)
        report.html         self-contained HTML report, charts inlined (derived)
        charts/*.png        the charts (derived)
        locust_*.csv        optional, Locust's own CSV output
        journal*.jsonl      optional, experiment journals

Recorded files (run.json, acknowledged.csv, samples.csv, measurements.jsonl, faults.json,
checker.json) are the evidence; derived files are rewritten from them. The full description
lives in docs/run-directory.md; keep both in step.

Times are ISO 8601 with a UTC offset. An empty CSV cell means "not observed", never zero.
"""

from __future__ import annotations

import csv
import json
import math
import os
import platform
import re
import socket
import subprocess
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

RUNS_ROOT = Path("reports/out")
TERMINAL_STATUSES = frozenset({"COMPLETED", "FAILED", "CANCELLED"})

RUN_JSON = "run.json"
ACKNOWLEDGED_CSV = "acknowledged.csv"
SAMPLES_CSV = "samples.csv"
MEASUREMENTS_JSONL = "measurements.jsonl"
FAULTS_JSON = "faults.json"
CHECKER_JSON = "checker.json"
CRITERIA_JSON = "criteria.json"
SUMMARY_JSON = "summary.json"
JUNIT_XML = "junit.xml"
REPORT_HTML = "report.html"
REPORT_MD = "report.md"
CHARTS_DIR = "charts"

ACKNOWLEDGED_COLUMNS = (
    "job_id",
    "company_id",
    "provider",
    "store_id",
    "products",
    "submitted_at",
    "ended_at",
    "end_to_end_seconds",
    "final_status",
)


class RunDirError(Exception):
    """A run directory file is missing or unreadable; the message names the file (and line)."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Machine(_Model):
    """Where the run happened, so two reports are compared knowing their hardware."""

    hostname: str = ""
    platform: str = ""
    python: str = ""
    cores: int | None = None
    memory_bytes: int | None = None


class RunInfo(_Model):
    run_id: str
    scenario: str
    kind: str = Field(description="run kind that selects criteria: load, chaos, dr, smoke, ...")
    started_at: datetime
    ended_at: datetime | None = None
    machine: Machine = Field(default_factory=Machine)
    stack: dict[str, Any] = Field(default_factory=dict, description="stack settings used")
    git_revision: str | None = None
    notes: str = ""

    @property
    def duration_s(self) -> float | None:
        if self.ended_at is None:
            return None
        return (self.ended_at - self.started_at).total_seconds()


class AcknowledgedJob(_Model):
    """One job the API answered 202 for, and what the client last saw of it."""

    job_id: str
    company_id: str
    provider: str
    store_id: str
    products: int
    submitted_at: datetime
    ended_at: datetime | None = None
    end_to_end_seconds: float | None = None
    final_status: str | None = None

    @field_validator("ended_at", "end_to_end_seconds", "final_status", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @property
    def source(self) -> str:
        """The products' ``import_source``, per docs/contracts.md."""
        return f"{self.provider}:{self.store_id}"

    @property
    def client_saw_terminal(self) -> bool:
        return self.final_status in TERMINAL_STATUSES


class Fault(_Model):
    """A fault window. ``start``/``end`` are timestamps, or seconds since the run started."""

    name: str
    start: datetime | float
    end: datetime | float | None = None

    def window(self, run_started_at: datetime, run_end_s: float) -> tuple[float, float]:
        """The window in elapsed seconds; a fault never ended lasts to the end of the run."""

        def _s(value: datetime | float) -> float:
            if isinstance(value, datetime):
                return (value - run_started_at).total_seconds()
            return float(value)

        return _s(self.start), (run_end_s if self.end is None else _s(self.end))


class Measurement(_Model):
    """One value of a named metric series, e.g. one failover's recovery time in seconds."""

    metric: str
    value: float
    labels: dict[str, str] = Field(default_factory=dict)
    at: datetime | None = None

    @field_validator("metric")
    @classmethod
    def _metric_name(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
            raise ValueError(f"metric name {value!r} must be an identifier")
        return value


# --- paths ------------------------------------------------------------------------------------


def new_run_id(scenario: str, now: datetime | None = None) -> str:
    """Sortable by time, readable by scenario, safe as a directory name."""
    stamp = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", scenario).strip("-") or "run"
    return f"{stamp}-{slug}"


def create_run_dir(run_id: str, root: Path = RUNS_ROOT) -> Path:
    path = root / run_id
    (path / CHARTS_DIR).mkdir(parents=True, exist_ok=False)
    return path


# --- machine and revision -------------------------------------------------------------------


def describe_machine() -> Machine:
    memory: int | None = None
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        memory = None
    return Machine(
        hostname=socket.gethostname(),
        platform=platform.platform(),
        python=platform.python_version(),
        cores=os.cpu_count(),
        memory_bytes=memory,
    )


def git_revision(repo: Path = Path()) -> str | None:
    """The checked-out commit, or None outside git or before the first commit."""
    try:
        done = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


# --- JSON files -----------------------------------------------------------------------------


def write_json(path: Path, data: Any) -> None:
    """Write through a temporary file so a crash never leaves half a JSON document."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False, default=_json_default) + "\n")
    tmp.replace(path)


def _json_default(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    raise TypeError(f"cannot serialise {type(value).__name__}")


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise RunDirError(f"{path}: missing") from exc
    except (OSError, json.JSONDecodeError) as exc:
        raise RunDirError(f"{path}: unreadable JSON: {exc}") from exc


def write_run_info(run_dir: Path, info: RunInfo) -> None:
    write_json(run_dir / RUN_JSON, info.model_dump(mode="json"))


def read_run_info(run_dir: Path) -> RunInfo:
    path = run_dir / RUN_JSON
    try:
        return RunInfo.model_validate(read_json(path))
    except ValidationError as exc:
        raise RunDirError(f"{path}: {exc}") from exc


def write_faults(run_dir: Path, faults: Iterable[Fault]) -> None:
    write_json(run_dir / FAULTS_JSON, [f.model_dump(mode="json") for f in faults])


def read_faults(run_dir: Path) -> list[Fault]:
    """Faults are optional: no file means no fault was injected."""
    path = run_dir / FAULTS_JSON
    if not path.exists():
        return []
    data = read_json(path)
    if not isinstance(data, list):
        raise RunDirError(f"{path}: expected a JSON list of {{name, start, end}}")
    try:
        return [Fault.model_validate(item) for item in data]
    except ValidationError as exc:
        raise RunDirError(f"{path}: {exc}") from exc


def append_measurement(run_dir: Path, measurement: Measurement) -> None:
    """Append-only, one line per value, so several experiments can add to one run."""
    with (run_dir / MEASUREMENTS_JSONL).open("a") as fh:
        fh.write(measurement.model_dump_json() + "\n")
        fh.flush()


def read_measurements(run_dir: Path) -> list[Measurement]:
    path = run_dir / MEASUREMENTS_JSONL
    if not path.exists():
        return []
    out: list[Measurement] = []
    with path.open() as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                out.append(Measurement.model_validate_json(line))
            except ValidationError as exc:
                raise RunDirError(f"{path}:{number}: {exc}") from exc
    return out


# --- acknowledged.csv -----------------------------------------------------------------------


def csv_cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float):
        return "" if not math.isfinite(value) else f"{value:.3f}"
    return str(value)


def write_acknowledged(run_dir: Path, jobs: Iterable[AcknowledgedJob]) -> None:
    tmp = run_dir / (ACKNOWLEDGED_CSV + ".tmp")
    with tmp.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(ACKNOWLEDGED_COLUMNS)
        for job in jobs:
            writer.writerow([csv_cell(getattr(job, column)) for column in ACKNOWLEDGED_COLUMNS])
    tmp.replace(run_dir / ACKNOWLEDGED_CSV)


def read_acknowledged(run_dir: Path) -> list[AcknowledgedJob]:
    path = run_dir / ACKNOWLEDGED_CSV
    if not path.exists():
        raise RunDirError(f"{path}: missing")
    return list(_read_acknowledged_rows(path))


def _read_acknowledged_rows(path: Path) -> Iterator[AcknowledgedJob]:
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        missing = set(ACKNOWLEDGED_COLUMNS) - set(reader.fieldnames or ())
        if missing:
            raise RunDirError(f"{path}: missing columns {sorted(missing)}")
        for number, row in enumerate(reader, start=2):
            try:
                yield AcknowledgedJob.model_validate({k: row[k] for k in ACKNOWLEDGED_COLUMNS})
            except ValidationError as exc:
                raise RunDirError(f"{path}:{number}: {exc}") from exc
