"""The plan: which import each simulated client runs, written by ``drill run``, read by Locust.

A plan is one JSON file (path in ``DRILL_PLAN``): the API to load, how clients follow their
jobs, and one *assignment* per job (a company's API key, a provider, a store, its catalog
size). ``drill run`` creates the companies and stores first, so every assignment names things
that exist; someone running ``locust -f loadtests/locustfile.py`` by hand points ``DRILL_PLAN``
at a plan of their own.

Standard library only, on purpose: the locustfile runs under gevent's monkey-patching, and
the proving ground's asyncio-side modules (redis, arq, moto) must never be imported next to it
(docs/architecture.md §9). ``lab`` writes plans through this same module, so there is one format.
"""

from __future__ import annotations

import ipaddress
import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

PLAN_ENV = "DRILL_PLAN"
RECORDS_ENV = "DRILL_RECORDS_DIR"
SCHEMA_VERSION = 1
PROVIDERS = ("roastify", "shopify")
LOOPBACK_NAMES = frozenset({"localhost"})
MAX_NOT_BEFORE_S = 4 * 3600.0  # a scenario's own bound on its load phase


class PlanError(ValueError):
    """The plan file is missing, unreadable, or not the documented shape."""


class NotLoopbackError(PlanError):
    """A target outside this machine: load drills stay on loopback (127.0.0.0/8, ::1)."""


def require_loopback(url: str) -> str:
    """``url`` unchanged when its host is a loopback address; otherwise NotLoopbackError.

    Drills send deliberately heavy traffic: aiming one at a shared or production host by a
    typo must be impossible, not merely unlikely.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise NotLoopbackError(f"{url!r} is not an http(s) URL with a host")
    host = parts.hostname
    if host.lower() in LOOPBACK_NAMES:
        return url
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise NotLoopbackError(
            f"refusing to load {url!r}: drills target loopback only (127.0.0.1, ::1, localhost), not {host!r}"
        )
    return url


@dataclass(frozen=True)
class Assignment:
    """One import job a client runs: submit, follow to a terminal state, record."""

    index: int
    company_id: str
    api_key: str
    provider: str
    store_id: str
    products: int
    images_per_product: int = 0
    size_class: str = ""
    include_images: bool = True
    not_before_s: float = 0.0  # phased scenarios: submit no earlier than this after the load started

    def __post_init__(self) -> None:
        if not 0 <= self.not_before_s <= MAX_NOT_BEFORE_S:
            raise PlanError(
                f"assignment {self.index}: not_before_s {self.not_before_s!r} outside 0..{MAX_NOT_BEFORE_S}"
            )
        if self.provider not in PROVIDERS:
            raise PlanError(f"assignment {self.index}: provider {self.provider!r} is not one of {PROVIDERS}")
        if self.products < 0 or self.images_per_product < 0:
            raise PlanError(f"assignment {self.index}: negative catalog size")
        if not self.api_key or not self.store_id or not self.company_id:
            raise PlanError(f"assignment {self.index}: company_id, api_key and store_id are required")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def wait_before_submit(self, started_at: float, now: float) -> float:
        """Seconds to wait before submitting: this assignment's phase offset from the test start.

        Bounded by the plan (``not_before_s`` is at most MAX_NOT_BEFORE_S); the job's own
        timeout starts only when it is submitted, so the wait never counts as the job's time.
        """
        return max(0.0, started_at + self.not_before_s - now)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Assignment:
        try:
            return cls(
                index=int(data["index"]),
                company_id=str(data["company_id"]),
                api_key=str(data["api_key"]),
                provider=str(data["provider"]),
                store_id=str(data["store_id"]),
                products=int(data["products"]),
                images_per_product=int(data.get("images_per_product", 0)),
                size_class=str(data.get("size_class") or data["products"]),
                include_images=bool(data.get("include_images", True)),
                not_before_s=float(data.get("not_before_s", 0.0)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, PlanError):
                raise
            raise PlanError(f"assignment without the documented shape: {exc!r} in {dict(data)!r:.200}") from exc


@dataclass(frozen=True)
class FollowSettings:
    """How a client follows its job; every wait is bounded."""

    job_timeout_s: float = 600.0  # submit → terminal; past it the client gives up (no end recorded)
    poll_interval_s: float = 2.0  # GET /v1/imports/{id} cadence once the stream broke
    sse_read_timeout_s: float = 45.0  # longer than the API's 15 s ping: silence this long = broken
    request_timeout_s: float = 30.0  # POST and polling GETs
    submit_attempts: int = 5  # 503 (overload, intake closed) is retried after Retry-After
    claim_timeout_s: float = 60.0  # distributed mode: waiting for the master to hand out work

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if value <= 0:
                raise PlanError(f"follow.{name} must be positive, got {value!r}")


@dataclass(frozen=True)
class Plan:
    scenario: str
    api_url: str
    assignments: tuple[Assignment, ...]
    follow: FollowSettings = field(default_factory=FollowSettings)
    records_dir: str | None = None  # where each Locust process writes its CSV; default: beside the plan

    def __post_init__(self) -> None:
        require_loopback(self.api_url)
        indices = [a.index for a in self.assignments]
        if len(set(indices)) != len(indices):
            raise PlanError("assignment indices must be unique")

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "scenario": self.scenario,
            "api_url": self.api_url,
            "records_dir": self.records_dir,
            "follow": asdict(self.follow),
            "assignments": [a.to_json() for a in self.assignments],
        }

    @classmethod
    def from_json(cls, data: Any) -> Plan:
        if not isinstance(data, dict):
            raise PlanError("a plan is a JSON object")
        if data.get("schema_version") != SCHEMA_VERSION:
            raise PlanError(f"plan schema_version {data.get('schema_version')!r}, expected {SCHEMA_VERSION}")
        try:
            follow = FollowSettings(**data.get("follow", {}))
            return cls(
                scenario=str(data["scenario"]),
                api_url=str(data["api_url"]),
                records_dir=data.get("records_dir"),
                follow=follow,
                assignments=tuple(Assignment.from_json(a) for a in data["assignments"]),
            )
        except (KeyError, TypeError) as exc:
            raise PlanError(f"plan without the documented shape: {exc!r}") from exc

    def redacted(self) -> Plan:
        """The same plan without API keys: what may be kept beside a published report."""
        hidden = tuple(Assignment(**{**a.to_json(), "api_key": "(redacted)"}) for a in self.assignments)
        return Plan(self.scenario, self.api_url, hidden, self.follow, self.records_dir)


def write_plan(path: Path, plan: Plan) -> Path:
    """Mode 0600 (it holds API keys), replaced atomically so Locust never reads half a plan."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(plan.to_json(), fh, indent=1)
        fh.write("\n")
    tmp.replace(path)
    return path


def read_plan(path: Path) -> Plan:
    try:
        text = path.read_text()
    except OSError as exc:
        raise PlanError(f"cannot read the plan {path}: {exc}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PlanError(f"{path}: not JSON: {exc}") from exc
    try:
        return Plan.from_json(data)
    except PlanError as exc:
        raise PlanError(f"{path}: {exc}") from exc


def plan_from_environment(environ: Mapping[str, str] | None = None) -> tuple[Plan, Path]:
    """The plan named by ``DRILL_PLAN``, and the directory this process writes its records to."""
    env = os.environ if environ is None else environ
    raw = env.get(PLAN_ENV)
    if not raw:
        raise PlanError(
            f"{PLAN_ENV} is not set: point it at a plan file (drill run writes one; see loadtests/README.md)"
        )
    path = Path(raw)
    plan = read_plan(path)
    records = env.get(RECORDS_ENV) or plan.records_dir or str(path.parent / "records")
    return plan, Path(records)
