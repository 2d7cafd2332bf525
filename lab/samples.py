"""samples.csv: the observer's time series, written a row per tick and read back as a frame.

Written with the csv module (the observer must not pay for pandas on every tick) and read
with pandas (the reports and metrics want columns). Columns are fixed and documented here and
in docs/run-directory.md; an empty cell means the source did not answer in that tick, which is
what lets a chart show a Redis failover as a gap rather than as zero jobs.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from lab.rundir import SAMPLES_CSV, RunDirError, csv_cell

SAMPLE_COLUMNS = (
    "at",  # when the tick started
    "elapsed_s",  # seconds since RunInfo.started_at
    "ok",  # 1 when every source answered, 0 otherwise
    "errors",  # "source: message" for each source that failed, joined by " | "
    "queue_due",  # ZCOUNT arq:queue -inf now: arq keeps running jobs in the queue too
    "waiting",  # queue_due - active (clamped at 0): due and not yet picked up
    "deferred",  # ZCOUNT arq:queue (now +inf: retries and deferred starts
    "active",  # arq:in-progress:* keys
    "workers_alive",  # importer:workers:* keys
    "jobs_pending",
    "jobs_in_progress",
    "jobs_completed",
    "jobs_failed",
    "jobs_cancelled",
    "completed_per_s",  # delta of jobs_completed since the last good database sample
    "failed_per_s",
    "provider_api_requests",  # cumulative counters of the fake provider
    "provider_image_requests",
    "provider_rate_limited",
    "provider_responses",  # JSON object {"200": n, "429": n, ...}, cumulative
    "sample_ms",  # how long the tick took
)

NUMERIC_COLUMNS = tuple(c for c in SAMPLE_COLUMNS if c not in ("at", "errors", "provider_responses"))
FSYNC_EVERY = 30


class SamplesWriter:
    """Appends observer rows and flushes each one: a crash mid-run keeps every tick so far."""

    def __init__(self, path: Path) -> None:
        self.path = path
        new = not path.exists() or path.stat().st_size == 0
        self._fh = path.open("a", newline="")
        self._writer = csv.writer(self._fh)
        if new:
            self._writer.writerow(SAMPLE_COLUMNS)
            self._fh.flush()
        self.rows = 0

    def write(self, row: Mapping[str, object]) -> None:
        unknown = set(row) - set(SAMPLE_COLUMNS)
        if unknown:
            raise RunDirError(f"{self.path}: unknown sample columns {sorted(unknown)}")
        cells = []
        for column in SAMPLE_COLUMNS:
            value = row.get(column)
            cells.append(json.dumps(value, sort_keys=True) if isinstance(value, dict) else csv_cell(value))
        self._writer.writerow(cells)
        self._fh.flush()
        self.rows += 1
        if self.rows % FSYNC_EVERY == 0:
            os.fsync(self._fh.fileno())

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()


def read_samples(run_dir: Path) -> pd.DataFrame | None:
    """The samples sorted by elapsed time, numeric columns as floats (NaN = not observed).

    None when the run has no samples.csv (the observer did not run). A torn last line from a
    crash is dropped by the parser only if it is incomplete; any other malformed line raises.
    """
    path = run_dir / SAMPLES_CSV
    if not path.exists():
        return None
    try:
        frame = pd.read_csv(path, dtype={"errors": "string", "provider_responses": "string"})
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise RunDirError(f"{path}: unreadable: {exc}") from exc
    missing = {"at", "elapsed_s", "ok"} - set(frame.columns)
    if missing:
        raise RunDirError(f"{path}: missing columns {sorted(missing)}")
    for column in NUMERIC_COLUMNS:
        if column in frame.columns:
            frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
        else:
            frame[column] = float("nan")
    frame["at"] = pd.to_datetime(frame["at"], utc=True, format="ISO8601")
    return frame.sort_values("elapsed_s").reset_index(drop=True)
