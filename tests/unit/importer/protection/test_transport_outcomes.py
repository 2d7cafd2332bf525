"""Which provider answers the breaker counts as failures, and that every attempt asks the guard.

The HTTP side is httpx's MockTransport and the guard a recorder: this tests the transport's
sorting logic only; the real breaker and limits are tested against Redis in integration.
"""

from __future__ import annotations

import httpx
import pytest

from importer.errors import JobDeferred, ProviderRejected, ProviderUnavailable
from importer.protection.breaker import Outcome, Permit
from importer.protection.ratelimit import CallContext
from importer.providers.transport import ProviderTransport

CALL = CallContext(provider="roastify", account="st_1", company_id="c1")


class RecordingGuard:
    def __init__(self, deny: JobDeferred | None = None) -> None:
        self.admitted = 0
        self.outcomes: list[Outcome] = []
        self.deny = deny

    async def admit(self, call: CallContext) -> Permit:
        assert call == CALL
        self.admitted += 1
        if self.deny is not None:
            raise self.deny
        return Permit(provider=call.provider, token=str(self.admitted), probe=False)

    async def settle(self, permit: Permit, outcome: Outcome, detail: str = "") -> None:
        self.outcomes.append(outcome)


def transport(handler, guard: RecordingGuard) -> ProviderTransport:
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return ProviderTransport(timeout=1.0, max_inline_wait=0.0, client=client, guard=guard)  # type: ignore[arg-type]


async def test_5xx_is_a_failure_on_every_quick_retry() -> None:
    guard = RecordingGuard()
    t = transport(lambda r: httpx.Response(503, text="down"), guard)
    with pytest.raises(ProviderUnavailable):
        await t.get_json("http://p/x", call=CALL)
    assert guard.admitted == 3
    assert guard.outcomes == [Outcome.FAILURE] * 3


async def test_connection_errors_are_failures() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    guard = RecordingGuard()
    with pytest.raises(ProviderUnavailable):
        await transport(refuse, guard).get_json("http://p/x", call=CALL)
    assert guard.outcomes == [Outcome.FAILURE] * 3


@pytest.mark.parametrize("status", [404, 401, 400])
async def test_4xx_means_the_provider_is_up(status: int) -> None:
    guard = RecordingGuard()
    with pytest.raises(ProviderRejected):
        await transport(lambda r: httpx.Response(status, text="no"), guard).get_json("http://p/x", call=CALL)
    assert guard.outcomes == [Outcome.SUCCESS]


async def test_429_means_the_provider_is_up() -> None:
    guard = RecordingGuard()
    answers = iter([httpx.Response(429, headers={"Retry-After": "0"}), httpx.Response(200, json={"ok": 1})])
    body, _ = await transport(lambda r: next(answers), guard).get_json("http://p/x", call=CALL)
    assert body == {"ok": 1}
    assert guard.outcomes == [Outcome.SUCCESS, Outcome.SUCCESS]


async def test_a_deferral_is_not_retried_in_place() -> None:
    guard = RecordingGuard(deny=JobDeferred(3.0, "breaker open"))
    with pytest.raises(JobDeferred):
        await transport(lambda r: httpx.Response(200, json={}), guard).get_json("http://p/x", call=CALL)
    assert guard.admitted == 1 and guard.outcomes == []


async def test_without_a_call_context_the_guard_is_not_asked() -> None:
    guard = RecordingGuard()
    await transport(lambda r: httpx.Response(200, json={}), guard).get_json("http://p/x")
    assert guard.admitted == 0
