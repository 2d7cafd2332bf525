"""Load during experiments: a steady, bounded stream of small imports through the importer's API.

Locust is for the load scenarios; a chaos experiment only needs work flowing while the fault
happens, and every job the API acknowledged written down so the checker can prove it came
out. So: companies and fake-provider stores first, then ``jobs`` submissions at ``rate`` per
second, at most ``max_in_flight`` requests open at once, each with a timeout.

What the submitter does with answers, deliberately:

- 202: the job exists (the API wrote its row first); recorded for acknowledged.csv.
- 503 with ``Retry-After`` (overload, intake closed, a backing service down): nothing was
  written; that submission is given up and the next ones wait ``Retry-After`` (capped), as a
  polite client does.
- no answer (timeout, connection refused), a 500, or a 503 saying a backing service is
  unavailable (Postgres went away mid-request): the outcome is unknown, so it is **not**
  retried (a retry could create a second job); it is recorded as ambiguous. If the row was
  written after all, the checker reports it as an unexpected job, not as a loss. Only the
  backpressure 503s (overload, intake closed) promise that no row was written.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import random
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from lab.rundir import AcknowledgedJob, csv_cell

SETUP_TIMEOUT = 30.0


class LoadError(Exception):
    """The load could not be set up (company or store creation refused)."""


@dataclass(frozen=True)
class LoadPlan:
    jobs: int
    rate: float  # submissions per second
    companies: int = 2
    stores_per_company: int = 2
    products: int = 10
    images_per_product: int = 1
    page_latency_ms: int = 0
    dialect: str = "roastify"
    include_images: bool = True
    tier: str = "PRO"
    max_in_flight: int = 16
    request_timeout: float = 10.0
    retry_after_cap: float = 2.0

    def __post_init__(self) -> None:
        if self.jobs < 0 or self.rate <= 0 or self.companies < 1 or self.stores_per_company < 1:
            raise ValueError(f"implausible load plan {self}")

    @property
    def nominal_seconds(self) -> float:
        return self.jobs / self.rate


@dataclass
class Tenant:
    company_id: str
    api_key: str
    stores: list[str] = field(default_factory=list)


# The API's body for a 503 caused by Postgres/Redis not answering (importer/api/app.py).
UNAVAILABLE_MARK = "backing service is unavailable"


@dataclass(frozen=True)
class Attempt:
    """One submission: when, what came back (status None: no answer), how long it took."""

    at: datetime
    status: int | None
    seconds: float
    retry_after: str | None = None
    job_id: str | None = None
    error: str = ""

    @property
    def ambiguous(self) -> bool:
        """The job may or may not exist: nothing in the answer says the row was not written."""
        if self.status is None or self.status in (500, 502, 504):
            return True
        return self.status == 503 and UNAVAILABLE_MARK in self.error


ATTEMPT_COLUMNS = ("at", "status", "seconds", "retry_after", "job_id", "error")


class Submitter:
    def __init__(
        self,
        *,
        api_url: str,
        operator_token: str,
        provider_url: str,
        plan: LoadPlan,
        label: str,
        seed: int = 0,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.operator_token = operator_token
        self.provider_url = provider_url.rstrip("/")
        self.plan = plan
        self.label = label
        self._rng = random.Random(seed)
        self.tenants: list[Tenant] = []
        self.acknowledged: list[AcknowledgedJob] = []
        self._acknowledged_ids: set[str] = set()
        self.attempts: list[Attempt] = []
        self._hold_until = 0.0  # monotonic time before which no submission leaves (Retry-After)
        self._stop = asyncio.Event()
        self.started_at: datetime | None = None
        self.finished_at: datetime | None = None

    @property
    def companies(self) -> list[str]:
        return [t.company_id for t in self.tenants]

    @property
    def store_ids(self) -> list[str]:
        return [s for t in self.tenants for s in t.stores]

    def stop(self) -> None:
        """End submitting early (the method decided the load has done its part)."""
        self._stop.set()

    # --- set-up ---------------------------------------------------------------------------

    async def setup(self) -> list[Tenant]:
        """Companies through the operator API, stores at the fake provider (their catalogs)."""
        plan = self.plan
        async with httpx.AsyncClient(timeout=SETUP_TIMEOUT) as http:
            for i in range(plan.companies):
                response = await http.post(
                    f"{self.api_url}/v1/ops/companies",
                    json={"name": f"chaos-{self.label}-{i + 1}", "tier": plan.tier, "vip": False},
                    headers={"Authorization": f"Bearer {self.operator_token}"},
                )
                if response.status_code != 201:
                    raise LoadError(f"company creation answered {response.status_code}: {response.text[:200]}")
                body = response.json()
                tenant = Tenant(company_id=str(body["id"]), api_key=str(body["api_key"]))
                for _ in range(plan.stores_per_company):
                    store = await http.post(
                        f"{self.provider_url}/admin/stores",
                        json={
                            "dialect": plan.dialect,
                            "products": plan.products,
                            "images_per_product": plan.images_per_product,
                            "page_latency_ms": plan.page_latency_ms,
                            "seed": self._rng.randrange(1, 2**31),
                        },
                    )
                    if store.status_code not in (200, 201):
                        raise LoadError(f"store creation answered {store.status_code}: {store.text[:200]}")
                    tenant.stores.append(str(store.json()["store_id"]))
                self.tenants.append(tenant)
        return self.tenants

    # --- submitting -----------------------------------------------------------------------

    async def run(self) -> dict[str, Any]:
        """Submit ``plan.jobs`` imports at ``plan.rate``; ends by itself (count and time bounded)."""
        if not self.tenants:
            raise LoadError("setup() first: no company to submit for")
        plan = self.plan
        self.started_at = datetime.now(UTC)
        gate = asyncio.Semaphore(plan.max_in_flight)
        pending: set[asyncio.Task[None]] = set()
        origin = time.monotonic()
        # Even waiting out Retry-After after every submission, the loop must end: bound it.
        deadline = origin + plan.nominal_seconds * 3 + plan.jobs * plan.retry_after_cap + 60
        limits = httpx.Limits(max_connections=plan.max_in_flight, max_keepalive_connections=plan.max_in_flight)
        async with httpx.AsyncClient(timeout=plan.request_timeout, limits=limits) as http:
            for i in range(plan.jobs):
                due = max(origin + i / plan.rate, self._hold_until)
                wait = due - time.monotonic()
                if wait > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stop.wait(), wait)
                if self._stop.is_set() or time.monotonic() > deadline:
                    break
                await gate.acquire()
                tenant = self.tenants[i % len(self.tenants)]
                # Round robin, not random: a company has one active job per store, so a store
                # is asked again only after every other store of the company has had its turn.
                store = tenant.stores[(i // len(self.tenants)) % len(tenant.stores)]
                task = asyncio.create_task(self._submit(http, tenant, store))
                pending.add(task)
                task.add_done_callback(pending.discard)
                task.add_done_callback(lambda _: gate.release())
            if pending:
                await asyncio.wait(pending, timeout=plan.request_timeout + 5)
                for task in pending:
                    task.cancel()
        self.finished_at = datetime.now(UTC)
        return self.summary()

    async def _submit(self, http: httpx.AsyncClient, tenant: Tenant, store: str) -> None:
        at = datetime.now(UTC)
        began = time.monotonic()
        try:
            response = await http.post(
                f"{self.api_url}/v1/imports",
                json={"provider": self.plan.dialect, "store_id": store, "include_images": self.plan.include_images},
                headers={"Authorization": f"Bearer {tenant.api_key}"},
            )
        except httpx.HTTPError as exc:
            self.attempts.append(Attempt(at, None, time.monotonic() - began, error=f"{type(exc).__name__}: {exc}"))
            return
        seconds = time.monotonic() - began
        retry_after = response.headers.get("Retry-After")
        if response.status_code == 202:
            job_id = str(response.json()["id"])
            self.acknowledge(
                AcknowledgedJob(
                    job_id=job_id,
                    company_id=tenant.company_id,
                    provider=self.plan.dialect,
                    store_id=store,
                    products=self.plan.products,
                    submitted_at=at,
                )
            )
            self.attempts.append(Attempt(at, 202, seconds, job_id=job_id))
            return
        if retry_after is not None:
            with contextlib.suppress(ValueError):
                pause = min(float(retry_after), self.plan.retry_after_cap)
                self._hold_until = max(self._hold_until, time.monotonic() + pause)
        self.attempts.append(
            Attempt(at, response.status_code, seconds, retry_after=retry_after, error=response.text[:200])
        )

    def acknowledge(self, job: AcknowledgedJob) -> bool:
        """Record an acknowledged job once; False when its id was acknowledged already.

        The API keeps one active job per (company, provider, store): a submit for a store whose
        job still runs answers that job's id (``"existing": true``). That is the same
        acknowledgement, not a second job, and the data-loss checker counts an id acknowledged
        twice as a finding, so it is recorded once (with its first submission time).
        """
        if job.job_id in self._acknowledged_ids:
            return False
        self._acknowledged_ids.add(job.job_id)
        self.acknowledged.append(job)
        return True

    # --- after ----------------------------------------------------------------------------

    def settle(self, final: dict[str, tuple[str, datetime | None]]) -> None:
        """Record each job's last known state (``job_id -> (status, finished_at)``)."""
        updated = []
        for job in self.acknowledged:
            status, finished = final.get(job.job_id, (None, None))
            if status is None:
                updated.append(job)
                continue
            seconds = (finished - job.submitted_at).total_seconds() if finished is not None else None
            updated.append(
                job.model_copy(update={"final_status": status, "ended_at": finished, "end_to_end_seconds": seconds})
            )
        self.acknowledged = updated

    def summary(self) -> dict[str, Any]:
        statuses = Counter("no answer" if a.status is None else str(a.status) for a in self.attempts)
        return {
            "plan": asdict(self.plan),
            "companies": self.companies,
            "stores": self.store_ids,
            "attempts": len(self.attempts),
            "acknowledged": len(self.acknowledged),
            "by_status": dict(sorted(statuses.items())),
            "rejected_with_retry_after": sum(1 for a in self.attempts if a.status == 503 and a.retry_after),
            "rejected_without_retry_after": sum(1 for a in self.attempts if a.status == 503 and not a.retry_after),
            "ambiguous": sum(1 for a in self.attempts if a.ambiguous),
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
        }


def write_attempts(path: Path, attempts: list[Attempt]) -> None:
    """Every submission of a run, in time order: what the report's error panel plots."""
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(ATTEMPT_COLUMNS)
        for attempt in sorted(attempts, key=lambda a: a.at):
            writer.writerow([csv_cell(getattr(attempt, c)) for c in ATTEMPT_COLUMNS])


def read_attempts(path: Path) -> list[dict[str, str]]:
    """A run's load-<slug>.csv as rows of text (the report plots them)."""
    if not path.exists():
        return []
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))
