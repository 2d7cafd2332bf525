"""The live progress line of ``drill run``: one line every few seconds, never a wall of logs.

What a person watching a drill wants at a glance: how long it has run, which phase it is in,
how many jobs the API acknowledged out of the plan, how many completed or failed, the queue
(waiting / active / deferred) and the worker count. The queue and job figures are the
observer's last sample (samples.csv), so the line and the report never disagree; the
acknowledged count comes from the load generator's records.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from pathlib import Path

TAIL_BYTES = 16_384


@dataclass(frozen=True)
class Progress:
    elapsed_s: float
    phase: str
    planned: int
    acknowledged: int
    completed: int | None = None
    failed: int | None = None
    waiting: int | None = None
    active: int | None = None
    deferred: int | None = None
    workers: int | None = None


def format_elapsed(seconds: float) -> str:
    seconds = max(0, int(seconds))
    minutes, secs = divmod(seconds, 60)
    return f"{minutes:d}m{secs:02d}s" if minutes else f"{secs:d}s"


def _n(value: int | None) -> str:
    return "?" if value is None else f"{value:,}"


def format_progress(p: Progress) -> str:
    """One line: ``[ 1m05s] load   jobs 512/1,000 acked, 120 completed, 0 failed | queue 380 waiting, ...``."""
    return (
        f"[{format_elapsed(p.elapsed_s):>6}] {p.phase:<6} "
        f"jobs {p.acknowledged:,}/{p.planned:,} acked, {_n(p.completed)} completed, {_n(p.failed)} failed"
        f" | queue {_n(p.waiting)} waiting, {_n(p.active)} active, {_n(p.deferred)} deferred"
        f" | {_n(p.workers)} workers"
    )


def last_sample(path: Path) -> dict[str, str] | None:
    """The newest complete row of samples.csv, read from the file's end (it grows all run long)."""
    try:
        with path.open("rb") as fh:
            header = fh.readline().decode("utf-8", errors="replace")
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(len(header), size - TAIL_BYTES))
            tail = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return None
    lines = [line for line in tail.splitlines() if line.strip()]
    if not header.strip() or not lines:
        return None
    if not tail.endswith("\n"):
        lines = lines[:-1]  # a row being written right now
    columns = next(csv.reader([header]))
    for line in reversed(lines):
        cells = next(csv.reader(io.StringIO(line)), [])
        if len(cells) == len(columns):
            return dict(zip(columns, cells, strict=True))
    return None


def sample_int(row: dict[str, str] | None, column: str) -> int | None:
    """A count from a samples row; None when the source was down in that tick (empty cell)."""
    if row is None:
        return None
    raw = row.get(column, "")
    try:
        return int(float(raw)) if raw != "" else None
    except ValueError:
        return None
