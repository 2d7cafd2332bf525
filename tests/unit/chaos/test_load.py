"""Which submission answers leave the job's existence unknown (counted as ambiguous)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from chaos.load import UNAVAILABLE_MARK, Attempt, LoadPlan, Submitter
from lab.rundir import AcknowledgedJob

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


def test_a_resubmit_answered_with_the_running_job_is_acknowledged_once() -> None:
    """One active job per store: the API answers a resubmit with the running job's id."""
    submitter = Submitter(
        api_url="http://127.0.0.1:1",
        operator_token="t",
        provider_url="http://127.0.0.1:2",
        plan=LoadPlan(1, 1.0),
        label="x",
    )

    def ack(job_id: str) -> AcknowledgedJob:
        return AcknowledgedJob(
            job_id=job_id, company_id="c", provider="roastify", store_id="s", products=1, submitted_at=NOW
        )

    assert submitter.acknowledge(ack("j1")) is True
    assert submitter.acknowledge(ack("j1")) is False
    assert submitter.acknowledge(ack("j2")) is True
    assert [a.job_id for a in submitter.acknowledged] == ["j1", "j2"]
