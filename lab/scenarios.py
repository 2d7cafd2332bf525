"""Load scenarios as data (lab/scenarios.toml): what ``drill run <scenario>`` sets up and drives.

A scenario says everything a run depends on, so two runs of it are comparable and a report
can say exactly what was exercised: the clients (Locust users, spawn rate, time bounds), the
catalogs they import (size classes, images per product, dialect mix), the companies, the
workers and the autoscaler's bounds, and every importer setting it changes from the
defaults — each with the reason, because a changed setting changes what a criterion means
(the seed's 100 job starts per minute alone make 1,000 jobs take at least ten minutes).

Validation is strict and happens when the file is read: a scenario that cannot run (a
rate limit above the fake provider's, an autoscaler whose minimum exceeds its maximum)
fails before a single process starts.
"""

from __future__ import annotations

import math
import tomllib
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from lab.fake_provider.catalog import IMAGE_FAULTS, MALFORMED_KINDS

DEFAULT_SCENARIOS = Path(__file__).with_name("scenarios.toml")

Dialect = Literal["roastify", "shopify"]
Kind = Literal["smoke", "load"]
Tier = Literal["BASIC", "PRO", "ENTERPRISE"]

# The providers' published per-account limits (docs/architecture.md §2); the fake provider enforces them
# per store, and the importer's defaults for its own limiter are the same numbers.
PUBLISHED_RATE_LIMITS: dict[Dialect, int] = {"roastify": 100, "shopify": 120}
IMPORTER_RATE_SETTINGS: dict[Dialect, str] = {
    "roastify": "IMPORTER_ROASTIFY_RATE_LIMIT_PER_MIN",
    "shopify": "IMPORTER_SHOPIFY_RATE_LIMIT_PER_MIN",
}

MAX_USERS = 5_000
MAX_JOBS = 10_000
MAX_RUN_SECONDS = 4 * 3600


def _even_mix() -> dict[Dialect, int]:
    return {"roastify": 1, "shopify": 1}


class ScenarioError(Exception):
    """The scenarios file is unreadable or a scenario in it is invalid; the message says where."""


class UnknownScenarioError(ScenarioError):
    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(f"unknown scenario {name!r}; known scenarios: {', '.join(known)}")
        self.name = name
        self.known = known


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CatalogClass(_Model):
    """``jobs`` imports of catalogs of one size; each job gets its own fake-provider store.

    ``tenant`` names the ``[[scenario.tenants]]`` group whose companies import this class
    (round-robin within the group); without tenant groups every class shares the scenario's
    companies. ``start_after_s`` and ``spread_s`` make phases: the class's clients submit
    their jobs from ``start_after_s`` seconds after the load started, spread evenly over
    ``spread_s`` seconds (0: all at once). A job's duration is measured from its submission,
    so the wait before it never counts.

    Data faults (messy-catalog), passed to the fake provider with every store of the class
    (``POST /admin/stores``), whose expected-catalog document then says which records are good
    and which are bad, with their code: ``record_faults`` (kind → how many products of each
    store to spoil that way, e.g. ``nul_title = 3``) and ``image_faults`` (kind → how many
    products whose first image is bad), spread evenly through the catalog and never on the
    same product; ``store_faults`` is passed as it is (``pagination``, ``dead_host_ms``...).
    """

    size_class: str = Field(min_length=1, max_length=40)
    jobs: int = Field(ge=1, le=MAX_JOBS)
    products: int = Field(ge=0, le=100_000)
    images_per_product: int = Field(0, ge=0, le=20)
    dialects: dict[Dialect, int] = Field(default_factory=_even_mix)
    page_latency_ms: int = Field(0, ge=0, le=10_000)
    tenant: str | None = Field(None, min_length=1, max_length=40)
    start_after_s: float = Field(0.0, ge=0, le=MAX_RUN_SECONDS)
    spread_s: float = Field(0.0, ge=0, le=MAX_RUN_SECONDS)
    store_faults: dict[str, Any] = Field(default_factory=dict)
    record_faults: dict[str, int] = Field(default_factory=dict)
    image_faults: dict[str, int] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _weights(self) -> Self:
        if not self.dialects or any(w < 0 for w in self.dialects.values()) or sum(self.dialects.values()) == 0:
            raise ValueError(f"class {self.size_class}: dialect weights must be non-negative with a positive sum")
        return self

    @model_validator(mode="after")
    def _faults(self) -> Self:
        unknown = sorted(set(self.record_faults) - set(MALFORMED_KINDS)) + sorted(
            set(self.image_faults) - set(IMAGE_FAULTS)
        )
        if unknown:
            raise ValueError(
                f"class {self.size_class}: unknown fault kinds {unknown}; records: {', '.join(MALFORMED_KINDS)}; "
                f"images: {', '.join(IMAGE_FAULTS)}"
            )
        counts = [*self.record_faults.values(), *self.image_faults.values()]
        if any(n < 0 for n in counts) or sum(counts) > self.products:
            raise ValueError(
                f"class {self.size_class}: {sum(counts)} faulty products in a {self.products}-product store"
            )
        if self.image_faults and self.images_per_product == 0:
            raise ValueError(f"class {self.size_class}: image_faults need images_per_product >= 1")
        if {"bad_records", "bad_images"} & set(self.store_faults) and (self.record_faults or self.image_faults):
            raise ValueError(f"class {self.size_class}: give faults as record_faults/image_faults or in store_faults")
        return self

    def fault_body(self) -> dict[str, Any]:
        """The data-fault part of each store's ``POST /admin/stores`` body (empty: a clean store)."""
        body: dict[str, Any] = dict(self.store_faults)
        kinds = [("record", k) for k, n in sorted(self.record_faults.items()) for _ in range(n)]
        kinds += [("image", k) for k, n in sorted(self.image_faults.items()) for _ in range(n)]
        if not kinds:
            return body
        # Evenly through the catalog, kinds interleaved: every page meets several kinds.
        order = interleave_kinds(kinds)
        step = self.products / len(order)
        records: dict[str, list[int]] = {}
        images: dict[str, list[int]] = {}
        for k, (family, kind) in enumerate(order):
            index = min(self.products - 1, int((k + 0.5) * step))
            (records if family == "record" else images).setdefault(kind, []).append(index)
        if records:
            body["bad_records"] = records
        if images:
            body["bad_images"] = images
        return body

    @property
    def phased(self) -> bool:
        return self.start_after_s > 0 or self.spread_s > 0

    def dialect_counts(self) -> dict[Dialect, int]:
        """Jobs per dialect from the weights (largest remainder, so the counts sum to ``jobs``)."""
        total = sum(self.dialects.values())
        exact = {d: self.jobs * w / total for d, w in self.dialects.items()}
        counts = {d: math.floor(x) for d, x in exact.items()}
        left = self.jobs - sum(counts.values())
        for d in sorted(exact, key=lambda d: (counts[d] - exact[d], d))[:left]:
            counts[d] += 1
        return {d: n for d, n in counts.items() if n}


def interleave_kinds(items: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Round-robin over the distinct kinds: a, a, b → a, b, a (deterministic)."""
    groups: dict[tuple[str, str], int] = {}
    for item in items:
        groups[item] = groups.get(item, 0) + 1
    out: list[tuple[str, str]] = []
    while groups:
        for item in list(groups):
            out.append(item)
            groups[item] -= 1
            if groups[item] == 0:
                del groups[item]
    return out


class TenantGroup(_Model):
    """``companies`` companies of one tier, named after the group (``<run>-<group>-NNN``)."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=40)
    companies: int = Field(1, ge=1, le=1_000)
    tier: Tier = "PRO"
    why: str = ""  # what this group stands for in the scenario (a flooding tenant, small tenants)


class Override(_Model):
    """One importer setting this scenario changes, and why (shown in run.json and the report)."""

    name: str = Field(pattern=r"^IMPORTER_[A-Z0-9_]+$")
    value: str
    why: str = Field(min_length=10)


class Autoscale(_Model):
    """The seed's policy (target 10 jobs per worker, 2..50, cooldowns 60 s out / 300 s in)."""

    min_workers: int = Field(2, ge=0, le=200)
    max_workers: int = Field(50, ge=1, le=200)
    target_per_worker: int = Field(10, ge=1)
    scale_out_cooldown_s: float = Field(60.0, ge=0)
    scale_in_cooldown_s: float = Field(300.0, ge=0)
    interval_s: float = Field(1.0, gt=0, le=60)
    why: str = ""  # why the bounds differ from the seed's (say, a 2-core machine)

    @model_validator(mode="after")
    def _bounds(self) -> Self:
        if self.min_workers > self.max_workers:
            raise ValueError(f"autoscale: min_workers {self.min_workers} > max_workers {self.max_workers}")
        return self


class Workers(_Model):
    initial: int = Field(2, ge=0, le=200)
    autoscale: Autoscale | None = None

    @model_validator(mode="after")
    def _initial_within_bounds(self) -> Self:
        a = self.autoscale
        if a is not None and not a.min_workers <= self.initial <= a.max_workers:
            raise ValueError(f"workers.initial {self.initial} is outside autoscale {a.min_workers}..{a.max_workers}")
        return self


class Scenario(_Model):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    kind: Kind
    description: str = Field(min_length=10)
    companies: int = Field(1, ge=1, le=1_000)
    tier: Tier = "PRO"
    users: int = Field(ge=1, le=MAX_USERS)
    spawn_rate: float = Field(gt=0, le=1_000)
    run_time_s: int = Field(ge=10, le=MAX_RUN_SECONDS)  # Locust's --run-time: the load phase's bound
    drain_timeout_s: int = Field(ge=10, le=MAX_RUN_SECONDS)  # after Locust: every acknowledged job terminal
    job_timeout_s: int | None = Field(None, ge=10, le=MAX_RUN_SECONDS)  # a client's wait for one job
    locust_workers: int = Field(0, ge=0, le=16)  # 0: one local Locust process; N: master + N workers
    include_images: bool = True
    # How often a client polls once its event stream is refused or broken (the API caps open
    # streams per company, so a flooding tenant's clients mostly poll).
    poll_interval_s: float = Field(2.0, gt=0, le=60)
    catalogs: list[CatalogClass] = Field(min_length=1)
    tenants: list[TenantGroup] = Field(default_factory=list)
    workers: Workers = Field(default_factory=Workers)
    overrides: list[Override] = Field(default_factory=list)
    store_rate_limit_per_min: dict[Dialect, int] = Field(default_factory=lambda: dict(PUBLISHED_RATE_LIMITS))
    observer_interval_s: float = Field(1.0, gt=0, le=60)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.total_jobs > MAX_JOBS:
            raise ValueError(f"{self.total_jobs} jobs; a scenario is bounded at {MAX_JOBS}")
        names = [o.name for o in self.overrides]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ValueError(f"settings overridden twice: {duplicated}")
        sizes = [c.size_class for c in self.catalogs]
        if len(set(sizes)) != len(sizes):
            raise ValueError("catalog size_class names must be unique")
        groups = [t.name for t in self.tenants]
        if len(set(groups)) != len(groups):
            raise ValueError("tenant group names must be unique")
        for c in self.catalogs:
            if self.tenants and c.tenant not in groups:
                raise ValueError(f"class {c.size_class}: tenant {c.tenant!r} is not one of the tenant groups {groups}")
            if not self.tenants and c.tenant is not None:
                raise ValueError(f"class {c.size_class}: names tenant {c.tenant!r} but the scenario has no tenants")
            if c.start_after_s + c.spread_s >= self.run_time_s:
                raise ValueError(
                    f"class {c.size_class}: its submissions (from {c.start_after_s:g} s over {c.spread_s:g} s) "
                    f"do not fit in run_time_s {self.run_time_s}"
                )
        env = self.importer_env
        for dialect, setting in IMPORTER_RATE_SETTINGS.items():
            ours = int(env.get(setting, PUBLISHED_RATE_LIMITS[dialect]))
            theirs = self.store_rate_limit_per_min.get(dialect, PUBLISHED_RATE_LIMITS[dialect])
            if ours > theirs:
                raise ValueError(
                    f"{setting}={ours} is above the stores' own {dialect} limit of {theirs}/min: "
                    "the provider would answer 429s by construction"
                )
        return self

    # --- derived figures ------------------------------------------------------------------

    @property
    def importer_env(self) -> dict[str, str]:
        return {o.name: o.value for o in self.overrides}

    @property
    def total_companies(self) -> int:
        return sum(t.companies for t in self.tenants) if self.tenants else self.companies

    @property
    def phased(self) -> bool:
        return any(c.phased for c in self.catalogs)

    @property
    def total_jobs(self) -> int:
        return sum(c.jobs for c in self.catalogs)

    @property
    def total_products(self) -> int:
        return sum(c.jobs * c.products for c in self.catalogs)

    @property
    def total_images(self) -> int:
        if not self.include_images:
            return 0
        return sum(c.jobs * c.products * c.images_per_product for c in self.catalogs)

    @property
    def follow_timeout_s(self) -> int:
        return self.job_timeout_s if self.job_timeout_s is not None else self.run_time_s

    def summary(self) -> str:
        """One line for ``drill run --help`` and the run's start banner."""
        mix = ", ".join(f"{c.jobs}x{c.products}" for c in self.catalogs)
        return (
            f"{self.total_jobs} jobs ({mix} products), {self.total_images:,} images, "
            f"{self.users} users, ≤{self.run_time_s}s load + ≤{self.drain_timeout_s}s drain"
        )


def load_scenarios(path: Path = DEFAULT_SCENARIOS) -> dict[str, Scenario]:
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ScenarioError(f"{path}: unreadable: {exc}") from exc
    entries = data.get("scenario")
    if not isinstance(entries, list) or not entries:
        raise ScenarioError(f"{path}: no [[scenario]] entries")
    scenarios: dict[str, Scenario] = {}
    for number, entry in enumerate(entries, start=1):
        try:
            scenario = Scenario.model_validate(entry)
        except ValidationError as exc:
            name = entry.get("name", f"#{number}") if isinstance(entry, dict) else f"#{number}"
            raise ScenarioError(f"{path}: scenario {name}: {exc}") from exc
        if scenario.name in scenarios:
            raise ScenarioError(f"{path}: scenario {scenario.name!r} defined twice")
        scenarios[scenario.name] = scenario
    return scenarios


def get_scenario(name: str, path: Path = DEFAULT_SCENARIOS) -> Scenario:
    scenarios = load_scenarios(path)
    if name not in scenarios:
        raise UnknownScenarioError(name, sorted(scenarios))
    return scenarios[name]
