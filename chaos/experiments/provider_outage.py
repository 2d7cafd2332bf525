"""provider-outage: the fake provider fails every catalog request for a while.

The circuit breaker must open after its threshold of consecutive failures; while it is open
the provider must see nothing but the half-open probes (one at a time); once the provider is
back, a probe succeeds, the breaker closes and every job completes (deferred jobs spend no
try). Evidence: the breaker's own transition history in Redis, and the provider's log of every
request it received (``GET /admin/requests``), both on this machine's clock.

Measured: ``breaker_violations`` (requests past an open breaker that were not probes; R4 wants
0), ``breaker_probes``, ``breaker_opens``.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any, ClassVar

import httpx

from chaos.experiments.base import ChaosExperiment, ExperimentError
from chaos.load import LoadPlan
from chaos.measures import breaker_traffic, breaker_windows
from chaos.model import Activity, Tolerance, action, probe

BREAKER_KEY = "importer:breaker:{provider}"
HISTORY_KEY = "importer:breaker:{provider}:history"
IN_FLIGHT_GRACE = 0.2


@dataclass(frozen=True)
class OutageParams:
    outage_seconds: float = 15.0
    rate: float = 1.0
    max_jobs: int = 400
    close_timeout: float = 60.0

    @classmethod
    def quick(cls) -> OutageParams:
        return cls(outage_seconds=10.0, max_jobs=200)


class ProviderOutage(ChaosExperiment):
    name: ClassVar[str] = "provider-outage"
    title: ClassVar[str] = "Provider outage"
    description: ClassVar[str] = (
        "The fake provider answers 503 to every catalog request for a while; the circuit breaker opens, "
        "the provider sees only probes while it is open, the breaker closes when the provider is back, "
        "and every job completes."
    )
    params: OutageParams
    dialect: ClassVar[str] = "roastify"

    def load_plan(self) -> LoadPlan:
        return LoadPlan(jobs=self.params.max_jobs, rate=self.params.rate, products=10, images_per_product=1)

    def extra_hypothesis(self) -> list[Activity]:
        return [
            probe(
                f"the {self.dialect} breaker is closed",
                self._breaker_state,
                Tolerance("closed (or never used)", lambda v: v in ("closed", None)),
            )
        ]

    def fault_activities(self) -> list[Activity]:
        p = self.params
        return [
            action(
                f"provider outage: every catalog request fails for {p.outage_seconds:g} s",
                self._outage,
                timeout=p.outage_seconds + 30,
            ),
            action("wait for the breaker to close again", self._closed, timeout=p.close_timeout),
        ]

    def extra_rollbacks(self) -> list[Activity]:
        return [action("clear the provider's faults", self._clear_faults, timeout=15)]

    # --- Redis reads ------------------------------------------------------------------------

    async def _redis(self, op: str) -> Any:
        client = self.target.redis.client(5.0)
        try:
            if op == "state":
                return await client.hget(BREAKER_KEY.format(provider=self.dialect), "state")  # type: ignore[misc]
            return await client.lrange(HISTORY_KEY.format(provider=self.dialect), 0, -1)  # type: ignore[misc]
        finally:
            await client.aclose()

    async def _breaker_state(self) -> str | None:
        state = await self._redis("state")
        return None if state is None else str(state)

    # --- actions --------------------------------------------------------------------------

    async def _outage(self) -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=10.0) as http:
            fault = self.ctx.fault_started(f"provider outage {self.params.outage_seconds:g} s")
            started = time.time()
            try:
                response = await http.post(f"{self.target.provider_url}/admin/faults", json={"outage": True})
                response.raise_for_status()
                await asyncio.sleep(self.params.outage_seconds)
            finally:
                cleared = await http.delete(f"{self.target.provider_url}/admin/faults")
                ended = time.time()
                self.ctx.fault_ended(fault)
        self.evidence["outage"] = {"start": started, "end": ended, "cleared": cleared.status_code}
        return {"seconds": round(ended - started, 2)}

    async def _closed(self) -> dict[str, Any]:
        ended = self.evidence["outage"]["end"]

        async def closed() -> bool:
            state = await self._breaker_state()
            return state == "closed"

        await self.until(closed, timeout=self.params.close_timeout - 2, interval=0.25, what="the breaker closed")
        self.evidence["outage"]["closed_at"] = time.time()
        return {"closed_after_outage_s": round(time.time() - ended, 2)}

    async def _clear_faults(self) -> int:
        async with httpx.AsyncClient(timeout=10.0) as http:
            return (await http.delete(f"{self.target.provider_url}/admin/faults")).status_code

    # --- measurements ---------------------------------------------------------------------

    async def collect(self) -> None:
        outage = self.evidence.get("outage")
        if not outage:
            raise ExperimentError("no outage was injected")
        start = float(outage["start"]) - 5.0
        until = float(outage.get("closed_at") or time.time())
        history = [json.loads(raw) for raw in await self._redis("history")]
        transitions = [t for t in history if float(t["at"]) >= start]
        async with httpx.AsyncClient(timeout=30.0) as http:
            response = await http.get(f"{self.target.provider_url}/admin/requests", params={"since": start})
            response.raise_for_status()
            requests = [r for r in response.json() if r.get("kind") == "api" and float(r["ts"]) <= until + 1.0]
        # Every request to this provider counts, not only this run's: the breaker guards the
        # provider, whoever's job a request was for.
        ours = [r for r in requests if str(r.get("path", "")).startswith(f"/{self.dialect}/")]
        windows = breaker_windows(transitions, until=until)
        traffic = breaker_traffic(ours, windows, grace=IN_FLIGHT_GRACE)
        self.evidence["breaker"] = {
            "transitions": transitions,
            "windows": [[w.state, w.start, w.end] for w in windows],
            "requests": [[r["ts"], r["status"], r["store_id"]] for r in ours],
            "probes": traffic.probes,
            "violations": traffic.violations,
            "in_flight_at_opening": traffic.in_flight,
            "details": traffic.details[:50],
            "grace_s": IN_FLIGHT_GRACE,
        }
