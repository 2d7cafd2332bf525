"""What the provider served: counters per store, and a bounded log of recent requests.

Counters let a drill compare what the importer claims (pages fetched, images stored) with what
actually reached the provider; the request log lets it prove *when* requests arrived (e.g.
that only probes got through while a circuit breaker was open). The log is a ring buffer so a
long drill cannot grow it without bound.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any, Literal

RequestKind = Literal["api", "image"]
DEFAULT_LOG_SIZE = 100_000


@dataclass
class Counters:
    api_requests: int = 0
    image_requests: int = 0
    page_requests: Counter[str] = field(default_factory=Counter)  # pages served (200), per page key
    responses: Counter[int] = field(default_factory=Counter)
    rate_limited: int = 0
    faults_injected: int = 0  # answers replaced by an injected error or outage
    latency_injected: int = 0  # requests delayed by a fault rule (page_latency_ms not counted)

    def to_json(self, *, pages_by_key: bool) -> dict[str, Any]:
        return {
            "api_requests": self.api_requests,
            "page_requests": dict(self.page_requests) if pages_by_key else sum(self.page_requests.values()),
            "image_requests": self.image_requests,
            "responses": {str(k): v for k, v in sorted(self.responses.items())},
            "rate_limited": self.rate_limited,
            "faults_injected": self.faults_injected,
            "latency_injected": self.latency_injected,
        }


@dataclass
class Outcome:
    """One request's story, filled in along the way and recorded once at the end."""

    store_id: str
    kind: RequestKind
    path: str
    known_store: bool = True
    ts: float = field(default_factory=time.time)
    started: float = field(default_factory=time.perf_counter)
    page_key: str | None = None
    rate_limited: bool = False
    fault: bool = False
    delayed: bool = False


LogEntry = tuple[float, str, str, str, int, float]  # ts, store_id, kind, path, status, ms


def select_requests(
    entries: list[LogEntry], since: float = 0.0, store_id: str | None = None, limit: int | None = None
) -> list[dict[str, Any]]:
    """Entries are appended when answered, so arrival times are not sorted: scan them all.

    ``limit`` keeps the most recent matches.
    """
    matched = sorted(
        (e for e in entries if e[0] >= since and (store_id is None or e[1] == store_id)), key=lambda e: e[0]
    )
    if limit:
        matched = matched[-limit:]
    return [
        {"ts": ts, "store_id": sid, "kind": kind, "path": path, "status": status, "ms": ms}
        for ts, sid, kind, path, status, ms in matched
    ]


class RequestLog:
    def __init__(self, size: int = DEFAULT_LOG_SIZE) -> None:
        self._entries: deque[LogEntry] = deque(maxlen=max(1, size))

    def append(self, ts: float, store_id: str, kind: str, path: str, status: int, ms: float) -> None:
        self._entries.append((ts, store_id, kind, path, status, ms))

    def clear(self) -> None:
        self._entries.clear()

    def snapshot(self) -> list[LogEntry]:
        return list(self._entries)

    def __len__(self) -> int:
        return len(self._entries)


class Stats:
    def __init__(self, log_size: int = DEFAULT_LOG_SIZE) -> None:
        self.totals = Counters()
        self.stores: dict[str, Counters] = {}
        self.log = RequestLog(log_size)
        self.since = time.time()

    def record(self, outcome: Outcome, status: int) -> None:
        """Per-store counters only for stores that exist, so junk ids cannot grow memory."""
        targets = [self.totals]
        if outcome.known_store:
            targets.append(self.stores.setdefault(outcome.store_id, Counters()))
        for c in targets:
            if outcome.kind == "api":
                c.api_requests += 1
            else:
                c.image_requests += 1
            if outcome.page_key is not None and status == 200:
                c.page_requests[outcome.page_key] += 1
            c.responses[status] += 1
            c.rate_limited += outcome.rate_limited
            c.faults_injected += outcome.fault
            c.latency_injected += outcome.delayed
        ms = round((time.perf_counter() - outcome.started) * 1000, 3)
        self.log.append(outcome.ts, outcome.store_id, outcome.kind, outcome.path, status, ms)

    def reset(self) -> None:
        self.totals = Counters()
        self.stores.clear()
        self.log.clear()
        self.since = time.time()

    def to_json(self, store_id: str | None = None, *, with_stores: bool = True) -> dict[str, Any]:
        body: dict[str, Any] = {"since": self.since, "totals": self.totals.to_json(pages_by_key=False)}
        if with_stores:
            stores = self.stores if store_id is None else {store_id: self.stores.get(store_id, Counters())}
            body["stores"] = {sid: c.to_json(pages_by_key=True) for sid, c in stores.items()}
        return body
