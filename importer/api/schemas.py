"""Request and response bodies of the public API (they are also the OpenAPI schema)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from importer.api.job_errors import public_job_error
from importer.models import Job, JobOutcome, JobStatus, Phase, Provider, Tier, VerificationIssue


class CompanyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # No control characters: PostgreSQL refuses NUL in text, and none belongs in a name.
    name: str = Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")
    tier: Tier = Tier.BASIC
    # Strict: ``0``/``"yes"`` are not booleans; a client sending them has a bug worth a 422.
    vip: StrictBool = False


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
    include_images: StrictBool = True


class ImportAccepted(BaseModel):
    id: UUID
    status: JobStatus
    existing: bool = Field(
        False,
        description="True when no new job was created: the answer names the job this request's "
        "Idempotency-Key already created, or the job already active for the same provider and store.",
    )


class ImportCounts(BaseModel):
    products_imported: int
    pages_fetched: int
    images_total: int
    images_stored: int
    images_rejected: int
    thumbnails_created: int
    products_rejected: int = Field(0, description="Catalog products rejected (each with a code and a reason).")


class VerificationIssueView(BaseModel):
    code: VerificationIssue
    detail: str
    page_cursor: str | None = None


class ImportView(BaseModel):
    id: UUID
    status: JobStatus
    phase: Phase
    provider: Provider
    store_id: str
    include_images: bool
    attempts: int
    error: str | None = Field(description="A generic, tenant-facing message; details are in the operators' logs.")
    error_code: str | None = Field(None, description="Machine-readable reason of `error`.")
    counts: ImportCounts
    outcome: JobOutcome | None = Field(
        None,
        description="Set when COMPLETED: CLEAN (every record imported), WITH_REJECTIONS (some records "
        "rejected, see `rejections`) or UNVERIFIED (the catalog's pages did not add up, see "
        "`verification_issues`; wins over WITH_REJECTIONS).",
    )
    products_rejected: int = Field(0, description="Catalog products rejected, each with a code and a reason.")
    rejections: dict[str, int] = Field(
        default_factory=dict, description="Rejected records (products and images) counted by rejection code."
    )
    verification_issues: list[VerificationIssueView] = Field(
        default_factory=list, description="What the job could not verify about the catalog's pages."
    )
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def of(cls, job: Job) -> ImportView:
        public = public_job_error(job.error)
        return cls(
            id=job.id,
            status=job.status,
            phase=job.phase,
            provider=job.provider,
            store_id=job.store_id,
            include_images=job.include_images,
            attempts=job.attempts,
            error=public.message if public else None,
            error_code=public.code if public else None,
            counts=ImportCounts(**job.counts.as_dict(), products_rejected=job.products_rejected),
            outcome=job.outcome,
            products_rejected=job.products_rejected,
            rejections=dict(job.rejection_counts),
            verification_issues=[VerificationIssueView.model_validate(i) for i in issue_views(job)],
            created_at=job.created_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
        )


def issue_views(job: Job) -> list[dict[str, Any]]:
    """The row's issues as the API shows them; an entry with an unknown code is left out."""
    known = {v.value for v in VerificationIssue}
    return [
        {"code": i["code"], "detail": str(i.get("detail", "")), "page_cursor": i.get("page_cursor")}
        for i in job.verification_issues
        if isinstance(i, dict) and i.get("code") in known
    ]


class ErrorBody(BaseModel):
    """Every error the API answers has this shape."""

    error: str = Field(description="What went wrong, for people.")
    code: str = Field(description="What went wrong, for programs (e.g. `idempotency_key_reused`).")
    details: list[dict[str, object]] | None = Field(None, description="Per-field problems of a 422.")
