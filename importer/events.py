"""Progress events on Redis pub/sub, for the API's Server-Sent Events.

Best effort by design: the job row in Postgres is the truth and the API falls back to reading
it, so a lost event (Redis failing over) costs a client a few seconds of freshness, never a
wrong answer. Publishing therefore logs failures and never fails a job.
"""

from __future__ import annotations

import json
import time
from typing import Any
from uuid import UUID

from redis.exceptions import RedisError

from importer.logs import get_logger

log = get_logger(__name__)


def channel(prefix: str, job_id: UUID | str) -> str:
    return f"{prefix}{job_id}"


def encode(job_id: UUID | str, kind: str, **fields: Any) -> str:
    return json.dumps({"type": kind, "job_id": str(job_id), "ts": time.time(), **fields}, default=str)


class EventPublisher:
    def __init__(self, redis: Any, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix

    async def publish(self, job_id: UUID, kind: str, **fields: Any) -> None:
        try:
            await self._redis.publish(channel(self._prefix, job_id), encode(job_id, kind, **fields))
        except (RedisError, OSError) as exc:
            log.warning("event_publish_failed", kind=kind, error=str(exc))
