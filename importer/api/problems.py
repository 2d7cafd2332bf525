"""The API's one error shape, ``{"error": <message>, "code": <machine code>, "details"?: [...]}``.

Every error the API answers goes through here: our own ``ApiError``s, FastAPI's validation
errors, Starlette's 404/405, the intake guard's 401/413/429 (sent before the app runs) and the
503 for a backing service that refused. Clients branch on ``code``; ``error`` is for people.
The OpenAPI document is built from the same table (``responses``), so what a route can answer
and what the document says it can answer cannot drift apart.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse

from importer.api.schemas import ErrorBody

# The generic code of each status, used when the error has no more specific one.
DEFAULT_CODES: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "body_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
    500: "internal_error",
    503: "service_unavailable",
}

_DESCRIPTIONS: dict[int, str] = {
    400: "Malformed request: the body is not JSON, or a JSON object repeats a key.",
    401: "Missing, unknown or revoked credentials.",
    403: "The credentials may not use this endpoint.",
    404: "No such resource for this company.",
    409: "The Idempotency-Key was already used with a different request body.",
    413: "The request body is larger than the API accepts.",
    415: "The request body is not JSON (send Content-Type: application/json).",
    422: "The request does not validate; `details` lists each field's problem.",
    429: "Too many requests: failed authentications from this address, open event streams, or "
    "per-company limits. Retry after `Retry-After` seconds.",
    503: "Overloaded, intake closed, or a backing service (PostgreSQL, Redis) is unavailable or "
    "refuses writes. Retry after `Retry-After` seconds.",
}

_RETRY_AFTER = {
    "Retry-After": {"description": "Seconds to wait before retrying.", "schema": {"type": "integer"}},
}


def default_code(status_code: int) -> str:
    return DEFAULT_CODES.get(status_code, "error")


def error_body(message: str, code: str, details: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"error": message, "code": code}
    if details is not None:
        body["details"] = details
    return body


def error_response(
    status_code: int,
    message: str,
    *,
    code: str | None = None,
    headers: dict[str, str] | None = None,
    details: list[dict[str, Any]] | None = None,
) -> JSONResponse:
    return JSONResponse(
        error_body(message, code or default_code(status_code), details), status_code=status_code, headers=headers
    )


def responses(*status_codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the error statuses a route can answer (all in ``ErrorBody``)."""
    out: dict[int | str, dict[str, Any]] = {}
    for status in status_codes:
        entry: dict[str, Any] = {"model": ErrorBody, "description": _DESCRIPTIONS.get(status, "Error.")}
        if status in (429, 503):
            entry["headers"] = _RETRY_AFTER
        out[status] = entry
    return out


# What every authenticated route can answer before its own logic runs: the intake guard's
# 401 (credentials) and 429 (failed-auth limit), and 503 when the key lookup cannot reach
# PostgreSQL.
AUTHENTICATED = (401, 429, 503)
# What every route that reads a JSON body can answer on top: malformed/duplicate-key JSON,
# body over the limit, not JSON, not valid.
WITH_BODY = (400, 413, 415, 422)
