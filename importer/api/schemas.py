"""Request and response bodies of the public API (they are also the OpenAPI schema)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from importer.models import Job, JobStatus, Phase, Provider, Tier


class CompanyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    tier: Tier = Tier.BASIC
    vip: bool = False


class CompanyCreated(BaseModel):
    id: UUID
    name: str
    tier: Tier
    vip: bool
    api_key: str = Field(description="Shown once; store it, it cannot be read back.")


class ImportCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    provider: Provider
    store_id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")
    include_images: bool = True


class ImportAccepted(BaseModel):
    id: UUID
    status: JobStatus


class ImportCounts(BaseModel):
    products_imported: int
    pages_fetched: int
    images_total: int
    images_stored: int
    images_rejected: int
    thumbnails_created: int


class ImportView(BaseModel):
    id: UUID
    status: JobStatus
    phase: Phase
    provider: Provider
    store_id: str
    include_images: bool
    attempts: int
    error: str | None
    counts: ImportCounts
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def of(cls, job: Job) -> ImportView:
        return cls(
            id=job.id,
            status=job.status,
            phase=job.phase,
            provider=job.provider,
            store_id=job.store_id,
            include_images=job.include_images,
            attempts=job.attempts,
            error=job.error,
            counts=ImportCounts(**job.counts.as_dict()),
            created_at=job.created_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
        )


class ErrorBody(BaseModel):
    error: str
    details: list[dict[str, object]] | None = None
