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
