"""Who is calling: a company by its API key, or an operator by the operator token."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from importer.api.context import ApiContext, get_context
from importer.db import companies
from importer.errors import ApiError
from importer.logs import bind_context
from importer.models import Company

_bearer = HTTPBearer(auto_error=False, description="A company API key, or the operator token for /v1/ops")
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def _token(credentials: HTTPAuthorizationCredentials | None) -> str:
    if credentials is None or not credentials.credentials:
        raise ApiError(401, "missing credentials: send 'Authorization: Bearer <api key>'", headers=_CHALLENGE)
    return credentials.credentials


async def current_company(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ctx: Annotated[ApiContext, Depends(get_context)],
) -> Company:
    key = _token(credentials)
    digest = companies.hash_api_key(key)
    company = ctx.companies.get(digest) if ctx.companies is not None else None
    if company is None:
        async with ctx.db.acquire() as conn:
            company = await companies.by_api_key(conn, key)
        if company is None:  # unknown keys are not cached: nothing to gain, a cache to fill
            raise ApiError(401, "invalid API key", headers=_CHALLENGE)
        if ctx.companies is not None:
            ctx.companies[digest] = company
    bind_context(company_id=str(company.id))
    return company


async def require_operator(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ctx: Annotated[ApiContext, Depends(get_context)],
) -> None:
    expected = ctx.settings.operator_token.get_secret_value()
    if not expected:
        raise ApiError(403, "operator endpoints are disabled: IMPORTER_OPERATOR_TOKEN is not set")
    if not secrets.compare_digest(_token(credentials).encode(), expected.encode()):
        raise ApiError(401, "invalid operator token", headers=_CHALLENGE)


CompanyDep = Annotated[Company, Depends(current_company)]
OperatorDep = Annotated[None, Depends(require_operator)]
ContextDep = Annotated[ApiContext, Depends(get_context)]
