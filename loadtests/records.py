"""What each Locust process saw of its jobs: one CSV per process, merged by drill afterwards.

Distributed mode runs several processes that cannot share a file, so each writes its own
``acks-<host>-<pid>.csv``. Two kinds of row:

- ``ack``: written the moment the API answers 202. If the process dies or the run-time bound
  cuts the client short, this row is what proves the job was acknowledged.
- ``end``: written when the client saw the job's terminal state (or gave up following it);
  it completes the latest open ``ack`` row of the same job id in the same file.

Every row is flushed as written. ``lab.acks`` merges the files into the run directory's
``acknowledged.csv``. Standard library only (see loadtests/plan.py).
"""

from __future__ import annotations

import csv
import os
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

RECORD_COLUMNS = (
    "record",  # ack | end
    "assignment",
    "job_id",
    "company_id",
    "provider",
    "store_id",
    "products",
    "size_class",
    "submitted_at",
    "ended_at",
    "end_to_end_seconds",
    "final_status",
    "followed_by",  # sse | poll | gave_up
    "detail",
)
RECORD_GLOB = "acks-*.csv"


def iso(ts: float | None) -> str:
    return "" if ts is None else datetime.fromtimestamp(ts, UTC).isoformat()


@dataclass(frozen=True)
class Ack:
    assignment: int
    job_id: str
    company_id: str
    provider: str
    store_id: str
    products: int
    size_class: str
    submitted_at: float  # time.time() just before the POST that got the 202


class RecordWriter:
    """Append-only; one instance per process (greenlets never interleave inside a write)."""

    def __init__(self, directory: Path, name: str | None = None) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / (name or f"acks-{socket.gethostname()}-{os.getpid()}.csv")
        new = not self.path.exists() or self.path.stat().st_size == 0
        self._fh: TextIO = self.path.open("a", newline="")
        self._csv = csv.writer(self._fh)
        if new:
            self._write(RECORD_COLUMNS)

    def _write(self, row: tuple[object, ...] | list[object]) -> None:
        self._csv.writerow(row)
        self._fh.flush()

    def acknowledged(self, ack: Ack) -> None:
        self._write(
            [
                "ack",
                ack.assignment,
                ack.job_id,
                ack.company_id,
                ack.provider,
                ack.store_id,
                ack.products,
                ack.size_class,
                iso(ack.submitted_at),
                "",
                "",
                "",
                "",
                "",
            ]
        )

    def ended(
        self,
        ack: Ack,
        *,
        ended_at: float | None,
        final_status: str | None,
        followed_by: str,
        detail: str = "",
    ) -> None:
        seconds = "" if ended_at is None else f"{ended_at - ack.submitted_at:.3f}"
        self._write(
            [
                "end",
                ack.assignment,
                ack.job_id,
                ack.company_id,
                ack.provider,
                ack.store_id,
                ack.products,
                ack.size_class,
                iso(ack.submitted_at),
                iso(ended_at),
                seconds,
                final_status or "",
                followed_by,
                detail[:300],
            ]
        )

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.close()
