"""Redis connections for arq, the API and the worker, plain or through Sentinel.

Built here rather than by ``arq.connections.create_pool`` because that one sets no read
timeout on plain connections and passes no retry or timeout options through Sentinel (see
docs/architecture.md §7): a partitioned Redis must surface as an error we can retry, never as a hang.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from arq.connections import ArqRedis
from redis.asyncio.sentinel import Sentinel

from importer.settings import Settings


def _host_port(item: str) -> tuple[str, int]:
    host, _, port = item.rpartition(":")
    return host or "127.0.0.1", int(port)


def _client_options(settings: Settings, *, read_timeout: float | None) -> dict[str, Any]:
    return {
        "socket_connect_timeout": settings.redis_socket_timeout,
        "socket_timeout": read_timeout,
        "socket_keepalive": True,
        "health_check_interval": 15,
    }


def open_redis(settings: Settings, *, read_timeout: float | None = -1.0) -> ArqRedis:
    """An ArqRedis client (enqueue_job & co.) that fails fast when Redis is unreachable.

    ``read_timeout=None`` is for pub/sub listeners, which wait on a socket by design.
    """
    timeout = settings.redis_socket_timeout if read_timeout == -1.0 else read_timeout
    options = _client_options(settings, read_timeout=timeout)
    if settings.redis_sentinels:
        sentinel = Sentinel(  # type: ignore[no-untyped-call]
            [_host_port(s) for s in settings.redis_sentinels],
            sentinel_kwargs={
                "socket_timeout": settings.redis_socket_timeout,
                "socket_connect_timeout": settings.redis_socket_timeout,
            },
            **options,
        )
        client: ArqRedis = sentinel.master_for(settings.redis_sentinel_master, redis_class=ArqRedis)
    else:
        parts = urlsplit(settings.redis_url)
        db = int(parts.path.lstrip("/") or 0)
        client = ArqRedis(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 6379,
            db=db,
            username=parts.username,
            password=parts.password,
            **options,
        )
    client.default_queue_name = settings.queue_name
    return client
