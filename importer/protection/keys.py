"""Redis key names of the protection layer, in one place so docs and tools spell them alike."""

from __future__ import annotations

PREFIX = "importer:"

LIMITS_PREFIX = "importer:limits"
"""Prefix of the ``limits`` library's moving-window lists (provider, company, job starts)."""

COUNTERS = "importer:counters"
"""Hash of event counters (rate-limit waits, breaker opens, rejections, start throttles…)."""

HEALTH = "importer:health"
"""The last queue-health report (JSON) published by the reconciler's monitor."""

PAUSED = "importer:queue:paused"
"""Present while the queue is paused (JSON: mode, reason, at, backlog_at_pause)."""

INTAKE_CLOSED = "importer:intake:closed"
"""Present while ``POST /v1/imports`` answers 503 "intake closed" (``importer ops drain``)."""

BRAKE_COOLDOWN = "importer:brake:cooldown"
"""Present (with a TTL) after an automatic resume: no automatic pause until it expires."""

PRIORITY_QUEUE = "importer:queue:priority"
"""Sorted set of VIP job ids (score = when due, ms), polled by workers before arq's queue."""


def breaker_key(provider: str) -> str:
    return f"importer:breaker:{provider}"


def breaker_history_key(provider: str) -> str:
    return f"importer:breaker:{provider}:history"


TENANT_RING = "importer:tenant:ring"
"""Sorted set of companies with queued jobs (score = when one of their jobs last started, ms;
0 for a company new to the ring), read least-recently-started first by the fair scheduler."""

TENANT_PAUSED = "importer:tenant:paused"
"""Hash company id → JSON pause state of each tenant the tenant brake paused (the fair
scheduler and every start skip their jobs). One hash, not a key per tenant: a worker reads
every paused tenant in one call on each poll."""


def tenant_queue_key(company_id: str) -> str:
    """Sorted set of one company's queued job ids (score = when due, ms)."""
    return f"importer:tenantq:{company_id}"


def tenant_cooldown_key(company_id: str) -> str:
    """Present (with a TTL) after a tenant's automatic resume: no new tenant pause until it expires."""
    return f"importer:tenant:cooldown:{company_id}"
