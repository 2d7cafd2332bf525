"""Operator endpoints (operator token)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status
from pydantic import BaseModel, Field

from importer.api.auth import ContextDep, OperatorDep
from importer.api.problems import AUTHENTICATED, WITH_BODY, responses
from importer.api.schemas import CompanyCreate, CompanyCreated
from importer.api.strict_json import StrictJsonRoute
from importer.db import companies
from importer.logs import get_logger
from importer.protection.pause import pause_queue, resume_queue

log = get_logger(__name__)
router = APIRouter(prefix="/v1/ops", tags=["ops"], route_class=StrictJsonRoute)


@router.post(
    "/companies",
    status_code=status.HTTP_201_CREATED,
    response_model=CompanyCreated,
    responses=responses(*AUTHENTICATED, 403, *WITH_BODY),
)
async def create_company(body: CompanyCreate, _: OperatorDep, ctx: ContextDep) -> CompanyCreated:
    async with ctx.db.acquire() as conn:
        company, key = await companies.create(conn, name=body.name, tier=body.tier, vip=body.vip)
    log.info("company_created", company_id=str(company.id), tier=company.tier.value, vip=company.vip)
    return CompanyCreated(id=company.id, name=company.name, tier=company.tier, vip=company.vip, api_key=key)


class PauseRequest(BaseModel):
    reason: str = Field("paused by an operator", min_length=1, max_length=500)


_OPS_ERRORS = responses(*AUTHENTICATED, 403, *WITH_BODY)


@router.post("/queue/pause", responses=_OPS_ERRORS)
async def pause(_: OperatorDep, ctx: ContextDep, body: PauseRequest | None = None) -> dict[str, Any]:
    """Workers stop taking new jobs (running ones finish). A manual pause is never auto-resumed."""
    reason = (body or PauseRequest()).reason
    state = await pause_queue(ctx.redis, reason=reason, by="api")
    return {"paused": True, "pause": state.to_json()}


@router.post("/queue/resume", responses=responses(*AUTHENTICATED, 403, 413))
async def resume(_: OperatorDep, ctx: ContextDep) -> dict[str, Any]:
    """Lift any pause (manual or automatic) and reopen intake."""
    previous, intake_was_closed = await resume_queue(ctx.redis, by="api", cooldown=ctx.settings.brake_cooldown)
    return {
        "paused": False,
        "was_paused": previous.to_json() if previous is not None else None,
        "intake_reopened": intake_was_closed,
    }
