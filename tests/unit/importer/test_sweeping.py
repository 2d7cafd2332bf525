"""A reconciler sweep's budget: pages never past the row budget, stops between pages only."""

from __future__ import annotations

import pytest

from importer.settings import Settings
from importer.sweeping import SweepBudget, SweepStop


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_pages_are_full_until_the_row_budget_is_nearly_spent() -> None:
    budget = SweepBudget(page_size=1000, max_rows=2500, max_seconds=60, clock=FakeClock())
    sizes = []
    while (size := budget.next_page_size()) > 0 and len(sizes) < 10:
        sizes.append(size)
        budget.spend(size)
    assert sizes == [1000, 1000, 500]
    assert budget.exhausted() is SweepStop.ROWS


def test_a_budget_with_rows_and_time_left_is_not_exhausted() -> None:
    clock = FakeClock()
    budget = SweepBudget(page_size=5, max_rows=100, max_seconds=60, clock=clock)
    budget.spend(5)
    clock.now += 59.9
    assert budget.exhausted() is None


def test_the_time_budget_stops_the_sweep() -> None:
    clock = FakeClock()
    budget = SweepBudget(page_size=5, max_rows=100, max_seconds=60, clock=clock)
    budget.spend(5)
    clock.now += 60
    assert budget.exhausted() is SweepStop.TIME


@pytest.mark.parametrize(("page_size", "max_rows", "max_seconds"), [(0, 10, 1.0), (5, 0, 1.0), (5, 10, 0.0)])
def test_a_budget_without_room_is_refused(page_size: int, max_rows: int, max_seconds: float) -> None:
    with pytest.raises(ValueError, match="positive limits"):
        SweepBudget(page_size=page_size, max_rows=max_rows, max_seconds=max_seconds)


def test_production_defaults_page_through_a_large_backlog_within_one_interval() -> None:
    s = Settings()
    assert (s.reconcile_batch_limit, s.reconcile_max_rows_per_sweep) == (1000, 100_000)
    assert s.reconcile_max_sweep_seconds < s.orphan_sweep_interval
    assert s.stall_limit == 7200, "the seed's limit keeps its meaning: no sign of life for 2 h"
    assert s.job_heartbeat_timeout == 10
