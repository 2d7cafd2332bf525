"""Merging the Locust processes' records into acknowledged.csv: nothing acknowledged is lost or merged away."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from lab.acks import RecordsError, count_records, merge_into_run_dir, merge_records, record_files
from lab.rundir import read_acknowledged
from loadtests.records import Ack, RecordWriter


def ack(job: str, assignment: int = 0, at: float | None = None) -> Ack:
    return Ack(
        assignment=assignment,
        job_id=job,
        company_id="00000000-0000-0000-0000-000000000001",
        provider="roastify",
        store_id=f"st_{assignment}",
        products=10,
        size_class="10",
        submitted_at=time.time() if at is None else at,
    )


def test_two_processes_are_merged_in_submission_order(tmp_path: Path) -> None:
    first = RecordWriter(tmp_path, "acks-host-1.csv")
    second = RecordWriter(tmp_path, "acks-host-2.csv")
    a, b, c = ack("job-a", 0, 1000.0), ack("job-b", 1, 1001.0), ack("job-c", 2, 1002.0)
    second.acknowledged(b)
    first.acknowledged(a)
    first.acknowledged(c)
    first.ended(a, ended_at=1010.5, final_status="COMPLETED", followed_by="sse")
    second.ended(b, ended_at=1020.0, final_status="FAILED", followed_by="poll", detail="stream broke")
    for writer in (first, second):
        writer.close()

    jobs = merge_records(record_files(tmp_path))
    assert [j.job_id for j in jobs] == ["job-a", "job-b", "job-c"]
    assert jobs[0].final_status == "COMPLETED" and jobs[0].end_to_end_seconds == pytest.approx(10.5)
    assert jobs[1].final_status == "FAILED" and jobs[1].ended_at is not None
    # job-c: acknowledged, never seen ending (the run-time bound struck): kept, end "not observed".
    assert jobs[2].final_status is None and jobs[2].ended_at is None and jobs[2].end_to_end_seconds is None

    counts = count_records(tmp_path)
    assert (counts.acknowledged, counts.ended, counts.completed, counts.failed) == (3, 2, 1, 1)


def test_an_id_acknowledged_twice_stays_twice_for_the_checker(tmp_path: Path) -> None:
    writer = RecordWriter(tmp_path, "acks-x-1.csv")
    once, again = ack("same", 0, 1.0), ack("same", 1, 2.0)
    writer.acknowledged(once)
    writer.acknowledged(again)
    writer.ended(again, ended_at=5.0, final_status="COMPLETED", followed_by="sse")
    writer.close()
    jobs = merge_records(record_files(tmp_path))
    assert [j.job_id for j in jobs] == ["same", "same"]
    assert sorted(str(j.final_status) for j in jobs) == ["COMPLETED", "None"]


def test_a_torn_last_line_is_dropped_but_an_orphan_end_is_an_error(tmp_path: Path) -> None:
    writer = RecordWriter(tmp_path, "acks-x-1.csv")
    writer.acknowledged(ack("kept", 0, 1.0))
    writer.close()
    with (tmp_path / "acks-x-1.csv").open("a") as fh:
        fh.write("ack,1,torn-job")  # a process killed in the middle of a row
    assert [j.job_id for j in merge_records(record_files(tmp_path))] == ["kept"]

    orphan = RecordWriter(tmp_path, "acks-x-2.csv")
    orphan.ended(ack("nobody-acked-me"), ended_at=3.0, final_status="COMPLETED", followed_by="sse")
    orphan.close()
    with pytest.raises(RecordsError, match="without its ack row"):
        merge_records(record_files(tmp_path))


def test_merge_writes_the_documented_acknowledged_csv(tmp_path: Path) -> None:
    records, run_dir = tmp_path / "records", tmp_path / "run"
    run_dir.mkdir()
    writer = RecordWriter(records)
    a = ack("11111111-1111-1111-1111-111111111111", 0, 100.0)
    writer.acknowledged(a)
    writer.ended(a, ended_at=112.0, final_status="COMPLETED", followed_by="sse")
    writer.close()
    merged = merge_into_run_dir(records, run_dir)
    assert read_acknowledged(run_dir) == merged
    assert merged[0].source == "roastify:st_0"


def test_no_records_directory_means_nothing_acknowledged(tmp_path: Path) -> None:
    assert merge_records(record_files(tmp_path / "absent")) == []
    assert count_records(tmp_path / "absent").acknowledged == 0
