"""The locustfile's standard-library parts: the plan format, the loopback guard, SSE parsing, the ledger."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from loadtests.book import Book
from loadtests.plan import (
    PLAN_ENV,
    RECORDS_ENV,
    Assignment,
    FollowSettings,
    NotLoopbackError,
    Plan,
    PlanError,
    plan_from_environment,
    read_plan,
    require_loopback,
    write_plan,
)
from loadtests.sse import MAX_EVENT_CHARS, SseError, iter_events


def assignment(index: int, **overrides: object) -> Assignment:
    fields: dict[str, object] = {
        "index": index,
        "company_id": "c1",
        "api_key": "secret-key",
        "provider": "roastify",
        "store_id": f"st_{index}",
        "products": 10,
        "images_per_product": 1,
        "size_class": "10",
    }
    fields.update(overrides)
    return Assignment(**fields)  # type: ignore[arg-type]


def plan(n: int = 3) -> Plan:
    return Plan("smoke", "http://127.0.0.1:8000", tuple(assignment(i) for i in range(n)))


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8000", "http://127.3.2.1", "http://[::1]:9000/x", "https://localhost:1"]
)
def test_loopback_urls_pass(url: str) -> None:
    assert require_loopback(url) == url


@pytest.mark.parametrize(
    "url", ["http://10.0.0.5:8000", "http://example.com", "http://0.0.0.0:80", "ftp://127.0.0.1", "127.0.0.1:80"]
)
def test_anything_but_loopback_is_refused(url: str) -> None:
    with pytest.raises(NotLoopbackError):
        require_loopback(url)


def test_a_plan_with_a_remote_api_cannot_even_be_built() -> None:
    with pytest.raises(NotLoopbackError):
        Plan("smoke", "http://192.168.1.10:8000", (assignment(0),))


def test_plan_round_trips_through_a_private_file(tmp_path: Path) -> None:
    path = write_plan(tmp_path / "plan.json", plan())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # it holds API keys
    again = read_plan(path)
    assert again == plan()
    assert again.follow == FollowSettings()


def test_redacted_plan_keeps_everything_but_the_keys() -> None:
    hidden = plan().redacted()
    assert {a.api_key for a in hidden.assignments} == {"(redacted)"}
    assert [a.store_id for a in hidden.assignments] == [a.store_id for a in plan().assignments]


def test_bad_plans_say_what_is_wrong(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    with pytest.raises(PlanError, match="cannot read"):
        read_plan(path)
    path.write_text("{nope")
    with pytest.raises(PlanError, match="not JSON"):
        read_plan(path)
    data = plan().to_json()
    data["assignments"][0]["provider"] = "amazon"
    path.write_text(json.dumps(data))
    with pytest.raises(PlanError, match="provider 'amazon'"):
        read_plan(path)
    data = plan().to_json()
    data["assignments"][1]["index"] = 0
    path.write_text(json.dumps(data))
    with pytest.raises(PlanError, match="unique"):
        read_plan(path)
    with pytest.raises(PlanError, match="positive"):
        FollowSettings(job_timeout_s=0)


def test_plan_and_records_directory_come_from_the_environment(tmp_path: Path) -> None:
    path = write_plan(tmp_path / "plan.json", plan())
    loaded, records = plan_from_environment({PLAN_ENV: str(path)})
    assert loaded == plan() and records == tmp_path / "records"
    _, records = plan_from_environment({PLAN_ENV: str(path), RECORDS_ENV: str(tmp_path / "mine")})
    assert records == tmp_path / "mine"
    with pytest.raises(PlanError, match=PLAN_ENV):
        plan_from_environment({})


def test_sse_events_are_parsed_as_the_spec_says() -> None:
    lines = [
        ": ping - keep-alive comment",
        "event: snapshot",
        'data: {"status": "PENDING"}',
        "",
        "event: progress",
        "data: line one",
        "data: line two",
        "id: 7",
        "",
        'data: {"no": "event name"}',
        "",
        "event: status",
        'data: {"status": "COMPLETED", "terminal": true}',
        "",
        "event: dangling",
        "data: never dispatched",
    ]
    events = list(iter_events(lines))
    assert [e.event for e in events] == ["snapshot", "progress", "message", "status"]
    assert events[1].data == "line one\nline two"
    assert events[3].json() == {"status": "COMPLETED", "terminal": True}
    assert events[1].json() is None


def test_sse_accepts_bytes_and_crlf_and_bounds_an_event() -> None:
    events = list(iter_events([b"event: status\r\n", b"data:{}\r\n", b"\r\n"]))
    assert events[0].event == "status" and events[0].data == "{}"
    with pytest.raises(SseError):
        list(iter_events(["data: " + "x" * (MAX_EVENT_CHARS + 1), ""]))


def test_book_hands_each_assignment_out_once_and_knows_when_all_are_done() -> None:
    book = Book(assignment(i) for i in range(3))
    taken = [book.take() for _ in range(4)]
    assert [a.index for a in taken if a is not None] == [0, 1, 2] and taken[3] is None
    assert not book.complete
    assert book.finish(0) and book.finish(1)
    assert not book.finish(1), "a repeated finish is ignored"
    assert not book.finish(99), "an index never handed out is ignored"
    assert not book.complete
    assert book.finish(2)
    assert book.complete and book.finished == book.handed_out == book.total == 3


def test_an_empty_plan_is_complete_at_once() -> None:
    assert Book([]).complete
