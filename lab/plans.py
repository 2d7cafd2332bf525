"""From a scenario to a plan: the companies and stores a run needs, and who imports what.

Building is pure (``store_requests``, ``build_plan``): the same scenario always gives the same
stores (seeded catalogs) in the same order, so two runs of a scenario load the importer alike.
``create_companies`` and ``create_stores`` do the set-up over HTTP, as an operator and a test
provider's admin would: companies through the operator API, stores through the fake
provider's admin API.

Jobs of the size classes are interleaved (a 1,000-product job every few small ones, not all
at the end), so a job-size mix is a mix at every moment of the run. A phased scenario (classes
with ``start_after_s``/``spread_s``) is ordered by when each job is to be submitted instead,
and each assignment carries that moment (``not_before_s``) for its client.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import httpx

from lab.scenarios import Scenario
from loadtests.plan import Assignment, FollowSettings, Plan, require_loopback

K = TypeVar("K", bound=str)
SETUP_CONCURRENCY = 16
SETUP_TIMEOUT = 30.0


class SetupError(Exception):
    """A company or store could not be created; the run cannot start."""


@dataclass(frozen=True)
class Company:
    id: str
    api_key: str
    name: str


@dataclass(frozen=True)
class StoreRequest:
    """One fake-provider store to create (``POST /admin/stores`` body) and the job that imports it."""

    order: int  # position in the run: interleaved across size classes
    size_class: str
    dialect: str
    products: int
    images_per_product: int
    seed: int
    rate_limit_per_min: int
    page_latency_ms: int = 0
    tenant: str = ""  # the tenant group importing it ("": the scenario's companies)
    job: int = 0  # its number within its class: picks the group's company round-robin
    not_before_s: float = 0.0  # when its client submits, in seconds after the load started
    faults: Mapping[str, Any] | None = None  # the fake provider's per-store data-fault spec

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "dialect": self.dialect,
            "products": self.products,
            "images_per_product": self.images_per_product,
            "seed": self.seed,
            "rate_limit_per_min": self.rate_limit_per_min,
            "page_latency_ms": self.page_latency_ms,
        }
        if self.faults:
            body.update(self.faults)
        return body


def _spread(count: int) -> list[float]:
    """Evenly spaced positions in [0, 1) for ``count`` items: how classes interleave."""
    return [(i + 0.5) / count for i in range(count)]


def interleave(counts: Mapping[K, int]) -> list[K]:
    """``{"a": 2, "b": 2}`` → ``["a", "b", "a", "b"]``: each kind spread evenly over the sequence."""
    keyed = [(position, name) for name, n in counts.items() for position in _spread(n)]
    return [name for _, name in sorted(keyed)]


def store_requests(scenario: Scenario) -> list[StoreRequest]:
    """Every store of the scenario, in run order; seeds are fixed per (class, job number)."""
    keyed: list[tuple[float, int, StoreRequest]] = []
    phased = scenario.phased
    for class_number, catalog in enumerate(scenario.catalogs):
        dialects = interleave(catalog.dialect_counts())
        for job, (position, dialect) in enumerate(zip(_spread(catalog.jobs), dialects, strict=True)):
            # Phases: evenly over [start, start + spread); position 0.5/n .. (n-0.5)/n, so shift to 0.
            offset = (position - 0.5 / catalog.jobs) if catalog.jobs else 0.0
            not_before = round(catalog.start_after_s + catalog.spread_s * offset, 3) if phased else 0.0
            request = StoreRequest(
                order=0,
                size_class=catalog.size_class,
                dialect=dialect,
                products=catalog.products,
                images_per_product=catalog.images_per_product,
                seed=(class_number + 1) * 1_000_000 + job,
                rate_limit_per_min=scenario.store_rate_limit_per_min[dialect],
                page_latency_ms=catalog.page_latency_ms,
                tenant=catalog.tenant or "",
                job=job,
                not_before_s=not_before,
                faults=catalog.fault_body() or None,
            )
            keyed.append((not_before if phased else position, class_number, request))
    keyed.sort(key=lambda item: (item[0], item[1]))
    return [replace(request, order=order) for order, (_, _, request) in enumerate(keyed)]


def build_plan(
    scenario: Scenario,
    api_url: str,
    companies: Sequence[Company],
    stores: Sequence[tuple[StoreRequest, str]],
    *,
    records_dir: str | None = None,
    tenants: Mapping[str, Sequence[Company]] | None = None,
) -> Plan:
    """One assignment per store, companies taken round-robin; ``stores`` pairs each request with its id.

    A request of a tenant group takes that group's companies (``tenants``) round-robin by its
    number within its class, so each small tenant gets its share of every phase.
    """
    if not companies:
        raise SetupError("a plan needs at least one company")
    follow = FollowSettings(job_timeout_s=float(scenario.follow_timeout_s), poll_interval_s=scenario.poll_interval_s)
    assignments = []
    for request, store_id in sorted(stores, key=lambda pair: pair[0].order):
        if request.tenant:
            group = (tenants or {}).get(request.tenant)
            if not group:
                raise SetupError(f"store #{request.order}: no companies for tenant group {request.tenant!r}")
            company = group[request.job % len(group)]
        else:
            company = companies[request.order % len(companies)]
        assignments.append(
            Assignment(
                index=request.order,
                company_id=company.id,
                api_key=company.api_key,
                provider=request.dialect,
                store_id=store_id,
                products=request.products,
                images_per_product=request.images_per_product,
                size_class=request.size_class,
                include_images=scenario.include_images,
                not_before_s=request.not_before_s,
            )
        )
    return Plan(
        scenario=scenario.name,
        api_url=require_loopback(api_url),
        assignments=tuple(assignments),
        follow=follow,
        records_dir=records_dir,
    )


# --- set-up over HTTP ------------------------------------------------------------------------


async def _bounded_all(calls: Sequence[Any], what: str) -> list[Any]:
    gate = asyncio.Semaphore(SETUP_CONCURRENCY)

    async def one(call: Any) -> Any:
        async with gate:
            return await call()

    try:
        return list(await asyncio.gather(*(one(c) for c in calls)))
    except httpx.HTTPError as exc:
        raise SetupError(f"creating {what}: {exc!r}") from exc


async def create_companies(api_url: str, operator_token: str, names: Sequence[str], tier: str) -> list[Company]:
    headers = {"Authorization": f"Bearer {operator_token}"}
    async with httpx.AsyncClient(base_url=require_loopback(api_url), timeout=SETUP_TIMEOUT) as client:

        async def create(name: str) -> Company:
            response = await client.post("/v1/ops/companies", json={"name": name, "tier": tier}, headers=headers)
            if response.status_code != 201:
                raise SetupError(f"company {name}: {response.status_code} {response.text[:300]}")
            body = response.json()
            return Company(id=str(body["id"]), api_key=str(body["api_key"]), name=name)

        return await _bounded_all([lambda n=n: create(n) for n in names], "companies")


async def create_stores(provider_url: str, requests: Sequence[StoreRequest]) -> list[tuple[StoreRequest, str]]:
    async with httpx.AsyncClient(base_url=require_loopback(provider_url), timeout=SETUP_TIMEOUT) as client:

        async def create(request: StoreRequest) -> tuple[StoreRequest, str]:
            response = await client.post("/admin/stores", json=request.body())
            if response.status_code != 201:
                raise SetupError(f"store #{request.order}: {response.status_code} {response.text[:300]}")
            return request, str(response.json()["store_id"])

        return await _bounded_all([lambda r=r: create(r) for r in requests], "stores")
