"""One Redis pub/sub connection per API process, fanned out to every open event stream.

A subscription per SSE client would cost a Redis connection each (1,000 followers = 1,000
connections); a single pattern subscription with in-process queues costs one. When Redis goes
away the hub reconnects with backoff, and streams keep going on their Postgres polling.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from redis.exceptions import RedisError

from importer.logs import get_logger

log = get_logger(__name__)

_QUEUE_SIZE = 100


class EventHub:
    def __init__(self, redis: Any, prefix: str, *, backoff_max: float) -> None:
        self._redis = redis
        self._prefix = prefix
        self._backoff_max = backoff_max
        self._subscribers: dict[str, set[asyncio.Queue[dict[str, Any]]]] = defaultdict(set)
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="event-hub")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    @contextlib.contextmanager
    def subscribe(self, job_id: str) -> Iterator[asyncio.Queue[dict[str, Any]]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=_QUEUE_SIZE)
        self._subscribers[job_id].add(queue)
        try:
            yield queue
        finally:
            self._subscribers[job_id].discard(queue)
            if not self._subscribers[job_id]:
                del self._subscribers[job_id]

    async def _run(self) -> None:
        failures = 0
        while True:  # runs for the life of the process; every failure is logged and waited out
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.psubscribe(f"{self._prefix}*")
                self.connected.set()
                if failures:
                    log.info("event_hub_reconnected", after_failures=failures)
                failures = 0
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None:
                        self._dispatch(message)
            except (TimeoutError, RedisError, OSError) as exc:
                self.connected.clear()
                failures += 1
                delay = min(self._backoff_max, 0.25 * 2 ** min(failures, 8))
                log.warning("event_hub_disconnected", error=repr(exc), retry_in=delay)
                await asyncio.sleep(delay)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    def _dispatch(self, message: dict[str, Any]) -> None:
        channel = message.get("channel")
        if isinstance(channel, bytes):
            channel = channel.decode()
        job_id = str(channel)[len(self._prefix) :]
        queues = self._subscribers.get(job_id)
        if not queues:
            return
        try:
            event = json.loads(message["data"])
        except (ValueError, TypeError):
            log.warning("event_hub_bad_message", channel=channel)
            return
        for queue in queues:
            if queue.full():  # a stalled client loses the oldest progress tick, never the stream
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
            queue.put_nowait(event)
