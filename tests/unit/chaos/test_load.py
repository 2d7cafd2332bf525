"""Which submission answers leave the job's existence unknown (counted as ambiguous)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from chaos.load import UNAVAILABLE_MARK, Attempt

NOW = datetime(2026, 11, 28, tzinfo=UTC)


@pytest.mark.parametrize(
    ("status", "error", "ambiguous"),
    [
        (None, "ReadTimeout: ", True),
        (500, '{"error":"internal error"}', True),
        (503, f'{{"error":"a {UNAVAILABLE_MARK}; retry shortly"}}', True),
        (503, '{"error":"the import queue is overloaded"}', False),
        (503, '{"error":"intake closed for maintenance"}', False),
        (202, "", False),
        (422, '{"error":"invalid request"}', False),
    ],
)
def test_only_answers_that_promise_nothing_are_ambiguous(status: int | None, error: str, ambiguous: bool) -> None:
    assert Attempt(NOW, status, 0.1, error=error).ambiguous is ambiguous
