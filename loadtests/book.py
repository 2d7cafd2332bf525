"""The ledger of assignments: handed out once each, and done when every one is finished.

Held by the process that owns the plan's work (Locust's master in distributed mode, the only
process otherwise). Clients claim one assignment at a time, so work follows whichever process
has free users instead of a split fixed in advance; and the run can end as soon as the last
job is followed to its end rather than when the run-time bound strikes.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from loadtests.plan import Assignment


class Book:
    def __init__(self, assignments: Iterable[Assignment]) -> None:
        self._pending: deque[Assignment] = deque(assignments)
        self.total = len(self._pending)
        self._out: set[int] = set()
        self._finished: set[int] = set()

    def take(self) -> Assignment | None:
        """The next assignment, or None when all have been handed out."""
        if not self._pending:
            return None
        assignment = self._pending.popleft()
        self._out.add(assignment.index)
        return assignment

    def finish(self, index: int) -> bool:
        """Mark a handed-out assignment finished; False (ignored) for an unknown or repeated one."""
        if index not in self._out or index in self._finished:
            return False
        self._finished.add(index)
        return True

    @property
    def handed_out(self) -> int:
        return len(self._out)

    @property
    def finished(self) -> int:
        return len(self._finished)

    @property
    def complete(self) -> bool:
        """Every assignment handed out and finished (an empty plan is complete at once)."""
        return not self._pending and self._finished == self._out
