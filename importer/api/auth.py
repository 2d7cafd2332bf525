"""Who is calling: a company by its API key, or an operator by the operator token.

Authentication runs in the intake guard (importer/api/intake.py), before the request body is
read, so an unauthenticated client cannot make the API buffer or parse anything; the guard
leaves the caller in the request's state and the route dependencies below read it from there
(they authenticate themselves only when no guard ran, e.g. an app built without it).

Failed attempts cost the caller, not the database: unknown keys are remembered as unknown for
``api_key_negative_cache_seconds`` (no Postgres round trip for a repeated wrong key), and an
address that fails more than ``auth_failure_limit_per_min`` times in a minute is answered 429
for everything until the window has room. Both live in memory per API process (the `limits`
library's moving window): with N processes an address gets at most N times the limit, which still
bounds the lookups; a shared Redis counter would cost a round trip on every failed attempt.
"""

from __future__ import annotations

import math
import secrets
import time
from typing import Annotated

from cachetools import TTLCache
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from importer.api.context import ApiContext, get_context
from importer.db import companies
from importer.errors import ApiError
from importer.logs import bind_context, get_logger
from importer.models import Company
from importer.settings import Settings

log = get_logger(__name__)

_bearer = HTTPBearer(auto_error=False, description="A company API key, or the operator token for /v1/ops")
_CHALLENGE = {"WWW-Authenticate": "Bearer"}
_NEGATIVE_CACHE_SIZE = 10_000  # bounded: random wrong keys must not grow the process
STATE_COMPANY = "company"
STATE_OPERATOR = "operator"


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, None when absent or another scheme."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


class Authenticator:
    """Checks credentials with a negative cache and a failed-attempt limit per client address."""

    def __init__(self, settings: Settings, db: object, positive: TTLCache[str, Company] | None) -> None:
        self._settings = settings
        self._db = db
        self._positive = positive
        self._negative: TTLCache[str, bool] | None = (
            TTLCache(maxsize=_NEGATIVE_CACHE_SIZE, ttl=settings.api_key_negative_cache_seconds)
            if settings.api_key_negative_cache_seconds > 0
            else None
        )
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._failures = RateLimitItemPerMinute(settings.auth_failure_limit_per_min)

    async def company(self, token: str | None, client: str) -> Company:
        """A valid key always passes, even from a limited address: behind a proxy every tenant
        shares one address, and junk from one caller must not lock the others out. The limit
        turns further failures into 429s (the negative cache keeps repeated junk off Postgres)."""
        if token is None:
            raise self._failed(
                client, "missing credentials: send 'Authorization: Bearer <api key>'", "missing_credentials"
            )
        digest = companies.hash_api_key(token)
        company = self._positive.get(digest) if self._positive is not None else None
        if company is not None:
            return company
        if self._negative is not None and digest in self._negative:
            raise self._failed(client, "invalid API key", "invalid_api_key")
        async with self._db.acquire() as conn:  # type: ignore[attr-defined]
            company = await companies.by_api_key(conn, token)
        if company is None:
            if self._negative is not None:
                self._negative[digest] = True
            raise self._failed(client, "invalid API key", "invalid_api_key")
        if self._positive is not None:
            self._positive[digest] = company
        return company

    def operator(self, token: str | None, client: str) -> None:
        expected = self._settings.operator_token.get_secret_value()
        if not expected:
            raise ApiError(
                403, "operator endpoints are disabled: IMPORTER_OPERATOR_TOKEN is not set", code="operator_disabled"
            )
        if token is None:
            raise self._failed(
                client, "missing credentials: send 'Authorization: Bearer <token>'", "missing_credentials"
            )
        if not secrets.compare_digest(token.encode(), expected.encode()):
            raise self._failed(client, "invalid operator token", "invalid_operator_token")

    def _refuse_if_limited(self, client: str) -> None:
        if self._limiter.test(self._failures, client):
            return
        reset_at = self._limiter.get_window_stats(self._failures, client).reset_time
        retry_after = max(1, math.ceil(reset_at - time.time()))
        raise ApiError(
            429,
            "too many failed authentications from this address; retry later",
            code="auth_rate_limited",
            headers={"Retry-After": str(retry_after)},
        )

    def _failed(self, client: str, message: str, code: str) -> ApiError:
        self._refuse_if_limited(client)
        self._limiter.hit(self._failures, client)
        log.info("auth_failed", client=client, code=code)
        return ApiError(401, message, code=code, headers=_CHALLENGE)


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def current_company(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ctx: Annotated[ApiContext, Depends(get_context)],
) -> Company:
    company: Company | None = request.scope.get("state", {}).get(STATE_COMPANY)
    if company is None:  # no intake guard in front of this app: authenticate here
        token = credentials.credentials if credentials is not None and credentials.credentials else None
        company = await ctx.authenticator().company(token, client_address(request))
    bind_context(company_id=str(company.id))
    return company


async def require_operator(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ctx: Annotated[ApiContext, Depends(get_context)],
) -> None:
    if request.scope.get("state", {}).get(STATE_OPERATOR):
        return
    token = credentials.credentials if credentials is not None and credentials.credentials else None
    ctx.authenticator().operator(token, client_address(request))


CompanyDep = Annotated[Company, Depends(current_company)]
OperatorDep = Annotated[None, Depends(require_operator)]
ContextDep = Annotated[ApiContext, Depends(get_context)]
