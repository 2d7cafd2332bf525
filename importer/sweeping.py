"""How far one reconciler sweep may go: pages of a fixed size, a row budget and a time budget.

A sweep pages through every candidate row (oldest first) instead of looking at the first page
only, so a backlog of rows Redis does know can never hide an orphan behind it. The budgets keep
one sweep from holding the reconciler for long; what a sweep did not reach, the next one does
(it starts again from the oldest, and the rows already settled are no longer candidates).
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from dataclasses import dataclass, field


class SweepStop(enum.StrEnum):
    """Why a sweep ended before it had seen every candidate (None: it saw them all)."""

    ROWS = "rows"  # reconcile_max_rows_per_sweep reached
    TIME = "time"  # reconcile_max_sweep_seconds reached
    LOCKED = "locked"  # another reconciler holds the sweep's lock: it is sweeping right now
    REDIS = "redis"  # an enqueue failed: Redis is failing, the next sweep tries again


@dataclass
class SweepBudget:
    """Counts the rows a sweep has read and the time it has taken, against its limits."""

    page_size: int
    max_rows: int
    max_seconds: float
    clock: Callable[[], float] = time.monotonic
    rows: int = 0
    started: float = field(init=False)

    def __post_init__(self) -> None:
        if self.page_size < 1 or self.max_rows < 1 or self.max_seconds <= 0:
            raise ValueError(
                "a sweep budget needs positive limits, got "
                f"page_size={self.page_size} max_rows={self.max_rows} max_seconds={self.max_seconds}"
            )
        self.started = self.clock()

    def next_page_size(self) -> int:
        """Rows to ask for in the next page: never more than the row budget has left."""
        return max(0, min(self.page_size, self.max_rows - self.rows))

    def spend(self, rows: int) -> None:
        self.rows += rows

    def exhausted(self) -> SweepStop | None:
        """The budget that ran out, checked between pages (a page is never cut in half)."""
        if self.rows >= self.max_rows:
            return SweepStop.ROWS
        if self.clock() - self.started >= self.max_seconds:
            return SweepStop.TIME
        return None
