"""The report's per-size duration table and load facts, from the recorded fixture run."""

from __future__ import annotations

from lab.rundir import read_acknowledged
from reports.data import load_run
from reports.facts import DURATION_HEADER, duration_rows, duration_table, load_facts, run_facts
from tests.fixtures.make_fixture_run import DEFAULT_OUT as FIXTURE


def test_durations_are_grouped_by_catalog_size_smallest_first() -> None:
    data = load_run(FIXTURE)
    rows = duration_rows(data)
    assert [r.size for r in rows] == ["10 products", "100 products", "1,000 products"]
    jobs = read_acknowledged(FIXTURE)
    for row, size in zip(rows, (10, 100, 1000), strict=True):
        mine = [j for j in jobs if j.products == size]
        completed = [j for j in mine if j.final_status == "COMPLETED" and j.end_to_end_seconds is not None]
        assert row.jobs == len(mine) and row.completed == len(completed)
        assert row.not_completed == len(mine) - len(completed)
    assert all(len(r) == len(DURATION_HEADER) for r in duration_table(data))


def test_load_facts_give_the_peak_queue_and_the_worker_range() -> None:
    data = load_run(FIXTURE)
    facts = dict(load_facts(data))
    assert set(facts) == {"Peak waiting jobs", "Peak queue depth (waiting + active)", "Workers alive"}
    assert " to " in facts["Workers alive"] and "(at " in facts["Peak waiting jobs"]
    labels = [label for label, _ in run_facts(data)]
    assert "Peak waiting jobs" in labels
    assert all(not label.startswith("Setting: ") or label[9:] for label in labels)
