"""Progress lines of ``drill run`` and ``drill chaos``: one format, one stream (stderr).

Every line is ``[elapsed] where: message`` (``[ 1m05s] load   jobs 512/1,000 acked, ...``,
``[12m40s] redis-failover #1/3 method: primary killed``), written by :class:`ProgressLog` to
stderr, so stdout carries only the verdict and the report's path and a script can pipe it.

The live progress line of ``drill run``: one line every few seconds, never a wall of logs.

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
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

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


def format_line(elapsed_s: float, message: str, where: str = "") -> str:
    """``[ 1m05s] where: message``: the one shape of every progress line."""
    return f"[{format_elapsed(elapsed_s):>6}] {where + ': ' if where else ''}{message}"


class ProgressLog:
    """Writes progress lines, stamped with the time since it was made; thread-safe.

    ``context`` and ``phase`` (e.g. ``redis-failover #1/3`` and ``method``) prefix each line
    while set. Lines go to stderr unless a stream is given (tests).
    """

    def __init__(self, stream: TextIO | None = None, *, quiet: bool = False) -> None:
        self._stream = stream
        self._quiet = quiet
        self._started = time.monotonic()
        self._lock = threading.Lock()
        self.context = ""
        self.phase = ""

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self._started

    def __call__(self, message: str) -> None:
        if self._quiet:
            return
        where = " ".join(part for part in (self.context, self.phase) if part)
        line = format_line(self.elapsed, message, where)
        with self._lock:
            stream = self._stream or sys.stderr
            stream.write(line + "\n")
            stream.flush()


def format_progress(p: Progress) -> str:
    """``load   jobs 512/1,000 acked, 120 completed, 0 failed | queue 380 waiting, ...``.

    No stamp of its own: the :class:`ProgressLog` that writes it stamps it like every other line.
    """
    return (
        f"{p.phase:<6} "
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
