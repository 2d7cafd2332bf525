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
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

DEFAULT_SCENARIOS = Path(__file__).with_name("scenarios.toml")

Dialect = Literal["roastify", "shopify"]
Kind = Literal["smoke", "load"]
Tier = Literal["BASIC", "PRO", "ENTERPRISE"]

# The providers' published per-account limits (DESIGN.md §1); the fake provider enforces them
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
    """``jobs`` imports of catalogs of one size; each job gets its own fake-provider store."""

    size_class: str = Field(min_length=1, max_length=40)
    jobs: int = Field(ge=1, le=MAX_JOBS)
    products: int = Field(ge=0, le=100_000)
    images_per_product: int = Field(0, ge=0, le=20)
    dialects: dict[Dialect, int] = Field(default_factory=_even_mix)
    page_latency_ms: int = Field(0, ge=0, le=10_000)

    @model_validator(mode="after")
    def _weights(self) -> Self:
        if not self.dialects or any(w < 0 for w in self.dialects.values()) or sum(self.dialects.values()) == 0:
            raise ValueError(f"class {self.size_class}: dialect weights must be non-negative with a positive sum")
        return self

    def dialect_counts(self) -> dict[Dialect, int]:
        """Jobs per dialect from the weights (largest remainder, so the counts sum to ``jobs``)."""
        total = sum(self.dialects.values())
        exact = {d: self.jobs * w / total for d, w in self.dialects.items()}
        counts = {d: math.floor(x) for d, x in exact.items()}
        left = self.jobs - sum(counts.values())
        for d in sorted(exact, key=lambda d: (counts[d] - exact[d], d))[:left]:
            counts[d] += 1
        return {d: n for d, n in counts.items() if n}


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
    catalogs: list[CatalogClass] = Field(min_length=1)
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
