"""The runtime every part of a worker receives, instead of module globals.

Built once per process by ``Runtime.open`` and closed by ``Runtime.close``; tests build one
against real services the same way. Modelled on Locust's ``Environment``.
"""

from __future__ import annotations

import asyncio
import os
import socket
from dataclasses import dataclass, field
from typing import Any

import httpx

from importer.connections import open_redis
from importer.db.pool import create_pool
from importer.egress.client import build_client
from importer.egress.policy import EgressPolicy
from importer.events import EventPublisher
from importer.models import Provider
from importer.pipeline.images import ImageLimits
from importer.protection.kit import Protection
from importer.providers.base import CatalogProvider
from importer.providers.registry import build_providers
from importer.providers.transport import ProviderTransport
from importer.settings import Settings
from importer.storage import ImageStore


def default_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def egress_policy(settings: Settings) -> EgressPolicy:
    return EgressPolicy.build(
        schemes=settings.egress_allowed_schemes,
        ports=settings.egress_allowed_ports,
        allowed_private=settings.egress_allowed_private,
        resolve_timeout=settings.egress_resolve_timeout,
    )


@dataclass
class Runtime:
    settings: Settings
    db: Any
    redis: Any
    store: ImageStore
    transport: ProviderTransport
    image_client: httpx.AsyncClient
    providers: dict[Provider, CatalogProvider]
    events: EventPublisher
    image_limits: ImageLimits
    worker_id: str
    shutdown: asyncio.Event = field(default_factory=asyncio.Event)
    protection: Protection | None = None

    @classmethod
    async def open(cls, settings: Settings, *, worker_id: str | None = None, redis: Any = None) -> Runtime:
        db = await create_pool(settings)
        redis = redis if redis is not None else open_redis(settings)
        protection = Protection.open(settings, redis)
        # One policy for pages and images: both clients connect only to checked addresses.
        egress = egress_policy(settings)
        transport = ProviderTransport(
            timeout=settings.provider_timeout,
            max_inline_wait=settings.provider_max_inline_wait,
            guard=protection.guard,
            policy=egress,
            page_max_bytes=settings.provider_page_max_bytes,
            deadline=settings.provider_request_deadline,
        )
        image_client = build_client(
            egress,
            timeout=settings.image_timeout,
            limits=httpx.Limits(max_connections=settings.image_concurrency * 2),
        )
        store = ImageStore(
            bucket=settings.s3_bucket,
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            max_connections=settings.image_concurrency * 2 + 4,
        )
        return cls(
            settings=settings,
            db=db,
            redis=redis,
            store=store,
            transport=transport,
            image_client=image_client,
            providers=build_providers(settings, transport),
            events=EventPublisher(redis, settings.events_channel_prefix),
            image_limits=ImageLimits(
                allowed_hosts=frozenset(settings.image_allowed_hosts),
                max_bytes=settings.image_max_bytes,
                max_pixels=settings.image_max_pixels,
                thumbnail_size=settings.thumbnail_size,
                policy=egress,
                deadline=settings.image_request_deadline,
            ),
            worker_id=worker_id or default_worker_id(),
            protection=protection,
        )

    async def close(self) -> None:
        await self.transport.aclose()
        if self.protection is not None:
            await self.protection.close()
        await self.image_client.aclose()
        await self.db.close()
