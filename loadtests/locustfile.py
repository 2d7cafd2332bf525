"""Locust load for the product importer: each simulated client runs one catalog import end to end.

A client (``ImportClient``, an HttpUser) claims an assignment from the plan, creates the import
for its own company (``POST /v1/imports`` with the company's key), follows it over Server-Sent
Events (``GET /v1/imports/{id}/events``) and falls back to polling ``GET /v1/imports/{id}``
when the stream breaks, until the job is terminal or the client's time for it is up. What it
saw goes to a CSV per process (loadtests/records.py). A client with nothing left to claim
stops; once every assignment has been followed to its end the test stops by itself, well
before the ``--run-time`` bound.

``drill run <scenario>`` writes the plan, runs this file and merges the records. By hand::

    DRILL_PLAN=plan.json locust -f loadtests/locustfile.py --headless \\
        --users 20 --spawn-rate 20 --run-time 3m --host http://127.0.0.1:<api port>

Distributed mode works unchanged (``--master`` / ``--worker``, or ``--processes N``): the
master holds the plan's ledger and hands out one assignment per claim, so the work follows
whichever worker has free clients. Targets are loopback only; any other host is refused.

Only requests, gevent and locust are imported here (plus loadtests' standard-library
modules): Locust monkey-patches the standard library, and asyncio-side libraries (redis,
arq, moto, the ``lab`` package) must never load next to it (docs/architecture.md §9).
"""

from __future__ import annotations

import itertools
import logging
import sys
import time
from pathlib import Path
from typing import Any

try:
    import loadtests  # noqa: F401  (installed with the project; else found beside this file)
except ImportError:  # pragma: no cover - only when run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import gevent
from gevent.event import AsyncResult
from locust import HttpUser, constant, events, task
from locust.env import Environment
from locust.exception import StopUser
from locust.runners import MasterRunner, Runner, WorkerRunner
from requests.exceptions import RequestException

from loadtests.book import Book
from loadtests.plan import Assignment, FollowSettings, NotLoopbackError, Plan, PlanError, plan_from_environment
from loadtests.plan import require_loopback as _require_loopback
from loadtests.records import Ack, RecordWriter
from loadtests.sse import SseError, iter_events

log = logging.getLogger("loadtests")

CLAIM = "drill_claim"  # client process → ledger holder: {"request": n}
ASSIGN = "drill_assign"  # ledger holder → client process: {"request": n, "assignment": {...} | null}
FINISHED = "drill_finished"  # client process → ledger holder: {"index": i}
TERMINAL = frozenset({"COMPLETED", "FAILED", "CANCELLED"})
EXIT_BAD_SETUP = 2
QUIT_DELAY_S = 2.5


class ClaimTimeout(RuntimeError):
    """The ledger holder did not answer a claim in time (master gone, or overloaded)."""


class JobNotCompleted(Exception):
    """Recorded on the per-size JOB line in Locust's stats when a job did not end COMPLETED."""


class Dispatch:
    """One per Locust process: the ledger where this process holds it, claims where it runs clients."""

    def __init__(self, runner: Runner, plan: Plan, records_dir: Path) -> None:
        self.runner = runner
        self.plan = plan
        self.records_dir = records_dir
        self.book: Book | None = None if isinstance(runner, WorkerRunner) else Book(plan.assignments)
        self._waiting: dict[int, AsyncResult] = {}
        self._ids = itertools.count(1)
        self._records: RecordWriter | None = None
        self._quitting = False
        self.started_at = time.time()  # reset when the test starts: phased assignments count from it
        if self.book is not None:
            runner.register_message(CLAIM, self._on_claim)
            runner.register_message(FINISHED, self._on_finished)
        if not isinstance(runner, MasterRunner):
            runner.register_message(ASSIGN, self._on_assign)

    @property
    def records(self) -> RecordWriter:
        """Opened on first use, so a forked worker (``--processes``) writes its own file."""
        if self._records is None:
            self._records = RecordWriter(self.records_dir)
        return self._records

    def close(self) -> None:
        if self._records is not None:
            self._records.close()

    # --- the client side ------------------------------------------------------------------

    def claim(self, timeout: float) -> Assignment | None:
        request = next(self._ids)
        result: AsyncResult = AsyncResult()
        self._waiting[request] = result
        try:
            self.runner.send_message(CLAIM, {"request": request})
            data = result.get(timeout=timeout)
        except gevent.Timeout as exc:
            raise ClaimTimeout(f"no assignment within {timeout:.0f}s (claim {request})") from exc
        finally:
            self._waiting.pop(request, None)
        raw = data.get("assignment")
        return None if raw is None else Assignment.from_json(raw)

    def finished(self, assignment: Assignment) -> None:
        try:
            self.runner.send_message(FINISHED, {"index": assignment.index})
        except Exception as exc:  # the master may be gone while we stop; the run-time bound ends it then
            log.warning("could not report assignment %d finished: %r", assignment.index, exc)

    def _on_assign(self, environment: Environment, msg: Any, **_: Any) -> None:
        result = self._waiting.get(int(msg.data["request"]))
        if result is not None:
            result.set(msg.data)

    # --- the ledger side -----------------------------------------------------------------

    def _on_claim(self, environment: Environment, msg: Any, **_: Any) -> None:
        assert self.book is not None
        assignment = self.book.take()
        reply = {"request": msg.data["request"], "assignment": None if assignment is None else assignment.to_json()}
        self.runner.send_message(ASSIGN, reply, client_id=msg.node_id)

    def _on_finished(self, environment: Environment, msg: Any, **_: Any) -> None:
        assert self.book is not None
        self.book.finish(int(msg.data["index"]))
        if self.book.complete and not self._quitting:
            self._quitting = True
            log.info("all %d assignments followed to their end; stopping the test", self.book.total)
            # Not from this greenlet (quit() kills the listeners), and after Locust's CSV writer
            # (every second) has written the last job's figures.
            gevent.spawn_later(QUIT_DELAY_S, self.runner.quit)


_dispatch: Dispatch | None = None


def dispatch() -> Dispatch:
    if _dispatch is None:
        raise StopUser()  # init refused the plan; it has already said why
    return _dispatch


def _on_init(environment: Environment, **_: Any) -> None:
    """Load the plan and refuse a non-loopback target before a single request leaves."""
    global _dispatch
    try:
        plan, records_dir = plan_from_environment()
        if not environment.host:
            environment.host = plan.api_url
        _require_loopback(environment.host)
    except PlanError as exc:  # NotLoopbackError included
        logging.error("drill load test refused to start: %s", exc)
        sys.exit(EXIT_BAD_SETUP)
    if environment.runner is None:
        logging.error("drill load test: no runner (this locustfile runs under the locust command)")
        sys.exit(EXIT_BAD_SETUP)
    _dispatch = Dispatch(environment.runner, plan, records_dir)
    if not isinstance(environment.runner, WorkerRunner):
        logging.info("drill plan %r: %d assignments against %s", plan.scenario, len(plan.assignments), environment.host)


def _on_test_start(environment: Environment, **_: Any) -> None:
    if _dispatch is not None:
        _dispatch.started_at = time.time()


def _on_quitting(environment: Environment, **_: Any) -> None:
    if _dispatch is not None:
        _dispatch.close()


events.init.add_listener(_on_init)  # type: ignore[no-untyped-call]
events.test_start.add_listener(_on_test_start)  # type: ignore[no-untyped-call]
events.quitting.add_listener(_on_quitting)  # type: ignore[no-untyped-call]


class ImportClient(HttpUser):
    """One merchant's integration: import a catalog, watch it to the end, report what it saw."""

    wait_time = constant(0)

    def on_start(self) -> None:
        try:
            _require_loopback(self.host or "")
        except NotLoopbackError as exc:
            log.error("%s", exc)
            raise StopUser() from exc

    @task
    def import_one_catalog(self) -> None:
        d = dispatch()
        try:
            assignment = d.claim(d.plan.follow.claim_timeout_s)
        except ClaimTimeout as exc:
            log.error("client stops: %s", exc)
            raise StopUser() from exc
        if assignment is None:
            raise StopUser()  # nothing left to do
        try:
            wait = assignment.wait_before_submit(d.started_at, time.time())
            if wait > 0:  # a phased scenario: this job belongs to a later phase
                gevent.sleep(wait)
            self.run_assignment(assignment, d.plan.follow, d.records)
        finally:
            d.finished(assignment)

    # --- one assignment ------------------------------------------------------------------

    def run_assignment(self, a: Assignment, follow: FollowSettings, records: RecordWriter) -> None:
        deadline = time.monotonic() + follow.job_timeout_s
        headers = {"Authorization": f"Bearer {a.api_key}"}
        ack = self.submit_job(a, headers, follow, deadline)
        if ack is None:
            return
        records.acknowledged(ack)
        status, seen_at, how, detail = self.follow_job(ack.job_id, headers, follow, deadline)
        records.ended(ack, ended_at=seen_at, final_status=status, followed_by=how, detail=detail)
        elapsed_ms = ((seen_at or time.time()) - ack.submitted_at) * 1000
        self.environment.events.request.fire(
            request_type="JOB",
            name=f"{a.size_class} products: submit to end",
            response_time=elapsed_ms,
            response_length=0,
            exception=None if status == "COMPLETED" else JobNotCompleted(status or f"no end seen ({how})"),
            context={},
        )

    def submit_job(self, a: Assignment, headers: dict[str, str], follow: FollowSettings, deadline: float) -> Ack | None:
        """POST the import; 503 (overload, intake closed) is retried after Retry-After, nothing else is."""
        body = {"provider": a.provider, "store_id": a.store_id, "include_images": a.include_images}
        for attempt in range(1, follow.submit_attempts + 1):
            submitted_at = time.time()
            with self.client.post(
                "/v1/imports",
                json=body,
                headers=headers,
                name="POST /v1/imports",
                timeout=follow.request_timeout_s,
                catch_response=True,
            ) as response:
                if response.status_code == 202:
                    try:
                        job_id = str(response.json()["id"])
                    except (ValueError, KeyError, TypeError):
                        response.failure(f"202 without a job id: {response.text[:200]}")
                        return None
                    response.success()
                    return Ack(
                        assignment=a.index,
                        job_id=job_id,
                        company_id=a.company_id,
                        provider=a.provider,
                        store_id=a.store_id,
                        products=a.products,
                        size_class=a.size_class,
                        submitted_at=submitted_at,
                    )
                response.failure(f"{response.status_code}: {(response.text or '')[:200]}")
                remaining = deadline - time.monotonic()
                if response.status_code != 503 or attempt == follow.submit_attempts or remaining <= 0:
                    return None  # a timeout is ambiguous: the job may exist; retrying would make a second
                wait = _retry_after(response.headers.get("Retry-After"), default=5.0)
            gevent.sleep(min(wait, remaining))
        return None

    def follow_job(
        self, job_id: str, headers: dict[str, str], follow: FollowSettings, deadline: float
    ) -> tuple[str | None, float | None, str, str]:
        """(final status, when it was seen, how: sse | poll | gave_up, detail)."""
        detail = ""
        remaining = deadline - time.monotonic()
        if remaining > 0:
            with gevent.Timeout(remaining, False):  # the stream's pings must not outlive the deadline
                try:
                    status = self._stream(job_id, headers, follow)
                except (RequestException, SseError) as exc:
                    detail = f"stream broke: {type(exc).__name__}"
                    self.environment.events.request.fire(
                        request_type="SSE",
                        name="stream broken, polling",
                        response_time=0,
                        response_length=0,
                        exception=exc,
                        context={},
                    )
                    status = None
                if status is not None:
                    return status, time.time(), "sse", detail
        return self._poll(job_id, headers, follow, deadline, detail)

    def _stream(self, job_id: str, headers: dict[str, str], follow: FollowSettings) -> str | None:
        """The terminal status from the event stream, or None when it ended without one."""
        with self.client.get(
            f"/v1/imports/{job_id}/events",
            headers={**headers, "Accept": "text/event-stream"},
            name="GET /v1/imports/[id]/events",
            stream=True,
            timeout=(follow.request_timeout_s, follow.sse_read_timeout_s),
            catch_response=True,
        ) as response:
            try:
                if response.status_code != 200:
                    response.failure(f"{response.status_code}: {(response.text or '')[:200]}")
                    return None
                response.success()
                for event in iter_events(response.iter_lines(decode_unicode=True)):
                    if event.event not in ("status", "snapshot"):
                        continue
                    payload = event.json()
                    status = payload.get("status") if isinstance(payload, dict) else None
                    if status in TERMINAL:
                        return str(status)
            finally:
                response.close()  # a stream left open holds its connection until garbage collection
        return None

    def _poll(
        self, job_id: str, headers: dict[str, str], follow: FollowSettings, deadline: float, detail: str
    ) -> tuple[str | None, float | None, str, str]:
        rounds = int(follow.job_timeout_s / follow.poll_interval_s) + 2
        for _ in range(rounds):
            if time.monotonic() >= deadline:
                break
            with self.client.get(
                f"/v1/imports/{job_id}",
                headers=headers,
                name="GET /v1/imports/[id]",
                timeout=follow.request_timeout_s,
                catch_response=True,
            ) as response:
                status = None
                if response.status_code == 200:
                    try:
                        status = response.json().get("status")
                    except ValueError:
                        response.failure("200 with a body that is not JSON")
                else:
                    response.failure(f"{response.status_code}: {(response.text or '')[:200]}")
            if status in TERMINAL:
                return str(status), time.time(), "poll", detail
            gevent.sleep(max(0.0, min(follow.poll_interval_s, deadline - time.monotonic())))
        return None, None, "gave_up", (detail + "; " if detail else "") + "job timeout reached"


def _retry_after(value: str | None, *, default: float) -> float:
    try:
        return max(0.5, float(value)) if value else default
    except ValueError:
        return default
