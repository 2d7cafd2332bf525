"""Domain values shared by the API, the worker and the reconciler."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID


class Tier(enum.StrEnum):
    BASIC = "BASIC"
    PRO = "PRO"
    ENTERPRISE = "ENTERPRISE"


class Provider(enum.StrEnum):
    ROASTIFY = "roastify"
    SHOPIFY = "shopify"


class JobStatus(enum.StrEnum):
    PENDING = "PENDING"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def terminal(self) -> bool:
        return self in (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED)


class Phase(enum.StrEnum):
    QUEUED = "queued"
    PRODUCTS = "products"
    IMAGES = "images"
    DONE = "done"


@dataclass(frozen=True)
class Company:
    id: UUID
    name: str
    tier: Tier
    vip: bool


@dataclass(frozen=True)
class JobCounts:
    products_imported: int = 0
    pages_fetched: int = 0
    images_total: int = 0
    images_stored: int = 0
    images_rejected: int = 0
    thumbnails_created: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "products_imported": self.products_imported,
            "pages_fetched": self.pages_fetched,
            "images_total": self.images_total,
            "images_stored": self.images_stored,
            "images_rejected": self.images_rejected,
            "thumbnails_created": self.thumbnails_created,
        }


@dataclass(frozen=True)
class Job:
    id: UUID
    company_id: UUID
    provider: Provider
    store_id: str
    include_images: bool
    status: JobStatus
    phase: Phase
    page_cursor: str | None
    run_token: UUID | None
    attempts: int
    queue_try: int
    error: str | None
    correlation_id: str | None
    counts: JobCounts
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def import_source(self) -> str:
        """Products are unique per company *and store*, so the source names both."""
        return f"{self.provider.value}:{self.store_id}"

    @classmethod
    def from_record(cls, r: Any) -> Job:
        return cls(
            id=r["id"],
            company_id=r["company_id"],
            provider=Provider(r["provider"]),
            store_id=r["store_id"],
            include_images=r["include_images"],
            status=JobStatus(r["status"]),
            phase=Phase(r["phase"]),
            page_cursor=r["page_cursor"],
            run_token=r["run_token"],
            attempts=r["attempts"],
            queue_try=r["queue_try"],
            error=r["error"],
            correlation_id=r["correlation_id"],
            counts=JobCounts(
                products_imported=r["products_imported"],
                pages_fetched=r["pages_fetched"],
                images_total=r["images_total"],
                images_stored=r["images_stored"],
                images_rejected=r["images_rejected"],
                thumbnails_created=r["thumbnails_created"],
            ),
            created_at=r["created_at"],
            started_at=r["started_at"],
            finished_at=r["finished_at"],
        )


@dataclass(frozen=True)
class ProductRecord:
    """One product as every provider dialect is normalised to."""

    external_id: str
    title: str
    description: str
    price_cents: int | None
    currency: str | None
    image_urls: tuple[str, ...]


@dataclass(frozen=True)
class CatalogPage:
    products: list[ProductRecord]
    next_cursor: str | None
