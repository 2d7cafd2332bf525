"""Merge the Locust processes' records (loadtests/records.py) into the run's acknowledged.csv.

Each process wrote an ``ack`` row the moment the API answered 202 and an ``end`` row when it
saw the job's end. The merge keeps one acknowledged job per ``ack`` row — an id acknowledged
twice stays twice, so the checker can count it — and completes it with the ``end`` row of
the same file. A job whose client never saw an end keeps empty end columns: "not observed",
which the criteria count as an unfinished job, never as a fast one.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from pydantic import ValidationError

from lab.rundir import AcknowledgedJob, write_acknowledged
from loadtests.records import RECORD_COLUMNS, RECORD_GLOB


class RecordsError(Exception):
    """A records file is unreadable or malformed; the message names the file and line."""


@dataclass
class RecordCounts:
    """What the live progress line shows while Locust runs."""

    acknowledged: int = 0
    ended: int = 0
    completed: int = 0
    failed: int = 0


def record_files(directory: Path) -> list[Path]:
    return sorted(directory.glob(RECORD_GLOB)) if directory.is_dir() else []


def _rows(path: Path) -> Iterable[tuple[int, dict[str, str]]]:
    try:
        with path.open(newline="") as fh:
            reader = csv.DictReader(fh)
            missing = set(RECORD_COLUMNS) - set(reader.fieldnames or ())
            if missing:
                raise RecordsError(f"{path}: missing columns {sorted(missing)}")
            for number, row in enumerate(reader, start=2):
                if None in row.values() or None in row:
                    continue  # a torn last line of a process killed mid-write
                yield number, row
    except OSError as exc:
        raise RecordsError(f"{path}: unreadable: {exc}") from exc


def merge_records(files: Iterable[Path]) -> list[AcknowledgedJob]:
    """Acknowledged jobs in submission order, each completed by its ``end`` row if there is one."""
    jobs: list[AcknowledgedJob] = []
    for path in files:
        open_by_job: dict[str, list[int]] = {}  # job id -> indexes in `jobs` still without an end
        for number, row in _rows(path):
            try:
                if row["record"] == "ack":
                    open_by_job.setdefault(row["job_id"], []).append(len(jobs))
                    jobs.append(_job(row, with_end=False))
                elif row["record"] == "end":
                    waiting = open_by_job.get(row["job_id"])
                    if not waiting:
                        raise RecordsError(f"{path}:{number}: end of job {row['job_id']} without its ack row")
                    jobs[waiting.pop()] = _job(row, with_end=True)
                else:
                    raise RecordsError(f"{path}:{number}: unknown record kind {row['record']!r}")
            except ValidationError as exc:
                raise RecordsError(f"{path}:{number}: {exc}") from exc
    jobs.sort(key=lambda j: (j.submitted_at, j.job_id))
    return jobs


def _job(row: dict[str, str], *, with_end: bool) -> AcknowledgedJob:
    return AcknowledgedJob.model_validate(
        {
            "job_id": row["job_id"],
            "company_id": row["company_id"],
            "provider": row["provider"],
            "store_id": row["store_id"],
            "products": row["products"],
            "submitted_at": row["submitted_at"],
            "ended_at": row["ended_at"] if with_end else "",
            "end_to_end_seconds": row["end_to_end_seconds"] if with_end else "",
            "final_status": row["final_status"] if with_end else "",
        }
    )


def merge_into_run_dir(records_dir: Path, run_dir: Path) -> list[AcknowledgedJob]:
    jobs = merge_records(record_files(records_dir))
    write_acknowledged(run_dir, jobs)
    return jobs


def count_records(records_dir: Path) -> RecordCounts:
    """Cheap tallies for the progress line (a torn or odd row is skipped, not fatal, here)."""
    counts = RecordCounts()
    for path in record_files(records_dir):
        try:
            for _, row in _rows(path):
                if row["record"] == "ack":
                    counts.acknowledged += 1
                elif row["record"] == "end":
                    counts.ended += 1
                    counts.completed += row["final_status"] == "COMPLETED"
                    counts.failed += row["final_status"] in ("FAILED", "CANCELLED")
        except RecordsError:
            continue
    return counts


def latest_submission(jobs: Iterable[AcknowledgedJob]) -> datetime | None:
    return max((j.submitted_at for j in jobs), default=None)
